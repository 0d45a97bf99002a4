"""Write roost plugins in Python.

    from roost import Plugin, command, kv

    class Dice(Plugin):
        @command(usage="NdM", help="roll dice")
        def roll(self, ctx, spec: str):
            ...
            kv.set_json("last", {"by": ctx.identity, "total": total})
            return f"{ctx.identity} rolled {spec}: {total}"

# Layout
- `plugin`: `Plugin` (the hooks, each with a default), `@command`, `Context`.
- `reply`: `Reply`, for answers with code blocks or attachments (a `str` does for text).
- `errors`: the host's refusals (`AccessDenied`, `NotFound`, `InvalidArgument`,
  `TooLarge`, `Other`, all `HostError`) and `UsageError`.
- `errors`: also `Timeout` and `Unreachable`, a DNS server that did not answer.
- One module per capability, one function per call: `kv`, `chat`, `timer`, `log`,
  `clock` (wall time the fake host controls),
  `sqlite` (read-only connections and cursors), `dns`, `watch` (with the hook
  `Plugin.on_files_changed`), `process` (jobs, with `Plugin.on_job_ended`), `admin`,
  `secrets`. Outgoing HTTP will be one more module of the same shape (`http`).
- `testing`: a fake host (in-memory KV, captured chat, a fake clock for timers, SQLite on
  Python's own sqlite3, a DNS table, recorded watches and jobs that the test ends) for
  pytest, no wasm.
- `_runtime` runs the exports in plain Python; `_host` is the one seam to the host; `_wit`
  (inside the component only) is the one module that touches the generated WIT bindings.
"""

from . import admin, chat, clock, dns, kv, log, process, secrets, sqlite, timer, watch
from .errors import (AccessDenied, HostError, InvalidArgument, NotFound, Other, Timeout,
                     TooLarge, Unreachable, UsageError)
from .plugin import Context, Plugin, command
from .reply import Reply

__all__ = [
    "AccessDenied", "Context", "HostError", "InvalidArgument", "NotFound", "Other", "Plugin",
    "Reply", "Timeout", "TooLarge", "Unreachable", "UsageError", "admin", "chat", "command",
    "clock", "dns", "kv", "log", "process", "secrets", "sqlite", "timer", "watch",
]

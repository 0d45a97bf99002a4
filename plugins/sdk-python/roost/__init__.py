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
- `errors`: also `Timeout` and `Unreachable` (a DNS or HTTP server that did not answer),
  and for HTTP `Prohibited`, `TooManyRedirects`, `DecodeError`, `StatusError`.
- One module per capability, one function per call: `kv`, `chat`, `timer`, `log`,
  `clock` (wall time the fake host controls),
  `sqlite` (read-only connections and cursors), `dns`, `watch` (with the hook
  `Plugin.on_files_changed`), `process` (jobs, with `Plugin.on_job_ended`), `admin`,
  `secrets`, `http` (outgoing requests, blocking; redirects followed).
- `webhook`: `Request`, `Response` and signature checks for `Plugin.on_webhook`.
- `testing`: a fake host (in-memory KV, captured chat, a fake clock for timers, SQLite on
  Python's own sqlite3, a DNS table, recorded watches and jobs that the test ends, HTTP
  answers from routes the test adds, webhooks delivered by the test) for pytest, no wasm.
- `_runtime` runs the exports in plain Python; `_host` is the one seam to the host; `_wit`
  and `_wasi_http` (inside the component only) are the modules that touch the generated
  WIT bindings.
"""

from . import (admin, chat, clock, dns, http, kv, log, process, secrets, sqlite, timer, watch,
               webhook)
from .errors import (AccessDenied, DecodeError, HostError, InvalidArgument, NotFound, Other,
                     Prohibited, StatusError, Timeout, TooLarge, TooManyRedirects, Unreachable,
                     UsageError)
from .plugin import Context, Plugin, command
from .reply import Reply

__all__ = [
    "AccessDenied", "Context", "DecodeError", "HostError", "InvalidArgument", "NotFound",
    "Other", "Plugin", "Prohibited", "Reply", "StatusError", "Timeout", "TooLarge",
    "TooManyRedirects", "Unreachable", "UsageError", "admin", "chat", "command", "clock",
    "dns", "http", "kv", "log", "process", "secrets", "sqlite", "timer", "watch", "webhook",
]

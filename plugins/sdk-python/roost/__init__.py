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
- One module per capability, one function per call: `kv`, `chat`, `timer`, `log`.
- `testing`: a fake host (in-memory KV, captured chat, fake clock) for pytest, no wasm.
- `_runtime` runs the exports in plain Python; `_host` is the one seam to the host; `_wit`
  (inside the component only) is the one module that touches the generated WIT bindings.
"""

from . import chat, kv, log, timer
from .errors import (AccessDenied, HostError, InvalidArgument, NotFound, Other, TooLarge,
                     UsageError)
from .plugin import Context, Plugin, command
from .reply import Reply

__all__ = [
    "AccessDenied", "Context", "HostError", "InvalidArgument", "NotFound", "Other", "Plugin",
    "Reply", "TooLarge", "UsageError", "chat", "command", "kv", "log", "timer",
]

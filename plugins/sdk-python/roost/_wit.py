"""The only module that touches the WIT bindings componentize-py generates (`wit_world`).
It exists only inside the component: `roost build` writes an entry module that imports it
at the top (what the build does not import is not in the component) and calls `export`.

    import roost._wit, dice
    WitWorld = roost._wit.export(dice, "dice")
"""

from __future__ import annotations

import types as _pytypes
from typing import Any

import wit_world
from componentize_py_types import Err
from wit_world.imports import chat as wit_chat
from wit_world.imports import kv as wit_kv
from wit_world.imports import log as wit_log
from wit_world.imports import timer as wit_timer
# The world imports two `types` interfaces (roost:plugin's and wasi:http's), so
# componentize-py names each by its package.
from wit_world.imports import roost_plugin_types as wit

from . import _host
from ._runtime import CommandFailed, Runtime
from .errors import AccessDenied, InvalidArgument, NotFound, Other, TooLarge
from .plugin import Context, Plugin

_ERRORS = {
    wit.Error_AccessDenied: AccessDenied,
    wit.Error_NotFound: NotFound,
    wit.Error_InvalidArgument: InvalidArgument,
    wit.Error_TooLarge: TooLarge,
    wit.Error_Other: Other,
}
_ROLES = {wit.Role.ANYONE: "anyone", wit.Role.TRUSTED: "trusted", wit.Role.ADMIN: "admin"}
_LEVELS = {
    "trace": wit_log.Level.TRACE,
    "debug": wit_log.Level.DEBUG,
    "info": wit_log.Level.INFO,
    "warn": wit_log.Level.WARN,
    "error": wit_log.Level.ERROR,
}


def _host_call(fn, *args):
    """Calls a WIT import, turning its `Err(error)` into the matching `HostError`."""
    try:
        return fn(*args)
    except Err as e:
        err = e.value
        raise _ERRORS.get(type(err), Other)(getattr(err, "value", str(err))) from None


def _content(parts: list[tuple]) -> list:
    out = []
    for part in parts:
        if part[0] == "text":
            out.append(wit.Content_Text(part[1]))
        elif part[0] == "code":
            out.append(wit.Content_Code(wit.CodeBlock(part[1], part[2])))
        else:
            out.append(wit.Content_Attachment(wit.Attachment(part[1], part[2])))
    return out


class WitHost:
    """`roost._host.Host` over the WIT imports."""

    def kv_get(self, key):
        return _host_call(wit_kv.get, key)

    def kv_set(self, key, value):
        _host_call(wit_kv.set, key, value)

    def kv_delete(self, key):
        _host_call(wit_kv.delete, key)

    def kv_keys(self, prefix):
        return _host_call(wit_kv.keys, prefix)

    def kv_batch(self, ops):
        wit_ops = [wit_kv.Op_Set((op[1], op[2])) if op[0] == "set" else wit_kv.Op_Delete(op[1]) for op in ops]
        _host_call(wit_kv.batch, wit_ops)

    def chat_send(self, channel, parts):
        _host_call(wit_chat.send, channel, _content(parts))

    def timer_every(self, interval_ms, tag):
        return _host_call(wit_timer.every, interval_ms, tag)

    def timer_after(self, delay_ms, tag):
        return _host_call(wit_timer.after, delay_ms, tag)

    def timer_cancel(self, timer_id):
        _host_call(wit_timer.cancel, timer_id)

    def log(self, level, message):
        wit_log.log(_LEVELS.get(level, wit_log.Level.INFO), message)


def _find_plugin(module: _pytypes.ModuleType) -> type[Plugin]:
    found = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Plugin) and v is not Plugin
        and v.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise TypeError(f"{module.__name__}.py must define exactly one roost.Plugin subclass (found {names})")
    return found[0]


def export(module: _pytypes.ModuleType, name: str) -> type:
    """The `WitWorld` class componentize-py instantiates: the plugin class found in
    `module`, run by a `Runtime` named `name` (the component's file stem)."""
    # One runtime per component instance, whether componentize-py makes one `WitWorld` or
    # one per call: the plugin's state lives here, not in the `WitWorld` object.
    runtime = Runtime(_find_plugin(module), name)
    _host.install(WitHost())

    class WitWorld(wit_world.WitWorld):
        def __init__(self) -> None:
            self.runtime = runtime

        def init(self, config: str) -> Any:
            try:
                m = self.runtime.init(config)
            except CommandFailed as e:
                raise Err(str(e)) from None
            return wit.Manifest(m.name, m.version, [
                wit.CommandSpec(c.name, f"!{c.name} {c.usage}".rstrip(), c.help,
                                wit.Role[c.role.upper()], c.min_args)
                for c in m.commands
            ])

        def on_command(self, ctx: Any, args: list[str]) -> list:
            context = Context(ctx.identity, _ROLES.get(ctx.role, "anyone"), ctx.gateway,
                              ctx.channel, ctx.command, ctx.prefix, ctx.text)
            try:
                return _content(self.runtime.on_command(context, list(args)).parts)
            except CommandFailed as e:
                raise Err(str(e)) from None

        def on_event(self, event: Any) -> None:
            kind = {
                wit.Event_Timer: "timer",
                wit.Event_Notice: "notice",
                wit.Event_FilesChanged: "files-changed",
                wit.Event_JobEnded: "job-ended",
            }.get(type(event))
            if kind is not None:
                self.runtime.on_event(kind, event.value)

        def status(self) -> str:
            return self.runtime.status()

    return WitWorld

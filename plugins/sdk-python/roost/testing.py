"""Test a plugin under plain CPython with pytest, no wasm: a fake host with in-memory KV,
captured chat and log, and a fake clock that fires timers.

    from roost.testing import PluginTest
    from dice import Dice

    def test_roll_remembers_the_total():
        t = PluginTest(Dice)
        assert t.command("!roll 1d1") == "console rolled 1d1: 1"
        assert t.host.kv_json("last") == {"by": "console", "total": 1}

The host checks the same things the daemon does before a command reaches the plugin (the
sender's role, the fewest arguments) and refuses `chat.send` to channels not granted.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from . import _host
from ._runtime import CommandFailed, Manifest, Runtime, usage_line
from .errors import AccessDenied, InvalidArgument, NotFound, TooLarge
from .plugin import ROLES, Context, Plugin
from .reply import Reply

#: The daemon's default per-value KV limit (`kv_value_kb` = 1024 KiB).
KV_VALUE_LIMIT = 1024 * 1024


@dataclass
class Timer:
    id: int
    tag: str
    due_ms: int
    interval_ms: Optional[int]


class FakeHost:
    """An in-memory host. `kv` maps keys to bytes, `sent` collects `(channel, Reply)` from
    `chat.send`, `logs` collects `(level, message)`, `now_ms` is the fake clock that
    `PluginTest.advance` moves."""

    def __init__(self, channels: Iterable[str] = (), kv_value_limit: int = KV_VALUE_LIMIT):
        self.channels = set(channels)
        self.kv: dict[str, bytes] = {}
        self.sent: list[tuple[str, Reply]] = []
        self.logs: list[tuple[str, str]] = []
        self.timers: dict[int, Timer] = {}
        self.now_ms = 0
        self.kv_value_limit = kv_value_limit
        self._next_timer = 1

    # -- what tests read --
    def kv_json(self, key: str) -> Any:
        """The JSON value stored under `key`, or None."""
        raw = self.kv.get(key)
        return None if raw is None else json.loads(raw)

    def sent_text(self) -> list[tuple[str, str]]:
        """`chat.send` calls as `(channel, plain text)`."""
        return [(channel, reply.plain_text()) for channel, reply in self.sent]

    # -- the Host protocol --
    def kv_get(self, key: str) -> Optional[bytes]:
        return self.kv.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        self._check_key(key)
        if len(value) > self.kv_value_limit:
            raise TooLarge(f"kv value of {len(value)} bytes is over the {self.kv_value_limit}-byte limit")
        self.kv[key] = bytes(value)

    def kv_delete(self, key: str) -> None:
        self.kv.pop(key, None)

    def kv_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.kv if k.startswith(prefix))

    def kv_batch(self, ops: list[tuple]) -> None:
        staged = dict(self.kv)
        for op in ops:
            if op[0] == "set":
                self._check_key(op[1])
                if len(op[2]) > self.kv_value_limit:
                    raise TooLarge(f"kv value of {len(op[2])} bytes is over the limit")
                staged[op[1]] = op[2]
            else:
                staged.pop(op[1], None)
        self.kv = staged

    def chat_send(self, channel: str, parts: list[tuple]) -> None:
        if channel not in self.channels:
            raise AccessDenied(f"channel `{channel}` is not in grants.channels")
        reply = Reply()
        reply.parts = list(parts)
        self.sent.append((channel, reply))

    def timer_every(self, interval_ms: int, tag: str) -> int:
        if interval_ms <= 0:
            raise InvalidArgument("a timer's interval must be above 0 ms")
        return self._add_timer(tag, interval_ms, interval_ms)

    def timer_after(self, delay_ms: int, tag: str) -> int:
        return self._add_timer(tag, delay_ms, None)

    def timer_cancel(self, timer_id: int) -> None:
        if self.timers.pop(timer_id, None) is None:
            raise NotFound(f"no timer {timer_id}")

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def _add_timer(self, tag: str, delay_ms: int, interval_ms: Optional[int]) -> int:
        timer_id = self._next_timer
        self._next_timer += 1
        self.timers[timer_id] = Timer(timer_id, tag, self.now_ms + delay_ms, interval_ms)
        return timer_id

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key.encode("utf-8")) > 1024:
            raise InvalidArgument("kv keys are at most 1 KiB")


class PluginTest:
    """A plugin instance on a `FakeHost`, driven like the daemon drives it. Installs the
    host for capability calls on creation (and `close()` puts the previous one back);
    calls `init` with `config`."""

    def __init__(self, plugin_cls: type[Plugin], config: Optional[dict] = None,
                 host: Optional[FakeHost] = None, name: Optional[str] = None,
                 channels: Iterable[str] = ()):
        self.host = host if host is not None else FakeHost(channels=channels)
        self._previous = _host.install(self.host)
        try:
            self.runtime = Runtime(plugin_cls, name or plugin_cls.__name__.lower())
            self.manifest: Manifest = self.runtime.init(json.dumps(config or {}))
        except BaseException:
            self.close()
            raise

    @property
    def plugin(self) -> Plugin:
        assert self.runtime.plugin is not None
        return self.runtime.plugin

    def reload(self) -> None:
        """A new instance on the same host, as after `!reload`: KV stays, timers go."""
        self.host.timers.clear()
        self.manifest = self.runtime.init(json.dumps({}))

    def call(self, text: str, identity: str = "console", role: str = "anyone",
             prefix: str = "!") -> Reply:
        """Sends `text` ("!roll 2d6") as the daemon would and returns the reply. A refusal
        (unknown command, role, usage) or an error raises `CommandFailed` with the line the
        user would see."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        words = shlex.split(text[len(prefix):] if text.startswith(prefix) else text)
        if not words:
            raise CommandFailed("empty command")
        name, args = words[0].split(":", 1)[-1], words[1:]
        spec = self.runtime.commands.get(name)
        if spec is None:
            raise CommandFailed(f"unknown command: {prefix}{name}")
        if ROLES.index(role) < ROLES.index(spec.role):
            raise CommandFailed(f"not allowed: {prefix}{name} needs role {spec.role} and {identity} has role {role}")
        if len(args) < spec.min_args:
            raise CommandFailed(usage_line(spec, prefix))
        ctx = Context(identity=identity, role=role, gateway="console", channel="test",
                      command=name, prefix=prefix, text=text)
        return self.runtime.on_command(ctx, args)

    def command(self, text: str, **kw: Any) -> str:
        """Like `call`, but the answer as the chat shows it: the reply's text, or the error
        line (never raises for a refused or failed command)."""
        try:
            return self.call(text, **kw).plain_text()
        except CommandFailed as e:
            return str(e)

    def advance(self, seconds: float) -> list[str]:
        """Moves the fake clock and fires due timers in order through `on_timer`; returns
        the tags fired."""
        end = self.host.now_ms + int(round(seconds * 1000))
        fired = []
        while True:
            due = [t for t in self.host.timers.values() if t.due_ms <= end]
            if not due:
                break
            timer = min(due, key=lambda t: (t.due_ms, t.id))
            self.host.now_ms = timer.due_ms
            if timer.interval_ms is None:
                del self.host.timers[timer.id]
            else:
                timer.due_ms += timer.interval_ms
            fired.append(timer.tag)
            self.runtime.on_event("timer", timer.tag)
        self.host.now_ms = end
        return fired

    def notice(self, text: str) -> None:
        self.runtime.on_event("notice", text)

    def status(self) -> str:
        return self.runtime.status()

    def close(self) -> None:
        _host.install(self._previous)

    def __enter__(self) -> "PluginTest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["CommandFailed", "FakeHost", "PluginTest"]

"""The one seam between the SDK and whatever runs it.

Every capability call in `roost.kv`, `roost.chat`, `roost.timer` and `roost.log` goes
through `current()`, an object with the methods of `Host` below. Inside the component it
is `roost._wit.WitHost`, which calls the generated WIT bindings; under plain CPython,
`roost.testing` installs its in-memory `FakeHost` with `install()`. Nothing else in the
SDK imports the bindings, so the SDK itself runs (and is tested) without any wasm.
"""

from __future__ import annotations

from typing import Optional, Protocol


class Host(Protocol):
    """What a host provides. Each method raises a `roost.HostError` subclass when the host
    refuses the call (never returns an error value)."""

    def kv_get(self, key: str) -> Optional[bytes]: ...
    def kv_set(self, key: str, value: bytes) -> None: ...
    def kv_delete(self, key: str) -> None: ...
    def kv_keys(self, prefix: str) -> list[str]: ...
    def kv_batch(self, ops: list[tuple]) -> None: ...
    def chat_send(self, channel: str, parts: list[tuple]) -> None: ...
    def timer_every(self, interval_ms: int, tag: str) -> int: ...
    def timer_after(self, delay_ms: int, tag: str) -> int: ...
    def timer_cancel(self, timer_id: int) -> None: ...
    def log(self, level: str, message: str) -> None: ...


class _NoHost:
    """Stands in until a host is installed, so that a capability call under plain CPython
    says what to do instead of failing with an AttributeError."""

    def __getattr__(self, name: str):
        raise RuntimeError(
            f"roost: no host for `{name}`: capability calls work inside the daemon, "
            "or in tests under roost.testing.FakeHost"
        )


_current: Host = _NoHost()  # type: ignore[assignment]


def current() -> Host:
    """The host that capability calls go to right now."""
    return _current


def install(host: Host) -> Host:
    """Makes `host` the target of capability calls; returns the previous one so a test can
    put it back."""
    global _current
    previous = _current
    _current = host
    return previous

"""Wall-clock time, through the host seam so that tests control it: inside the daemon it
is the system clock (WASI's), under `roost.testing` the fake clock that
`PluginTest.advance` moves. Use it instead of `time.time()` for anything a test should be
able to check (due times, "last run at …")."""

from __future__ import annotations

import time

from . import _host


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return int(_host.current().clock_now_ms())


def now() -> float:
    """Seconds since the Unix epoch, like `time.time()`."""
    return now_ms() / 1000


def format_utc(secs: float, seconds: bool = True) -> str:
    """`secs` since the epoch as "YYYY-MM-DD HH:MM:SS UTC" (without the seconds when
    `seconds` is false), the same text the Rust SDK's `clock::format_utc` gives."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC",
                         time.gmtime(int(secs)))

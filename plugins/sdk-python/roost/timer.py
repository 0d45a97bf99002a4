"""Timers kept by the host. Need no grant. A timer fires as the plugin's
`on_timer(tag)` and dies with the instance: after a reload or a crash, `init` sets timers
up again. Durations are seconds (floats allowed), like `time.sleep`."""

from __future__ import annotations

from . import _host


def _millis(seconds: float) -> int:
    if seconds < 0:
        raise ValueError("a timer's duration cannot be negative")
    return int(round(seconds * 1000))


def every(seconds: float, tag: str) -> int:
    """Fires `on_timer(tag)` every `seconds` until cancelled; returns the timer id."""
    return _host.current().timer_every(_millis(seconds), tag)


def after(seconds: float, tag: str) -> int:
    """Fires `on_timer(tag)` once, after `seconds`; returns the timer id."""
    return _host.current().timer_after(_millis(seconds), tag)


def cancel(timer_id: int) -> None:
    """Stops a timer; an unknown (or already fired one-shot) id raises `NotFound`."""
    _host.current().timer_cancel(timer_id)

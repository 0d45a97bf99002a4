"""The plugin's log, tagged by the host with the plugin's name. Needs no grant."""

from __future__ import annotations

from . import _host


def trace(message: str) -> None:
    _host.current().log("trace", message)


def debug(message: str) -> None:
    _host.current().log("debug", message)


def info(message: str) -> None:
    _host.current().log("info", message)


def warn(message: str) -> None:
    _host.current().log("warn", message)


def error(message: str) -> None:
    _host.current().log("error", message)

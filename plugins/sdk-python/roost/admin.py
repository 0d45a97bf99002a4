"""Control of the host's plugins, as the built-in bot uses it. Every call needs
`admin = true` in the plugin's grants; without it each raises `AccessDenied`."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _host


@dataclass
class CommandInfo:
    """One command a plugin serves, as `!help` lists it."""

    name: str
    """Without the prefix, e.g. "ping"."""
    usage: str = ""
    """The usage line, e.g. "!roll NdM"."""
    summary: str = ""
    role: str = "anyone"
    """Who may run it: "anyone", "trusted" or "admin"."""
    min_args: int = 0


@dataclass
class PluginInfo:
    """What the host knows about one plugin, as `list_plugins` reports it."""

    name: str
    """Its name (the `.wasm` file stem)."""
    version: str = ""
    """The version now serving; empty when none is."""
    state: str = "running"
    """"running", "disabled", "failed" or "restarting" (or a state a newer host names)."""
    enabled: bool = True
    """Whether config enables it."""
    commands: list[CommandInfo] = field(default_factory=list)
    """Its commands, with config overrides of roles applied."""
    status: str = ""
    """Its own one-line status, or empty."""
    last_error: str = ""
    """The last load, init or trap error, or empty."""
    failures: int = 0
    """Calls that failed (trap, timeout, memory) since the host started."""


def host_status() -> list[str]:
    """One line each about the host itself: uptime, gateways, outbox, config errors."""
    return list(_host.current().admin_host_status())


def list_plugins() -> list[PluginInfo]:
    """Every plugin the host knows, running or not."""
    return list(_host.current().admin_list_plugins())


def reload(name: str) -> str:
    """Reloads plugin `name` from disk; returns the version now serving. The old instance
    keeps serving if the new one fails to load (and this raises, saying why)."""
    return _host.current().admin_reload(name)


def enable(name: str) -> str:
    """Enables plugin `name` and loads it; returns the version now serving."""
    return _host.current().admin_enable(name)


def disable(name: str) -> str:
    """Disables plugin `name`, stopping its instance; returns what the host reports."""
    return _host.current().admin_disable(name)

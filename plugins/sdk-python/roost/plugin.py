"""`Plugin`, the base class a plugin subclasses, and `@command`, which turns a method into a
chat command whose arguments are parsed from its signature."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import webhook

if TYPE_CHECKING:
    from . import process, watch

ROLES = ("anyone", "trusted", "admin")


@dataclass
class Context:
    """Who sent a command and where; the first argument after `self` of every command."""

    identity: str = "console"
    """Stable identity: "console", "discord:<user id>", "slack:<team>/<user>"."""
    role: str = "anyone"
    """The role the host resolved for that identity: "anyone", "trusted" or "admin"."""
    gateway: str = "console"
    channel: str = ""
    command: str = ""
    """The command as the plugin declared it (no prefix, no `plugin:`)."""
    prefix: str = "!"
    """The host's command prefix, for writing usage lines back to users."""
    text: str = ""
    """The raw message text."""


@dataclass
class Param:
    """One parsed parameter of a command method."""

    name: str
    kind: Callable[[str], Any]
    required: bool
    variadic: bool


@dataclass
class CommandSpec:
    """A command as declared with `@command`: what goes into the manifest, and how to call
    the method."""

    name: str
    usage: str
    help: str
    role: str
    params: list[Param] = field(default_factory=list)
    method: Optional[Callable[..., Any]] = None

    @property
    def min_args(self) -> int:
        return sum(1 for p in self.params if p.required)


_TYPES: dict[Any, Callable[[str], Any]] = {}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "no", "n", "off"):
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


_TYPES.update({str: str, int: int, float: float, bool: _parse_bool,
               "str": str, "int": int, "float": float, "bool": _parse_bool})


def _params(fn: Callable[..., Any]) -> list[Param]:
    """The chat arguments of a command method: every parameter after `self` and `ctx`.
    Annotations `str` (the default), `int`, `float` and `bool` are parsed; a parameter with
    a default is optional; `*rest` takes what is left."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if len(params) < 2:
        raise TypeError(f"command {fn.__name__} must take (self, ctx, ...)")
    out = []
    for p in params[2:]:
        annotation = str if p.annotation is inspect.Parameter.empty else p.annotation
        kind = _TYPES.get(annotation)
        if kind is None:
            raise TypeError(
                f"command {fn.__name__}: parameter `{p.name}` has type {annotation!r}; "
                "use str, int, float or bool"
            )
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            out.append(Param(p.name, kind, required=False, variadic=True))
        elif p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            out.append(Param(p.name, kind, required=p.default is inspect.Parameter.empty, variadic=False))
        else:
            raise TypeError(f"command {fn.__name__}: parameter `{p.name}` must be positional")
    return out


def _default_usage(params: list[Param]) -> str:
    words = []
    for p in params:
        if p.variadic:
            words.append(f"[{p.name}…]")
        elif p.required:
            words.append(f"<{p.name}>")
        else:
            words.append(f"[{p.name}]")
    return " ".join(words)


def command(fn: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None,
            usage: Optional[str] = None, help: str = "", role: str = "anyone"):
    """Declares a method as a chat command, `@command` or `@command(usage=..., help=...)`.

    The command is named after the method (or `name`); `usage` is the argument part of the
    usage line ("NdM" for `!roll NdM`) and defaults to one made from the signature; `help`
    is the summary `!help` shows; `role` ("anyone", "trusted", "admin") is checked by the
    host before the call reaches the plugin. The host also refuses calls with fewer
    arguments than the method requires; the SDK refuses extra arguments and arguments that
    do not parse as the annotated type. Both answer "usage: !name <usage>".
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        params = _params(method)
        cmd_name = name or method.__name__
        method.__roost_command__ = CommandSpec(  # type: ignore[attr-defined]
            name=cmd_name,
            usage=usage if usage is not None else _default_usage(params),
            help=help or (inspect.getdoc(method) or "").split("\n")[0],
            role=role,
            params=params,
            method=method,
        )
        return method

    return wrap(fn) if fn is not None else wrap


class Plugin:
    """A roost plugin: subclass it, add `@command` methods, override the hooks you need.

    The host creates one instance (with no arguments), calls `init(config)` once, then the
    other hooks one at a time, never concurrently, until the instance goes (reload,
    disable, shutdown, or rebuild after a crash). In-memory state starts over then; what
    must last goes into `roost.kv`.
    """

    #: Shown by `!status` and the manifest; the plugin's name is its file's name.
    version = "0.1.0"

    def init(self, config: dict) -> None:
        """Called once with the plugin's `[plugins.NAME.config]` table. Set timers and
        watches here: they die with the instance. Raising stops the plugin from loading and
        the message shows in `!status`."""

    def on_timer(self, tag: str) -> None:
        """A timer set with `timer.every` / `timer.after` fired. Nobody waits for the
        result: an exception goes to the plugin's log."""

    def on_notice(self, notice: str) -> None:
        """A note from the host, such as "config-changed"."""

    def on_files_changed(self, batch: "watch.FilesChanged") -> None:
        """A debounced batch of changes from a subscription made with `watch.subscribe`:
        `batch.subscription` is its id, `batch.changes` the changed paths."""

    def on_job_ended(self, ended: "process.JobEnded") -> None:
        """A job started with `process.start` ended: exited, was cancelled or timed out.
        `ended.job` is its id; `ended.success`, `stdout`, `stderr` and `files` say how."""

    def on_webhook(self, request: webhook.Request) -> webhook.Response:
        """A request to `/hooks/<plugin>/…` (only with `webhooks = true` in the grants);
        the returned `roost.webhook.Response` goes back to the caller. Check the sender
        (`webhook.verify_github`, …) before acting. An exception, or anything but a
        `Response`, is answered with a 500 and logged. The default answers 404."""
        return webhook.Response.not_found()

    def status(self) -> str:
        """One short line for `!status`; empty by default."""
        return ""

    @classmethod
    def commands(cls) -> list[CommandSpec]:
        """The class's `@command` methods, in definition order (base classes first)."""
        seen: dict[str, CommandSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                spec = getattr(attr, "__roost_command__", None)
                if spec is not None:
                    seen[spec.name] = spec
        return list(seen.values())

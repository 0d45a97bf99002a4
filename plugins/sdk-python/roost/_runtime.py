"""The plugin's side of the WIT exports, in plain Python types: build the manifest,
dispatch commands with parsed arguments, route events to hooks, and turn exceptions into
answers. `roost._wit` converts to and from the WIT types around it; `roost.testing` drives
it directly, so what the tests see is what the daemon sees."""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass
from typing import Any, Optional

from . import log, webhook
from .errors import HostError, UsageError
from .plugin import CommandSpec, Context, Plugin
from .reply import Reply

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))

#: Frames of the plugin's own code shown with an uncaught exception; the innermost last.
MAX_FRAMES = 5


@dataclass
class Manifest:
    name: str
    version: str
    commands: list[CommandSpec]


class CommandFailed(Exception):
    """What `Runtime.on_command` raises for the host's `err` result: `str(e)` is the line
    the user sees."""


def describe(exc: BaseException) -> str:
    """An uncaught exception as a chat line: type and message, then the plugin's own frames
    (the SDK's are left out), innermost last. A host refusal is just the host's message, as
    a Rust plugin's `?` gives it."""
    if isinstance(exc, HostError):
        return str(exc)
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not os.path.abspath(f.filename).startswith(_SDK_DIR + os.sep)
    ][-MAX_FRAMES:]
    lines = [head] + [f"  at {os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in frames]
    return "\n".join(lines)


class Runtime:
    """One plugin instance and its commands. Created once per component instance."""

    def __init__(self, plugin_cls: type[Plugin], name: str):
        if not (isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin)):
            raise TypeError(f"{plugin_cls!r} is not a roost.Plugin subclass")
        self.name = name
        self.plugin_cls = plugin_cls
        self.commands = {spec.name: spec for spec in plugin_cls.commands()}
        self.plugin: Optional[Plugin] = None

    def init(self, config_json: str) -> Manifest:
        """The `init` export. Raises `CommandFailed` with the reason the plugin cannot load."""
        try:
            config = json.loads(config_json) if config_json.strip() else {}
        except ValueError as e:
            raise CommandFailed(f"config is not JSON: {e}") from None
        try:
            self.plugin = self.plugin_cls()
            self.plugin.init(config if isinstance(config, dict) else {})
        except Exception as e:  # noqa: BLE001 - every failure becomes the init error
            raise CommandFailed(describe(e)) from None
        version = str(getattr(self.plugin, "version", "0.1.0"))
        return Manifest(self.name, version, list(self.commands.values()))

    def on_command(self, ctx: Context, args: list[str]) -> Reply:
        """The `on-command` export: the reply, or `CommandFailed` with the error line."""
        spec = self.commands.get(ctx.command)
        if spec is None or self.plugin is None:
            raise CommandFailed(f"{self.name} does not serve `{ctx.command}`")
        try:
            values = parse_args(spec, args)
        except UsageError as e:
            raise CommandFailed(usage_line(spec, ctx.prefix, str(e))) from None
        try:
            result = spec.method(self.plugin, ctx, *values)  # type: ignore[misc]
            return Reply.of(result)
        except UsageError as e:
            raise CommandFailed(usage_line(spec, ctx.prefix, str(e))) from None
        except Exception as e:  # noqa: BLE001 - the plugin keeps serving
            raise CommandFailed(describe(e)) from None

    def on_event(self, kind: str, payload: Any) -> None:
        """The `on-event` export: `kind` is "timer", "notice", "files-changed" or
        "job-ended". An exception in a hook goes to the plugin's log, since nobody waits."""
        if self.plugin is None:
            return
        hook = {
            "timer": self.plugin.on_timer,
            "notice": self.plugin.on_notice,
            "files-changed": self.plugin.on_files_changed,
            "job-ended": self.plugin.on_job_ended,
        }.get(kind)
        if hook is None:
            return
        try:
            hook(payload)
        except Exception as e:  # noqa: BLE001
            log.error(f"on_{kind.replace('-', '_')} failed: {describe(e)}")

    def on_webhook(self, request: webhook.Request) -> webhook.Response:
        """The `on-webhook` export; never raises. The caller (GitHub, a device) sees a 500
        for an exception, with the details only in the plugin's log, and a 500 naming what
        is wrong for a return value that is not a valid `roost.webhook.Response`."""
        if self.plugin is None:
            return webhook.Response.text("the plugin is not running", status=503)
        try:
            response = self.plugin.on_webhook(request)
        except Exception as e:  # noqa: BLE001 - the plugin keeps serving
            log.error(f"on_webhook failed: {describe(e)}")
            return webhook.Response.text("on_webhook failed (the plugin's log says why)", status=500)
        problem = invalid_response(response)
        if problem:
            log.error(f"on_webhook {problem}")
            return webhook.Response.text(f"on_webhook {problem}", status=500)
        return response

    def status(self) -> str:
        """The `status` export; an exception becomes the status line."""
        if self.plugin is None:
            return ""
        try:
            return str(self.plugin.status() or "")
        except Exception as e:  # noqa: BLE001
            return f"status failed: {describe(e)}"


def invalid_response(response: Any) -> str:
    """What is wrong with what `on_webhook` returned ("" when nothing is), checked before
    it is handed to the host, where a value out of the WIT types' range would trap."""
    if not isinstance(response, webhook.Response):
        return f"returned {type(response).__name__}, not a roost.webhook.Response"
    status = response.status
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return f"returned status {status!r}, not a whole number from 100 to 599"
    for pair in response.headers:
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            return f"returned header {pair!r}, not a (name, value) pair of str"
    if not isinstance(response.body, (bytes, bytearray)):
        return f"returned a body of type {type(response.body).__name__}, not bytes"
    return ""


def usage_line(spec: CommandSpec, prefix: str, why: str = "") -> str:
    line = f"usage: {prefix}{spec.name}" + (f" {spec.usage}" if spec.usage else "")
    return f"{line} ({why})" if why else line


def parse_args(spec: CommandSpec, args: list[str]) -> list[Any]:
    """The method's positional arguments from the chat's, by the declared types. Raises
    `UsageError` saying which argument is wrong."""
    values: list[Any] = []
    rest = list(args)
    for p in spec.params:
        if p.variadic:
            while rest:
                values.append(_convert(p, rest.pop(0)))
            break
        if not rest:
            if p.required:
                raise UsageError(f"missing <{p.name}>")
            break
        values.append(_convert(p, rest.pop(0)))
    if rest:
        raise UsageError(f"unexpected {' '.join(rest)!r}")
    return values


def _convert(p: Any, text: str) -> Any:
    try:
        return p.kind(text)
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(p.kind, "yes or no")
        raise UsageError(f"{p.name} must be {kind}, not {text!r}") from None

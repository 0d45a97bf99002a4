"""The only module, with `_wasi_http` for outgoing HTTP, that touches the WIT bindings
componentize-py generates (`wit_world`).
It exists only inside the component: `roost build` writes an entry module that imports it
at the top (what the build does not import is not in the component) and calls `export`.

    import roost._wit, dice
    WitWorld = roost._wit.export(dice, "dice")
"""

from __future__ import annotations

import time
import types as _pytypes
from typing import Any

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import admin as wit_admin
from wit_world.imports import chat as wit_chat
from wit_world.imports import dns as wit_dns
from wit_world.imports import kv as wit_kv
from wit_world.imports import log as wit_log
from wit_world.imports import process as wit_process
from wit_world.imports import secrets as wit_secrets
from wit_world.imports import sqlite as wit_sqlite
from wit_world.imports import timer as wit_timer
# The world imports two `types` interfaces (roost:plugin's and wasi:http's), so
# componentize-py names each by its package.
from wit_world.imports import roost_plugin_types as wit
from wit_world.imports import watch as wit_watch


from . import _host, _wasi_http, admin, dns, process, watch, webhook
from ._runtime import CommandFailed, Runtime
from .errors import AccessDenied, InvalidArgument, NotFound, Other, TooLarge, Timeout, Unreachable
from .plugin import Context, Plugin
from .sqlite import TextBytes

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


_DNS_FAILURES = {
    wit_dns.Failure_AccessDenied: AccessDenied,
    wit_dns.Failure_InvalidArgument: InvalidArgument,
    wit_dns.Failure_Timeout: Timeout,
    wit_dns.Failure_Unreachable: Unreachable,
}
_RCODES = {
    wit_dns.Rcode.NO_ERROR: "NOERROR",
    wit_dns.Rcode.FORM_ERR: "FORMERR",
    wit_dns.Rcode.SERV_FAIL: "SERVFAIL",
    wit_dns.Rcode.NX_DOMAIN: "NXDOMAIN",
    wit_dns.Rcode.NOT_IMP: "NOTIMP",
    wit_dns.Rcode.REFUSED: "REFUSED",
    wit_dns.Rcode.OTHER: "OTHER",
}
_CHANGE_KINDS = {
    wit.ChangeKind.CREATED: "created",
    wit.ChangeKind.MODIFIED: "modified",
    wit.ChangeKind.REMOVED: "removed",
}


def _to_sql(value: Any) -> Any:
    """A parameter (already checked by `roost.sqlite.param`) as a WIT `value`."""
    if value is None:
        return wit_sqlite.Value_Null()
    if isinstance(value, TextBytes):
        return wit_sqlite.Value_TextBytes(bytes(value))
    if isinstance(value, bytes):
        return wit_sqlite.Value_Blob(value)
    if isinstance(value, int):
        return wit_sqlite.Value_Integer(value)
    if isinstance(value, float):
        return wit_sqlite.Value_Real(value)
    return wit_sqlite.Value_Text(value)


def _from_sql(value: Any) -> Any:
    if isinstance(value, wit_sqlite.Value_Null):
        return None
    if isinstance(value, wit_sqlite.Value_TextBytes):
        return TextBytes(value.value)
    return value.value


def _records(records: list) -> list:
    return [dns.Record(r.name, r.rtype, r.ttl, r.data) for r in records]


def _dns_response(r) -> dns.Response:
    return dns.Response(
        rcode=_RCODES.get(r.rcode, "OTHER"), authoritative=r.authoritative,
        answer=_records(r.answer), authority=_records(r.authority),
        additional=_records(r.additional), server=r.server, elapsed_ms=r.elapsed_ms,
    )


def _dns_failure(failure) -> Exception:
    """The `HostError` for a WIT dns `failure`."""
    return _DNS_FAILURES.get(type(failure), Other)(getattr(failure, "value", str(failure)))


def files_changed(batch: Any) -> watch.FilesChanged:
    """A WIT `files-changed` record as the SDK's `roost.watch.FilesChanged`."""
    return watch.FilesChanged(
        batch.subscription,
        [watch.Change(c.root, c.path, _CHANGE_KINDS.get(c.kind, "modified")) for c in batch.changes],
        batch.overflow,
    )


def job_ended(e: Any) -> process.JobEnded:
    """A WIT `job-ended` record as the SDK's `roost.process.JobEnded`."""
    files = []
    for f in e.files:
        if isinstance(f.contents, Ok):
            files.append(process.ReadBack(f.path, contents=bytes(f.contents.value)))
        else:
            files.append(process.ReadBack(f.path, error=str(f.contents.value)))
    return process.JobEnded(
        job=e.job, exit_code=e.exit_code, signal=e.signal, cancelled=e.cancelled,
        timed_out=e.timed_out, duration_ms=e.duration_ms, stdout=e.stdout_tail,
        stderr=e.stderr_tail, stdout_bytes=e.stdout_bytes, stderr_bytes=e.stderr_bytes,
        files=files,
    )


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

    def clock_now_ms(self):
        return time.time_ns() // 1_000_000

    def secrets_get(self, name):
        return _host_call(wit_secrets.get, name)

    def sqlite_open(self, path):
        return _host_call(wit_sqlite.Connection.open, path)

    def sqlite_attach(self, conn, path, schema):
        _host_call(conn.attach, path, schema)

    def sqlite_query(self, conn, sql, params):
        cursor = _host_call(conn.query, sql, [_to_sql(p) for p in params])
        return cursor, list(cursor.columns())

    def sqlite_next(self, cursor, max_rows):
        return [[_from_sql(v) for v in row] for row in _host_call(cursor.next, max_rows)]

    def sqlite_snapshot(self, conn, path):
        _host_call(conn.snapshot, path)

    def sqlite_drop(self, handle):
        # The SDK drops a connection's cursor before the connection.
        handle.__exit__(None, None, None)

    def dns_lookup(self, name, rtype, server, recurse):
        try:
            return _dns_response(wit_dns.lookup(name, rtype, server, recurse))
        except Err as e:
            raise _dns_failure(e.value) from None

    def dns_lookup_many(self, questions):
        wire = [wit_dns.Question(name, rtype, server, recurse)
                for name, rtype, server, recurse in questions]
        return [_dns_response(r.value) if isinstance(r, Ok) else _dns_failure(r.value)
                for r in wit_dns.lookup_many(wire)]

    def watch_subscribe(self, paths, ignore, debounce_ms, max_wait_ms):
        return _host_call(wit_watch.subscribe, paths, ignore, debounce_ms, max_wait_ms)

    def watch_unsubscribe(self, subscription):
        _host_call(wit_watch.unsubscribe, subscription)

    def process_start(self, spec):
        return _host_call(wit_process.start, wit_process.JobSpec(
            spec.program, list(spec.args), spec.cwd, list(spec.env), spec.shell,
            list(spec.read_back), spec.timeout_ms))

    def process_cancel(self, job):
        _host_call(wit_process.cancel, job)

    def http_send(self, method, url, headers, body, timeout_ms):
        return _wasi_http.send(method, url, headers, body, timeout_ms)

    def admin_host_status(self):
        return list(_host_call(wit_admin.host_status))

    def admin_list_plugins(self):
        return [
            admin.PluginInfo(
                p.name, p.version, p.state, p.enabled,
                [admin.CommandInfo(c.name, c.usage, c.summary, _ROLES.get(c.role, "anyone"), c.min_args)
                 for c in p.commands],
                p.status, p.last_error, p.failures,
            )
            for p in _host_call(wit_admin.list_plugins)
        ]

    def admin_reload(self, name):
        return _host_call(wit_admin.reload, name)

    def admin_enable(self, name):
        return _host_call(wit_admin.enable, name)

    def admin_disable(self, name):
        return _host_call(wit_admin.disable, name)


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
            if isinstance(event, wit.Event_Timer):
                self.runtime.on_event("timer", event.value)
            elif isinstance(event, wit.Event_Notice):
                self.runtime.on_event("notice", event.value)
            elif isinstance(event, wit.Event_FilesChanged):
                self.runtime.on_event("files-changed", files_changed(event.value))
            elif isinstance(event, wit.Event_JobEnded):
                self.runtime.on_event("job-ended", job_ended(event.value))

        def status(self) -> str:
            return self.runtime.status()

        def on_webhook(self, request: Any) -> Any:
            r = self.runtime.on_webhook(webhook.Request(
                request.method, request.path, request.query, list(request.headers),
                bytes(request.body)))
            return wit.WebhookResponse(r.status, list(r.headers), bytes(r.body))

    return WitWorld

"""Test a plugin under plain CPython with pytest, no wasm: a fake host with in-memory KV,
captured chat and log, and a fake clock that fires timers.

    from roost.testing import PluginTest
    from dice import Dice

    def test_roll_remembers_the_total():
        t = PluginTest(Dice)
        assert t.command("!roll 1d1") == "console rolled 1d1: 1"
        assert t.host.kv_json("last") == {"by": "console", "total": 1}

The host checks the same things the daemon does before a command reaches the plugin (the
sender's role, the fewest arguments) and refuses what the plugin's grants do not allow,
with the daemon's wording: `FakeHost(channels=..., secrets=..., sqlite_read=...,
sqlite_write=..., dns_servers=..., watch_roots=..., programs=..., admin=True,
http_hosts=..., http_private=True)`. Every other capability is in memory and deterministic:

- `sqlite`: Python's own sqlite3 on the granted files, read-only as in the daemon.
- `dns`: answers from a table the test fills (`host.dns_add`); other names are NXDOMAIN.
- `watch`: subscriptions recorded in `host.watches`; `PluginTest.files_changed` delivers a
  batch.
- `process`: `programs` and `shell` are checked; jobs are recorded in `host.jobs` (their
  directory, variables and read-back files for the test to check) and
  `PluginTest.end_job` ends one, as the daemon does when the program exits.
- `admin`: `host.plugins` (filled by the test) and the calls made, in `host.admin_calls`.
- `http`: answers from routes the test adds (`host.http_add(url, json_body=[...])`, a
  3xx with `location` to redirect, `failure="ConnectionTimeout"`), each request checked
  against `http_hosts` / `http_private` and recorded in `host.http_requests`.
- webhooks: `PluginTest.webhook(body, headers)` calls `on_webhook` as the daemon does;
  `github_headers` and `slack_headers` sign a body as GitHub and Slack would.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Union

from . import _host, webhook
from ._fake_http import FakeHttp, HttpCall, HttpRoute
from ._runtime import CommandFailed, Manifest, Runtime, usage_line
from .admin import PluginInfo
from .dns import MAX_BATCH, Record, Response
from .errors import AccessDenied, HostError, InvalidArgument, NotFound, Other, TooLarge
from .plugin import ROLES, Context, Plugin
from .process import JobEnded, JobSpec, ReadBack
from .reply import Reply
from .sqlite import TextBytes
from .watch import Change, FilesChanged

#: Where the fake wall clock starts: 2024-01-01 00:00:00 UTC.
EPOCH_MS = 1_704_067_200_000

#: The daemon's default per-value KV limit (`kv_value_kb` = 1024 KiB).
KV_VALUE_LIMIT = 1024 * 1024


@dataclass
class Timer:
    id: int
    tag: str
    due_ms: int
    interval_ms: Optional[int]


@dataclass
class Watch:
    """A `watch.subscribe` call the fake host recorded."""

    id: int
    paths: list[str]
    ignore: list[str]
    debounce_ms: int
    max_wait_ms: int


@dataclass
class Job:
    """A job `process.start` started on the fake host; it runs until the test ends it."""

    id: int
    spec: JobSpec
    cancelled: bool = False


#: The daemon's read-only refusal, for statements that would write.
_READ_ONLY = ("statement refused: connections are read-only (no writes, transactions, ATTACH, "
              "DETACH, writing pragmas or extensions)")
_READ_ACTIONS = {
    getattr(sqlite3, name) for name in (
        "SQLITE_SELECT", "SQLITE_READ", "SQLITE_FUNCTION", "SQLITE_RECURSIVE")
    if hasattr(sqlite3, name)
}


def _authorize(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _text(raw: bytes) -> Union[str, TextBytes]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return TextBytes(raw)


@dataclass
class _FakeCursor:
    rows: list
    columns: list[str]
    generation: int
    conn: "_FakeConnection"


@dataclass
class _FakeConnection:
    db: sqlite3.Connection
    generation: int = 0
    attached: bool = False
    cursors: list = field(default_factory=list)


class FakeHost(FakeHttp):
    """An in-memory host. `kv` maps keys to bytes, `sent` collects `(channel, Reply)` from
    `chat.send`, `logs` collects `(level, message)`, `now_ms` is the fake clock that
    `PluginTest.advance` moves (and `clock.now_ms()` reads as `epoch_ms + now_ms`). The keyword arguments are the plugin's grants, named as in
    `[plugins.NAME.grants]`; `secrets` maps each granted secret to its value (None: granted
    but not set)."""

    def __init__(self, channels: Iterable[str] = (), kv_value_limit: int = KV_VALUE_LIMIT, *,
                 secrets: Optional[Mapping[str, Optional[str]]] = None,
                 sqlite_read: Iterable[str] = (), sqlite_write: Iterable[str] = (),
                 dns_servers: Iterable[str] = (), watch_roots: Iterable[str] = (),
                 programs: Iterable[str] = (), shell: bool = False, admin: bool = False,
                 http_hosts: Iterable[str] = (), http_private: bool = False,
                 http_response_kb: int = 1024, plugin: str = "plugin"):
        self.plugin = plugin
        self.channels = set(channels)
        self.kv: dict[str, bytes] = {}
        self.sent: list[tuple[str, Reply]] = []
        self.logs: list[tuple[str, str]] = []
        self.timers: dict[int, Timer] = {}
        self.now_ms = 0
        #: What `clock.now_ms()` reads when `now_ms` is 0: 2024-01-01 00:00:00 UTC.
        self.epoch_ms = EPOCH_MS
        self.kv_value_limit = kv_value_limit
        self._next_timer = 1
        self.secrets: dict[str, Optional[str]] = dict(secrets or {})
        self.sqlite_read = [os.path.realpath(p) for p in sqlite_read]
        self.sqlite_write = [os.path.realpath(p) for p in sqlite_write]
        self.dns_servers = list(dns_servers)
        #: (name with trailing dot, type) -> records; see `dns_add`.
        self.dns_records: dict[tuple[str, str], list[Record]] = {}
        #: Names that exist (NOERROR, maybe NODATA) though they have no record of a type.
        self.dns_names: set[str] = set()
        #: name -> the exception a lookup of it raises (`Timeout`, `Unreachable`, …).
        self.dns_failures: dict[str, HostError] = {}
        #: Every lookup asked: (name, rtype, server, recurse).
        self.dns_queries: list[tuple[str, str, str, bool]] = []
        self.watch_roots = [os.path.realpath(p) for p in watch_roots]
        self.watches: dict[int, Watch] = {}
        self.programs = set(programs)
        self.shell = shell
        self.jobs: dict[int, Job] = {}
        self.admin = admin
        #: What `admin.list_plugins` returns; the test fills it.
        self.plugins: list[PluginInfo] = []
        #: Every admin call that changes something: (call, plugin name).
        self.admin_calls: list[tuple[str, str]] = []
        self.host_lines: list[str] = ["roost (fake host)"]
        self._init_http(http_hosts, http_private, http_response_kb)
        self._next_id = 1

    def _id(self) -> int:
        n = self._next_id
        self._next_id += 1
        return n

    def _denied(self, what: str, key: str, hint: str = "") -> AccessDenied:
        """The daemon's wording: "<what> is not granted to plugin `p` (add … in [plugins.p.grants])"."""
        hint = hint or f"add it to {key}"
        return AccessDenied(f"{what} is not granted to plugin `{self.plugin}` ({hint} in [plugins.{self.plugin}.grants])")

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
            raise AccessDenied(
                f"channel `{channel}` is not granted to plugin `{self.plugin}` "
                f"(grant it in [plugins.{self.plugin}.grants] channels)")
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

    def clock_now_ms(self) -> int:
        return self.epoch_ms + self.now_ms

    def secrets_get(self, name: str) -> str:
        if name not in self.secrets:
            raise self._denied(f"secret `{name}`", "secrets", f'add "{name}" to secrets')
        value = self.secrets[name]
        if value is None:
            raise NotFound(f"secret `{name}` has no value: set ROOST_SECRET_{name.upper()} "
                           f"or write it to <data_dir>/secrets/{name}")
        return value

    # -- sqlite, on Python's own sqlite3 --
    def _granted_file(self, path: str, grants: list[str], key: str) -> str:
        real = os.path.realpath(path)
        if not any(real == g or real.startswith(g.rstrip(os.sep) + os.sep) for g in grants):
            raise self._denied(f"{path} (resolved to {real})", key)
        return real

    def sqlite_open(self, path: str) -> _FakeConnection:
        real = self._granted_file(path, self.sqlite_read, "sqlite_read")
        if not os.path.isfile(real):
            raise NotFound(f"{path}: no such file")
        db = sqlite3.connect(f"file:{real}?mode=ro", uri=True, isolation_level=None)
        db.text_factory = _text
        try:
            db.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        except sqlite3.DatabaseError as e:
            db.close()
            raise Other(f"{path}: {e}") from None
        db.set_authorizer(_authorize)
        return _FakeConnection(db)

    def sqlite_attach(self, conn: _FakeConnection, path: str, schema: str) -> None:
        if schema.lower() in ("main", "temp"):
            raise InvalidArgument(f"cannot attach as `{schema}`")
        if conn.attached:
            raise InvalidArgument("one database is attached already")
        real = self._granted_file(path, self.sqlite_read, "sqlite_read")
        if not os.path.isfile(real):
            raise NotFound(f"{path}: no such file")
        conn.db.set_authorizer(None)
        try:
            conn.db.execute("ATTACH DATABASE ? AS " + _quote(schema), (f"file:{real}?mode=ro",))
            conn.generation += 1
        finally:
            conn.db.set_authorizer(_authorize)
        conn.attached = True

    def sqlite_query(self, conn: _FakeConnection, sql: str, params: list) -> tuple[_FakeCursor, list[str]]:
        conn.generation += 1
        binds = [bytes(p) if isinstance(p, TextBytes) else p for p in params]
        try:
            cur = conn.db.execute(sql, binds)
            rows = cur.fetchall()
        except sqlite3.DatabaseError as e:
            if "not authorized" in str(e):
                raise AccessDenied(_READ_ONLY) from None
            raise Other(str(e)) from None
        except sqlite3.ProgrammingError as e:
            raise InvalidArgument(str(e)) from None
        columns = [d[0] for d in cur.description or []]
        cursor = _FakeCursor([list(r) for r in rows], columns, conn.generation, conn)
        return cursor, columns

    def sqlite_next(self, cursor: _FakeCursor, max_rows: int) -> list[list]:
        if cursor.generation != cursor.conn.generation:
            raise NotFound("cursor ended: a newer query or call ran on its connection")
        batch, cursor.rows = cursor.rows[:max_rows], cursor.rows[max_rows:]
        return batch

    def sqlite_snapshot(self, conn: _FakeConnection, path: str) -> None:
        parent = os.path.dirname(os.path.abspath(path))
        real_parent = os.path.realpath(parent)
        if not any(real_parent == g or real_parent.startswith(g.rstrip(os.sep) + os.sep)
                   for g in self.sqlite_write):
            raise AccessDenied(
                f"{path} is not in a directory granted to plugin `{self.plugin}` "
                f"(add it to sqlite_write in [plugins.{self.plugin}.grants])")
        conn.generation += 1
        target = sqlite3.connect(os.path.join(real_parent, os.path.basename(path)))
        try:
            conn.db.backup(target)
        finally:
            target.close()

    def sqlite_drop(self, handle: Any) -> None:
        if isinstance(handle, _FakeConnection):
            handle.db.close()
        elif isinstance(handle, _FakeCursor):
            handle.rows = []

    # -- dns, from a table --
    def dns_add(self, name: str, rtype: str, *data: str, ttl: int = 300) -> None:
        """Makes `name` answer `rtype` lookups with one record per `data` (none: the name
        exists with no such records, NODATA)."""
        owner = _absolute(name)
        self.dns_names.add(owner)
        records = self.dns_records.setdefault((owner, rtype.upper()), [])
        records.extend(Record(owner, rtype.upper(), ttl, d) for d in data)

    def dns_lookup(self, name: str, rtype: str, server: str, recurse: bool) -> Response:
        self.dns_queries.append((name, rtype, server, recurse))
        if not self.dns_servers:
            raise AccessDenied(
                f"no DNS server is granted to plugin `{self.plugin}` (set dns_servers or "
                f"dns_system in [plugins.{self.plugin}.grants])")
        server = server or self.dns_servers[0]
        if server not in self.dns_servers:
            raise AccessDenied(
                f"DNS server {server} is not granted to plugin `{self.plugin}` (add it to "
                f"dns_servers in [plugins.{self.plugin}.grants])")
        if not name or " " in name or not rtype.isalnum():
            raise InvalidArgument(f"bad name or type: {name!r} {rtype!r}")
        owner = _absolute(name)
        if owner in self.dns_failures:
            raise self.dns_failures[owner]
        if owner not in self.dns_names:
            return Response("NXDOMAIN", True, server=server)
        answer = list(self.dns_records.get((owner, rtype), []))
        return Response("NOERROR", True, answer, server=server)

    def dns_lookup_many(self, questions: list[tuple[str, str, str, bool]]) -> list:
        """As the host: each question asked as `dns_lookup` would, what it would raise
        returned in its place; more than 256 in one call is a trap."""
        if len(questions) > MAX_BATCH:
            raise RuntimeError(f"dns.lookup-many: {len(questions)} questions in one call; "
                               f"at most {MAX_BATCH}")
        results: list = []
        for question in questions:
            try:
                results.append(self.dns_lookup(*question))
            except HostError as e:
                results.append(e)
        return results

    # -- watch, recorded --
    def watch_subscribe(self, paths: list[str], ignore: list[str], debounce_ms: int,
                        max_wait_ms: int) -> int:
        for path in paths:
            real = os.path.realpath(path)
            if not any(real == g or real.startswith(g.rstrip(os.sep) + os.sep) for g in self.watch_roots):
                raise AccessDenied(
                    f"{path} (resolved to {real}) is outside the watch roots granted to plugin "
                    f"`{self.plugin}` (add it to watch_roots in [plugins.{self.plugin}.grants])")
            if not os.path.exists(real):
                raise NotFound(f"{path}: no such directory")
            if not os.path.isdir(real):
                raise InvalidArgument(f"{path} is not a directory")
        sub = Watch(self._id(), list(paths), list(ignore), debounce_ms, max_wait_ms)
        self.watches[sub.id] = sub
        return sub.id

    def watch_unsubscribe(self, subscription: int) -> None:
        if self.watches.pop(subscription, None) is None:
            raise NotFound(f"no subscription {subscription}")

    # -- process, recorded; the test ends jobs --
    def process_start(self, spec: JobSpec) -> int:
        if spec.shell and not self.shell:
            raise self._denied("a shell command line", "shell", "set shell = true")
        if not spec.shell and spec.program not in self.programs:
            raise self._denied(f"program `{spec.program}`", "programs")
        job = Job(self._id(), spec)
        self.jobs[job.id] = job
        return job.id

    def process_cancel(self, job: int) -> None:
        running = self.jobs.get(job)
        if running is None or running.cancelled:
            raise NotFound(f"no running job {job}")
        running.cancelled = True

    # -- admin --
    def _admin(self) -> None:
        if not self.admin:
            raise AccessDenied(
                f"admin is not granted to plugin `{self.plugin}` (set admin = true in "
                f"[plugins.{self.plugin}.grants])")

    def _known(self, name: str) -> PluginInfo:
        for p in self.plugins:
            if p.name == name:
                return p
        raise NotFound(f"no plugin `{name}`")

    def admin_host_status(self) -> list[str]:
        self._admin()
        return list(self.host_lines)

    def admin_list_plugins(self) -> list[PluginInfo]:
        self._admin()
        return list(self.plugins)

    def admin_reload(self, name: str) -> str:
        self._admin()
        info = self._known(name)
        self.admin_calls.append(("reload", name))
        return info.version

    def admin_enable(self, name: str) -> str:
        self._admin()
        info = self._known(name)
        info.enabled, info.state = True, "running"
        self.admin_calls.append(("enable", name))
        return info.version

    def admin_disable(self, name: str) -> str:
        self._admin()
        info = self._known(name)
        info.enabled, info.state = False, "disabled"
        self.admin_calls.append(("disable", name))
        return f"{name} disabled"

    def _add_timer(self, tag: str, delay_ms: int, interval_ms: Optional[int]) -> int:
        timer_id = self._next_timer
        self._next_timer += 1
        self.timers[timer_id] = Timer(timer_id, tag, self.now_ms + delay_ms, interval_ms)
        return timer_id

    @staticmethod
    def _check_key(key: str) -> None:
        if len(key.encode("utf-8")) > 1024:
            raise InvalidArgument("kv keys are at most 1 KiB")


def github_headers(secret: Union[str, bytes], body: Union[bytes, str],
                   event: str = "push") -> dict[str, str]:
    """The headers GitHub sends with `body` for a webhook whose secret is `secret`."""
    return {"X-GitHub-Event": event,
            "X-Hub-Signature-256": "sha256=" + webhook.sign_hmac_sha256(secret, body)}


def slack_headers(secret: Union[str, bytes], body: Union[bytes, str],
                  timestamp: int) -> dict[str, str]:
    """The headers Slack sends with `body` at `timestamp` (Unix seconds) for an app whose
    signing secret is `secret`."""
    signature = webhook.sign_hmac_sha256(secret, f"v0:{timestamp}:", body)
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={signature}"}


def _absolute(name: str) -> str:
    return name.lower() if name.endswith(".") else name.lower() + "."


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PluginTest:
    """A plugin instance on a `FakeHost`, driven like the daemon drives it. Installs the
    host for capability calls on creation (and `close()` puts the previous one back);
    calls `init` with `config`."""

    def __init__(self, plugin_cls: type[Plugin], config: Optional[dict] = None,
                 host: Optional[FakeHost] = None, name: Optional[str] = None,
                 channels: Iterable[str] = ()):
        self.host = host if host is not None else FakeHost(channels=channels)
        self.config = dict(config or {})
        name = name or plugin_cls.__name__.lower()
        if host is None or self.host.plugin == "plugin":
            self.host.plugin = name
        self._previous = _host.install(self.host)
        try:
            self.runtime = Runtime(plugin_cls, name)
            self.manifest: Manifest = self.runtime.init(json.dumps(self.config))
        except BaseException:
            self.close()
            raise

    @property
    def plugin(self) -> Plugin:
        assert self.runtime.plugin is not None
        return self.runtime.plugin

    def reload(self) -> None:
        """A new instance on the same host with the same config, as after `!reload`: KV
        stays; timers, watches and jobs go with the old instance."""
        self.host.timers.clear()
        self.host.watches.clear()
        self.host.jobs.clear()
        self.manifest = self.runtime.init(json.dumps(self.config))

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

    def files_changed(self, subscription: int, changes: Iterable[tuple], overflow: bool = False,
                      root: Optional[str] = None) -> FilesChanged:
        """Delivers a batch to `on_files_changed`, as the daemon does after a quiet period:
        `changes` are `(path, kind)` pairs, kind "created", "modified" or "removed", under
        `root` (default: the subscription's first path). The subscription must exist."""
        watch = self.host.watches.get(subscription)
        if watch is None:
            raise KeyError(f"no subscription {subscription}: the daemon would deliver nothing")
        under = root if root is not None else watch.paths[0]
        batch = FilesChanged(subscription, sorted(
            (Change(under, path, kind) for path, kind in changes),
            key=lambda c: (c.root, c.path)), overflow)
        self.runtime.on_event("files-changed", batch)
        return batch

    def end_job(self, job: int, exit_code: Optional[int] = 0, stdout: str = "",
                stderr: str = "", signal: Optional[int] = None, timed_out: bool = False,
                duration_ms: int = 0, files: Optional[Mapping[str, Union[bytes, str]]] = None,
                ) -> JobEnded:
        """Ends running job `job` and delivers `on_job_ended`, as the daemon does once the
        process group is gone. A job the plugin cancelled ends cancelled, by SIGTERM.
        `files` maps read-back paths to contents (bytes) or why there are none (str)."""
        running = self.host.jobs.pop(job, None)
        if running is None:
            raise KeyError(f"no running job {job}")
        if running.cancelled:
            exit_code, signal = None, 15 if signal is None else signal
        given = dict(files or {})
        read = []
        for path in running.spec.read_back:
            value = given.get(path, "not written during the job")
            read.append(ReadBack(path, contents=value) if isinstance(value, bytes)
                        else ReadBack(path, error=value))
        ended = JobEnded(
            job=job, exit_code=exit_code, signal=signal, cancelled=running.cancelled,
            timed_out=timed_out, duration_ms=duration_ms, stdout=stdout, stderr=stderr,
            stdout_bytes=len(stdout.encode()), stderr_bytes=len(stderr.encode()), files=read)
        self.runtime.on_event("job-ended", ended)
        return ended

    def webhook(self, body: Union[bytes, str] = b"", headers: webhook.Headers = (),
                path: str = "/", query: str = "") -> webhook.Response:
        """POSTs `body` with `headers` to `/hooks/<plugin><path>` as the daemon passes it
        on, and returns what the caller would get (a 500 for an exception or a bad return
        value, as inside the daemon; the reason is then in `host.logs`)."""
        request = webhook.Request("POST", path, query, headers, body)
        return self.runtime.on_webhook(request)

    def status(self) -> str:
        return self.runtime.status()

    def close(self) -> None:
        _host.install(self._previous)

    def __enter__(self) -> "PluginTest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["CommandFailed", "FakeHost", "HttpCall", "HttpRoute", "Job", "PluginTest", "Watch",
           "github_headers", "slack_headers"]

"""sqlite, dns, watch, process, admin and secrets on the fake host, and the hooks
`on_files_changed` and `on_job_ended`: what a plugin sees, and the host's refusals as
exceptions carrying the host's message."""

import os
import sqlite3

import pytest

from roost import (AccessDenied, InvalidArgument, NotFound, Plugin, Timeout, Unreachable, admin,
                   command, dns, process, secrets, sqlite, watch)
from roost.admin import PluginInfo
from roost.sqlite import TextBytes
from roost.testing import FakeHost, PluginTest


@pytest.fixture
def db(tmp_path):
    """A database with every storage class, including TEXT that is not UTF-8."""
    path = tmp_path / "data.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER, name TEXT, score REAL, raw BLOB)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [
        (1, "ana", 1.5, b"\x00\x01"),
        (2, "bo", None, None),
        (3, "cy", 3.25, b""),
    ])
    conn.execute("INSERT INTO t VALUES (4, CAST(x'ff00fe' AS TEXT), 0.0, x'ff')")
    conn.commit()
    conn.close()
    return path


# -- sqlite --

def test_sqlite_rows_come_back_with_their_storage_classes(db):
    with PluginTest(Plugin, host=FakeHost(sqlite_read=[str(db.parent)])):
        with sqlite.open(str(db)) as conn:
            cur = conn.execute("SELECT id, name, score, raw FROM t ORDER BY id")
            assert cur.columns == ["id", "name", "score", "raw"]
            rows = cur.fetchall()
    assert rows[:3] == [(1, "ana", 1.5, b"\x00\x01"), (2, "bo", None, None), (3, "cy", 3.25, b"")]
    assert rows[3][1] == TextBytes(b"\xff\x00\xfe") and isinstance(rows[3][1], TextBytes)
    assert [sqlite.type_name(v) for v in rows[3]] == ["integer", "text", "real", "blob"]


def test_sqlite_parameters_bind_every_type(db):
    with PluginTest(Plugin, host=FakeHost(sqlite_read=[str(db)])):
        conn = sqlite.open(str(db))
        row = conn.execute("SELECT ?, ?, ?, ?, ?, typeof(?), typeof(?), ?",
                           [None, 7, 0.5, "x", bytearray(b"\x01"), "t", b"\xff", 2.0]).fetchone()
        assert row == (None, 7, 0.5, "x", b"\x01", "text", "blob", 2.0)
        assert type(row[7]) is float
        assert sqlite.param(TextBytes(b"\xff")) == TextBytes(b"\xff")
        assert conn.execute("SELECT name FROM t WHERE id = ?", [True]).fetchall() == [("ana",)]
        with pytest.raises(TypeError):
            conn.execute("SELECT ?", [object()])
        with pytest.raises(OverflowError):
            conn.execute("SELECT ?", [2**63])
        conn.close()


def test_sqlite_cursors_fetch_in_batches_and_a_new_query_ends_the_old_one(db):
    with PluginTest(Plugin, host=FakeHost(sqlite_read=[str(db)])):
        conn = sqlite.open(str(db))
        cur = conn.execute("SELECT id FROM t ORDER BY id")
        assert cur.next_batch(3) == [(1,), (2,), (3,)]
        assert cur.fetchmany(5) == [(4,)]
        assert cur.next_batch() is None
        first = conn.execute("SELECT id FROM t ORDER BY id")
        assert first.next_batch(1) == [(1,)]
        second = conn.query("SELECT count(*) FROM t")
        assert list(second) == [(4,)]
        with pytest.raises(NotFound) as e:
            first.next_batch(1)
        assert str(e.value) == "not found: cursor ended: a newer query or call ran on its connection"
        # A cursor read to its end, or closed, just has no more rows.
        assert second.fetchall() == []
        third = conn.execute("SELECT id FROM t")
        third.close()
        assert third.fetchone() is None


def test_sqlite_refuses_writes_ungranted_files_and_missing_ones_with_the_hosts_words(db, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    with PluginTest(Plugin, host=FakeHost(sqlite_read=[str(db)]), name="reader"):
        conn = sqlite.open(str(db))
        with pytest.raises(AccessDenied) as e:
            conn.execute("DELETE FROM t")
        assert str(e.value).startswith("access denied: statement refused: connections are read-only")
        with pytest.raises(AccessDenied):
            conn.execute("BEGIN")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (4,)
        with pytest.raises(AccessDenied) as e:
            sqlite.open(str(other / "x.db"))
        assert "is not granted to plugin `reader` (add it to sqlite_read in [plugins.reader.grants])" in str(e.value)
        with pytest.raises(AccessDenied) as e:
            conn.snapshot(str(other / "copy.db"))
        assert "sqlite_write" in str(e.value)
    with PluginTest(Plugin, host=FakeHost(sqlite_read=[str(tmp_path)])):
        with pytest.raises(NotFound):
            sqlite.open(str(tmp_path / "missing.db"))


def test_sqlite_attach_and_snapshot_inside_the_grants(db, tmp_path):
    second = tmp_path / "second.db"
    c = sqlite3.connect(second)
    c.execute("CREATE TABLE u (v TEXT)")
    c.execute("INSERT INTO u VALUES ('from second')")
    c.commit()
    c.close()
    out = tmp_path / "snaps"
    out.mkdir()
    with PluginTest(Plugin, host=FakeHost(sqlite_read=[str(tmp_path)], sqlite_write=[str(out)])):
        with sqlite.open(str(db)) as conn:
            conn.attach(str(second), "aux")
            assert conn.execute("SELECT v FROM aux.u").fetchall() == [("from second",)]
            with pytest.raises(InvalidArgument):
                conn.attach(str(second), "main")
            conn.snapshot(str(out / "copy.db"))
    copy = sqlite3.connect(out / "copy.db")
    assert copy.execute("SELECT count(*) FROM t").fetchone() == (4,)
    copy.close()


# -- dns --

def test_dns_answers_from_the_table_and_tells_nxdomain_from_nodata():
    host = FakeHost(dns_servers=["127.0.0.1:53"])
    host.dns_add("www.example.org", "CNAME", "web.example.org.", ttl=60)
    host.dns_add("mail.example.org", "A")
    with PluginTest(Plugin, host=host):
        r = dns.lookup("www.example.org", "cname")
        assert r.rcode == "NOERROR" and r.server == "127.0.0.1:53"
        assert [str(rec) for rec in r.answer] == ["www.example.org. 60 CNAME web.example.org."]
        assert dns.lookup("mail.example.org.", "A").is_nodata
        gone = dns.lookup("gone.example.org", "A")
        assert gone.is_nxdomain and not gone.is_nodata and gone.is_definite
    assert host.dns_queries[0] == ("www.example.org", "CNAME", "", True)


def test_dns_failures_and_refusals_are_exceptions_with_the_hosts_message():
    host = FakeHost(dns_servers=["127.0.0.1:53"])
    host.dns_failures["slow.example.org."] = Timeout("127.0.0.1:53: no answer after 2 tries")
    host.dns_failures["down.example.org."] = Unreachable("127.0.0.1:53: connection refused")
    with PluginTest(Plugin, host=host, name="checker"):
        with pytest.raises(Timeout) as e:
            dns.lookup("slow.example.org")
        assert str(e.value) == "timeout: 127.0.0.1:53: no answer after 2 tries" and e.value.transient
        with pytest.raises(Unreachable) as e:
            dns.lookup("down.example.org")
        assert e.value.transient
        with pytest.raises(AccessDenied) as e:
            dns.lookup("x.org", server="9.9.9.9:53")
        assert not e.value.transient
        assert str(e.value) == ("access denied: DNS server 9.9.9.9:53 is not granted to plugin "
                                "`checker` (add it to dns_servers in [plugins.checker.grants])")
    with PluginTest(Plugin):
        with pytest.raises(AccessDenied, match="no DNS server is granted"):
            dns.lookup("x.org")


def test_dns_lookup_many_answers_in_order_with_failures_in_place_in_host_sized_calls():
    host = FakeHost(dns_servers=["127.0.0.1:53"])
    host.dns_add("www.example.org", "CNAME", "web.example.org.")
    host.dns_failures["slow.example.org."] = Timeout("127.0.0.1:53: no answer after 2 tries")
    calls = []
    asked_by_host = host.dns_lookup_many
    host.dns_lookup_many = lambda questions: calls.append(len(questions)) or asked_by_host(questions)
    with PluginTest(Plugin, host=host, name="checker"):
        results = dns.lookup_many([
            ("www.example.org", "cname"),
            dns.Question("slow.example.org"),
            dns.Question("x.org", server="9.9.9.9:53"),
            ("gone.example.org", "A", "", False),
        ])
        assert [type(r).__name__ for r in results] == ["Response", "Timeout", "AccessDenied", "Response"]
        assert results[0].answer[0].data == "web.example.org." and results[3].is_nxdomain
        assert str(results[1]) == "timeout: 127.0.0.1:53: no answer after 2 tries"
        many = dns.lookup_many([(f"n{i}.example.org", "A") for i in range(dns.MAX_BATCH + 1)])
        assert len(many) == dns.MAX_BATCH + 1 and all(r.is_nxdomain for r in many)
    assert calls == [4, dns.MAX_BATCH, 1]
    assert host.dns_queries[0] == ("www.example.org", "CNAME", "", True)
    assert host.dns_queries[3] == ("gone.example.org", "A", "", False)


# -- watch and on_files_changed --

class Watcher(Plugin):
    def init(self, config):
        self.sub = watch.subscribe(config["paths"], ignore=["*.swp"], debounce=0.2, max_wait=None)
        self.seen = []

    def on_files_changed(self, batch):
        self.seen.append((batch.subscription == self.sub, batch.overflow,
                          [(c.path, c.kind) for c in batch.changes]))

    @command
    def stop(self, ctx):
        watch.unsubscribe(self.sub)
        return "stopped"


def test_watch_subscribes_with_its_timing_and_batches_reach_on_files_changed(tmp_path):
    host = FakeHost(watch_roots=[str(tmp_path)])
    with PluginTest(Watcher, host=host, config={"paths": [str(tmp_path)]}) as t:
        sub = t.plugin.sub
        assert host.watches[sub].debounce_ms == 200 and host.watches[sub].max_wait_ms == 0
        assert host.watches[sub].ignore == ["*.swp"]
        batch = t.files_changed(sub, [("b.py", "modified"), ("a.py", "created")])
        assert [c.path for c in batch.changes] == ["a.py", "b.py"]
        assert t.plugin.seen == [(True, False, [("a.py", "created"), ("b.py", "modified")])]
        assert t.command("!stop") == "stopped"
        assert sub not in host.watches
        assert t.command("!stop") == f"not found: no subscription {sub}"


def test_watch_outside_the_grant_stops_the_plugin_loading_with_the_hosts_message(tmp_path):
    with pytest.raises(Exception) as e:
        PluginTest(Watcher, host=FakeHost(), config={"paths": [str(tmp_path)]}, name="w")
    assert "is outside the watch roots granted to plugin `w` (add it to watch_roots in [plugins.w.grants])" in str(e.value)


# -- process and on_job_ended --

class Runner(Plugin):
    def init(self, config):
        self.ended = []

    @command
    def run(self, ctx, *args):
        job = process.start("pytest", list(args), cwd="/srv/api", env={"CI": "1"},
                            read_back=["report.xml"], timeout=30)
        return f"job {job}"

    @command
    def stop(self, ctx, job: int):
        process.cancel(job)
        return "cancelling"

    def on_job_ended(self, ended):
        self.ended.append(ended)


def test_a_job_starts_with_its_spec_and_its_end_reaches_on_job_ended():
    host = FakeHost(programs=["pytest"])
    with PluginTest(Runner, host=host) as t:
        assert t.command("!run -q tests") == "job 1"
        spec = host.jobs[1].spec
        assert (spec.program, spec.args, spec.cwd, spec.env, spec.read_back, spec.timeout_ms) == (
            "pytest", ["-q", "tests"], "/srv/api", [("CI", "1")], ["report.xml"], 30000)
        assert t.plugin.ended == []
        t.end_job(1, exit_code=1, stdout="1 failed", files={"report.xml": b"<xml/>"})
        (ended,) = t.plugin.ended
        assert (ended.job, ended.success, ended.stdout, ended.stdout_bytes) == (1, False, "1 failed", 8)
        assert ended.file("report.xml") == b"<xml/>" and ended.file("other") is None
        assert 1 not in host.jobs


def test_a_cancelled_job_ends_cancelled_and_an_ungranted_program_is_refused():
    host = FakeHost(programs=["pytest"])
    with PluginTest(Runner, host=host, name="runner") as t:
        t.command("!run")
        assert t.command("!stop 1") == "cancelling"
        assert t.command("!stop 1") == "not found: no running job 1"
        ended = t.end_job(1)
        assert ended.cancelled and ended.exit_code is None and ended.signal == 15
        assert not ended.success
        assert ended.files[0].error == "not written during the job"
    with PluginTest(Runner, host=FakeHost(), name="runner") as t:
        assert t.command("!run") == ("access denied: program `pytest` is not granted to plugin "
                                     "`runner` (add it to programs in [plugins.runner.grants])")
    with pytest.raises(TypeError):
        process.start("pytest", "-q")
    with PluginTest(Plugin, host=FakeHost(programs=["pytest"])) as t:
        with pytest.raises(AccessDenied, match="set shell = true"):
            process.shell("pytest -q | tee log")
    with PluginTest(Plugin, host=FakeHost(shell=True)) as t:
        job = process.shell("pytest -q | tee log", timeout=0.5)
        assert t.host.jobs[job].spec.shell and t.host.jobs[job].spec.timeout_ms == 500


# -- admin --

def test_admin_needs_the_grant_and_then_lists_and_controls_plugins():
    with PluginTest(Plugin, name="ops"):
        with pytest.raises(AccessDenied) as e:
            admin.list_plugins()
        assert str(e.value) == ("access denied: admin is not granted to plugin `ops` "
                                "(set admin = true in [plugins.ops.grants])")
    host = FakeHost(admin=True)
    host.plugins = [PluginInfo("dice", "0.2.0"), PluginInfo("other", "1.0.0")]
    with PluginTest(Plugin, host=host):
        assert [p.name for p in admin.list_plugins()] == ["dice", "other"]
        assert admin.host_status() == ["roost (fake host)"]
        assert admin.reload("dice") == "0.2.0"
        admin.disable("other")
        assert host.plugins[1].state == "disabled" and not host.plugins[1].enabled
        assert admin.enable("other") == "1.0.0"
        with pytest.raises(NotFound):
            admin.reload("nope")
    assert host.admin_calls == [("reload", "dice"), ("disable", "other"), ("enable", "other")]


# -- secrets --

class Keyed(Plugin):
    @command
    def key(self, ctx, name: str):
        return f"{name}: {len(secrets.get(name))} bytes"


def test_a_granted_secret_is_read_and_others_are_refused_with_the_hosts_message():
    host = FakeHost(secrets={"riot_api_key": "RGAPI-123", "unset": None})
    with PluginTest(Keyed, host=host, name="lol") as t:
        assert t.command("!key riot_api_key") == "riot_api_key: 9 bytes"
        assert t.command("!key other") == (
            'access denied: secret `other` is not granted to plugin `lol` '
            '(add "other" to secrets in [plugins.lol.grants])')
        assert t.command("!key unset").startswith("not found: secret `unset` has no value")

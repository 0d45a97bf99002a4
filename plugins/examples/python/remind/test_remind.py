"""The remind example on the fake host: timers on the fake clock, KV across reloads, and
what goes to the channel."""

from roost.testing import FakeHost, PluginTest

from remind import Remind, parse_delay

CONFIG = {"channel": "team", "digest_hours": 24}


def make(**kw):
    return PluginTest(Remind, config=CONFIG, host=FakeHost(channels=["team"]), **kw)


def test_a_reminder_goes_to_the_channel_when_due_and_not_before():
    with make() as t:
        assert t.command("!remind 30m stand up", identity="discord:7") == \
            "reminder 1 for 2024-01-01 00:30 UTC"
        t.advance(29 * 60)
        assert t.host.sent_text() == []
        t.advance(60)
        assert t.host.sent_text() == [("team", "⏰ discord:7: stand up")]
        assert t.command("!reminders") == "no reminders"
        t.advance(3600)
        assert len(t.host.sent) == 1, "a reminder fires once"


def test_reminders_outlive_a_reload_with_the_time_they_have_left():
    with make() as t:
        t.command("!remind 1h30m call Ada")
        t.command("!remind 2h lunch")
        t.advance(60 * 60)
        t.reload()
        assert t.command("!reminders") == (
            "1: 2024-01-01 01:30 UTC call Ada (console)\n2: 2024-01-01 02:00 UTC lunch (console)")
        t.advance(29 * 60)
        assert t.host.sent_text() == []
        t.advance(60)
        assert t.host.sent_text() == [("team", "⏰ console: call Ada")]
        t.advance(30 * 60)
        assert [text for _, text in t.host.sent_text()] == ["⏰ console: call Ada", "⏰ console: lunch"]


def test_a_forgotten_reminder_is_not_sent():
    with make() as t:
        t.command("!remind 10m a")
        t.command("!remind 10m b")
        assert t.command("!forget 1") == "forgot reminder 1"
        assert t.command("!forget 1") == "no reminder 1"
        t.advance(600)
        assert t.host.sent_text() == [("team", "⏰ console: b")]


def test_notes_go_out_together_in_the_digest_and_then_start_over():
    with make() as t:
        t.command("!note shipped 1.2", identity="slack:T1/U2")
        assert t.command("!note fixed the outbox") == "noted (2 for the next digest)"
        assert t.status() == "0 reminders, 2 notes"
        t.advance(24 * 3600)
        assert t.host.sent_text() == [
            ("team", "digest: 2 notes\n```\n- shipped 1.2 (slack:T1/U2)\n- fixed the outbox (console)\n```")]
        t.advance(24 * 3600)
        assert len(t.host.sent) == 1, "an empty digest posts nothing"
        assert t.command("!digest") == "nothing to post"
        t.command("!note one more")
        assert t.command("!digest") == "digest of 1 notes posted to team"


def test_bad_delays_answer_the_usage_line():
    with make() as t:
        assert t.command("!remind soon tea") == \
            "usage: !remind <when> <text…> (when must look like 30m, 2h or 1h30m, not 'soon')"
        assert t.command("!remind 5m") == "usage: !remind <when> <text…> (say what to remind of)"
        assert t.command("!remind 0s x").endswith("(when must be between 1 second and a year)")
    assert parse_delay("1h30m") == 5400 and parse_delay("2D") == 2 * 86400


def test_an_ungranted_channel_keeps_the_reminder_and_logs_why():
    with PluginTest(Remind, config=CONFIG) as t:
        t.command("!remind 1m tea")
        t.advance(60)
        assert t.host.sent == []
        assert t.command("!reminders").startswith("1: ")
        level, message = t.host.logs[-1]
        assert level == "error" and "channel `team` is not granted to plugin `remind`" in message

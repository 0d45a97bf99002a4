"""kv with its JSON helpers, chat.send, timers on the fake clock, and the dice example."""

import random

import pytest

from roost import InvalidArgument, NotFound, Plugin, Reply, TooLarge, chat, command, kv, timer
from roost.testing import FakeHost, PluginTest


def test_dice_rolls_and_remembers_the_last_roll_in_kv():
    from dice import Dice

    random.seed(1)
    with PluginTest(Dice) as t:
        answer = t.command("!roll 2d6", identity="discord:42")
        total = int(answer.rsplit(": ", 1)[1])
        assert answer == f"discord:42 rolled 2d6: {total}" and 2 <= total <= 12
        assert t.host.kv_json("last") == {"by": "discord:42", "total": total}
        assert t.command("!last") == f"discord:42 rolled {total}"
        assert t.command("!roll lots") == "can't roll 'lots': write NdM, e.g. 2d6"
        assert t.command("!roll") == "usage: !roll NdM"


def test_kv_survives_a_reload_and_in_memory_state_does_not():
    from dice import Dice

    with PluginTest(Dice) as t:
        t.command("!roll 1d1")
        t.reload()
        assert t.command("!last") == "console rolled 1"


def test_kv_values_strings_json_keys_and_batches():
    with PluginTest(Plugin) as t:
        kv.set("b", b"\xff\x01")
        kv.set_string("s", "grüße")
        kv.set_json("j", {"n": [1, 2]})
        assert kv.get("b") == b"\xff\x01"
        assert kv.get("missing") is None
        assert kv.get_string("s") == "grüße"
        assert kv.get_string("missing", "dflt") == "dflt"
        assert kv.get_json("j") == {"n": [1, 2]}
        assert kv.get_json("missing", []) == []
        assert kv.keys() == ["b", "j", "s"]
        with pytest.raises(InvalidArgument, match="not UTF-8"):
            kv.get_string("b")
        with pytest.raises(InvalidArgument, match="not JSON"):
            kv.get_json("s")
        kv.batch([("set", "x", b"1"), ("delete", "b")])
        assert kv.keys("") == ["j", "s", "x"]
        kv.delete("x")
        kv.delete("x")
        assert kv.keys("x") == []


def test_a_refused_batch_stores_nothing_and_says_why():
    host = FakeHost(kv_value_limit=4)
    with PluginTest(Plugin, host=host):
        with pytest.raises(TooLarge) as e:
            kv.batch([("set", "a", b"1"), ("set", "b", b"12345")])
        assert str(e.value).startswith("too large: ")
        assert host.kv == {}


def test_chat_send_carries_text_and_replies_to_granted_channels():
    with PluginTest(Plugin, channels=["ops"]) as t:
        chat.send("ops", "plain")
        chat.send("ops", Reply("log:").code("", "x"))
        assert t.host.sent_text() == [("ops", "plain"), ("ops", "log:\n```\nx\n```")]


class Ticker(Plugin):
    def init(self, config):
        self.ticks = 0
        timer.every(config.get("every", 60), "tick")
        self.once = timer.after(5, "once")

    def on_timer(self, tag):
        if tag == "tick":
            self.ticks += 1
            if self.ticks == 2:
                chat.send("ops", "two ticks")

    @command
    def stop(self, ctx):
        timer.cancel(self.once)
        return "stopped"

    def status(self):
        return f"{self.ticks} ticks"


def test_timers_fire_in_order_on_the_fake_clock():
    with PluginTest(Ticker, config={"every": 10}, channels=["ops"]) as t:
        assert t.advance(4) == []
        assert t.advance(21) == ["once", "tick", "tick"]
        assert t.status() == "2 ticks"
        assert t.host.sent_text() == [("ops", "two ticks")]
        assert t.host.now_ms == 25_000


def test_cancelling_a_fired_one_shot_timer_is_not_found():
    with PluginTest(Ticker) as t:
        assert t.command("!stop") == "stopped"
        assert t.advance(6) == []
        assert t.command("!stop") == "not found: no timer 2"
        with pytest.raises(NotFound):
            timer.cancel(99)


def test_reload_drops_timers_and_init_sets_them_again():
    with PluginTest(Ticker) as t:
        t.reload()
        assert sorted(tm.tag for tm in t.host.timers.values()) == ["once", "tick"]


def test_the_clock_is_the_fake_one_and_formats_like_the_rust_sdk():
    from roost import clock
    from roost.testing import EPOCH_MS

    with PluginTest(Plugin) as t:
        assert clock.now_ms() == EPOCH_MS
        t.advance(90.5)
        assert clock.now() == (EPOCH_MS + 90_500) / 1000
        assert clock.format_utc(clock.now()) == "2024-01-01 00:01:30 UTC"
        assert clock.format_utc(clock.now(), seconds=False) == "2024-01-01 00:01 UTC"

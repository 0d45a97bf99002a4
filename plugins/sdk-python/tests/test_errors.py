"""Exceptions: an uncaught one is answered clearly and the plugin keeps serving; host
refusals read as the host's message."""

from roost import Plugin, chat, command, kv, log
from roost.testing import PluginTest


class Flaky(Plugin):
    def init(self, config):
        self.calls = 0

    def helper(self, n):
        return 10 // n

    @command
    def divide(self, ctx, n: int):
        self.calls += 1
        return str(self.helper(n))

    @command
    def announce(self, ctx, text):
        chat.send("announce", text)
        return "sent"

    @command
    def count(self, ctx):
        return str(self.calls)

    def on_timer(self, tag):
        raise RuntimeError(f"timer {tag} broke")

    def status(self):
        return f"{self.calls} calls"


def test_an_uncaught_exception_names_type_message_and_the_plugins_own_frames():
    with PluginTest(Flaky) as t:
        answer = t.command("!divide 0")
    lines = answer.splitlines()
    assert lines[0] == "ZeroDivisionError: integer division or modulo by zero"
    assert [line.split(" in ")[-1] for line in lines[1:]] == ["divide", "helper"]
    assert lines[1].startswith("  at test_errors.py:")
    # The SDK's own frames are left out.
    assert "_runtime.py" not in answer


def test_the_plugin_keeps_serving_with_its_state_after_an_exception():
    with PluginTest(Flaky) as t:
        t.command("!divide 0")
        assert t.command("!divide 5") == "2"
        assert t.command("!count") == "2"
        assert t.status() == "2 calls"


def test_an_ungranted_channel_is_answered_with_the_hosts_message_alone():
    with PluginTest(Flaky) as t:
        assert t.command("!announce hi") == (
            "access denied: channel `announce` is not granted to plugin `flaky` "
            "(grant it in [plugins.flaky.grants] channels)")
    with PluginTest(Flaky, channels=["announce"]) as t:
        assert t.command("!announce hi") == "sent"
        assert t.host.sent_text() == [("announce", "hi")]


def test_an_exception_in_a_hook_goes_to_the_log():
    with PluginTest(Flaky) as t:
        t.plugin.on_timer  # the hook exists
        t.runtime.on_event("timer", "tick")
        (level, message), = t.host.logs
        assert level == "error"
        assert message.startswith("on_timer failed: RuntimeError: timer tick broke")


def test_a_failing_init_is_the_reason_the_plugin_does_not_load():
    class Broken(Plugin):
        def init(self, config):
            raise KeyError(config["missing"])

    import pytest
    from roost.testing import CommandFailed

    with pytest.raises(CommandFailed, match="KeyError: 'missing'"):
        PluginTest(Broken)


def test_capability_calls_outside_a_host_say_what_to_do():
    import pytest

    with pytest.raises(RuntimeError, match="roost.testing.FakeHost"):
        kv.get("x")
    with pytest.raises(RuntimeError, match="no host"):
        log.info("x")

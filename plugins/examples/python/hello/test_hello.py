"""The Python hello on the fake host."""

from roost.testing import PluginTest

from hello import Hello


def test_hello_greets_with_the_configured_word():
    with PluginTest(Hello, config={"greeting": "hi"}) as t:
        assert t.command("!hello Ada") == "hi, Ada!"
        assert t.command("!hello") == "hi, world!"
        assert t.manifest.commands[0].usage == "[name]"


def test_count_survives_a_reload_and_restarts_from_a_bad_value():
    with PluginTest(Hello) as t:
        assert [t.command("!count") for _ in range(2)] == ["1", "2"]
        t.reload()
        assert t.command("!count") == "3"
        t.host.kv["count"] = b"lots"
        assert t.command("!count") == "1"

"""Commands: manifest, typed arguments from the signature, usage errors, roles, replies."""

import pytest

from roost import Plugin, Reply, UsageError, command
from roost.testing import CommandFailed, PluginTest


class Calc(Plugin):
    @command(usage="<a> <b>", help="add two whole numbers")
    def add(self, ctx, a: int, b: int):
        return str(a + b)

    @command
    def scale(self, ctx, x: float, factor: float = 2.0):
        """Multiply x by factor."""
        return f"{x * factor:g}"

    @command(help="join words")
    def join(self, ctx, sep: str, *words: str):
        return sep.join(words)

    @command(role="admin", help="admins only")
    def wipe(self, ctx, really: bool = False):
        return "wiped" if really else "not wiped"

    @command(name="code-of", help="a code block")
    def code_of(self, ctx, word):
        return Reply("here:").code("text", word.upper())

    @command(usage="<n>", help="raises UsageError itself")
    def even(self, ctx, n: int):
        if n % 2:
            raise UsageError("n must be even")
        return "ok"


@pytest.fixture
def calc():
    with PluginTest(Calc) as t:
        yield t


def test_manifest_lists_commands_with_usage_summary_role_and_min_args(calc):
    specs = {c.name: c for c in calc.manifest.commands}
    assert list(specs) == ["add", "scale", "join", "wipe", "code-of", "even"]
    assert specs["add"].usage == "<a> <b>" and specs["add"].min_args == 2
    assert specs["scale"].usage == "<x> [factor]" and specs["scale"].min_args == 1
    assert specs["scale"].help == "Multiply x by factor."
    assert specs["join"].usage == "<sep> [words…]"
    assert specs["wipe"].role == "admin"
    assert calc.manifest.name == "calc"


def test_arguments_are_parsed_by_their_annotations(calc):
    assert calc.command("!add 2 40") == "42"
    assert calc.command("!scale 1.5") == "3"
    assert calc.command("!scale 1.5 3") == "4.5"
    assert calc.command('!join - a "b c" d') == "a-b c-d"
    assert calc.command("!join +") == ""


def test_a_mistyped_argument_answers_the_usage_line_and_why(calc):
    assert calc.command("!add 2 x") == "usage: !add <a> <b> (b must be a whole number, not 'x')"
    assert calc.command("!scale big") == "usage: !scale <x> [factor] (x must be a number, not 'big')"


def test_too_few_or_too_many_arguments_answer_the_usage_line(calc):
    assert calc.command("!add 2") == "usage: !add <a> <b>"
    assert calc.command("!add 1 2 3") == "usage: !add <a> <b> (unexpected '3')"


def test_usage_lines_use_the_hosts_prefix(calc):
    assert calc.command(".add 1", prefix=".") == "usage: .add <a> <b>"


def test_a_usage_error_raised_by_the_plugin_answers_the_usage_line(calc):
    assert calc.command("!even 3") == "usage: !even <n> (n must be even)"
    assert calc.command("!even 4") == "ok"


def test_roles_are_checked_before_the_plugin_runs(calc):
    assert calc.command("!wipe yes").startswith("not allowed: !wipe needs role admin")
    assert calc.command("!wipe yes", role="admin") == "wiped"
    assert calc.command("!wipe no", role="admin") == "not wiped"


def test_bool_arguments_take_yes_and_no_words(calc):
    assert calc.command("!wipe maybe", role="admin").startswith("usage: !wipe [really] (really must be yes or no")


def test_a_reply_can_carry_code_blocks(calc):
    assert calc.call("!code-of hi") == Reply("here:").code("text", "HI")


def test_unknown_commands_are_refused(calc):
    with pytest.raises(CommandFailed, match="unknown command: !nope"):
        calc.call("!nope")


def test_unsupported_annotations_are_refused_at_class_definition():
    with pytest.raises(TypeError, match="use str, int, float or bool"):
        class Bad(Plugin):
            @command
            def f(self, ctx, x: list):
                pass


def test_string_annotations_work_as_with_postponed_evaluation():
    class Later(Plugin):
        @command
        def twice(self, ctx, n: "int"):
            return str(2 * n)

    with PluginTest(Later) as t:
        assert t.command("!twice 21") == "42"

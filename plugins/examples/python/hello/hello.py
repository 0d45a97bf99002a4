"""The smallest complete roost plugin in Python, the twin of the Rust `hello` walked
through in PLUGINS.md: `!hello [name]` greets, `!count` counts how often it was asked, in
storage that survives restarts."""

from roost import Plugin, command, kv


class Hello(Plugin):
    def init(self, config):
        # The greeting word, `greeting` in `[plugins.hello.config]`.
        self.greeting = str(config.get("greeting", "hello"))

    @command(help="Say hello")
    def hello(self, ctx, name: str = "world"):
        return f"{self.greeting}, {name}!"

    @command(help="Count how often I was asked")
    def count(self, ctx):
        # Stored text is ours, but never trust it blindly: a bad value restarts at 0.
        seen = kv.get_string("count", "0")
        seen = int(seen) if seen.isdigit() else 0
        kv.set_string("count", str(seen + 1))
        return str(seen + 1)

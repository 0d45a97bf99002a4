from roost import Plugin, command


class Echo(Plugin):
    """Says its arguments back: the plugin the Python benchmarks time."""

    @command(help="say it back")
    def echo(self, ctx, *words: str):
        return " ".join(words)

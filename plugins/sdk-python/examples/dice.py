"""`!roll NdM` rolls dice and remembers the last roll; `!last` tells it."""

import random

from roost import Plugin, command, kv


class Dice(Plugin):
    @command(usage="NdM", help="roll dice")
    def roll(self, ctx, spec: str):
        count, _, sides = spec.lower().partition("d")
        if not (count.isdigit() and sides.isdigit()) or not (1 <= int(count) <= 100 and int(sides) >= 1):
            return f"can't roll {spec!r}: write NdM, e.g. 2d6"
        total = sum(random.randint(1, int(sides)) for _ in range(int(count)))
        kv.set_json("last", {"by": ctx.identity, "total": total})
        return f"{ctx.identity} rolled {spec}: {total}"

    @command(help="the last roll")
    def last(self, ctx):
        last = kv.get_json("last")
        return "nobody rolled yet" if last is None else f"{last['by']} rolled {last['total']}"

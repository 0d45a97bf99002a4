"""Reminders and a digest, posted to a channel alias.

    !remind 30m stand up          in 30 minutes, "⏰ console: stand up" goes to the channel
    !remind 1h30m call Ada        units s, m, h, d, combined
    !reminders / !forget 3        list pending reminders / drop one
    !note shipped 1.2             a line for the next digest
    !digest                       post the digest now (it also goes out every digest_hours)

What it shows: timers (one-shot reminders and the repeating digest; timers die with the
instance, so `init` re-arms the reminders kept in KV with the time they have left), KV
(reminders and notes outlive reloads and restarts) and chat fan-out (`chat.send` to an alias
reaches every target of `[channels.ALIAS]`: console, Discord, Slack at once).

Config, in `[plugins.remind.config]`: `channel` (default "announce"; it must be in the
plugin's `grants.channels`) and `digest_hours` (default 24).
"""

import json
import re

from roost import Plugin, Reply, UsageError, chat, clock, command, kv, timer

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DELAY = re.compile(r"(\d+)([smhd])")
#: The longest a reminder may wait: a year.
MAX_DELAY = 366 * 86400


def parse_delay(text: str) -> int:
    """Seconds in "90s", "30m", "1h30m", "2d"; raises UsageError for anything else."""
    parts = DELAY.findall(text.lower())
    if not parts or "".join(n + u for n, u in parts) != text.lower():
        raise UsageError(f"when must look like 30m, 2h or 1h30m, not {text!r}")
    seconds = sum(int(n) * UNITS[u] for n, u in parts)
    if not 0 < seconds <= MAX_DELAY:
        raise UsageError("when must be between 1 second and a year")
    return seconds


class Remind(Plugin):
    version = "0.1.0"

    def init(self, config):
        self.channel = str(config.get("channel", "announce"))
        hours = config.get("digest_hours", 24)
        if not isinstance(hours, (int, float)) or hours <= 0:
            raise ValueError(f"digest_hours must be a positive number, not {hours!r}")
        timer.every(hours * 3600, "digest")
        #: KV key of each armed reminder -> its timer id.
        self.armed = {}
        for key in kv.keys("reminder/"):
            self._arm(key, kv.get_json(key))

    def _arm(self, key, reminder):
        delay = max(0.0, reminder["due"] - clock.now())
        self.armed[key] = timer.after(delay, key)

    @command(usage="<when> <text…>", help="remind the channel later, e.g. !remind 30m stand up")
    def remind(self, ctx, when: str, *text: str):
        if not text:
            raise UsageError("say what to remind of")
        seconds = parse_delay(when)
        number = kv.get_json("next", 1)
        key = f"reminder/{number:06d}"
        reminder = {"due": clock.now() + seconds, "by": ctx.identity, "text": " ".join(text)}
        kv.batch([("set", key, _json(reminder)), ("set", "next", _json(number + 1))])
        self._arm(key, reminder)
        return f"reminder {number} for {clock.format_utc(reminder['due'], seconds=False)}"

    @command(help="list the pending reminders")
    def reminders(self, ctx):
        lines = []
        for key in kv.keys("reminder/"):
            r = kv.get_json(key)
            lines.append(f"{int(key.split('/')[1])}: {clock.format_utc(r['due'], seconds=False)} "
                         f"{r['text']} ({r['by']})")
        return "\n".join(lines) or "no reminders"

    @command(usage="<number>", help="drop a pending reminder")
    def forget(self, ctx, number: int):
        key = f"reminder/{number:06d}"
        if kv.get(key) is None:
            return f"no reminder {number}"
        kv.delete(key)
        timer_id = self.armed.pop(key, None)
        if timer_id is not None:
            timer.cancel(timer_id)
        return f"forgot reminder {number}"

    @command(usage="<text…>", help="add a line to the next digest")
    def note(self, ctx, *text: str):
        if not text:
            raise UsageError("say what to note")
        notes = kv.get_json("notes", [])
        notes.append({"by": ctx.identity, "text": " ".join(text)})
        kv.set_json("notes", notes)
        return f"noted ({len(notes)} for the next digest)"

    @command(help="post the digest now")
    def digest(self, ctx):
        posted = self._post_digest()
        return f"digest of {posted} notes posted to {self.channel}" if posted else "nothing to post"

    def on_timer(self, tag):
        if tag == "digest":
            self._post_digest()
        elif tag.startswith("reminder/"):
            self.armed.pop(tag, None)
            reminder = kv.get_json(tag)
            if reminder is None:
                return
            # Sent first, deleted after: if the channel is refused, the reminder stays and
            # fires again after the next reload.
            chat.send(self.channel, f"⏰ {reminder['by']}: {reminder['text']}")
            kv.delete(tag)

    def _post_digest(self) -> int:
        notes = kv.get_json("notes", [])
        if not notes:
            return 0
        body = "\n".join(f"- {n['text']} ({n['by']})" for n in notes)
        chat.send(self.channel, Reply(f"digest: {len(notes)} notes").code("", body))
        kv.delete("notes")
        return len(notes)

    def status(self):
        return f"{len(kv.keys('reminder/'))} reminders, {len(kv.get_json('notes', []))} notes"


def _json(value) -> bytes:
    """`value` as the bytes `kv.set_json` would store, for `kv.batch`."""
    return json.dumps(value, separators=(",", ":")).encode()

//! Reminders and a digest posted to a channel alias; the Rust twin of
//! `plugins/examples/python/remind` (PLUGINS.md shows both). `!remind 30m stand up` posts
//! "⏰ console: stand up" to the channel in 30 minutes, `!note` adds a line to the digest
//! that goes out every `digest_hours`. Timers die with the instance, so `init` re-arms the
//! reminders kept in KV with the time they have left; `chat::send` to an alias reaches
//! every target of `[channels.ALIAS]`.

use roost_plugin::kv::Op;
use roost_plugin::prelude::*;

/// The longest a reminder may wait: a year.
const MAX_DELAY_SECS: u64 = 366 * 86_400;

/// The plugin's state between calls: config, and the timer of each armed reminder.
#[derive(Default)]
struct Remind {
    /// The channel alias reminders and digests go to (`channel` in config).
    channel: String,
    /// KV key of each armed reminder and its timer.
    armed: Vec<(String, TimerId)>,
}

/// One pending reminder, kept in KV as `due<TAB>by<TAB>text`.
struct Reminder {
    /// Seconds since the epoch.
    due: u64,
    by: String,
    text: String,
}

impl Reminder {
    fn encode(&self) -> String {
        format!("{}\t{}\t{}", self.due, self.by, self.text)
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, '\t');
        Some(Reminder {
            due: parts.next()?.parse().ok()?,
            by: parts.next()?.to_string(),
            text: parts.next()?.to_string(),
        })
    }

    fn load(key: &str) -> Result<Option<Self>, Error> {
        Ok(kv::get_string(key)?.as_deref().and_then(Reminder::decode))
    }
}

/// Seconds in "90s", "30m", "1h30m", "2d"; the error says what is wrong.
fn parse_delay(text: &str) -> Result<u64, String> {
    let bad = || format!("when must look like 30m, 2h or 1h30m, not '{text}'");
    let (mut total, mut number) = (0u64, String::new());
    for c in text.to_ascii_lowercase().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || total == 0 && text.is_empty() {
        return Err(bad());
    }
    if total == 0 || total > MAX_DELAY_SECS {
        return Err("when must be between 1 second and a year".into());
    }
    Ok(total)
}

impl Remind {
    fn arm(&mut self, key: &str, reminder: &Reminder) -> Result<(), Error> {
        let left = reminder.due.saturating_sub(clock::now_secs());
        let id = timer::after(Duration::from_secs(left), key)?;
        self.armed.push((key.to_string(), id));
        Ok(())
    }

    fn remind(&mut self, cmd: &Command) -> Result<Reply, String> {
        let usage = |why: String| format!("usage: {} ({why})", cmd.usage());
        let secs = parse_delay(cmd.arg(0).unwrap_or_default()).map_err(usage)?;
        let text = cmd.rest(1);
        if text.is_empty() {
            return Err(usage("say what to remind of".into()));
        }
        let number: u64 = kv::get_string("next")?
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let key = format!("reminder/{number:06}");
        let reminder = Reminder {
            due: clock::now_secs() + secs,
            by: cmd.identity().to_string(),
            text,
        };
        kv::batch([
            Op::set(key.clone(), reminder.encode()),
            Op::set("next", (number + 1).to_string()),
        ])?;
        self.arm(&key, &reminder)?;
        Ok(Reply::text(format!(
            "reminder {number} for {}",
            clock::format_utc_minutes(reminder.due)
        )))
    }

    fn forget(&mut self, cmd: &Command) -> Result<Reply, String> {
        let number: u64 = cmd
            .arg(0)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("usage: {}", cmd.usage()))?;
        let key = format!("reminder/{number:06}");
        if kv::get(&key)?.is_none() {
            return Ok(Reply::text(format!("no reminder {number}")));
        }
        kv::delete(&key)?;
        if let Some(i) = self.armed.iter().position(|(k, _)| *k == key) {
            timer::cancel(self.armed.remove(i).1)?;
        }
        Ok(Reply::text(format!("forgot reminder {number}")))
    }

    fn note(&mut self, cmd: &Command) -> Result<Reply, String> {
        let text = cmd.rest(0);
        let mut notes = kv::get_string("notes")?.unwrap_or_default();
        notes.push_str(&format!("- {text} ({})\n", cmd.identity()));
        kv::set_string("notes", &notes)?;
        Ok(Reply::text(format!(
            "noted ({} for the next digest)",
            notes.lines().count()
        )))
    }

    /// Posts the pending notes as one message and clears them; how many went out.
    fn post_digest(&self) -> Result<usize, Error> {
        let notes = kv::get_string("notes")?.unwrap_or_default();
        let count = notes.lines().count();
        if count == 0 {
            return Ok(0);
        }
        let message = Reply::text(format!("digest: {count} notes")).code("", notes.trim_end());
        chat::send(&self.channel, message)?;
        kv::delete("notes")?;
        Ok(count)
    }
}

impl Plugin for Remind {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        self.channel = cfg.get_or("channel", "announce");
        let hours: f64 = cfg.get_or("digest_hours", 24.0);
        if !(hours > 0.0 && hours.is_finite()) {
            return Err(format!(
                "digest_hours must be a positive number, not {hours}"
            ));
        }
        timer::every(Duration::from_secs_f64(hours * 3600.0), "digest")?;
        for key in kv::list("reminder/")? {
            if let Some(reminder) = Reminder::load(&key)? {
                self.arm(&key, &reminder)?;
            }
        }
        Ok(Manifest::new("remind", env!("CARGO_PKG_VERSION"))
            .command(
                CommandSpec::new(
                    "remind",
                    "!remind <when> <text…>",
                    "remind the channel later, e.g. !remind 30m stand up",
                )
                .min_args(1),
            )
            .command(CommandSpec::new(
                "reminders",
                "!reminders",
                "list the pending reminders",
            ))
            .command(
                CommandSpec::new("forget", "!forget <number>", "drop a pending reminder")
                    .min_args(1),
            )
            .command(
                CommandSpec::new("note", "!note <text…>", "add a line to the next digest")
                    .min_args(1),
            )
            .command(CommandSpec::new("digest", "!digest", "post the digest now")))
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        match cmd.name() {
            "remind" => self.remind(&cmd),
            "reminders" => {
                let mut lines = Vec::new();
                for key in kv::list("reminder/")? {
                    if let Some(r) = Reminder::load(&key)? {
                        let number = key.trim_start_matches("reminder/").trim_start_matches('0');
                        let due = clock::format_utc_minutes(r.due);
                        lines.push(format!("{number}: {due} {} ({})", r.text, r.by));
                    }
                }
                Ok(Reply::text(if lines.is_empty() {
                    "no reminders".to_string()
                } else {
                    lines.join("\n")
                }))
            }
            "forget" => self.forget(&cmd),
            "note" => self.note(&cmd),
            "digest" => Ok(Reply::text(match self.post_digest()? {
                0 => "nothing to post".to_string(),
                n => format!("digest of {n} notes posted to {}", self.channel),
            })),
            other => Err(format!("remind does not serve `{other}`")),
        }
    }

    fn on_timer(&mut self, tag: &str) {
        let outcome = if tag == "digest" {
            self.post_digest().map(|_| ())
        } else {
            self.armed.retain(|(k, _)| k != tag);
            // Sent first, deleted after: if the channel is refused, the reminder stays and
            // fires again after the next reload.
            match Reminder::load(tag) {
                Ok(Some(r)) => chat::send(
                    &self.channel,
                    Reply::text(format!("⏰ {}: {}", r.by, r.text)),
                )
                .and_then(|()| kv::delete(tag)),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = outcome {
            log::error(format!("on_timer({tag}) failed: {e}"));
        }
    }

    fn status(&self) -> String {
        let reminders = kv::list("reminder/").map(|k| k.len()).unwrap_or(0);
        let notes = kv::get_string("notes")
            .ok()
            .flatten()
            .map_or(0, |n| n.lines().count());
        format!("{reminders} reminders, {notes} notes")
    }
}

export_plugin!(Remind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_like_the_python_twin() {
        assert_eq!(parse_delay("1h30m"), Ok(5400));
        assert_eq!(parse_delay("2D"), Ok(2 * 86_400));
        assert_eq!(parse_delay("90s"), Ok(90));
        for bad in ["soon", "", "30", "m", "1x"] {
            assert!(
                parse_delay(bad).unwrap_err().contains("must look like"),
                "{bad}"
            );
        }
        assert!(parse_delay("0s").unwrap_err().contains("between"));
        assert!(parse_delay("400d").unwrap_err().contains("between"));
    }

    #[test]
    fn reminders_round_trip_through_their_kv_text() {
        let r = Reminder {
            due: 1_704_067_200,
            by: "discord:7".into(),
            text: "stand\tup".into(),
        };
        let back = Reminder::decode(&r.encode()).expect("decodes");
        assert_eq!(
            (back.due, back.by.as_str(), back.text.as_str()),
            (r.due, "discord:7", "stand\tup")
        );
        assert!(Reminder::decode("not a reminder").is_none());
    }
}

//! The roost plugin: `diff` (shell and chat), the `dbdiff` chat command with snapshots,
//! and the watch timer. Reads its config from `[plugins.db-diff.config]`.

use std::collections::BTreeMap;

use roost_plugin::prelude::*;
use roost_plugin::sqlite::{Connection, Value as SdkValue};

use crate::cli::{self, Output};
use crate::engine::{self, Db, Mode, Options, Pass, Value};

/// Rows fetched per host call. Only rows that differ cross (SQLite compares the rest), so
/// even a 10M-row table's 1% of changes takes a few hundred calls; a small batch keeps
/// what one holds, in the host and in the plugin, flat as tables grow (10,000 rows a
/// batch cost 5 MiB more at 10M rows than at 1M, measured in `db_diff_vs_sqldiff.sh`).
const BATCH: u32 = 500;

/// The plugin's config, `[plugins.db-diff.config]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
struct Settings {
    /// Names for database files: `prod = "/srv/prod.db"`.
    databases: BTreeMap<String, String>,
    /// Where snapshots go (a directory granted in `sqlite_write`).
    snapshot_dir: Option<String>,
    /// Databases to check on a timer: `prod = 86400` (seconds).
    watch: BTreeMap<String, u64>,
    /// The channel alias watch notices go to (granted in `channels`).
    channel: Option<String>,
    /// Replies longer than this go out as an attachment `diff.sql`.
    max_reply_bytes: Option<usize>,
}

/// The plugin state: its settings.
#[derive(Default)]
pub struct DbDiff {
    settings: Settings,
    last: String,
}

/// The engine's connection over the host's `sqlite` capability.
struct HostDb {
    conn: Connection,
    /// The files, for a second connection when two queries run at once.
    paths: (String, String),
    /// A second connection to the same pair, opened for the first [`Db::query_both`];
    /// `None` inside when it could not be (the queries then run one after the other).
    second: Option<Option<Connection>>,
}

/// Opens `a` with `b` attached as `aux`, as every query of the engine expects.
fn open_pair(a: &str, b: &str) -> Result<Connection, String> {
    let mut conn = Connection::open(a).map_err(|e| format!("cannot open `{a}`: {e}"))?;
    conn.attach(b, "aux")
        .map_err(|e| format!("cannot open `{b}`: {e}"))?;
    Ok(conn)
}

/// Hands the next batch of `cursor` to `row` as rows of `pass`; false at the end.
fn pass_batch(
    cursor: &mut roost_plugin::sqlite::Cursor,
    pass: Pass,
    row: &mut dyn FnMut(Pass, Vec<Value>) -> Result<(), String>,
) -> Result<bool, String> {
    match cursor.next_batch(BATCH).map_err(|e| e.to_string())? {
        Some(batch) => {
            for r in batch {
                row(pass, r)?;
            }
            Ok(true)
        }
        None => Ok(false),
    }
}

impl Db for HostDb {
    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        row: &mut dyn FnMut(Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        let params: Vec<SdkValue> = params.to_vec();
        let mut cursor = self.conn.query(sql, &params).map_err(|e| e.to_string())?;
        while pass_batch(&mut cursor, Pass::First, &mut |_, r| row(r))? {}
        Ok(())
    }

    /// Both queries at once, on two connections: the host reads each cursor's next batch
    /// ahead while the plugin takes the other's, so the two joins run side by side.
    fn query_both(
        &mut self,
        first: &str,
        second: &str,
        row: &mut dyn FnMut(Pass, Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        let (a, b) = &self.paths;
        let other = self.second.get_or_insert_with(|| open_pair(a, b).ok());
        let Some(other) = other else {
            return engine::one_after_other(self, first, second, row);
        };
        let mut firsts = self.conn.query(first, &[]).map_err(|e| e.to_string())?;
        let mut seconds = other.query(second, &[]).map_err(|e| e.to_string())?;
        let (mut first_open, mut second_open) = (true, true);
        while first_open || second_open {
            if first_open {
                first_open = pass_batch(&mut firsts, Pass::First, row)?;
            }
            if second_open {
                second_open = pass_batch(&mut seconds, Pass::Second, row)?;
            }
        }
        Ok(())
    }
}

/// The `--changeset FILE` reply: the bytes as the attachment FILE. From the shell the notes
/// (what the changeset leaves out) go to stderr as plain text and the attachment alone is
/// the rest of the reply (`roost invoke` writes it to FILE, named on its command line). In
/// chat the notes and the counts are the text, and the file is attached under its last
/// path component.
fn render_changeset(cmd: &Command, file: &str, diff: &mut engine::Diff) -> Reply {
    // Moved, not copied: a large changeset is the plugin's largest allocation.
    let bytes = std::mem::take(&mut diff.changeset);
    if cmd.from_shell() {
        let mut reply = Reply::new();
        for note in &diff.notes {
            reply = reply.and_stderr(format!("note: {note}"));
        }
        return reply.attachment(file, bytes);
    }
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let name = if name.is_empty() {
        "changeset.bin"
    } else {
        name
    };
    let summary = diff.short_summary();
    let mut reply = if bytes.is_empty() {
        Reply::text("no row changes that a changeset can carry")
    } else {
        Reply::text(format!(
            "changeset {name}: {} bytes, attached{}",
            bytes.len(),
            if summary.is_empty() {
                String::new()
            } else {
                format!("; {summary}")
            }
        ))
    };
    for note in &diff.notes {
        reply = reply.and_text(format!("note: {note}"));
    }
    if !bytes.is_empty() {
        reply = reply.attachment(name, bytes);
    }
    reply
}

impl DbDiff {
    fn snapshot_path(&self, name: &str) -> Result<String, String> {
        let dir = self
            .settings
            .snapshot_dir
            .as_deref()
            .ok_or("no `snapshot_dir` in [plugins.db-diff.config]")?;
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(format!("`{name}` is not a database name"));
        }
        Ok(format!("{}/{name}.snapshot.db", dir.trim_end_matches('/')))
    }

    /// A database argument as a path: a configured name, `NAME@snapshot`, `@snapshot`
    /// (the snapshot of `other`), or a path as given.
    fn resolve(&self, arg: &str, other: &str) -> Result<String, String> {
        if let Some(name) = arg.strip_suffix("@snapshot") {
            let name = if name.is_empty() {
                other.strip_suffix("@snapshot").unwrap_or(other)
            } else {
                name
            };
            return self.snapshot_path(name);
        }
        Ok(self
            .settings
            .databases
            .get(arg)
            .cloned()
            .unwrap_or_else(|| arg.to_string()))
    }

    fn open(&self, a: &str, b: &str) -> Result<HostDb, String> {
        Ok(HostDb {
            conn: open_pair(a, b)?,
            paths: (a.to_string(), b.to_string()),
            second: None,
        })
    }

    /// Opens the databases `args` names (as typed: `a`, `b`); when one cannot be opened and
    /// was typed as a bare word, the error says which names are configured.
    fn open_args(&self, args: (&str, &str), paths: (&str, &str)) -> Result<HostDb, String> {
        self.open(paths.0, paths.1).map_err(|e| {
            let unknown: Vec<&str> = [args.0, args.1]
                .into_iter()
                .filter(|arg| self.is_unknown_name(arg))
                .collect();
            if unknown.is_empty() {
                return e;
            }
            format!(
                "{e}\n{} {} not a configured database name; {}",
                unknown
                    .iter()
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                if unknown.len() == 1 { "is" } else { "are" },
                self.configured_names()
            )
        })
    }

    /// Whether `arg` looks like a database name (no path separator, no `.db`-style
    /// extension, no `@snapshot`) that the config does not define.
    fn is_unknown_name(&self, arg: &str) -> bool {
        !arg.contains(['/', '\\', '.', '@']) && !self.settings.databases.contains_key(arg)
    }

    /// The configured names, for error messages.
    fn configured_names(&self) -> String {
        if self.settings.databases.is_empty() {
            return "none are configured ([plugins.db-diff.config.databases])".to_string();
        }
        let names: Vec<&str> = self.settings.databases.keys().map(String::as_str).collect();
        format!("configured: {}", names.join(", "))
    }

    fn run_diff(&mut self, cmd: &Command, args: &[String]) -> Result<Reply, String> {
        let parsed =
            cli::parse(args).map_err(|e| e.replace("{command}", &cmd.typed(cmd.name())))?;
        let a = self.resolve(&parsed.a, &parsed.b)?;
        let b = self.resolve(&parsed.b, &parsed.a)?;
        let mut db = self.open_args((&parsed.a, &parsed.b), (&a, &b))?;
        let mut diff = engine::diff(&mut db, &parsed.options)?;
        self.last = format!("last diff: {} vs {}", parsed.a, parsed.b);
        if parsed.exit_code && diff.differs() {
            return Err("differences found".to_string());
        }
        if let Some(file) = &parsed.changeset {
            return Ok(render_changeset(cmd, file, &mut diff));
        }
        let text = match parsed.output {
            // Moved, not copied: a large diff's SQL is the plugin's largest allocation.
            Output::Sql => std::mem::take(&mut diff.sql),
            Output::Summary => diff.summary(),
            Output::Stat => diff.stat(),
        };
        Ok(self.render(cmd, text, &diff, parsed.output))
    }

    /// The reply: plain text for the shell (so `roost invoke` prints bare SQL), a code
    /// block in chat, an attachment when it is longer than `max_reply_bytes`. `text` goes
    /// into the reply as it is, trimmed in place.
    fn render(
        &self,
        cmd: &Command,
        mut text: String,
        diff: &engine::Diff,
        output: Output,
    ) -> Reply {
        text.truncate(text.trim_end_matches('\n').len());
        if cmd.from_shell() {
            return if text.is_empty() {
                Reply::new()
            } else {
                Reply::text(text)
            };
        }
        if text.is_empty() {
            return Reply::text("no differences");
        }
        let max = self.settings.max_reply_bytes.unwrap_or(16_000);
        if text.len() > max {
            let summary = diff.short_summary();
            return Reply::text(format!(
                "{} bytes of {}, attached; {}",
                text.len(),
                if output == Output::Sql {
                    "SQL"
                } else {
                    "output"
                },
                if summary.is_empty() {
                    "no row counts".to_string()
                } else {
                    summary
                }
            ))
            .attachment("diff.sql", text.into_bytes());
        }
        let lang = if output == Output::Sql { "sql" } else { "" };
        if text.lines().count() <= 1 && output != Output::Sql {
            Reply::text(text)
        } else {
            Reply::new().code(lang, text)
        }
    }

    fn snapshot(&self, name: &str) -> Result<String, String> {
        let source = self.settings.databases.get(name).ok_or_else(|| {
            format!(
                "`{name}` is not in [plugins.db-diff.config.databases]; {}",
                self.configured_names()
            )
        })?;
        let target = self.snapshot_path(name)?;
        let mut conn =
            Connection::open(source).map_err(|e| format!("cannot open `{source}`: {e}"))?;
        conn.snapshot(&target)
            .map_err(|e| format!("cannot snapshot `{name}` to `{target}`: {e}"))?;
        let now = clock::now_secs();
        kv::set_string(&format!("snapshot:{name}"), &now.to_string())?;
        Ok(format!(
            "snapshot of {name} taken ({})",
            clock::format_utc_minutes(now)
        ))
    }

    fn watch(&mut self, name: &str) -> Result<(), String> {
        let taken: Option<u64> =
            kv::get_string(&format!("snapshot:{name}"))?.and_then(|s| s.parse().ok());
        let Some(taken) = taken else {
            self.snapshot(name)?;
            return Ok(());
        };
        let snap = self.snapshot_path(name)?;
        let current = self
            .settings
            .databases
            .get(name)
            .cloned()
            .ok_or_else(|| format!("watched `{name}` is not in databases"))?;
        let mut db = self.open(&snap, &current)?;
        let opts = Options {
            mode: Mode::Counts,
            ..Options::default()
        };
        let diff = engine::diff(&mut db, &opts)?;
        drop(db);
        if diff.differs() {
            let msg = format!(
                "{name} changed since {}: {}",
                clock::format_utc_minutes(taken),
                diff.short_summary()
            );
            match self.settings.channel.as_deref() {
                Some(ch) => chat::send(ch, msg)?,
                None => log::info(msg),
            }
            self.snapshot(name)?;
        }
        Ok(())
    }
}

impl Plugin for DbDiff {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        self.settings = cfg.decode()?;
        for (name, secs) in &self.settings.watch {
            if !self.settings.databases.contains_key(name) {
                return Err(format!("watch: `{name}` is not in databases"));
            }
            if *secs == 0 {
                return Err(format!(
                    "watch: the interval of `{name}` must be above 0 seconds"
                ));
            }
            timer::every(Duration::from_secs(*secs), &format!("watch:{name}"))?;
        }
        Ok(Manifest::new("db-diff", env!("CARGO_PKG_VERSION"))
            .command(
                CommandSpec::new(
                    "diff",
                    format!("!diff <A> <B> {}", cli::OPTIONS),
                    "SQL that turns database A into database B",
                )
                .role(Role::Trusted)
                .min_args(2),
            )
            .command(
                CommandSpec::new(
                    "dbdiff",
                    "!dbdiff <A> <B> [options] | !dbdiff snapshot <name>",
                    "Diff two configured databases, or snapshot one (NAME@snapshot)",
                )
                .role(Role::Trusted)
                .min_args(2),
            ))
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        let args: Vec<String> = cmd.args().to_vec();
        match cmd.name() {
            "dbdiff" if args.first().map(String::as_str) == Some("snapshot") => {
                let name = args
                    .get(1)
                    .ok_or_else(|| format!("usage: {}", cmd.typed("dbdiff snapshot <name>")))?;
                Ok(Reply::text(self.snapshot(name)?))
            }
            "diff" | "dbdiff" => self.run_diff(&cmd, &args),
            other => Err(format!("db-diff does not serve `{other}`")),
        }
    }

    fn on_timer(&mut self, tag: &str) {
        if let Some(name) = tag.strip_prefix("watch:")
            && let Err(e) = self.watch(name)
        {
            log::warn(format!("watch {name}: {e}"));
        }
    }

    fn status(&self) -> String {
        let mut s = format!("{} databases", self.settings.databases.len());
        if !self.settings.watch.is_empty() {
            s.push_str(&format!(", watching {}", self.settings.watch.len()));
        }
        if !self.last.is_empty() {
            s.push_str(&format!("; {}", self.last));
        }
        s
    }
}

export_plugin!(DbDiff);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_name_the_command_as_it_is_typed_there() {
        let mut p = DbDiff::default();
        let shell = p
            .on_command(Command::new("diff", ["a.db"]).via("cli"))
            .unwrap_err();
        assert!(shell.contains("usage: diff <A> <B>"), "{shell}");
        assert!(!shell.contains('!'), "{shell}");
        let chat = p.on_command(Command::new("dbdiff", ["a"])).unwrap_err();
        assert!(chat.contains("usage: !dbdiff <A> <B>"), "{chat}");
        let snap = p
            .on_command(Command::new("dbdiff", ["snapshot"]).via("cli"))
            .unwrap_err();
        assert_eq!(snap, "usage: dbdiff snapshot <name>");
    }

    #[test]
    fn unknown_names_are_told_apart_from_paths_and_the_configured_ones_listed() {
        let mut p = DbDiff::default();
        assert!(p.configured_names().contains("none are configured"));
        p.settings.databases.insert("prod".into(), "/p.db".into());
        p.settings
            .databases
            .insert("staging".into(), "/s.db".into());
        assert_eq!(p.configured_names(), "configured: prod, staging");
        assert!(p.is_unknown_name("a"));
        assert!(!p.is_unknown_name("prod"));
        assert!(!p.is_unknown_name("a.db"));
        assert!(!p.is_unknown_name("/srv/a"));
        assert!(!p.is_unknown_name("prod@snapshot"));
    }

    #[test]
    fn resolves_names_and_snapshots() {
        let mut p = DbDiff::default();
        p.settings
            .databases
            .insert("prod".into(), "/srv/prod.db".into());
        p.settings.snapshot_dir = Some("/snaps/".into());
        assert_eq!(p.resolve("prod", "x").unwrap(), "/srv/prod.db");
        assert_eq!(p.resolve("other.db", "x").unwrap(), "other.db");
        assert_eq!(
            p.resolve("prod@snapshot", "x").unwrap(),
            "/snaps/prod.snapshot.db"
        );
        assert_eq!(
            p.resolve("@snapshot", "prod").unwrap(),
            "/snaps/prod.snapshot.db"
        );
        assert!(p.resolve("../x@snapshot", "prod").is_err());
    }
}

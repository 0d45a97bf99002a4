//! `roost invoke PLUGIN COMMAND ARGS…`: runs one plugin command from the shell, no daemon.
//! The caller is the local user, identity `cli` with role admin.
//!
//! A reply's attachment is written to a file only when its file name is, exactly, one of
//! the arguments the user typed (`roost invoke db-diff diff a.db b.db --changeset out.bin`
//! writes `out.bin`), and never over an SQLite database; any other attachment is shown as
//! a note with its size and not written.
//!
//! A code block of language `stderr` in a reply is printed on stderr, as plain text, and
//! dropped from the reply: what a plugin has to say beside its output (db-diff's notes on
//! what a changeset leaves out) without mixing into the output a script reads.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::daemon::{DaemonError, Host};
use crate::message::{Outgoing, Part};
use crate::runtime::actor::CallError;
use crate::runtime::bindings::{CommandContext, WitRole};

/// Why `roost invoke` produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Host(#[from] DaemonError),
    #[error("plugin `{0}` did not load: {1}")]
    Load(String, String),
    #[error("plugin `{plugin}` has no command `{command}` (it serves: {served})")]
    NoCommand {
        plugin: String,
        command: String,
        served: String,
    },
    #[error("usage: {0}")]
    Usage(String),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("cannot write the attachment to {0}: {1}")]
    Write(String, String),
}

/// The local user who types `roost invoke db-diff diff a.db b.db` has chosen those files:
/// existing files named as arguments are granted to the plugin for reading, for this run
/// only (nothing else is: the config's grants apply as in the daemon).
fn grant_named_files(config: &mut Config, plugin: &str, args: &[String]) {
    let files: Vec<PathBuf> = args
        .iter()
        .map(Path::new)
        .filter(|p| p.is_file())
        .filter_map(|p| std::path::absolute(p).ok())
        .collect();
    if !files.is_empty() {
        let entry = config.plugins.entry(plugin.to_string()).or_default();
        entry.grants.sqlite_read.extend(files);
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// Whether `path` is an existing SQLite database (which no attachment may overwrite: the
/// files being compared are named on the same command line).
fn is_sqlite_database(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == SQLITE_HEADER)
}

/// Writes each attachment of `reply` whose file name is exactly one of `args` to that
/// path and drops it from the reply; every other attachment becomes a note with its size.
/// The user chose those paths by typing them; a plugin cannot reach any other.
pub fn deliver_attachments(reply: Outgoing, args: &[String]) -> Result<Outgoing, InvokeError> {
    let mut parts = Vec::with_capacity(reply.parts.len());
    for part in reply.parts {
        let Part::Attachment { filename, data } = part else {
            parts.push(part);
            continue;
        };
        if !args.contains(&filename) {
            parts.push(Part::Text {
                text: format!(
                    "[attachment {filename}, {} bytes: not written (only a file named on the command line is)]",
                    data.len()
                ),
            });
            continue;
        }
        let path = Path::new(&filename);
        if is_sqlite_database(path) {
            return Err(InvokeError::Write(
                filename,
                "it is an SQLite database; refusing to overwrite it".into(),
            ));
        }
        std::fs::write(path, &data)
            .map_err(|e| InvokeError::Write(filename.clone(), e.to_string()))?;
        tracing::debug!(file = %filename, bytes = data.len(), "attachment written");
    }
    Ok(Outgoing { parts, relay: None })
}

/// The language of a code block meant for stderr (see the module doc).
pub const STDERR_LANGUAGE: &str = "stderr";

/// Takes the `stderr` code blocks out of `reply` and writes them to `err`, one per line
/// (control characters made visible, as stdout's are); the rest of the reply is returned.
pub fn divert_stderr(reply: Outgoing, err: &mut impl std::io::Write) -> Outgoing {
    let mut parts = Vec::with_capacity(reply.parts.len());
    for part in reply.parts {
        match part {
            Part::Code { language, code } if language == STDERR_LANGUAGE => {
                let text = crate::cli::terminal::visible(code.trim_end_matches('\n'));
                // Nothing better to do when stderr itself is gone.
                let _ = writeln!(err, "{text}");
            }
            other => parts.push(other),
        }
    }
    Outgoing {
        parts,
        relay: reply.relay,
    }
}

/// Loads `plugin` alone and runs `command` with `args`.
pub async fn invoke(
    mut config: Config,
    plugin: &str,
    command: &str,
    args: Vec<String>,
) -> Result<Outgoing, InvokeError> {
    grant_named_files(&mut config, plugin, &args);
    let prefix = config.host.prefix.clone();
    let host = Host::one_shot(config)?;
    let supervisor = host.supervisor.clone();
    let result = async {
        supervisor
            .load_one(plugin)
            .await
            .map_err(|e| InvokeError::Load(plugin.to_string(), e))?;
        let handle = supervisor
            .handle(plugin)
            .ok_or_else(|| InvokeError::Load(plugin.to_string(), "not running".into()))?;
        let manifest = handle.health().manifest;
        let Some(spec) = manifest.commands.iter().find(|c| c.name == command) else {
            let served: Vec<_> = manifest.commands.iter().map(|c| c.name.as_str()).collect();
            return Err(InvokeError::NoCommand {
                plugin: plugin.to_string(),
                command: command.to_string(),
                served: served.join(", "),
            });
        };
        if (args.len() as u64) < u64::from(spec.min_args) {
            // From the shell the command is typed after `roost invoke PLUGIN`, not `!`.
            return Err(InvokeError::Usage(crate::router::with_prefix(
                &format!("roost invoke {plugin} "),
                &spec.usage,
            )));
        }
        let mut text = format!("{prefix}{command}");
        for a in &args {
            text.push(' ');
            text.push_str(
                &shlex::try_quote(a)
                    .map(|q| q.into_owned())
                    .unwrap_or_else(|_| a.clone()),
            );
        }
        let ctx = CommandContext {
            identity: "cli".into(),
            role: WitRole::Admin,
            gateway: "cli".into(),
            channel: "cli".into(),
            command: command.to_string(),
            prefix: prefix.clone(),
            text,
        };
        let reply = handle.command(ctx, args.clone()).await?;
        let reply = divert_stderr(reply, &mut std::io::stderr().lock());
        deliver_attachments(reply, &args)
    }
    .await;
    supervisor.unload_all();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(name: &str, data: &[u8]) -> Part {
        Part::Attachment {
            filename: name.to_string(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn writes_only_attachments_named_on_the_command_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let named = dir.path().join("out.bin").display().to_string();
        let other = dir.path().join("other.bin").display().to_string();
        let reply = Outgoing {
            parts: vec![
                Part::Text { text: "hi".into() },
                attachment(&named, b"\x54\x01"),
                attachment(&other, b"secret"),
            ],
            relay: None,
        };
        let args = vec!["--changeset".to_string(), named.clone()];
        let out = deliver_attachments(reply, &args).expect("delivered");
        assert_eq!(std::fs::read(&named).expect("written"), b"\x54\x01");
        assert!(
            !Path::new(&other).exists(),
            "an unnamed attachment is never written"
        );
        let shown = out.render_plain();
        assert!(shown.starts_with("hi\n"), "{shown}");
        assert!(shown.contains("other.bin, 6 bytes: not written"), "{shown}");
        assert!(!shown.contains("out.bin"), "{shown}");
    }

    #[test]
    fn stderr_code_blocks_go_to_stderr_and_the_rest_stays() {
        let reply = Outgoing {
            parts: vec![
                Part::Code {
                    language: STDERR_LANGUAGE.into(),
                    code: "note: one\x1b[2J\n".into(),
                },
                Part::Text { text: "out".into() },
                Part::Code {
                    language: "sql".into(),
                    code: "select 1".into(),
                },
            ],
            relay: None,
        };
        let mut err = Vec::new();
        let out = divert_stderr(reply, &mut err);
        assert_eq!(String::from_utf8_lossy(&err), "note: one^[[2J\n");
        assert_eq!(out.render_plain(), "out\n```sql\nselect 1\n```");
    }

    #[test]
    fn a_named_path_must_match_exactly_and_never_overwrites_a_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("a.db");
        let mut content = SQLITE_HEADER.to_vec();
        content.extend([0u8; 84]);
        std::fs::write(&db, &content).expect("db");
        let db_name = db.display().to_string();
        let reply = Outgoing {
            parts: vec![attachment(&db_name, b"clobber")],
            relay: None,
        };
        let err = deliver_attachments(reply, std::slice::from_ref(&db_name)).expect_err("refused");
        assert!(err.to_string().contains("SQLite database"), "{err}");
        assert_eq!(std::fs::read(&db).expect("kept"), content);

        // `./x` on the command line does not name `x`.
        let plain = dir.path().join("x.bin");
        let reply = Outgoing {
            parts: vec![attachment(&plain.display().to_string(), b"x")],
            relay: None,
        };
        let dotted = format!("{}/./x.bin", dir.path().display());
        deliver_attachments(reply, &[dotted]).expect("delivered");
        assert!(!plain.exists());
    }
}

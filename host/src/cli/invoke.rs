//! `roost invoke PLUGIN COMMAND ARGS…`: runs one plugin command from the shell, no daemon.
//! The caller is the local user, identity `cli` with role admin.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::daemon::{DaemonError, Host};
use crate::message::Outgoing;
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

/// Loads `plugin` alone and runs `command` with `args`.
pub async fn invoke(
    config_path: &Path,
    plugin: &str,
    command: &str,
    args: Vec<String>,
) -> Result<Outgoing, InvokeError> {
    let mut config = Config::load(config_path)?;
    grant_named_files(&mut config, plugin, &args);
    let prefix = config.host.prefix.clone();
    let host = Host::build(config)?;
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
            return Err(InvokeError::Usage(crate::router::with_prefix(
                &prefix,
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
        Ok(handle.command(ctx, args).await?)
    }
    .await;
    supervisor.unload_all();
    result
}

//! `roost check`: validates the config and loads every enabled plugin (compile, instantiate,
//! `init`) without starting any gateway; prints what is wrong.

use std::path::Path;

use crate::config::Config;
use crate::daemon::{DaemonError, Host};

/// What `roost check` found.
pub struct CheckReport {
    /// Plugins that loaded, with their versions.
    pub loaded: Vec<(String, String)>,
    /// One line per problem.
    pub errors: Vec<String>,
}

/// Runs the checks; `Err` only when the config itself is unusable.
pub async fn check(config_path: &Path) -> Result<CheckReport, DaemonError> {
    let config = Config::load(config_path)?;
    let host = Host::one_shot(config)?;
    let errors = host.supervisor.sync().await;
    let loaded = host
        .supervisor
        .list_plugins_names()
        .into_iter()
        .filter_map(|n| {
            host.supervisor
                .handle(&n)
                .map(|h| (n, h.health().manifest.version))
        })
        .collect();
    host.supervisor.unload_all();
    Ok(CheckReport { loaded, errors })
}

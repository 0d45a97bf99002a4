//! Control of the host's plugins, for the bot. Every call needs `admin = true` in the
//! plugin's grants; without it each returns [`Error::AccessDenied`].

use std::fmt;

use crate::__bindings::roost::plugin::admin as wit;
use crate::{CommandSpec, Error};

/// What state a plugin is in, from the host's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PluginState {
    /// Serving commands.
    Running,
    /// Turned off in config or by `!disable`.
    Disabled,
    /// Its last load or init failed and nothing is serving; see `last_error`.
    Failed,
    /// Being rebuilt after a trap, hang or memory bomb.
    Restarting,
    /// A state this SDK version does not know, as the host named it.
    Other(String),
}

impl PluginState {
    /// The host's name for the state: "running", "disabled", "failed", "restarting", ….
    pub fn as_str(&self) -> &str {
        match self {
            PluginState::Running => "running",
            PluginState::Disabled => "disabled",
            PluginState::Failed => "failed",
            PluginState::Restarting => "restarting",
            PluginState::Other(s) => s,
        }
    }
}

impl From<String> for PluginState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "running" => PluginState::Running,
            "disabled" => PluginState::Disabled,
            "failed" => PluginState::Failed,
            "restarting" => PluginState::Restarting,
            _ => PluginState::Other(s),
        }
    }
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the host knows about one plugin, as [`list_plugins`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its name (the `.wasm` file stem).
    pub name: String,
    /// The version now serving; empty when none is.
    pub version: String,
    /// Running, disabled, failed or restarting.
    pub state: PluginState,
    /// Whether config enables it.
    pub enabled: bool,
    /// Its commands, with config overrides of roles applied.
    pub commands: Vec<CommandSpec>,
    /// Its own one-line status, or empty.
    pub status: String,
    /// The last load, init or trap error, or empty.
    pub last_error: String,
    /// Calls that failed (trap, timeout, memory) since the host started.
    pub failures: u64,
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(p: wit::PluginInfo) -> Self {
        Self {
            name: p.name,
            version: p.version,
            state: p.state.into(),
            enabled: p.enabled,
            commands: p.commands.into_iter().map(Into::into).collect(),
            status: p.status,
            last_error: p.last_error,
            failures: p.failures,
        }
    }
}

/// One line each about the host itself: uptime, gateways, outbox, config errors.
pub fn host_status() -> Result<Vec<String>, Error> {
    wit::host_status().map_err(Error::from)
}

/// Every plugin the host knows, running or not.
pub fn list_plugins() -> Result<Vec<PluginInfo>, Error> {
    wit::list_plugins()
        .map(|list| list.into_iter().map(Into::into).collect())
        .map_err(Error::from)
}

/// Reloads plugin `name` from disk; returns the version now serving. The old instance
/// keeps serving if the new one fails to load.
pub fn reload(name: &str) -> Result<String, Error> {
    wit::reload(name).map_err(Error::from)
}

/// Enables plugin `name` and loads it; returns the version now serving.
pub fn enable(name: &str) -> Result<String, Error> {
    wit::enable(name).map_err(Error::from)
}

/// Disables plugin `name`, stopping its instance; returns what the host reports.
pub fn disable(name: &str) -> Result<String, Error> {
    wit::disable(name).map_err(Error::from)
}

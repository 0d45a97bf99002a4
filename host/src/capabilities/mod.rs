//! One module per WIT interface. Each holds its grant (what config allows), its per-instance
//! context, its `Host` impl and its `add_to_linker`. A check against the grant comes first in
//! every host call; guest mistakes come back as the WIT `error`, never as a trap.
//!
//! What a plugin gets without any grant: `log`, its own `kv` namespace and its own `timer`s
//! (none of them reach outside the plugin). Chat channels, `admin`, SQLite files, DNS
//! servers, watched directories, programs and the directories they run in, and HTTP hosts
//! must be granted by name.

pub mod admin;
pub mod chat;
pub mod dns;
pub mod http;
pub mod kv;
pub mod log;
pub mod process;
pub mod registry;
pub mod secrets;
pub mod sqlite;
pub mod timer;
pub mod watch;
pub mod webhook;

use wasmtime::component::{HasSelf, Linker};

pub use registry::{Capability, Contexts, Grants, InstanceEnv};

use crate::runtime::bindings::{GuestError, roost::plugin::types};
use crate::runtime::state::PluginState;

/// Links every capability the `roost:plugin` world imports, plus WASI (with nothing granted:
/// Rust's std makes every guest import it).
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    types::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    registry::add_to_linker(linker)
}

/// The `types` interface has no functions; its `Host` trait is empty.
impl types::Host for PluginState {}

/// Logs a host-side failure in full and gives the guest a short, safe error (Spin's
/// `log_error`): the detail stays in the host's log.
pub(crate) fn host_failure(plugin: &str, what: &str, err: impl std::fmt::Display) -> GuestError {
    tracing::warn!(plugin, blame = "host", "{what}: {err}");
    GuestError::Other(format!("{what} failed; see the host log"))
}

/// Logs a refused call (the guest's fault) and returns the access-denied error.
pub(crate) fn denied(plugin: &str, why: String) -> GuestError {
    tracing::info!(plugin, blame = "guest", "denied: {why}");
    GuestError::AccessDenied(why)
}

//! `log`: a plugin's log lines go to the host's `tracing` output, tagged with its name.

use wasmtime::component::{HasSelf, Linker};

use super::registry::{Capability, InstanceEnv};
use crate::config::Config;
use crate::runtime::bindings::roost::plugin::log::{self, Level};
use crate::runtime::state::PluginState;

/// Longest log line kept; a plugin controls the length, so longer ones are cut.
const MAX_LINE_BYTES: usize = 8 * 1024;

/// Per-instance context: the plugin's name for the tag, and its last error line (the SDK
/// logs a panic's message just before the trap, so the user can be shown why).
pub struct LogCtx {
    plugin: String,
    /// The last error-level line of the current call.
    pub last_error: Option<String>,
}

impl LogCtx {
    /// Context for one instance of `plugin`.
    pub fn new(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_string(),
            last_error: None,
        }
    }
}

impl log::Host for LogCtx {
    async fn log(&mut self, level: Level, mut message: String) -> wasmtime::Result<()> {
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => {
                tracing::error!(plugin, "{message}");
                self.last_error = Some(message);
            }
        }
        Ok(())
    }
}

/// The `log` capability: always granted; lines go to the host log tagged with the plugin.
pub struct Log;

impl Capability for Log {
    type Grant = ();
    type Ctx = LogCtx;

    fn grant(_: &Config, _: &str) {}

    fn context(env: &InstanceEnv<'_>, (): &()) -> LogCtx {
        LogCtx::new(env.plugin)
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        log::add_to_linker::<PluginState, HasSelf<LogCtx>>(linker, |s| &mut s.caps.log)
    }
}

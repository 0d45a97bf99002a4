//! Watches the plugins folder and the config file, and says which of the two changed.
//! Editors save by writing a new file and renaming it over the old one, so the config's
//! directory is watched and events are filtered by file name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

use super::RuntimeError;

/// Quiet time before a burst of file events is reported once: long enough for `cp` of a
/// large `.wasm` to finish, short enough to stay well under the 2 s users expect.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What changed on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The config file was written.
    Config,
    /// A `.wasm` file in the plugins folder was added, replaced or removed.
    Plugins,
}

/// Keeps the watch alive; dropping it stops watching.
pub struct HotReload {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl HotReload {
    /// Watches `config_file` and `plugins_dir` (created if missing) and sends each change.
    pub fn start(
        config_file: &Path,
        plugins_dir: &Path,
        tx: mpsc::UnboundedSender<Change>,
    ) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(plugins_dir).map_err(|source| RuntimeError::Io {
            path: plugins_dir.to_path_buf(),
            source,
        })?;
        let config_file = absolute(config_file);
        let plugins_dir = absolute(plugins_dir);
        let config_dir = config_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let (cfg, plug) = (config_file.clone(), plugins_dir.clone());
        let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let events = match result {
                Ok(events) => events,
                Err(errors) => {
                    for e in errors {
                        tracing::warn!("file watch: {e}");
                    }
                    return;
                }
            };
            let (mut config, mut plugins) = (false, false);
            for event in &events {
                if event.kind.is_access() {
                    continue;
                }
                for path in &event.paths {
                    if path == &cfg {
                        config = true;
                    } else if path.parent() == Some(plug.as_path())
                        && path.extension().is_some_and(|e| e == "wasm")
                    {
                        plugins = true;
                    }
                }
            }
            if config {
                let _ = tx.send(Change::Config);
            }
            if plugins {
                let _ = tx.send(Change::Plugins);
            }
        })
        .map_err(|e| RuntimeError::Watch {
            path: plugins_dir.clone(),
            reason: e.to_string(),
        })?;
        for dir in [&config_dir, &plugins_dir] {
            debouncer
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| RuntimeError::Watch {
                    path: dir.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Self {
            _debouncer: debouncer,
        })
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

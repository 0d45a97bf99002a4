//! Watches the plugins folder and the config file, and says which of the two changed.
//! Editors save by writing a new file and renaming it over the old one, so the config's
//! directory is watched and events are filtered by file name.
//!
//! The debounce is a task of its own rather than notify-debouncer-full's thread, which
//! wakes every quarter of its timeout while nothing happens (16 times a second here: an
//! idle hub's only steady CPU cost, `strace -c` of `roost run`). The task sleeps until an
//! event comes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
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

/// Keeps the watch alive; dropping it stops watching (and so the debounce task, whose
/// channel the watcher holds).
pub struct HotReload {
    _watcher: RecommendedWatcher,
}

impl HotReload {
    /// Watches `config_file` and `plugins_dir` (created if missing) and sends each change,
    /// once per burst. Runs its debounce on the current tokio runtime.
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
        let (raw_tx, raw) = mpsc::unbounded_channel();
        let plug = plugins_dir.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<Event>| match event {
                Ok(event) => {
                    for change in classify(&event, &config_file, &plug) {
                        let _ = raw_tx.send(change);
                    }
                }
                Err(e) => tracing::warn!("file watch: {e}"),
            })
            .map_err(|e| RuntimeError::Watch {
                path: plugins_dir.clone(),
                reason: e.to_string(),
            })?;
        for dir in [&config_dir, &plugins_dir] {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| RuntimeError::Watch {
                    path: dir.clone(),
                    reason: e.to_string(),
                })?;
        }
        tokio::spawn(debounce(raw, tx));
        Ok(Self { _watcher: watcher })
    }
}

/// What one file event changed: the config file, a `.wasm` in the plugins folder, both
/// (a rename from one to the other) or neither.
fn classify(event: &Event, config_file: &Path, plugins_dir: &Path) -> Vec<Change> {
    if event.kind.is_access() {
        return Vec::new();
    }
    let mut changes = Vec::new();
    for path in &event.paths {
        let change = if path == config_file {
            Change::Config
        } else if path.parent() == Some(plugins_dir)
            && path.extension().is_some_and(|e| e == "wasm")
        {
            Change::Plugins
        } else {
            continue;
        };
        if !changes.contains(&change) {
            changes.push(change);
        }
    }
    changes
}

/// Passes each kind of change on once [`DEBOUNCE`] has gone by with no event; ends when
/// the watcher (and so `raw`'s sender) is dropped.
async fn debounce(mut raw: mpsc::UnboundedReceiver<Change>, tx: mpsc::UnboundedSender<Change>) {
    while let Some(first) = raw.recv().await {
        let mut burst = vec![first];
        let open = loop {
            match tokio::time::timeout(DEBOUNCE, raw.recv()).await {
                Ok(Some(change)) => {
                    if !burst.contains(&change) {
                        burst.push(change);
                    }
                }
                Ok(None) => break false,
                Err(_quiet) => break true,
            }
        };
        // The config first: a plugin added with its grants is loaded under them.
        burst.sort_by_key(|change| *change == Change::Plugins);
        for change in burst {
            let _ = tx.send(change);
        }
        if !open {
            return;
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_passed_on_once_per_kind_config_first_once_quiet() {
        let (raw_tx, raw) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(debounce(raw, tx));
        for change in [
            Change::Plugins,
            Change::Config,
            Change::Plugins,
            Change::Config,
        ] {
            raw_tx.send(change).expect("send");
            tokio::time::sleep(DEBOUNCE / 2).await;
            assert!(rx.try_recv().is_err(), "passed on while the burst went on");
        }
        assert_eq!(rx.recv().await, Some(Change::Config));
        assert_eq!(rx.recv().await, Some(Change::Plugins));
        raw_tx.send(Change::Plugins).expect("send");
        assert_eq!(rx.recv().await, Some(Change::Plugins), "a later burst");
        drop(raw_tx);
        assert_eq!(rx.recv().await, None, "ends with the watcher");
    }

    #[test]
    fn only_the_config_file_and_wasm_files_in_the_plugins_folder_count() {
        let (config, plugins) = (Path::new("/c/roost.toml"), Path::new("/p"));
        let event = |kind, paths: &[&str]| {
            let mut e = Event::new(kind);
            for p in paths {
                e = e.add_path(PathBuf::from(p));
            }
            classify(&e, config, plugins)
        };
        let modify = notify::EventKind::Modify(notify::event::ModifyKind::Any);
        let access = notify::EventKind::Access(notify::event::AccessKind::Any);
        assert_eq!(event(modify, &["/c/roost.toml"]), [Change::Config]);
        assert_eq!(
            event(modify, &["/p/a.wasm", "/p/b.wasm"]),
            [Change::Plugins]
        );
        assert_eq!(
            event(modify, &["/p/new.wasm", "/c/roost.toml"]),
            [Change::Plugins, Change::Config]
        );
        assert!(event(modify, &["/c/other.toml", "/p/a.txt", "/p/x/a.wasm"]).is_empty());
        assert!(event(access, &["/c/roost.toml"]).is_empty());
    }
}

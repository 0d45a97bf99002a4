//! `watch`: file watching inside the directories a plugin's grant names (`watch_roots`).
//!
//! Each subscription is one task tied to the instance's state: it owns the notify watchers
//! ([`tree`]), keeps the net change of each path ([`batch`]) and sends a
//! `files-changed` event through the instance's event mailbox when the batch is due. When
//! the instance is dropped (unload, reload, rebuild after a trap) every subscription stops.
//!
//! The debounce is the host's own rather than notify-debouncer-full's: that debouncer times
//! each path separately (a `git checkout` of 500 files arrives in many pieces), has no
//! maximum wait, and wakes its thread every tick while nothing happens. Here a batch is due
//! `debounce` after the last change of any path, or `max_wait` after its first, and an idle
//! subscription costs no wake-ups at all.

pub mod batch;
pub mod rules;
pub mod tree;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use wasmtime::component::{HasSelf, Linker};

use self::batch::Pending;
use self::rules::Rules;
use self::tree::{Found, RawEvent, Root, Watched};
use super::denied;
use super::registry::{Capability, InstanceEnv, counted};
use crate::abort_on_drop::AbortOnDrop;
use crate::config::Config;
use crate::runtime::bindings::roost::plugin::types::{FileChange, FilesChanged};
use crate::runtime::bindings::roost::plugin::watch;
use crate::runtime::bindings::{Event, GuestError};
use crate::runtime::state::PluginState;

/// Most raw events translated without the blocking pool (see [`translate`]).
const INLINE_EVENTS: usize = 64;
/// Most live subscriptions per instance: each holds an inotify instance and a task.
pub const MAX_SUBSCRIPTIONS: usize = 16;
/// Most directories in one subscription.
pub const MAX_PATHS: usize = 64;
/// Most ignore globs in one subscription.
pub const MAX_GLOBS: usize = 256;
/// Longest debounce or maximum wait: beyond ten minutes a batch is no longer "a change".
pub const MAX_WAIT_MS: u32 = 600_000;
/// Raw events queued between notify's threads and the subscription's task; past it the
/// batch is marked as having lost changes.
const RAW_QUEUE: usize = 8192;

/// What config grants: directories whose trees may be watched, and the directory relative
/// paths are resolved against (the config file's). Nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchGrant {
    pub roots: Vec<PathBuf>,
    pub base: PathBuf,
}

/// One live subscription: its task, and whether its directories are watched yet.
struct Subscription {
    task: AbortOnDrop,
    ready: tokio::sync::watch::Receiver<bool>,
}

/// Per-instance context: the grant, the live subscriptions and the instance's mailbox.
pub struct WatchCtx {
    plugin: String,
    grant: WatchGrant,
    events: mpsc::Sender<Event>,
    subscriptions: HashMap<u64, Subscription>,
    next_id: u64,
    /// Poll instead of inotify (to test the polling path).
    force_poll: bool,
}

/// How one subscription batches.
#[derive(Debug, Clone, Copy)]
struct Timing {
    debounce: Duration,
    max_wait: Option<Duration>,
}

impl WatchCtx {
    /// Context whose batches go to `events` (the instance's own event queue).
    pub fn new(plugin: &str, grant: WatchGrant, events: mpsc::Sender<Event>) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
            events,
            subscriptions: HashMap::new(),
            next_id: 1,
            force_poll: false,
        }
    }

    /// The same context, polling every directory instead of using inotify.
    pub fn polling(mut self) -> Self {
        self.force_poll = true;
        self
    }

    /// Number of subscriptions still running.
    pub fn live(&mut self) -> usize {
        self.subscriptions.retain(|_, s| !s.task.0.is_finished());
        self.subscriptions.len()
    }

    /// `path` resolved (symlinks and `..` followed) if it is a directory inside a granted
    /// root.
    fn resolve(&self, path: &str) -> Result<PathBuf, GuestError> {
        if path.is_empty() {
            return Err(GuestError::InvalidArgument("empty path".into()));
        }
        let joined = self.grant.base.join(path);
        let real = std::fs::canonicalize(&joined)
            .map_err(|e| GuestError::NotFound(format!("{path}: {e}")))?;
        let inside = self.grant.roots.iter().any(|root| {
            std::fs::canonicalize(root).is_ok_and(|root| real == root || real.starts_with(&root))
        });
        if !inside {
            return Err(denied(
                &self.plugin,
                format!(
                    "{path} (resolved to {}) is outside the watch roots granted to plugin `{1}` (add it to watch_roots in [plugins.{1}.grants])",
                    real.display(),
                    self.plugin
                ),
            ));
        }
        if !real.is_dir() {
            return Err(GuestError::InvalidArgument(format!(
                "{path} is not a directory"
            )));
        }
        Ok(real)
    }

    fn start_subscription(
        &mut self,
        paths: Vec<String>,
        ignore: Vec<String>,
        debounce_ms: u32,
        max_wait_ms: u32,
    ) -> Result<u64, GuestError> {
        if paths.is_empty() {
            return Err(GuestError::InvalidArgument("no paths to watch".into()));
        }
        if paths.len() > MAX_PATHS || ignore.len() > MAX_GLOBS {
            return Err(GuestError::TooLarge(format!(
                "at most {MAX_PATHS} paths and {MAX_GLOBS} ignore globs per subscription"
            )));
        }
        if debounce_ms > MAX_WAIT_MS || max_wait_ms > MAX_WAIT_MS {
            return Err(GuestError::InvalidArgument(format!(
                "debounce and maximum wait must be at most {MAX_WAIT_MS} ms"
            )));
        }
        if self.live() >= MAX_SUBSCRIPTIONS {
            return Err(GuestError::TooLarge(format!(
                "plugin already has {MAX_SUBSCRIPTIONS} subscriptions"
            )));
        }
        let mut roots = Vec::with_capacity(paths.len());
        for path in paths {
            let real = self.resolve(&path)?;
            let rules = Rules::new(&real, &ignore)
                .map_err(|e| GuestError::InvalidArgument(e.to_string()))?;
            roots.push(Root { given: path, rules });
        }
        let id = self.next_id;
        self.next_id += 1;
        let timing = Timing {
            debounce: Duration::from_millis(u64::from(debounce_ms)),
            max_wait: (max_wait_ms > 0).then(|| Duration::from_millis(u64::from(max_wait_ms))),
        };
        let (raw_tx, raw_rx) = mpsc::channel(RAW_QUEUE);
        let watched = Watched::new(roots, raw_tx, Arc::default(), self.force_poll);
        let (ready_tx, ready) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(run(
            Task {
                plugin: self.plugin.clone(),
                id,
                timing,
                ready: ready_tx,
            },
            Arc::new(Mutex::new(watched)),
            raw_rx,
            self.events.clone(),
        ));
        let task = AbortOnDrop(task);
        self.subscriptions.insert(id, Subscription { task, ready });
        Ok(id)
    }

    /// Waits until subscription `id` watches all its directories (changes made before that
    /// may be missed). `false` if it ended or does not exist.
    pub async fn ready(&self, id: u64) -> bool {
        let Some(sub) = self.subscriptions.get(&id) else {
            return false;
        };
        let mut ready = sub.ready.clone();
        ready.wait_for(|r| *r).await.is_ok()
    }
}

/// What a subscription's task knows about itself.
struct Task {
    plugin: String,
    id: u64,
    timing: Timing,
    ready: tokio::sync::watch::Sender<bool>,
}

/// One subscription: watch the trees, then turn raw events into batches until the
/// instance (and with it the event mailbox) or the subscription goes away.
async fn run(
    task: Task,
    watched: Arc<Mutex<Watched>>,
    mut raw: mpsc::Receiver<RawEvent>,
    events: mpsc::Sender<Event>,
) {
    let setup = watched.clone();
    let started = tokio::task::spawn_blocking(move || {
        let mut w = lock(&setup);
        let notices = w.watch_all();
        (notices, w.counts())
    })
    .await;
    let Ok((notices, (dirs, polled))) = started else {
        return;
    };
    let Task {
        plugin,
        id,
        timing,
        ready,
    } = task;
    tracing::debug!(plugin, subscription = id, dirs, polled, "watching");
    notify_plugin(&events, id, notices);
    let _ = ready.send(true);

    let mut pending = Pending::default();
    loop {
        let due = pending.due(timing.debounce, timing.max_wait);
        tokio::select! {
            first = raw.recv() => {
                let Some(first) = first else { break };
                let mut batch = vec![first];
                while let Ok(more) = raw.try_recv() {
                    batch.push(more);
                }
                let Some((found, notices, lost)) = translate(&watched, batch).await else { break };
                let now = tokio::time::Instant::now();
                if lost {
                    pending.lost(now);
                }
                for (root, path, seen) in found {
                    pending.record(root, path, seen, now);
                }
                notify_plugin(&events, id, notices);
            }
            _ = sleep_until(due), if due.is_some() => {
                let (changes, overflow) = pending.take();
                if changes.is_empty() && !overflow {
                    continue;
                }
                let changes = {
                    let w = lock(&watched);
                    changes
                        .into_iter()
                        .map(|(root, path, kind)| FileChange {
                            root: w.roots()[root].given.clone(),
                            path,
                            kind,
                        })
                        .collect()
                };
                let batch = FilesChanged { subscription: id, changes, overflow };
                // Waits while the plugin's mailbox is full; raw events queue meanwhile.
                if events.send(Event::FilesChanged(batch)).await.is_err() {
                    break;
                }
            }
        }
    }
    tracing::debug!(plugin, subscription = id, "watch ended");
}

/// What raw events say, per path. A small batch of writes to files only (a save's write
/// and close) is read here at once: it touches no disk. Any other batch (creates, renames,
/// metadata changes, errors, or many events) goes to the blocking pool, since it stats
/// paths and watching a new tree walks it; the hop to another thread costs a save's
/// latency, which is why the common case skips it. `None` if the blocking task died.
async fn translate(
    watched: &Arc<Mutex<Watched>>,
    batch: Vec<RawEvent>,
) -> Option<(Vec<Found>, Vec<String>, bool)> {
    let run = |w: &Mutex<Watched>, batch| {
        let (mut found, mut notices): (Vec<Found>, Vec<String>) = Default::default();
        let lost = lock(w).translate(batch, &mut found, &mut notices);
        (found, notices, lost)
    };
    if read_here(&batch) {
        return Some(run(watched, batch));
    }
    let w = watched.clone();
    tokio::task::spawn_blocking(move || run(&w, batch))
        .await
        .ok()
}

/// Whether `batch` is translated on the task that received it: at most
/// [`INLINE_EVENTS`] events, each a write to a file (see [`tree::only_content`]). A flood
/// of events, whoever causes it, goes to the blocking pool and cannot hold a worker.
fn read_here(batch: &[RawEvent]) -> bool {
    batch.len() <= INLINE_EVENTS && batch.iter().all(tree::only_content)
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn lock(w: &Mutex<Watched>) -> std::sync::MutexGuard<'_, Watched> {
    match w.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Hands the plugin a host notice about its subscription (a fallback to polling).
fn notify_plugin(events: &mpsc::Sender<Event>, id: u64, notices: Vec<String>) {
    for notice in notices {
        let _ = events.try_send(Event::Notice(format!("watch {id}: {notice}")));
    }
}

impl watch::Host for WatchCtx {
    async fn subscribe(
        &mut self,
        paths: Vec<String>,
        ignore: Vec<String>,
        debounce_ms: u32,
        max_wait_ms: u32,
    ) -> wasmtime::Result<Result<u64, GuestError>> {
        Ok(self.start_subscription(paths, ignore, debounce_ms, max_wait_ms))
    }

    async fn unsubscribe(&mut self, id: u64) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(match self.subscriptions.remove(&id) {
            Some(_) => Ok(()),
            None => Err(GuestError::NotFound(format!("no subscription {id}"))),
        })
    }
}

/// The `watch` capability: the directory trees in `watch_roots`; batches arrive as events
/// in the instance's queue.
pub struct Watch;

impl Capability for Watch {
    type Grant = WatchGrant;
    type Ctx = WatchCtx;

    fn grant(config: &Config, plugin: &str) -> WatchGrant {
        WatchGrant {
            roots: config
                .plugin(plugin)
                .map(|p| p.grants.watch_roots.clone())
                .unwrap_or_default(),
            base: config.base_dir(),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &WatchGrant) -> WatchCtx {
        WatchCtx::new(env.plugin, grant.clone(), env.events.clone())
    }

    fn usage(ctx: &mut WatchCtx) -> Option<String> {
        counted(ctx.live(), "watch", "watches")
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        watch::add_to_linker::<PluginState, HasSelf<WatchCtx>>(linker, |s| &mut s.caps.watch)
    }
}

#[cfg(test)]
mod tests;

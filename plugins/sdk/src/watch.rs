//! Watching directories for changes. Needs `watch_roots` in the plugin's grants: every
//! subscribed directory must lie inside one (after symlinks and `..` are resolved).
//!
//! ```text
//! use roost_plugin::prelude::*;
//!
//! let id = watch::Subscription::new(["../api"])
//!     .ignore(["*.swp", "build/"])
//!     .debounce(Duration::from_millis(50))
//!     .subscribe()?;
//! // Later, in Plugin::on_files_changed(batch): batch.subscription == id.
//! ```
//!
//! The host drops what Git ignores (.gitignore at any depth, .git/info/exclude, the global
//! excludes file), what `.ignore` files name, `.git` itself and the globs given here; it
//! waits for a quiet period (or the maximum wait) and then delivers the net change of each
//! path as one batch to [`Plugin::on_files_changed`](crate::Plugin::on_files_changed).
//! Subscriptions die with the instance: `init` sets them up again after a reload or crash.

use std::fmt;
use std::time::Duration;

use crate::__bindings::roost::plugin::types as wit_types;
use crate::__bindings::roost::plugin::watch as wit;
use crate::Error;

/// Names one subscription; every batch carries the id of the subscription it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The host's number for the subscription.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for SubscriptionId {
    fn from(id: u64) -> Self {
        SubscriptionId(id)
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a path changed within one batch (its net change: created and deleted again within
/// one batch is not reported at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// It did not exist before the batch and does now.
    Created,
    /// It existed before and still does (written, touched, replaced by a rename).
    Modified,
    /// It existed before and does not now.
    Removed,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The subscribed directory it is under, as given to [`Subscription::new`].
    pub root: String,
    /// Relative to `root`, with `/` between components.
    pub path: String,
    /// What happened to it.
    pub kind: ChangeKind,
}

/// One debounced batch of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesChanged {
    /// The subscription it came from.
    pub subscription: SubscriptionId,
    /// The changed paths, sorted by root then path.
    pub changes: Vec<Change>,
    /// Changes were lost (the kernel's queue overflowed, or the batch was too large): act as
    /// if anything under the subscription changed.
    pub overflow: bool,
}

impl From<wit_types::FilesChanged> for FilesChanged {
    fn from(b: wit_types::FilesChanged) -> Self {
        FilesChanged {
            subscription: SubscriptionId(b.subscription),
            changes: b
                .changes
                .into_iter()
                .map(|c| Change {
                    root: c.root,
                    path: c.path,
                    kind: match c.kind {
                        wit_types::ChangeKind::Created => ChangeKind::Created,
                        wit_types::ChangeKind::Modified => ChangeKind::Modified,
                        wit_types::ChangeKind::Removed => ChangeKind::Removed,
                    },
                })
                .collect(),
            overflow: b.overflow,
        }
    }
}

/// A subscription being set up: directories, ignore globs and timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    paths: Vec<String>,
    ignore: Vec<String>,
    debounce: Duration,
    max_wait: Option<Duration>,
}

impl Subscription {
    /// Watches the directories `paths` (relative paths are resolved against the config
    /// file's directory, like the grant). Defaults: no extra ignore globs, a 50 ms debounce
    /// and a 2 s maximum wait.
    pub fn new<S: Into<String>>(paths: impl IntoIterator<Item = S>) -> Self {
        Subscription {
            paths: paths.into_iter().map(Into::into).collect(),
            ignore: Vec::new(),
            debounce: Duration::from_millis(50),
            max_wait: Some(Duration::from_secs(2)),
        }
    }

    /// Adds gitignore-style globs anchored at each directory ("*.swp", "build/", "!keep").
    pub fn ignore<S: Into<String>>(mut self, globs: impl IntoIterator<Item = S>) -> Self {
        self.ignore.extend(globs.into_iter().map(Into::into));
        self
    }

    /// Quiet time after the last change before a batch goes out.
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet;
        self
    }

    /// Longest a batch waits after its first change, however busy the tree stays; `None`
    /// waits for quiet however long it takes.
    pub fn max_wait(mut self, max: Option<Duration>) -> Self {
        self.max_wait = max;
        self
    }

    /// Starts watching. Fails with [`Error::AccessDenied`] for a directory outside the
    /// grant, [`Error::NotFound`] for one that does not exist, [`Error::InvalidArgument`]
    /// for a file or a bad glob.
    pub fn subscribe(&self) -> Result<SubscriptionId, Error> {
        wit::subscribe(
            &self.paths,
            &self.ignore,
            millis(self.debounce),
            self.max_wait.map_or(0, |m| millis(m).max(1)),
        )
        .map(SubscriptionId)
        .map_err(Error::from)
    }
}

/// Whole milliseconds, saturating at what the WIT carries.
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Stops a subscription; an unknown id is [`Error::NotFound`].
pub fn unsubscribe(id: SubscriptionId) -> Result<(), Error> {
    wit::unsubscribe(id.0).map_err(Error::from)
}

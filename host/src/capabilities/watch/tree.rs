//! The directories one subscription watches and the notify watchers doing it.
//!
//! Every directory that is not ignored gets its own non-recursive watch, so ignored trees
//! (`target/`, `node_modules/`, `.git/`) cost no inotify watches and send no events. New
//! directories are walked and watched as their creation is seen, and the files already in
//! them are reported as created (they may have been written before the watch existed).
//! Symbolic links are never followed: a link to a directory outside the root is an entry,
//! not a way out.
//!
//! inotify says nothing about changes made on another machine, so directories on network
//! and virtual file systems (nfs, cifs/smb, 9p, fuse) are polled. When the kernel refuses
//! another inotify watch (`fs.inotify.max_user_watches`) or instance
//! (`fs.inotify.max_user_instances`), the whole subscription moves to polling and the
//! plugin gets a notice naming the sysctl.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::batch::Seen;
use super::rules::Rules;

/// How often polled directories are scanned: a second keeps a save-to-run delay tolerable
/// on a network share without rescanning large trees continuously.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Most directories one subscription watches; a tree larger than this is a mistake in the
/// subscription (or an ignore file), not something to spend kernel memory on.
pub const MAX_WATCHED_DIRS: usize = 200_000;

/// `statfs` magic numbers of file systems whose changes inotify cannot see.
const REMOTE_FS_MAGIC: &[(u64, &str)] = &[
    (0x6969, "nfs"),
    (0x517b, "smb"),
    (0xff53_4d42, "cifs"),
    (0xfe53_4d42, "smb2"),
    (0x0102_1997, "9p"),
    (0x6573_5546, "fuse"),
];

/// What notify's threads hand over: one event or one error.
pub type RawEvent = notify::Result<notify::Event>;

/// Whether `event` only says a file was written (or read): translating it touches no disk
/// (only files are written, so no `stat` needs to say whether the path is a directory)
/// and cannot add a directory to watch (see [`Watched::translate`]). A write to an ignore
/// file is not one: the rules are read again.
pub fn only_content(event: &RawEvent) -> bool {
    event.as_ref().is_ok_and(|e| {
        !e.need_rescan()
            && matches!(
                e.kind,
                EventKind::Access(_) | EventKind::Modify(ModifyKind::Data(_))
            )
            && !e.paths.iter().any(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(Rules::is_rules_file)
            })
    })
}

/// Whether an event of `kind` can only be about a file (a write: directories are not
/// written to).
fn about_a_file(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Data(_))
    )
}

/// One watched directory given by the plugin.
pub struct Root {
    /// The path as the plugin wrote it; batches name it.
    pub given: String,
    pub rules: Rules,
}

/// A change found by [`Watched::translate`]: root index, path relative to that root.
pub type Found = (usize, String, Seen);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Native,
    Poll,
}

/// The watch side of one subscription: its roots, their rules and the watchers.
pub struct Watched {
    roots: Vec<Root>,
    native: Option<RecommendedWatcher>,
    poll: Option<PollWatcher>,
    /// Set once inotify failed for good (a kernel limit), with the reason.
    native_off: Option<String>,
    /// Always poll (tests of the polling path).
    force_poll: bool,
    /// Per device: whether it is a file system that must be polled.
    remote: HashMap<u64, bool>,
    dirs: HashMap<PathBuf, Backend>,
    tx: mpsc::Sender<RawEvent>,
    lost: Arc<AtomicBool>,
}

impl Watched {
    /// Nothing watched yet; events will go to `tx`, and `lost` is set when `tx` was full.
    pub fn new(
        roots: Vec<Root>,
        tx: mpsc::Sender<RawEvent>,
        lost: Arc<AtomicBool>,
        force_poll: bool,
    ) -> Self {
        Self {
            roots,
            native: None,
            poll: None,
            native_off: None,
            force_poll,
            remote: HashMap::new(),
            dirs: HashMap::new(),
            tx,
            lost,
        }
    }

    /// The roots, for naming them in batches.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Number of directories watched, and how many of them are polled.
    pub fn counts(&self) -> (usize, usize) {
        let polled = self.dirs.values().filter(|b| **b == Backend::Poll).count();
        (self.dirs.len(), polled)
    }

    /// Watches every directory under every root that the rules keep. Returns notices for
    /// the plugin (a fallback to polling).
    pub fn watch_all(&mut self) -> Vec<String> {
        let mut notices = Vec::new();
        for i in 0..self.roots.len() {
            let root = self.roots[i].rules.root().to_path_buf();
            self.add_tree(i, &root, None, &mut notices);
        }
        notices
    }

    /// Turns raw events into changes under the roots (ignored paths dropped), watching
    /// directories that appeared. Returns whether events were lost.
    pub fn translate(
        &mut self,
        events: Vec<RawEvent>,
        found: &mut Vec<Found>,
        notices: &mut Vec<String>,
    ) -> bool {
        let mut lost = self.lost.swap(false, Ordering::Relaxed);
        for event in events {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                        self.fall_back(WATCH_LIMIT.to_string(), notices);
                    } else {
                        tracing::debug!("watch: {e}");
                    }
                    continue;
                }
            };
            if event.need_rescan() {
                lost = true;
                continue;
            }
            let seen = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => Seen::Modified,
                EventKind::Access(_) | EventKind::Other | EventKind::Any => continue,
                EventKind::Create(_) => Seen::Created,
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) => Seen::Removed,
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Seen::Created,
                // inotify also sends the two halves on their own.
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => continue,
                EventKind::Modify(ModifyKind::Name(_)) => {
                    match event.paths.first().map(|p| p.symlink_metadata().is_ok()) {
                        Some(true) => Seen::Created,
                        _ => Seen::Removed,
                    }
                }
                EventKind::Modify(_) => Seen::Modified,
                EventKind::Remove(_) => Seen::Removed,
            };
            let file = about_a_file(&event.kind);
            for path in &event.paths {
                self.one(path, seen, file, found, notices);
            }
        }
        lost
    }

    /// One path an event named; `file` when the event can only be about a file.
    fn one(
        &mut self,
        path: &Path,
        seen: Seen,
        file: bool,
        found: &mut Vec<Found>,
        notices: &mut Vec<String>,
    ) {
        let Some(i) = self.root_of(path) else {
            return;
        };
        let is_dir = match seen {
            _ if file => false,
            Seen::Removed => self.dirs.contains_key(path),
            _ => path.symlink_metadata().is_ok_and(|m| m.is_dir()),
        };
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(Rules::is_rules_file)
            && let Some(dir) = path.parent()
        {
            self.roots[i].rules.forget(dir);
        }
        if path == self.roots[i].rules.root() || self.roots[i].rules.is_ignored(path, is_dir) {
            return;
        }
        if let Some(rel) = self.relative(i, path) {
            found.push((i, rel, seen));
        }
        match seen {
            Seen::Created if is_dir => {
                let mut files = Vec::new();
                self.add_tree(i, path, Some(&mut files), notices);
                for file in files {
                    if let Some(rel) = self.relative(i, &file) {
                        found.push((i, rel, Seen::Created));
                    }
                }
            }
            Seen::Removed if is_dir => self.forget_tree(path),
            _ => {}
        }
    }

    /// The root `path` is under (the deepest, when roots nest).
    fn root_of(&self, path: &Path) -> Option<usize> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| path.starts_with(r.rules.root()))
            .max_by_key(|(_, r)| r.rules.root().as_os_str().len())
            .map(|(i, _)| i)
    }

    fn relative(&self, root: usize, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(self.roots[root].rules.root()).ok()?;
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// Watches `dir` and every kept directory below it; with `files`, also collects the
    /// kept files found (for a directory that just appeared).
    fn add_tree(
        &mut self,
        root: usize,
        dir: &Path,
        mut files: Option<&mut Vec<PathBuf>>,
        notices: &mut Vec<String>,
    ) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if self.dirs.len() >= MAX_WATCHED_DIRS {
                notices.push(format!(
                    "watching stopped growing at {MAX_WATCHED_DIRS} directories; ignore more of {}",
                    self.roots[root].given
                ));
                return;
            }
            let Ok(meta) = dir.symlink_metadata() else {
                continue;
            };
            if !meta.is_dir() {
                continue;
            }
            self.watch_dir(&dir, meta.dev(), notices);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() {
                    if !self.roots[root].rules.is_ignored(&path, true) {
                        stack.push(path);
                    }
                } else if let Some(files) = files.as_deref_mut()
                    && !self.roots[root].rules.is_ignored(&path, false)
                {
                    files.push(path);
                }
            }
        }
    }

    fn forget_tree(&mut self, dir: &Path) {
        let gone: Vec<PathBuf> = self
            .dirs
            .keys()
            .filter(|d| d.starts_with(dir))
            .cloned()
            .collect();
        for d in gone {
            if self.dirs.remove(&d) == Some(Backend::Poll)
                && let Some(poll) = self.poll.as_mut()
            {
                let _ = poll.unwatch(&d);
            }
        }
    }

    fn watch_dir(&mut self, dir: &Path, dev: u64, notices: &mut Vec<String>) {
        if self.dirs.contains_key(dir) {
            return;
        }
        let polled = self.force_poll || self.native_off.is_some() || self.is_remote(dir, dev);
        if !polled {
            match self.native_watch(dir) {
                Ok(()) => {
                    self.dirs.insert(dir.to_path_buf(), Backend::Native);
                    return;
                }
                Err(Fallback::Gone) => return,
                Err(Fallback::Limit(reason)) => self.fall_back(reason, notices),
            }
        }
        self.poll_watch(dir);
    }

    fn native_watch(&mut self, dir: &Path) -> Result<(), Fallback> {
        if self.native.is_none() {
            let handler = self.handler();
            match RecommendedWatcher::new(handler, notify::Config::default()) {
                Ok(w) => self.native = Some(w),
                Err(e) => {
                    return Err(Fallback::Limit(match &e.kind {
                        notify::ErrorKind::Io(io) if io.raw_os_error() == Some(EMFILE) => {
                            INSTANCE_LIMIT.to_string()
                        }
                        _ => format!("inotify is unavailable ({e})"),
                    }));
                }
            }
        }
        let Some(native) = self.native.as_mut() else {
            return Err(Fallback::Gone);
        };
        match native.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => Ok(()),
            Err(e) => match e.kind {
                notify::ErrorKind::MaxFilesWatch => Err(Fallback::Limit(WATCH_LIMIT.to_string())),
                notify::ErrorKind::PathNotFound => Err(Fallback::Gone),
                _ => {
                    tracing::debug!("watch {}: {e}", dir.display());
                    Err(Fallback::Gone)
                }
            },
        }
    }

    fn poll_watch(&mut self, dir: &Path) {
        if self.poll.is_none() {
            let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
            match PollWatcher::new(self.handler(), config) {
                Ok(w) => self.poll = Some(w),
                Err(e) => {
                    tracing::warn!("cannot poll {}: {e}", dir.display());
                    return;
                }
            }
        }
        if let Some(poll) = self.poll.as_mut() {
            match poll.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.dirs.insert(dir.to_path_buf(), Backend::Poll);
                }
                Err(e) => tracing::debug!("poll {}: {e}", dir.display()),
            }
        }
    }

    /// Stops using inotify for this subscription and polls everything it watched.
    fn fall_back(&mut self, reason: String, notices: &mut Vec<String>) {
        if self.native_off.is_some() {
            return;
        }
        tracing::warn!(
            "{reason}; polling every {} ms instead",
            POLL_INTERVAL.as_millis()
        );
        notices.push(format!(
            "{reason}; polling every {} ms instead",
            POLL_INTERVAL.as_millis()
        ));
        self.native_off = Some(reason);
        // Dropping the watcher gives its inotify watches back to the other users.
        self.native = None;
        let native: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|(_, b)| **b == Backend::Native)
            .map(|(d, _)| d.clone())
            .collect();
        for dir in native {
            self.dirs.remove(&dir);
            self.poll_watch(&dir);
        }
    }

    fn is_remote(&mut self, dir: &Path, dev: u64) -> bool {
        *self.remote.entry(dev).or_insert_with(|| {
            let Ok(fs) = rustix::fs::statfs(dir) else {
                return false;
            };
            // `f_type` is a C long holding a 32-bit magic number.
            let magic = (fs.f_type as u64) & 0xffff_ffff;
            match REMOTE_FS_MAGIC.iter().find(|(m, _)| *m == magic) {
                Some((_, name)) => {
                    tracing::info!("{} is on {name}: polling it", dir.display());
                    true
                }
                None => false,
            }
        })
    }

    fn handler(&self) -> impl notify::EventHandler {
        let tx = self.tx.clone();
        let lost = self.lost.clone();
        // Never block notify's thread: a full queue means the subscription is far behind,
        // which the batch reports as an overflow.
        move |event: RawEvent| {
            if tx.try_send(event).is_err() {
                lost.store(true, Ordering::Relaxed);
            }
        }
    }
}

/// Why a directory did not get an inotify watch.
enum Fallback {
    /// It is gone (or cannot be watched at all): nothing to do.
    Gone,
    /// A kernel limit: poll instead, for the reason given.
    Limit(String),
}

/// `errno` for "too many open files", which inotify_init returns at the instance limit.
const EMFILE: i32 = 24;

/// What the user reads when inotify runs out of watches.
const WATCH_LIMIT: &str = "the inotify watch limit is reached (raise it with `sysctl fs.inotify.max_user_watches=524288`)";
/// What the user reads when inotify runs out of instances.
const INSTANCE_LIMIT: &str = "the inotify instance limit is reached (raise it with `sysctl fs.inotify.max_user_instances=512`)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaching_the_inotify_limit_names_the_sysctl_and_polls_every_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        let rules = Rules::new(&root, &[]).expect("rules");
        let (tx, _rx) = mpsc::channel(16);
        let roots = vec![Root {
            given: "p".into(),
            rules,
        }];
        let mut w = Watched::new(roots, tx, Arc::default(), false);
        assert!(w.watch_all().is_empty());
        assert_eq!(w.counts(), (3, 0), "three directories, all on inotify");
        let mut notices = Vec::new();
        w.fall_back(WATCH_LIMIT.to_string(), &mut notices);
        assert_eq!(w.counts(), (3, 3), "all moved to polling");
        assert_eq!(notices.len(), 1);
        assert!(
            notices[0].contains("fs.inotify.max_user_watches"),
            "{notices:?}"
        );
        // A directory that appears later is polled too.
        std::fs::create_dir_all(root.join("c")).expect("mkdir");
        let mut found = Vec::new();
        let ev = notify::Event::new(EventKind::Create(notify::event::CreateKind::Folder))
            .add_path(root.join("c"));
        w.translate(vec![Ok(ev)], &mut found, &mut notices);
        assert_eq!(w.counts(), (4, 4));
        assert_eq!(found, vec![(0, "c".to_string(), Seen::Created)]);
    }

    #[test]
    fn only_writes_to_files_are_read_without_the_blocking_pool() {
        use notify::event::{CreateKind, DataChange, Flag, MetadataKind};
        let rules = notify::Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any)))
            .add_path("/p/.gitignore".into());
        assert!(!only_content(&Ok(rules)), "the rules are read again");
        let event = |kind| Ok(notify::Event::new(kind).add_path("/p/a.py".into()));
        let content = [
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ];
        for kind in content {
            assert!(only_content(&event(kind)), "{kind:?}");
        }
        let may_add_directories = [
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
            EventKind::Create(CreateKind::Folder),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Remove(notify::event::RemoveKind::Folder),
            EventKind::Any,
        ];
        for kind in may_add_directories {
            assert!(!only_content(&event(kind)), "{kind:?}");
        }
        let rescan = notify::Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any)))
            .set_flag(Flag::Rescan);
        assert!(!only_content(&Ok(rescan)), "a rescan");
        assert!(
            !only_content(&Err(notify::Error::generic("lost"))),
            "an error"
        );
    }
}

//! One subscription's pending batch: the net change of each path since the last batch, and
//! when the batch is due (trailing debounce with a maximum wait).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::runtime::bindings::roost::plugin::types::ChangeKind;

/// Most paths one batch carries; past it the batch is marked `overflow` and the plugin
/// treats everything as changed (the guest copies the whole batch into its memory).
pub const MAX_BATCH_PATHS: usize = 10_000;

/// What one raw event says about a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Created,
    Modified,
    Removed,
}

/// Whether a path existed before the batch began and whether it exists now: the pair gives
/// the net change (created then deleted is nothing).
#[derive(Debug, Clone, Copy)]
struct Net {
    before: bool,
    now: bool,
}

/// Changes collected since the last batch went out. Keys are (root index, path relative to
/// that root) so batches list paths in a stable order.
#[derive(Debug, Default)]
pub struct Pending {
    paths: BTreeMap<(usize, String), Net>,
    overflow: bool,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Pending {
    /// Records one event for `path` under root `root` at `now`.
    pub fn record(&mut self, root: usize, path: String, seen: Seen, now: Instant) {
        self.touch(now);
        let key = (root, path);
        if let Some(net) = self.paths.get_mut(&key) {
            net.now = seen != Seen::Removed;
            return;
        }
        if self.paths.len() >= MAX_BATCH_PATHS {
            self.overflow = true;
            return;
        }
        let net = match seen {
            Seen::Created => Net {
                before: false,
                now: true,
            },
            Seen::Modified => Net {
                before: true,
                now: true,
            },
            Seen::Removed => Net {
                before: true,
                now: false,
            },
        };
        self.paths.insert(key, net);
    }

    /// Records that events were lost.
    pub fn lost(&mut self, now: Instant) {
        self.touch(now);
        self.overflow = true;
    }

    fn touch(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the batch is due: `debounce` after the last event, but no later than `max_wait`
    /// after the first (`None` for no maximum). `None` when nothing is pending.
    pub fn due(&self, debounce: Duration, max_wait: Option<Duration>) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        let trailing = last + debounce;
        Some(match max_wait {
            Some(max) => trailing.min(first + max),
            None => trailing,
        })
    }

    /// Takes the batch: each path's net change (paths with none are left out) and whether
    /// changes were lost. Empties the pending state.
    pub fn take(&mut self) -> (Vec<(usize, String, ChangeKind)>, bool) {
        let paths = std::mem::take(&mut self.paths);
        let overflow = std::mem::take(&mut self.overflow);
        self.first = None;
        self.last = None;
        let changes = paths
            .into_iter()
            .filter_map(|((root, path), net)| {
                let kind = match (net.before, net.now) {
                    (false, true) => ChangeKind::Created,
                    (true, true) => ChangeKind::Modified,
                    (true, false) => ChangeKind::Removed,
                    (false, false) => return None,
                };
                Some((root, path, kind))
            })
            .collect();
        (changes, overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_net_change_of_a_path_is_reported_once() {
        let t = Instant::now();
        let mut p = Pending::default();
        // An editor's atomic save: write a temp file, rename it over the original.
        p.record(0, ".a.py.tmp".into(), Seen::Created, t);
        p.record(0, ".a.py.tmp".into(), Seen::Modified, t);
        p.record(0, ".a.py.tmp".into(), Seen::Removed, t);
        p.record(0, "a.py".into(), Seen::Removed, t);
        p.record(0, "a.py".into(), Seen::Created, t);
        p.record(0, "new.py".into(), Seen::Created, t);
        p.record(0, "new.py".into(), Seen::Modified, t);
        p.record(1, "gone.py".into(), Seen::Removed, t);
        let (changes, overflow) = p.take();
        assert!(!overflow);
        assert_eq!(
            changes,
            vec![
                (0, "a.py".into(), ChangeKind::Modified),
                (0, "new.py".into(), ChangeKind::Created),
                (1, "gone.py".into(), ChangeKind::Removed),
            ]
        );
        assert_eq!(p.due(Duration::from_millis(50), None), None, "emptied");
    }

    #[test]
    fn debounce_is_trailing_and_capped_by_the_maximum_wait() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pending::default();
        p.record(0, "a".into(), Seen::Modified, t);
        assert_eq!(p.due(ms(50), Some(ms(500))), Some(t + ms(50)));
        p.record(0, "b".into(), Seen::Modified, t + ms(40));
        assert_eq!(p.due(ms(50), Some(ms(500))), Some(t + ms(90)));
        p.record(0, "c".into(), Seen::Modified, t + ms(480));
        assert_eq!(p.due(ms(50), Some(ms(500))), Some(t + ms(500)));
        assert_eq!(p.due(ms(50), None), Some(t + ms(530)));
    }

    #[test]
    fn too_many_paths_mark_the_batch_as_overflowed() {
        let t = Instant::now();
        let mut p = Pending::default();
        for i in 0..=MAX_BATCH_PATHS {
            p.record(0, format!("f{i}"), Seen::Created, t);
        }
        let (changes, overflow) = p.take();
        assert_eq!(changes.len(), MAX_BATCH_PATHS);
        assert!(overflow);
    }
}

//! The event ids a platform gateway handled lately, so that an event the platform delivers
//! twice is handled once: Discord may replay events after a RESUME, and Slack sends an
//! envelope again when its acknowledgement came late. One type for both gateways, so the
//! bound and the eviction order are the same everywhere.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

/// The last `keep` keys offered, oldest forgotten first. Shared by the event handlers of one
/// gateway, which may run at the same time.
pub struct Seen<K> {
    keep: usize,
    recent: Mutex<Recent<K>>,
}

/// The keys in arrival order, and the same keys for lookup.
struct Recent<K> {
    order: VecDeque<K>,
    set: HashSet<K>,
}

impl<K: Clone + Eq + Hash> Seen<K> {
    /// An empty set that remembers at most `keep` keys.
    pub fn new(keep: usize) -> Self {
        Self {
            keep,
            recent: Mutex::new(Recent {
                order: VecDeque::new(),
                set: HashSet::new(),
            }),
        }
    }

    /// `true` the first time `key` is offered (since it was last forgotten); the event it
    /// names should then be handled, and not otherwise.
    pub fn first_time(&self, key: K) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if !recent.set.insert(key.clone()) {
            return false;
        }
        recent.order.push_back(key);
        if recent.order.len() > self.keep
            && let Some(old) = recent.order.pop_front()
        {
            recent.set.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_seen_twice_are_handled_once_and_memory_is_bounded() {
        let keep = 64;
        let seen = Seen::new(keep);
        assert!(seen.first_time(1u64));
        assert!(!seen.first_time(1));
        for i in 2..(keep as u64 + 10) {
            seen.first_time(i);
        }
        let recent = seen.recent.lock().expect("lock");
        assert!(recent.set.len() <= keep && recent.order.len() <= keep);
        drop(recent);
        assert!(seen.first_time(1), "long forgotten");
    }

    #[test]
    fn string_keys_are_compared_by_value() {
        let seen = Seen::new(4);
        assert!(seen.first_time("slack:C1:1.2".to_string()));
        assert!(!seen.first_time("slack:C1:1.2".to_string()));
        assert!(seen.first_time("edit:slack:C1:1.2:\"1.3\"".to_string()));
    }
}

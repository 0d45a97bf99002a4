//! The id mapping of mirrored messages: original (`<gateway>:<channel>:<id>`) and target →
//! the ids of the copies the target's gateway posted, so an edit or delete of the original
//! becomes an edit or delete of its copies. Kept in the host store under a namespace no
//! plugin can name (`#relay` is not a valid plugin name).

use crate::store::{Store, StoreError};

/// The KV namespace of the mapping.
const NAMESPACE: &str = "#relay";

fn key(target: &str, original: &str) -> String {
    format!("{target}|{original}")
}

/// Remembers that `original` was copied to `target` as messages `ids`.
pub fn remember(
    store: &Store,
    target: &str,
    original: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    store.kv_set(NAMESPACE, &key(target, original), ids.join(",").as_bytes())
}

/// The ids of the copies of `original` on `target`; empty when it was never copied there.
pub fn copies(store: &Store, target: &str, original: &str) -> Result<Vec<String>, StoreError> {
    Ok(store
        .kv_get(NAMESPACE, &key(target, original))?
        .map(|v| {
            String::from_utf8_lossy(&v)
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// Forgets the copies of `original` on `target` (after deleting them).
pub fn forget(store: &Store, target: &str, original: &str) -> Result<(), StoreError> {
    store
        .kv_delete(NAMESPACE, &key(target, original))
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_remembered_per_target_and_forgotten() {
        let store = Store::open_in_memory().expect("store");
        remember(
            &store,
            "discord:1",
            "slack:C1:1.2",
            &["10".into(), "11".into()],
        )
        .expect("set");
        assert_eq!(
            copies(&store, "discord:1", "slack:C1:1.2").expect("get"),
            ["10", "11"]
        );
        assert!(
            copies(&store, "discord:2", "slack:C1:1.2")
                .expect("get")
                .is_empty()
        );
        forget(&store, "discord:1", "slack:C1:1.2").expect("forget");
        assert!(
            copies(&store, "discord:1", "slack:C1:1.2")
                .expect("get")
                .is_empty()
        );
    }
}

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
pub async fn remember(
    store: &Store,
    target: &str,
    original: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    let (key, value) = (key(target, original), ids.join(","));
    store
        .run(move |s| s.kv_set(NAMESPACE, &key, value.as_bytes()))
        .await?
}

/// The ids of the copies of `original` on `target`; empty when it was never copied there.
pub async fn copies(
    store: &Store,
    target: &str,
    original: &str,
) -> Result<Vec<String>, StoreError> {
    let key = key(target, original);
    let value = store.run(move |s| s.kv_get(NAMESPACE, &key)).await??;
    Ok(value
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
pub async fn forget(store: &Store, target: &str, original: &str) -> Result<(), StoreError> {
    let key = key(target, original);
    store
        .run(move |s| s.kv_delete(NAMESPACE, &key).map(|_| ()))
        .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_are_remembered_per_target_and_forgotten() {
        let store = Store::open_in_memory().expect("store");
        remember(
            &store,
            "discord:1",
            "slack:C1:1.2",
            &["10".into(), "11".into()],
        )
        .await
        .expect("set");
        assert_eq!(
            copies(&store, "discord:1", "slack:C1:1.2")
                .await
                .expect("get"),
            ["10", "11"]
        );
        assert!(
            copies(&store, "discord:2", "slack:C1:1.2")
                .await
                .expect("get")
                .is_empty()
        );
        forget(&store, "discord:1", "slack:C1:1.2")
            .await
            .expect("forget");
        assert!(
            copies(&store, "discord:1", "slack:C1:1.2")
                .await
                .expect("get")
                .is_empty()
        );
    }
}

//! The id mapping of mirrored messages: original (`<gateway>:<channel>:<id>`) and target →
//! the ids of the copies the target's gateway posted, so an edit or delete of the original
//! becomes an edit or delete of its copies. Kept in the host store under a namespace no
//! plugin can name (`#relay` is not a valid plugin name).
//!
//! [`deliver`] is the one order of steps in which the Discord and Slack gateways deliver a
//! queued message with that mapping (post it and remember its copies, or edit or delete
//! the copies); each gateway supplies only its platform's calls, as a [`Platform`]. It is
//! here rather than in each gateway so that the two cannot drift apart in what an edit or
//! a delete of a mirrored message does.

use std::future::Future;

use super::{DeliveryError, Posted};
use crate::message::{Outgoing, Relay, RelayAction};
use crate::store::{OutboxItem, Store, StoreError};

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
        .try_run(move |s| s.kv_set(NAMESPACE, &key, value.as_bytes()))
        .await
}

/// The ids of the copies of `original` on `target`; empty when it was never copied there.
pub async fn copies(
    store: &Store,
    target: &str,
    original: &str,
) -> Result<Vec<String>, StoreError> {
    let key = key(target, original);
    let value = store.try_run(move |s| s.kv_get(NAMESPACE, &key)).await?;
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
        .try_run(move |s| s.kv_delete(NAMESPACE, &key).map(|_| ()))
        .await
}

/// The platform calls of a gateway's outgoing half, which [`deliver`] makes. Each answers
/// with the platform's verdict as a [`DeliveryError`].
pub trait Platform: Sync {
    /// A channel of the platform, parsed from the part of the target after `<gateway>:`.
    type Channel: ?Sized + Sync;

    /// Posts `message` (queued as `item`) to `channel` in pieces; the platform ids of the
    /// messages created. Safe to call again for the same item after an ambiguous failure.
    fn post(
        &self,
        channel: &Self::Channel,
        item: &OutboxItem,
        message: &Outgoing,
    ) -> impl Future<Output = Result<Vec<String>, DeliveryError>> + Send;

    /// Replaces the text of copy `id` in `channel` with `message`'s (its first piece).
    fn edit(
        &self,
        channel: &Self::Channel,
        id: &str,
        message: &Outgoing,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Deletes copy `id` in `channel`.
    fn delete(
        &self,
        channel: &Self::Channel,
        id: &str,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Whether `error`, from [`edit`](Self::edit) or [`delete`](Self::delete), says the copy
    /// is gone already: what a delete wants, and an edit of it has nothing left to do.
    fn is_gone(error: &DeliveryError) -> bool;
}

/// Delivers queued `item` to `channel` of `target` (`<gateway>:<channel>`) through
/// `platform`: a message or a mirrored post is posted, and for a mirrored post the ids of
/// its copies are remembered; a mirrored edit edits the first copy (the others hold the
/// rest of a long text and stay), and a mirrored delete deletes every copy, then forgets
/// them. Called by a gateway's [`Deliver`](super::Deliver), once per attempt; the id of
/// the last message posted, if it posted one.
pub async fn deliver<P: Platform>(
    platform: &P,
    store: &Store,
    target: &str,
    channel: &P::Channel,
    item: &OutboxItem,
) -> Result<Posted, DeliveryError> {
    let message: Outgoing = serde_json::from_str(&item.payload)
        .map_err(|e| DeliveryError::Rejected(format!("unreadable queued message: {e}")))?;
    match &message.relay {
        Some(relay) if relay.action != RelayAction::Post => {
            follow(platform, store, target, channel, relay, &message).await?;
            Ok(None)
        }
        relay => {
            let ids = platform.post(channel, item, &message).await?;
            if let Some(relay) = relay {
                remember(store, target, &relay.key, &ids)
                    .await
                    .map_err(store_error)?;
            }
            Ok(ids.last().cloned())
        }
    }
}

/// Applies a mirrored edit or delete to the copies of `relay.key` on `target`.
async fn follow<P: Platform>(
    platform: &P,
    store: &Store,
    target: &str,
    channel: &P::Channel,
    relay: &Relay,
    message: &Outgoing,
) -> Result<(), DeliveryError> {
    let copies = copies(store, target, &relay.key)
        .await
        .map_err(store_error)?;
    if copies.is_empty() {
        tracing::debug!(target, key = %relay.key, "no copy to follow an edit or delete");
        return Ok(());
    }
    for (i, id) in copies.iter().enumerate() {
        let result = if relay.action == RelayAction::Delete {
            platform.delete(channel, id).await
        } else if i == 0 {
            platform.edit(channel, id, message).await
        } else {
            continue;
        };
        match result {
            Err(e) if P::is_gone(&e) => {}
            other => other?,
        }
    }
    if relay.action == RelayAction::Delete {
        forget(store, target, &relay.key)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

/// The host store failing is worth retrying: the message stays queued.
fn store_error(e: StoreError) -> DeliveryError {
    DeliveryError::Transient(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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

    /// Records every platform call; copy `gone` answers as already deleted.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        gone: &'static str,
    }

    impl Platform for Recorder {
        type Channel = str;

        async fn post(
            &self,
            channel: &str,
            item: &OutboxItem,
            _: &Outgoing,
        ) -> Result<Vec<String>, DeliveryError> {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("post {channel}"));
            Ok(vec![format!("{}a", item.id), format!("{}b", item.id)])
        }

        async fn edit(&self, _: &str, id: &str, m: &Outgoing) -> Result<(), DeliveryError> {
            let text = m.render_plain();
            self.calls
                .lock()
                .expect("lock")
                .push(format!("edit {id} {text}"));
            Ok(())
        }

        async fn delete(&self, _: &str, id: &str) -> Result<(), DeliveryError> {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("delete {id}"));
            if id == self.gone {
                return Err(DeliveryError::Transient("gone".into()));
            }
            Ok(())
        }

        fn is_gone(error: &DeliveryError) -> bool {
            *error == DeliveryError::Transient("gone".into())
        }
    }

    fn item(id: i64, message: &Outgoing) -> OutboxItem {
        OutboxItem {
            id,
            target: "x:C1".into(),
            plugin: "mirror".into(),
            payload: serde_json::to_string(message).expect("json"),
            attempts: 0,
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn an_edit_changes_the_first_copy_and_a_delete_removes_every_copy_once() {
        let store = Store::open_in_memory().expect("store");
        let platform = Recorder {
            gone: "7b",
            ..Recorder::default()
        };
        let relayed = |action, text| Outgoing::relay("y:C2:1".into(), action, text);
        let run = |id, message: Outgoing| {
            let (platform, store) = (&platform, &store);
            async move { deliver(platform, store, "x:C1", "C1", &item(id, &message)).await }
        };
        let posted = run(7, relayed(RelayAction::Post, "hi"))
            .await
            .expect("post");
        assert_eq!(
            posted.as_deref(),
            Some("7b"),
            "the id of the last piece posted"
        );
        assert_eq!(
            copies(&store, "x:C1", "y:C2:1").await.expect("copies"),
            ["7a", "7b"]
        );
        let edited = run(8, relayed(RelayAction::Edit, "hi!"))
            .await
            .expect("edit");
        assert_eq!(edited, None, "an edit posts nothing");
        run(9, relayed(RelayAction::Delete, ""))
            .await
            .expect("a gone copy is no error");
        assert!(
            copies(&store, "x:C1", "y:C2:1")
                .await
                .expect("copies")
                .is_empty()
        );
        run(10, relayed(RelayAction::Delete, ""))
            .await
            .expect("nothing left to delete");
        run(11, Outgoing::text("plain")).await.expect("post");
        assert_eq!(
            *platform.calls.lock().expect("lock"),
            [
                "post C1",
                "edit 7a hi!",
                "delete 7a",
                "delete 7b",
                "post C1"
            ]
        );
        let unreadable = OutboxItem {
            payload: "{".into(),
            ..item(12, &Outgoing::text(""))
        };
        assert!(matches!(
            deliver(&platform, &store, "x:C1", "C1", &unreadable).await,
            Err(DeliveryError::Rejected(_))
        ));
    }
}

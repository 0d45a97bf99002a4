//! The persistent outbox: every outgoing message is written to the host database before any
//! gateway sees it, and a delivery loop drains it per target, in order.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::message::Outgoing;
use crate::store::{Store, StoreError};

/// Cheap-to-clone handle for queueing messages and waking the delivery loop.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    wake: Arc<Notify>,
}

impl Outbox {
    /// Outbox on top of the host store.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues `message` for each target; returns once it is committed to disk.
    pub fn push(
        &self,
        targets: &[String],
        plugin: &str,
        message: &Outgoing,
    ) -> Result<(), StoreError> {
        let payload = serde_json::to_string(message).unwrap_or_default();
        for target in targets {
            self.store.outbox_push(target, plugin, &payload)?;
        }
        self.wake.notify_one();
        Ok(())
    }

    /// The store behind it, for the delivery loop.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves when something was queued since the last call.
    pub async fn queued(&self) {
        self.wake.notified().await;
    }
}

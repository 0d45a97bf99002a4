//! Outbox delivery: one worker task per target with messages waiting. A worker posts its
//! target's messages one at a time, oldest first, and a message leaves the outbox only once
//! its gateway confirmed it. When a gateway is down or rate-limited only the workers of its
//! own targets wait; every other target keeps flowing. Queues live in SQLite, so a restart
//! picks up where the last run stopped, in the same order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{DeliveryError, Registry, split_target};
use crate::outbox::Outbox;
use crate::store::OutboxItem;

/// How often targets are looked at again even when nothing new was queued (a gateway may
/// have been registered since).
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Messages taken from one target's queue per read.
const BATCH: usize = 100;
/// First wait after a transient failure; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between retries of a target that keeps failing; a gateway coming back
/// wakes its workers sooner.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one target's worker is doing, for `!status`.
#[derive(Debug, Clone, Default)]
struct Progress {
    last_error: Option<String>,
}

struct Worker {
    task: JoinHandle<()>,
    progress: Arc<Mutex<Progress>>,
}

/// The delivery loop and its workers. Shared as `Arc<Delivery>`.
pub struct Delivery {
    outbox: Outbox,
    registry: Registry,
    workers: Mutex<HashMap<String, Worker>>,
}

impl Delivery {
    /// Delivery of `outbox` through the gateways in `registry`.
    pub fn new(outbox: Outbox, registry: Registry) -> Arc<Self> {
        Arc::new(Self {
            outbox,
            registry,
            workers: Mutex::new(HashMap::new()),
        })
    }

    /// Runs forever: starts a worker for each target with messages waiting and a gateway to
    /// take them, whenever something is queued and every few seconds.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.start_workers();
            tokio::select! {
                _ = self.outbox.queued() => {}
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_workers(&self) {
        let targets = match self.outbox.store().outbox_targets() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("outbox: {e}");
                return;
            }
        };
        let mut workers = self.workers();
        for (target, _) in targets {
            if workers.get(&target).is_some_and(|w| !w.task.is_finished()) {
                continue;
            }
            let (gateway, _) = split_target(&target);
            let Some((status, Some(deliver))) = self.registry.get(gateway) else {
                // No running gateway for it: it stays queued, in order, for when one runs.
                continue;
            };
            let progress = workers
                .get(&target)
                .map(|w| w.progress.clone())
                .unwrap_or_default();
            let task = tokio::spawn(drain(
                self.outbox.clone(),
                target.clone(),
                deliver,
                status,
                progress.clone(),
            ));
            workers.insert(target, Worker { task, progress });
        }
    }

    /// One line per target with messages waiting: how many, and why they wait.
    pub fn status_lines(&self) -> Vec<String> {
        let Ok(targets) = self.outbox.store().outbox_targets() else {
            return Vec::new();
        };
        let workers = self.workers();
        targets
            .into_iter()
            .map(|(target, n)| {
                let (gateway, _) = split_target(&target);
                let why = match self.registry.get(gateway) {
                    None => format!("no gateway `{gateway}` configured; kept for when there is"),
                    Some((_, None)) => format!("gateway `{gateway}` not running; kept"),
                    Some(_) => workers
                        .get(&target)
                        .and_then(|w| {
                            w.progress
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .last_error
                                .clone()
                        })
                        .map_or_else(|| "delivering".to_string(), |e| format!("retrying: {e}")),
                };
                format!("outbox {target}: {n} queued, {why}")
            })
            .collect()
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for worker in self.workers().values() {
            worker.task.abort();
        }
    }
}

/// Delivers `target`'s queue until it is empty.
async fn drain(
    outbox: Outbox,
    target: String,
    deliver: Arc<dyn super::Deliver>,
    status: super::GatewayStatus,
    progress: Arc<Mutex<Progress>>,
) {
    let store = outbox.store().clone();
    let (_, channel) = split_target(&target);
    loop {
        let items = match store.outbox_pending(&target, BATCH) {
            Ok(items) => items,
            Err(e) => {
                tracing::error!("outbox {target}: {e}");
                tokio::time::sleep(MAX_BACKOFF).await;
                continue;
            }
        };
        if items.is_empty() {
            return;
        }
        for item in items {
            deliver_one(
                &outbox, &target, channel, &item, &*deliver, &status, &progress,
            )
            .await;
        }
    }
}

/// Retries one message until its gateway takes it (or rejects it for good).
async fn deliver_one(
    outbox: &Outbox,
    target: &str,
    channel: &str,
    item: &OutboxItem,
    deliver: &dyn super::Deliver,
    status: &super::GatewayStatus,
    progress: &Mutex<Progress>,
) {
    let store = outbox.store();
    let mut backoff = FIRST_BACKOFF;
    // Counted here as well as in the store: a gateway checks `attempts` to know whether an
    // earlier try may have gone through.
    let mut item = item.clone();
    loop {
        let result = deliver.deliver(channel, &item).await;
        item.attempts = item.attempts.saturating_add(1);
        let set_error = |e: Option<String>| {
            progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .last_error = e;
        };
        match result {
            Ok(()) => {
                set_error(None);
                if let Err(e) = store.outbox_mark_sent(item.id) {
                    tracing::error!("outbox {target}: {e}");
                }
                return;
            }
            Err(DeliveryError::Rejected(why)) => {
                tracing::error!(
                    target,
                    id = item.id,
                    "outbox: dropped a message the platform rejected: {why}"
                );
                let _ = store.history_push(
                    Some(&item.plugin),
                    "message-rejected",
                    &format!("{target}: {why}"),
                );
                set_error(None);
                if let Err(e) = store.outbox_mark_sent(item.id) {
                    tracing::error!("outbox {target}: {e}");
                }
                return;
            }
            Err(DeliveryError::RetryAfter(wait, why)) => {
                tracing::info!(
                    target,
                    id = item.id,
                    "outbox: rate-limited, waiting {wait:?}: {why}"
                );
                set_error(Some(format!("rate-limited: {why}")));
                let _ = store.outbox_mark_failed(item.id, &why);
                tokio::time::sleep(wait).await;
            }
            Err(DeliveryError::Transient(why)) => {
                tracing::warn!(
                    target,
                    id = item.id,
                    "outbox: delivery failed, retrying in {backoff:?}: {why}"
                );
                set_error(Some(why.clone()));
                let _ = store.outbox_mark_failed(item.id, &why);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = status.back() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateways::{BoxFuture, Deliver, GatewayStatus};
    use crate::message::Outgoing;
    use crate::store::Store;

    /// Fails each target's first `fail_first` attempts, records what it delivered.
    struct Flaky {
        fail_first: usize,
        attempts: Mutex<HashMap<String, usize>>,
        got: Mutex<Vec<(String, String)>>,
    }

    impl Deliver for Flaky {
        fn deliver<'a>(
            &'a self,
            channel: &'a str,
            item: &'a OutboxItem,
        ) -> BoxFuture<'a, Result<(), DeliveryError>> {
            let mut attempts = self.attempts.lock().expect("lock");
            let n = attempts.entry(channel.to_string()).or_default();
            *n += 1;
            let result = if channel == "down" || *n <= self.fail_first {
                Err(DeliveryError::Transient("down".into()))
            } else {
                self.got
                    .lock()
                    .expect("lock")
                    .push((channel.to_string(), item.payload.clone()));
                Ok(())
            };
            Box::pin(std::future::ready(result))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_is_down_does_not_delay_the_others_and_order_is_kept() {
        let store = Store::open_in_memory().expect("store");
        let outbox = Outbox::new(store.clone());
        let registry = Registry::new();
        let flaky = Arc::new(Flaky {
            fail_first: 2,
            attempts: Mutex::default(),
            got: Mutex::default(),
        });
        registry.insert("x", GatewayStatus::new("x", "test"), Some(flaky.clone()));
        for i in 0..5 {
            outbox
                .push(
                    &["x:down".to_string(), "x:up".to_string()],
                    "p",
                    &Outgoing::text(format!("m{i}")),
                )
                .expect("push");
        }
        let delivery = Delivery::new(outbox, registry);
        let task = tokio::spawn(delivery.clone().run());
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if flaky.got.lock().expect("lock").len() == 5 {
                break;
            }
        }
        let got = flaky.got.lock().expect("lock").clone();
        let texts: Vec<String> = got
            .iter()
            .map(|(c, p)| {
                assert_eq!(c, "up");
                serde_json::from_str::<Outgoing>(p)
                    .expect("payload")
                    .render_plain()
            })
            .collect();
        assert_eq!(texts, ["m0", "m1", "m2", "m3", "m4"]);
        assert_eq!(
            store.outbox_pending("x:down", 10).expect("pending").len(),
            5
        );
        let lines = delivery.status_lines();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("x:down: 5 queued, retrying: down")),
            "{lines:?}"
        );
        task.abort();
    }
}

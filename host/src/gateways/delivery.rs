//! Outbox delivery: one worker task per target with messages waiting. A worker posts its
//! target's messages one at a time, oldest first, and a message leaves the outbox only once
//! its gateway confirmed it. When a gateway is down or rate-limited only the workers of its
//! own targets wait; every other target keeps flowing. Queues live in SQLite, so a restart
//! picks up where the last run stopped, in the same order.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::task::JoinHandle;

use super::{DeliveryError, Posted, Registry, split_target};
use crate::outbox::Outbox;
use crate::store::{OutboxCaps, OutboxItem, Store, StoreError, TargetUsage};

/// How soon targets are looked at again after the store could not list them. Otherwise
/// the loop sleeps until something is queued: every gateway is registered before it starts,
/// and an idle hub should not read its store every few seconds for nothing.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Most messages one store call takes from a target's queue, counting their attempts:
/// after a crash up to this many are checked for on the platform before being posted.
const BATCH: usize = 100;
/// First wait after a transient failure; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between retries of a target that keeps failing; a gateway coming back
/// wakes its workers sooner.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Percent of either `[outbox]` cap past which `!status` warns that a target's queue is
/// about to lose its oldest messages.
const WARN_PERCENT: u64 = 80;

/// What one target's worker is doing, for `!status`.
#[derive(Debug, Clone, Default)]
struct Progress {
    last_error: Option<String>,
    /// Messages set aside since the daemon started, and why the last one was.
    parked: u64,
    parked_why: Option<String>,
}

struct Worker {
    task: JoinHandle<()>,
    progress: Arc<Mutex<Progress>>,
}

/// Whether this hub may send now: asked before every delivery, so a hub that lost the
/// lead (`leadership.rs`) stops before its next post.
pub type Fence = Arc<dyn Fn() -> bool + Send + Sync>;

/// The delivery loop and its workers. Shared as `Arc<Delivery>`.
pub struct Delivery {
    outbox: Outbox,
    registry: Registry,
    workers: Mutex<HashMap<String, Worker>>,
    may_send: Fence,
}

/// Where one target's messages go, and whether this hub may send them.
struct Route {
    deliver: Arc<dyn super::Deliver>,
    status: super::GatewayStatus,
    may_send: Fence,
}

impl Delivery {
    /// Delivery of `outbox` through the gateways in `registry`, for as long as `may_send`
    /// says so.
    pub fn new(outbox: Outbox, registry: Registry, may_send: Fence) -> Arc<Self> {
        Arc::new(Self {
            outbox,
            registry,
            workers: Mutex::new(HashMap::new()),
            may_send,
        })
    }

    /// Runs forever: starts a worker for each target with messages waiting and a gateway to
    /// take them, whenever something is queued (and a few seconds after the store failed).
    pub async fn run(self: Arc<Self>) {
        let mut look_at_all = true;
        loop {
            let listed = self.start_workers(look_at_all).await;
            look_at_all = match listed {
                Ok(()) => {
                    self.outbox.queued().await;
                    false
                }
                Err(e) => {
                    tracing::error!("outbox: {e}");
                    tokio::select! {
                        () = self.outbox.queued() => {},
                        () = tokio::time::sleep(RETRY_EVERY) => {},
                    }
                    true
                }
            };
        }
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the workers missing. Unless `look_at_all`, a wake for messages queued only
    /// for targets whose workers run reads nothing: those workers take them (one that
    /// stops on an empty queue wakes this loop to look again), and a burst of replies
    /// does not cost a read of every target per reply.
    ///
    /// `Err` when the store could not list the targets: then all are looked at again soon.
    async fn start_workers(&self, look_at_all: bool) -> Result<(), StoreError> {
        let news = self.outbox.take_news();
        if !(self.may_send)() {
            return Ok(());
        }
        if !look_at_all && news.is_some_and(|targets| self.all_running(&targets)) {
            return Ok(());
        }
        let store = self.outbox.store();
        let targets = store.try_run(|s| s.outbox_targets()).await?;
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
            if matches!(status.state(), super::status::State::Failed(_)) {
                // A refused token: nothing can go through it until the user fixes it.
                continue;
            }
            let progress = workers
                .get(&target)
                .map(|w| w.progress.clone())
                .unwrap_or_default();
            let route = Route {
                deliver,
                status,
                may_send: self.may_send.clone(),
            };
            let task = tokio::spawn(drain(
                self.outbox.clone(),
                target.clone(),
                route,
                progress.clone(),
            ));
            workers.insert(target, Worker { task, progress });
        }
        Ok(())
    }

    /// Whether each of `targets` has a worker running.
    fn all_running(&self, targets: &std::collections::HashSet<String>) -> bool {
        let workers = self.workers();
        targets
            .iter()
            .all(|t| workers.get(t).is_some_and(|w| !w.task.is_finished()))
    }

    /// One line per target with messages waiting: how many, and why they wait; and a
    /// warning line for each queue at [`WARN_PERCENT`] or more of an `[outbox]` cap.
    pub async fn status_lines(&self) -> Vec<String> {
        let usage = match self.outbox.store().try_run(|s| s.outbox_usage()).await {
            Ok(usage) => usage,
            Err(e) => {
                tracing::error!("outbox status: {e}");
                return Vec::new();
            }
        };
        let caps = self.outbox.caps();
        let mut lines = Vec::new();
        for queue in usage {
            lines.push(format!(
                "outbox {}: {} queued, {}",
                queue.target,
                queue.messages,
                self.why_waiting(&queue.target)
            ));
            lines.extend(cap_warning(&queue, &caps));
        }
        lines.extend(self.parked_lines());
        lines
    }

    /// One line per target that had messages set aside since the start: how many and why
    /// the last one was, so the person who can fix the channel knows what to fix.
    fn parked_lines(&self) -> Vec<String> {
        let workers = self.workers();
        let mut lines: Vec<String> = workers
            .iter()
            .filter_map(|(target, w)| {
                let p = w.progress.lock().unwrap_or_else(|p| p.into_inner());
                let why = p.parked_why.as_ref().filter(|_| p.parked > 0)?;
                Some(format!(
                    "outbox {target}: {} message(s) parked, not delivered (see the history): {why}",
                    p.parked
                ))
            })
            .collect();
        lines.sort();
        lines
    }

    /// Why `target`'s messages are still queued.
    fn why_waiting(&self, target: &str) -> String {
        let (gateway, _) = split_target(target);
        match self.registry.get(gateway) {
            None => format!("no gateway `{gateway}` configured; kept for when there is"),
            Some((_, None)) => format!("gateway `{gateway}` not running; kept"),
            Some((status, _)) if matches!(status.state(), super::status::State::Failed(_)) => {
                format!("gateway `{gateway}` failed (see its line); kept")
            }
            Some(_) => self
                .workers()
                .get(target)
                .and_then(|w| {
                    w.progress
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .last_error
                        .clone()
                })
                .map_or_else(|| "delivering".to_string(), |e| format!("retrying: {e}")),
        }
    }
}

/// The `!status` warning for a queue at [`WARN_PERCENT`] or more of either cap, naming the
/// fuller one.
fn cap_warning(queue: &TargetUsage, caps: &OutboxCaps) -> Option<String> {
    let percent = |used: u64, cap: u64| used.saturating_mul(100) / cap.max(1);
    let by_count = percent(queue.messages, caps.max_messages);
    let by_bytes = percent(queue.bytes, caps.max_bytes);
    if by_count.max(by_bytes) < WARN_PERCENT {
        return None;
    }
    const MIB: f64 = 1024.0 * 1024.0;
    let detail = if by_count >= by_bytes {
        format!(
            "{by_count}% of [outbox] max_messages ({} of {})",
            queue.messages, caps.max_messages
        )
    } else {
        format!(
            "{by_bytes}% of [outbox] max_mb ({:.1} of {} MiB)",
            queue.bytes as f64 / MIB,
            caps.max_bytes as f64 / MIB
        )
    };
    Some(format!(
        "warning: outbox {} is at {detail}; past it its oldest messages are dropped",
        queue.target
    ))
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for worker in self.workers().values() {
            worker.task.abort();
        }
    }
}

/// What a worker does after one message.
enum Next {
    /// On to the next message.
    GoOn,
    /// The gateway refused its token or this hub may no longer send: the queue waits.
    Stop,
}

/// One target's worker while it drains the target's queue.
///
/// Its store work is one call per batch of messages, not one per message: the call that
/// takes a batch counts an attempt for each of its messages before any is tried, and
/// removes the messages delivered since the call before. So a message's attempt is on disk
/// before it may go out (after a crash each message that may have been posted has one,
/// and the next run checks for it on the platform before posting it again, as after any
/// ambiguous failure: on Discord by its text, in queue order and only after the last post
/// whose removal is on disk, which this call keeps with the removals), and draining a
/// queue costs a round trip to the platform per message but to the store per batch.
/// Batches start at one message and double up to [`BATCH`] while messages go through, so a
/// gateway that fails holds one message counted, not a batch. A worker that stops cleanly
/// takes back the counts of the messages it did not try.
struct Drainer {
    outbox: Outbox,
    target: String,
    route: Route,
    progress: Arc<Mutex<Progress>>,
    /// Messages delivered and not removed yet: the next batch's call removes them.
    delivered: Vec<i64>,
    /// The platform id of the last post among `delivered`, kept by the same call.
    last_post: Posted,
    /// Messages whose attempt is counted but not made yet.
    untried: Vec<i64>,
    /// How many messages the next batch takes.
    batch: usize,
    /// [`Outbox::drops`] when the batch was taken.
    drops_at_take: u64,
}

/// Delivers `target`'s queue until it is empty.
async fn drain(outbox: Outbox, target: String, route: Route, progress: Arc<Mutex<Progress>>) {
    let mut worker = Drainer {
        outbox: outbox.clone(),
        target,
        route,
        progress,
        delivered: Vec::new(),
        last_post: None,
        untried: Vec::new(),
        batch: 1,
        drops_at_take: 0,
    };
    loop {
        let Some(items) = worker.next_batch().await else {
            tokio::time::sleep(MAX_BACKOFF).await;
            continue;
        };
        if items.is_empty() {
            outbox.wake();
            return;
        }
        worker.untried = items.iter().map(|item| item.id).collect();
        for item in items {
            if let Next::Stop = worker.deliver_one(item).await {
                return worker.stop();
            }
        }
    }
}

impl Drainer {
    /// The next batch of the queue, oldest first, each message's attempt counted, after
    /// removing the messages delivered; `None` (logged) when the store cannot say.
    async fn next_batch(&mut self) -> Option<Vec<OutboxItem>> {
        let (wanted, size, done) = (self.target.clone(), self.batch, self.delivered.clone());
        let last_post = self.last_post.clone();
        self.drops_at_take = self.outbox.drops();
        let taken = self
            .outbox
            .store()
            .try_run(move |s| s.outbox_take(&wanted, &done, last_post.as_deref(), size))
            .await;
        match taken {
            Ok(items) => {
                self.delivered.clear();
                self.last_post = None;
                self.batch = (size * 2).min(BATCH);
                Some(items)
            }
            Err(e) => {
                tracing::error!("outbox {}: {e}", self.target);
                None
            }
        }
    }

    /// Writes what a stopping worker leaves: the messages it delivered removed (with the
    /// last post), and the attempts counted for messages it did not try taken back.
    fn stop(self) {
        let (delivered, last_post, untried) = (self.delivered, self.last_post, self.untried);
        let target = self.target.clone();
        write(self.outbox.store(), &self.target, move |s| {
            s.outbox_take(&target, &delivered, last_post.as_deref(), 0)?;
            for id in untried {
                s.outbox_attempt_not_made(id)?;
            }
            Ok(())
        });
    }

    /// Tries one message, its attempt counted, until its gateway takes it (or rejects it
    /// for good). Each retry, and a first try after a cap may have dropped messages since
    /// the batch was taken, is counted again and made only if the message is still queued.
    async fn deliver_one(&mut self, mut item: OutboxItem) -> Next {
        let mut backoff = FIRST_BACKOFF;
        let mut check = self.outbox.drops() != self.drops_at_take;
        let mut panicked = false;
        loop {
            if check {
                if !count(self.outbox.store(), &self.target, item.id).await {
                    tracing::debug!(target = %self.target, id = item.id, "outbox: message dropped while waiting; not sent");
                    self.untried.retain(|id| *id != item.id);
                    return Next::GoOn;
                }
                self.untried.push(item.id);
            }
            if !(self.route.may_send)() {
                tracing::info!(target = %self.target, "outbox: this hub no longer leads; delivery stops");
                return Next::Stop;
            }
            self.untried.retain(|id| *id != item.id);
            let result = self.try_deliver(&item, &mut panicked).await;
            // Counted here as well as in the store: a gateway checks `attempts` to know
            // whether an earlier try may have gone through.
            item.attempts = item.attempts.saturating_add(1);
            match self.settle(&item, result, &mut backoff).await {
                Some(Settled::Done) => return Next::GoOn,
                Some(Settled::Stop) => return Next::Stop,
                None => {}
            }
            self.batch = 1;
            check = true;
        }
    }

    /// One try of `item` through its gateway. A panic in the gateway (a bug, perhaps one
    /// this message's content trips) is caught, so that neither the worker nor the queue
    /// behind the message dies with it: the first is a failed try, retried after a check
    /// that it did not go through, a second on the same message parks it.
    async fn try_deliver(
        &self,
        item: &OutboxItem,
        panicked: &mut bool,
    ) -> Result<Posted, DeliveryError> {
        let channel = split_target(&self.target).1;
        let deliver = &self.route.deliver;
        let attempt = AssertUnwindSafe(async { deliver.deliver(channel, item).await });
        let panic = match attempt.catch_unwind().await {
            Ok(result) => return result,
            Err(panic) => panic,
        };
        let why = format!("the gateway panicked on it: {}", panic_text(panic.as_ref()));
        if std::mem::replace(panicked, true) {
            Err(DeliveryError::Parked(format!("{why} (a second time)")))
        } else {
            Err(DeliveryError::Transient(why))
        }
    }

    /// Acts on the gateway's verdict on one try of `item`: `Some` when the message is
    /// settled (delivered, or set aside for good) or the worker must stop; `None` after
    /// waiting out a failure that is worth another try.
    async fn settle(
        &mut self,
        item: &OutboxItem,
        result: Result<Posted, DeliveryError>,
        backoff: &mut Duration,
    ) -> Option<Settled> {
        let (target, id) = (self.target.as_str(), item.id);
        match result {
            Ok(posted) => {
                self.set_error(None);
                self.delivered.push(id);
                if posted.is_some() {
                    self.last_post = posted;
                }
                Some(Settled::Done)
            }
            Err(DeliveryError::Rejected(why)) => {
                set_aside(self.outbox.store(), target, item, "message-rejected", &why);
                self.set_error(None);
                Some(Settled::Done)
            }
            Err(DeliveryError::Parked(why)) => {
                set_aside(self.outbox.store(), target, item, "message-parked", &why);
                let mut p = self.progress.lock().unwrap_or_else(|p| p.into_inner());
                p.last_error = None;
                p.parked += 1;
                p.parked_why = Some(why);
                Some(Settled::Done)
            }
            Err(DeliveryError::Unauthorized(why)) => {
                tracing::error!(target, "outbox: {why}; the queue waits");
                self.route.status.failed(&why);
                self.set_error(Some(why));
                Some(Settled::Stop)
            }
            Err(DeliveryError::RetryAfter(wait, why)) => {
                tracing::info!(target, id, "outbox: rate-limited, waiting {wait:?}: {why}");
                self.set_error(Some(format!("rate-limited: {why}")));
                let noted = why.clone();
                write(self.outbox.store(), target, move |s| {
                    s.outbox_note_error(id, &noted)
                });
                tokio::time::sleep(wait).await;
                None
            }
            Err(DeliveryError::Transient(why)) => {
                tracing::warn!(
                    target,
                    id,
                    "outbox: delivery failed, retrying in {backoff:?}: {why}"
                );
                self.set_error(Some(why.clone()));
                let noted = why.clone();
                write(self.outbox.store(), target, move |s| {
                    s.outbox_note_error(id, &noted)
                });
                tokio::select! {
                    _ = tokio::time::sleep(*backoff) => {}
                    _ = self.route.status.back() => {}
                }
                *backoff = (*backoff * 2).min(MAX_BACKOFF);
                None
            }
        }
    }

    /// The last error `!status` shows for this target.
    fn set_error(&self, error: Option<String>) {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_error = error;
    }
}

/// How one message ended for its worker.
enum Settled {
    /// Delivered, or set aside for good: on to the next.
    Done,
    /// The worker stops; the queue waits.
    Stop,
}

/// What a caught panic said, when it said it in text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Sets message `item` aside for good with a history entry naming why: the messages
/// behind it flow, and `!status` counts it.
fn set_aside(store: &Store, target: &str, item: &OutboxItem, kind: &'static str, why: &str) {
    tracing::error!(target, id = item.id, "outbox: {kind}: {why}");
    let text: String = serde_json::from_str::<crate::message::Outgoing>(&item.payload)
        .map(|m| m.render_plain())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let (plugin, id) = (item.plugin.clone(), item.id);
    let detail = format!("{target}: {why}; message: {text}");
    write(store, target, move |s| {
        s.history_push(Some(&plugin), kind, &detail)?;
        s.outbox_mark_sent(id)
    });
}

/// Hands a write to the store's thread without waiting (writes run in order, so the next
/// read of the queue sees it); a failure is logged with the target.
fn write(
    store: &Store,
    target: &str,
    work: impl FnOnce(&Store) -> Result<(), StoreError> + Send + 'static,
) {
    let target = target.to_string();
    store.submit(move |s| {
        if let Err(e) = work(s) {
            tracing::error!("outbox {target}: {e}");
        }
    });
}

/// Whether message `id` is still in the outbox (a cap may have dropped it, oldest first,
/// while it waited), counting an attempt if it is. When the store cannot say, it is
/// delivered.
async fn count(store: &Store, target: &str, id: i64) -> bool {
    store
        .try_run_ahead(move |s| s.outbox_attempt(id))
        .await
        .inspect_err(|e| tracing::error!("outbox {target}: {e}"))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateways::{BoxFuture, Deliver, GatewayStatus};
    use crate::message::Outgoing;
    use crate::store::Store;

    /// An outbox on `store` under the default config.
    fn default_outbox(store: &Store) -> Outbox {
        let config = crate::live_config::LiveConfig::new(crate::config::Config::default());
        Outbox::new(store.clone(), config)
    }

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
        ) -> BoxFuture<'a, Result<crate::gateways::Posted, DeliveryError>> {
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
                Ok(None)
            };
            Box::pin(std::future::ready(result))
        }
    }

    // Real time: the store works on its own thread, which a paused clock would outrun.
    #[tokio::test]
    async fn a_target_that_is_down_does_not_delay_the_others_and_order_is_kept() {
        let store = Store::open_in_memory().expect("store");
        let outbox = default_outbox(&store);
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
                .await
                .expect("push");
        }
        let delivery = Delivery::new(outbox, registry, Arc::new(|| true));
        let task = tokio::spawn(delivery.clone().run());
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
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
        let lines = delivery.status_lines().await;
        assert!(
            lines
                .iter()
                .any(|l| l.contains("x:down: 5 queued, retrying: down")),
            "{lines:?}"
        );
        task.abort();
    }

    /// Records what it delivers, and holds the store's thread for a moment after each
    /// delivery, so the worker's next read of the queue waits behind it.
    struct Holding {
        store: Store,
        got: Mutex<Vec<String>>,
    }

    impl Deliver for Holding {
        fn deliver<'a>(
            &'a self,
            _channel: &'a str,
            item: &'a OutboxItem,
        ) -> BoxFuture<'a, Result<crate::gateways::Posted, DeliveryError>> {
            self.got.lock().expect("lock").push(item.payload.clone());
            self.store
                .submit(|_| std::thread::sleep(Duration::from_millis(100)));
            Box::pin(std::future::ready(Ok(None)))
        }
    }

    // Each message is queued while the worker before it reads an empty queue (behind the
    // held store), so the loop's wake finds that worker still running: only the worker's
    // own wake when it stops gets the message a new one before the periodic look, seconds
    // later.
    #[tokio::test]
    async fn a_message_queued_as_a_worker_stops_is_delivered_on_the_wake() {
        let store = Store::open_in_memory().expect("store");
        let outbox = default_outbox(&store);
        let registry = Registry::new();
        let holding = Arc::new(Holding {
            store: store.clone(),
            got: Mutex::default(),
        });
        registry.insert("x", GatewayStatus::new("x", "test"), Some(holding.clone()));
        let delivery = Delivery::new(outbox.clone(), registry, Arc::new(|| true));
        let task = tokio::spawn(delivery.run());
        let to = ["x:c".to_string()];
        for i in 0..4 {
            outbox.queue(&to, "p", &Outgoing::text(format!("m{i}")));
            let delivered = async {
                while holding.got.lock().expect("lock").len() <= i {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(RETRY_EVERY / 2, delivered)
                .await
                .unwrap_or_else(|_| panic!("message {i} waited for the periodic look"));
            // The worker reads the queue now, behind the held store.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
    }

    /// Delivers everything, and closes `fence` after its second message.
    struct Fenced {
        fence: Arc<std::sync::atomic::AtomicBool>,
        got: Mutex<Vec<String>>,
    }

    impl Deliver for Fenced {
        fn deliver<'a>(
            &'a self,
            _channel: &'a str,
            item: &'a OutboxItem,
        ) -> BoxFuture<'a, Result<crate::gateways::Posted, DeliveryError>> {
            let mut got = self.got.lock().expect("lock");
            got.push(item.payload.clone());
            if got.len() == 2 {
                self.fence.store(false, std::sync::atomic::Ordering::SeqCst);
            }
            Box::pin(std::future::ready(Ok(None)))
        }
    }

    #[tokio::test]
    async fn a_hub_that_may_no_longer_send_stops_before_its_next_message() {
        let store = Store::open_in_memory().expect("store");
        let outbox = default_outbox(&store);
        let fence = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let fenced = Arc::new(Fenced {
            fence: fence.clone(),
            got: Mutex::default(),
        });
        let registry = Registry::new();
        registry.insert("x", GatewayStatus::new("x", "test"), Some(fenced.clone()));
        for i in 0..5 {
            let to = ["x:c".to_string()];
            let text = Outgoing::text(format!("m{i}"));
            outbox.push(&to, "p", &text).await.expect("push");
        }
        let open = fence.clone();
        let delivery = Delivery::new(
            outbox,
            registry,
            Arc::new(move || open.load(std::sync::atomic::Ordering::SeqCst)),
        );
        delivery.start_workers(true).await.expect("targets listed");
        let task = delivery.workers().remove("x:c").expect("a worker").task;
        task.await.expect("the worker ends");
        assert_eq!(fenced.got.lock().expect("lock").len(), 2);
        let left = store.run(|s| s.outbox_pending("x:c", 10)).await;
        let left = left.expect("store").expect("pending");
        assert_eq!(left.len(), 3, "the rest stays queued for the next leader");
        assert!(
            left.iter().all(|m| m.attempts == 0),
            "the attempt counted ahead for the third is taken back: {left:?}"
        );
    }

    /// Panics on every try of the message `boom` and on the first of `hiccup` (before
    /// it returns a future, as a bug in a gateway's synchronous part would); records what
    /// it delivered.
    #[derive(Default)]
    struct Panicky {
        hiccups: std::sync::atomic::AtomicUsize,
        got: Mutex<Vec<String>>,
    }

    impl Deliver for Panicky {
        fn deliver<'a>(
            &'a self,
            _channel: &'a str,
            item: &'a OutboxItem,
        ) -> BoxFuture<'a, Result<crate::gateways::Posted, DeliveryError>> {
            let text = serde_json::from_str::<Outgoing>(&item.payload)
                .expect("payload")
                .render_plain();
            let first = |n: &std::sync::atomic::AtomicUsize| {
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
            };
            if text == "boom" || (text == "hiccup" && first(&self.hiccups)) {
                panic!("{text} in the gateway");
            }
            self.got.lock().expect("lock").push(text);
            Box::pin(std::future::ready(Ok(None)))
        }
    }

    #[tokio::test]
    async fn a_gateway_that_panics_on_a_message_loses_neither_its_worker_nor_the_queue() {
        let store = Store::open_in_memory().expect("store");
        let outbox = default_outbox(&store);
        let panicky = Arc::new(Panicky::default());
        let registry = Registry::new();
        registry.insert("x", GatewayStatus::new("x", "test"), Some(panicky.clone()));
        for text in ["m0", "boom", "hiccup", "m3"] {
            let to = ["x:c".to_string()];
            outbox
                .push(&to, "p", &Outgoing::text(text))
                .await
                .expect("push");
        }
        let delivery = Delivery::new(outbox, registry, Arc::new(|| true));
        delivery.start_workers(true).await.expect("targets listed");
        let Worker { task, progress } = delivery.workers().remove("x:c").expect("a worker");
        task.await.expect("the worker outlives the panics");
        assert_eq!(*panicky.got.lock().expect("lock"), ["m0", "hiccup", "m3"]);
        let left = store.run(|s| s.outbox_pending("x:c", 10)).await;
        assert!(left.expect("store").expect("pending").is_empty());
        let history = store.run(|s| s.history_recent(10)).await;
        let history = history.expect("store").expect("history");
        let parked: Vec<&str> = history
            .iter()
            .filter(|h| h.kind == "message-parked")
            .map(|h| h.detail.as_str())
            .collect();
        let named = |d: &str| d.contains("boom in the gateway") && d.ends_with("message: boom");
        assert!(
            matches!(&parked[..], [one] if named(one)),
            "the message it panics on twice is parked, named: {parked:?}"
        );
        assert_eq!(
            progress.lock().expect("lock").parked,
            1,
            "!status counts it"
        );
    }

    /// Delivers everything, holding the message whose text is `m1` until `gate` opens
    /// (`reached` says it got there).
    struct Gated {
        reached: tokio::sync::Notify,
        gate: tokio::sync::Notify,
        got: Mutex<Vec<String>>,
    }

    impl Deliver for Gated {
        fn deliver<'a>(
            &'a self,
            _channel: &'a str,
            item: &'a OutboxItem,
        ) -> BoxFuture<'a, Result<crate::gateways::Posted, DeliveryError>> {
            Box::pin(async move {
                let text = serde_json::from_str::<Outgoing>(&item.payload)
                    .expect("payload")
                    .render_plain();
                if text == "m1" {
                    self.reached.notify_one();
                    self.gate.notified().await;
                }
                self.got.lock().expect("lock").push(text);
                Ok(None)
            })
        }
    }

    #[tokio::test]
    async fn a_message_a_cap_drops_after_its_batch_was_taken_is_not_posted() {
        let store = Store::open_in_memory().expect("store");
        let config: crate::config::Config =
            toml::from_str("[outbox]\nmax_messages = 3\n").expect("config");
        let outbox = Outbox::new(store.clone(), crate::live_config::LiveConfig::new(config));
        let gated = Arc::new(Gated {
            reached: tokio::sync::Notify::new(),
            gate: tokio::sync::Notify::new(),
            got: Mutex::default(),
        });
        let registry = Registry::new();
        registry.insert("x", GatewayStatus::new("x", "test"), Some(gated.clone()));
        let to = ["x:c".to_string()];
        let message = |i: usize| Outgoing::text(format!("m{i}"));
        for i in 0..3 {
            outbox.push(&to, "p", &message(i)).await.expect("push");
        }
        let delivery = Delivery::new(outbox.clone(), registry, Arc::new(|| true));
        delivery.start_workers(true).await.expect("targets listed");
        // m0 went alone; m1 and m2 are the batch taken next, m1 held at the platform.
        gated.reached.notified().await;
        for i in 3..6 {
            outbox.push(&to, "p", &message(i)).await.expect("push");
        }
        // Three queued at most: m1 and m2, the oldest, were dropped meanwhile.
        gated.gate.notify_one();
        let task = delivery.workers().remove("x:c").expect("a worker").task;
        task.await.expect("the worker ends");
        let got = gated.got.lock().expect("lock").clone();
        assert_eq!(
            got,
            ["m0", "m1", "m3", "m4", "m5"],
            "m2 was dropped before its try"
        );
        let history = store.history_recent(10).expect("history");
        assert!(
            history
                .iter()
                .any(|h| h.detail.starts_with("x:c: 2 oldest")),
            "{history:?}"
        );
    }

    #[test]
    fn status_warns_at_eighty_percent_of_either_cap() {
        let caps = OutboxCaps {
            max_messages: 10,
            max_bytes: 10 * 1024 * 1024,
        };
        let queue = |messages, bytes| TargetUsage {
            target: "discord:1".into(),
            messages,
            bytes,
        };
        assert_eq!(cap_warning(&queue(7, 0), &caps), None);
        let by_count = cap_warning(&queue(8, 0), &caps).expect("warning");
        assert!(
            by_count.contains("outbox discord:1 is at 80% of [outbox] max_messages (8 of 10)"),
            "{by_count}"
        );
        let by_bytes = cap_warning(&queue(1, 9 * 1024 * 1024), &caps).expect("warning");
        assert!(
            by_bytes.contains("90% of [outbox] max_mb (9.0 of 10 MiB)"),
            "{by_bytes}"
        );
    }
}

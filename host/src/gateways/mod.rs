//! Gateways turn platform messages into [`ChatMessage`](crate::message::ChatMessage)s for
//! the router, and deliver queued outbox messages to their targets.
//!
//! - [`console`]: the local socket `roost chat` talks to.
//! - [`discord`]: a Discord bot through serenity.
//! - [`slack`]: a Slack app over Socket Mode and the Web API.
//! - [`delivery`]: one worker per outbox target, so a target that is down or rate-limited
//!   never delays another.
//! - [`queue`]: what a platform gateway's incoming side queues: replies and mirrored copies.
//! - [`relay`]: which copies a mirrored message has on each target, for edits and deletes.
//! - [`seen`]: the recent event ids of a platform gateway, so a redelivered event is handled
//!   once.
//! - [`status`]: what `!status` says about each gateway.
//! - [`text`]: splitting at platform limits, neutralising mass mentions.
//! - [`secrets`]: tokens from the environment or a secrets file, never from `roost.toml`.

pub mod console;
pub mod delivery;
pub mod discord;
mod queue;
pub mod relay;
pub mod secrets;
mod seen;
pub mod slack;
pub mod status;
pub mod text;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::Config;
use crate::outbox::Outbox;
use crate::router::Router;
use crate::store::OutboxItem;

pub use status::GatewayStatus;

/// How long one REST call of a chat gateway may take before it counts as failed (and is
/// retried with the same nonce).
const REST_TIMEOUT: Duration = Duration::from_secs(15);

/// A gateway's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("gateway {gateway}: cannot build an HTTP client: {why}")]
pub struct HttpClientError {
    gateway: String,
    why: String,
}

/// Why a platform gateway (Discord, Slack) could not start: the same two causes for
/// every platform, so one type.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Token(#[from] secrets::SecretError),
    #[error(transparent)]
    Http(#[from] HttpClientError),
}

/// The wait before a platform gateway tries to connect again: 1 s after the first failure,
/// doubled after each further one up to 60 s, and 1 s again once a connection held. One
/// policy for the Discord and Slack gateways, which both reconnect this way.
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    /// The longest wait.
    const MAX: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// Sleeps the current wait; the next one is twice as long, up to [`Self::MAX`].
    async fn sleep(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Self::MAX);
    }

    /// A connection held: the next wait is the first one again.
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// The HTTP client a platform gateway's REST calls go through, each call bounded in time.
fn rest_client(gateway: &str) -> Result<reqwest::Client, HttpClientError> {
    reqwest::Client::builder()
        .timeout(REST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| HttpClientError {
            gateway: gateway.to_string(),
            why: e.to_string(),
        })
}

/// An error and its causes on one line ("error sending request: connection refused").
/// reqwest's `Display` says only the outermost layer ("error sending request"); the cause
/// that tells a person what to fix is in `source()`. Here, not in each gateway, because the
/// Discord and Slack gateways both report their REST and connection failures this way.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A boxed future, for the object-safe [`Deliver`] trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why one message was not delivered this time. The delivery worker decides what happens
/// next: the message stays queued, in place, unless the platform rejected it for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The platform asked to wait (HTTP 429 with retry-after): retry after exactly that long.
    RetryAfter(Duration, String),
    /// It may work later: 5xx, connection refused, timeout, missing permission.
    Transient(String),
    /// The platform will never accept this message as it is (HTTP 400): it is dropped with a
    /// history entry so the messages behind it can flow.
    Rejected(String),
    /// This message cannot go to this channel until a person changes something there (the
    /// bot lacks access or permission, the channel is gone or archived): it is set aside
    /// with a history entry and a `!status` line, and the messages behind it flow.
    Parked(String),
    /// The platform refused the gateway's token: no message can go anywhere through it.
    /// The gateway is marked failed with this reason and its queues wait, kept.
    Unauthorized(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::RetryAfter(d, why) => {
                write!(f, "{why} (retry after {:.1} s)", d.as_secs_f64())
            }
            DeliveryError::Transient(why)
            | DeliveryError::Rejected(why)
            | DeliveryError::Parked(why)
            | DeliveryError::Unauthorized(why) => f.write_str(why),
        }
    }
}

/// What one delivery leaves: the platform id of the last message it posted, if it posted
/// any and the platform has ids. The delivery worker stores it in the same write that
/// removes the message from the outbox (`Store::outbox_take`), so after a crash a gateway
/// knows that whatever it is not sure it posted came after that message.
pub type Posted = Option<String>;

/// The outgoing half of a gateway: posts one queued message to one channel. Called by the
/// delivery worker of that target, one message at a time, in queue order.
pub trait Deliver: Send + Sync {
    /// Posts `item` to `channel` (the part of the target after `<gateway>:`). Must be safe to
    /// call again for the same item after an ambiguous failure: platforms that support it
    /// get an idempotency key derived from the item.
    fn deliver<'a>(
        &'a self,
        channel: &'a str,
        item: &'a OutboxItem,
    ) -> BoxFuture<'a, Result<Posted, DeliveryError>>;
}

impl Deliver for console::ConsoleHub {
    fn deliver<'a>(
        &'a self,
        _channel: &'a str,
        item: &'a OutboxItem,
    ) -> BoxFuture<'a, Result<Posted, DeliveryError>> {
        // A mirrored delete has nothing to show; a mirrored edit says it is one.
        let relayed = serde_json::from_str::<crate::message::Outgoing>(&item.payload).ok();
        match relayed
            .as_ref()
            .and_then(|m| m.relay.as_ref().map(|r| (r.action, m)))
        {
            Some((crate::message::RelayAction::Delete, _)) => {}
            Some((crate::message::RelayAction::Edit, m)) => {
                let text = format!("(edited) {}", m.render_plain());
                let edited = serde_json::to_string(&crate::message::Outgoing::text(text))
                    .unwrap_or_default();
                console::ConsoleHub::deliver(self, &item.plugin, &edited);
            }
            _ => console::ConsoleHub::deliver(self, &item.plugin, &item.payload),
        }
        Box::pin(std::future::ready(Ok(None)))
    }
}

struct Entry {
    status: GatewayStatus,
    deliver: Option<Arc<dyn Deliver>>,
}

/// Every gateway instance the daemon knows, by name: its status and, once it can post, its
/// outgoing half. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<BTreeMap<String, Entry>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) gateway `name` with its status and its outgoing half, if any.
    pub fn insert(&self, name: &str, status: GatewayStatus, deliver: Option<Arc<dyn Deliver>>) {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.insert(name.to_string(), Entry { status, deliver });
    }

    /// The outgoing half and status of gateway `name`.
    pub fn get(&self, name: &str) -> Option<(GatewayStatus, Option<Arc<dyn Deliver>>)> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).map(|e| (e.status.clone(), e.deliver.clone()))
    }

    /// One status line per gateway, in name order.
    pub fn status_lines(&self) -> Vec<String> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.values().map(|e| e.status.line()).collect()
    }

    /// Closes every gateway's connection for good (a failed gateway's connection shuts
    /// down and does not reconnect): when this hub stops leading, another hub's gateways
    /// take over.
    pub fn close_all(&self, why: &str) {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        for entry in map.values() {
            entry.status.failed(why);
        }
    }

    /// Every gateway's status as data, in name order.
    pub fn snapshots(&self) -> Vec<status::Snapshot> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.values().map(|e| e.status.snapshot()).collect()
    }
}

/// `console` → (`console`, `console`); `discord:123` → (`discord`, `123`).
pub fn split_target(target: &str) -> (&str, &str) {
    match target.split_once(':') {
        Some((gateway, channel)) => (gateway, channel),
        None => (target, target),
    }
}

/// Starts every enabled `[gateways.NAME]` platform instance in `config` and registers it in
/// `registry`. A gateway that cannot start (no token, unknown kind) is registered as failed
/// with an error naming it; the others start regardless.
pub fn start_platforms(config: &Config, router: Arc<Router>, outbox: Outbox, registry: &Registry) {
    use crate::config::GatewayKind;
    for (name, gateway) in &config.gateways.instances {
        let kind = gateway.kind_for(name);
        let status = GatewayStatus::new(name, kind.map_or("?", |k| k.as_str()));
        if !gateway.enabled {
            status.disabled("enabled = false in roost.toml");
            registry.insert(name, status, None);
            continue;
        }
        let (r, o, st) = (router.clone(), outbox.clone(), status.clone());
        let started = match kind {
            Some(GatewayKind::Discord) => {
                discord::start(name, gateway, r, o, st).map_err(|e| e.to_string())
            }
            Some(GatewayKind::Slack) => {
                slack::start(name, gateway, r, o, st).map_err(|e| e.to_string())
            }
            None => Err(format!(
                "gateway {name}: this build has no gateway of that kind yet"
            )),
        };
        match started {
            Ok(deliver) => registry.insert(name, status, Some(deliver)),
            Err(why) => {
                tracing::error!("{why}");
                status.failed(&why);
                registry.insert(name, status, None);
            }
        }
    }
}

//! The persistent outbox: every outgoing message is written to the host database before any
//! gateway sees it, and a delivery loop drains it per target, in order.
//!
//! What is stored is bounded twice, with the config in force when the message is queued:
//! each message is cut to what its target's platform can show ([`size_limit`]), and each
//! target's queue to `[outbox] max_messages` and `max_mb`, past which its oldest messages
//! are dropped first (logged, and counted in the history `!status` shows).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::{ChatGateway, Config, GatewayKind, OutboxLimits};
use crate::gateways::{console, discord, slack, split_target};
use crate::live_config::LiveConfig;
use crate::message::{Outgoing, SizeLimit};
use crate::store::{OutboxCaps, Store, StoreError};

/// Cheap-to-clone handle for queueing messages and waking the delivery loop.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    config: LiveConfig,
    wake: Arc<Notify>,
    /// What was queued since the delivery loop last looked ([`Outbox::take_news`]).
    news: Arc<Mutex<News>>,
    /// Like `wake`, for telling the hubs sharing the store (`hub_calls.rs`).
    pushed: Arc<Notify>,
    /// See [`Outbox::drops`].
    drops: Arc<AtomicU64>,
}

/// The targets this hub queued for since the delivery loop last looked, or that it must
/// look at every target (`everything`): what it wakes for then decides whether it needs
/// to read the outbox's targets from the store at all.
#[derive(Default)]
struct News {
    targets: HashSet<String>,
    everything: bool,
}

/// `[outbox]` in the units the store checks.
pub fn caps(limits: &OutboxLimits) -> OutboxCaps {
    OutboxCaps {
        max_messages: limits.max_messages,
        max_bytes: limits.max_mb.saturating_mul(1024 * 1024),
    }
}

/// The most one message for `target` may hold once queued: its platform's own limit (or a
/// few posts' worth, where the gateway splits long messages). A target whose gateway is not
/// configured (kept for when it is) gets the console's limit unless its name says Discord
/// or Slack.
pub fn size_limit(config: &Config, target: &str) -> SizeLimit {
    let (gateway, _) = split_target(target);
    if gateway == "console" {
        return SizeLimit::Bytes(console::QUEUED_LIMIT_BYTES);
    }
    let kind = match config.gateways.instances.get(gateway) {
        Some(g) => g.kind_for(gateway),
        None => ChatGateway::default().kind_for(gateway),
    };
    match kind {
        Some(GatewayKind::Discord) => SizeLimit::Chars(discord::QUEUED_LIMIT),
        Some(GatewayKind::Slack) => SizeLimit::Chars(slack::QUEUED_LIMIT),
        None => SizeLimit::Bytes(console::QUEUED_LIMIT_BYTES),
    }
}

impl Outbox {
    /// Outbox on top of the host store, with its limits read from `config` at each push.
    pub fn new(store: Store, config: LiveConfig) -> Self {
        Self {
            store,
            config,
            wake: Arc::new(Notify::new()),
            news: Arc::default(),
            pushed: Arc::new(Notify::new()),
            drops: Arc::default(),
        }
    }

    /// Queues `message` for each target, cut to the target's [`size_limit`], dropping the
    /// target's oldest messages past `[outbox]`'s caps; returns once it is committed to
    /// disk (a plugin's `send` reports a failure).
    pub async fn push(
        &self,
        targets: &[String],
        plugin: &str,
        message: &Outgoing,
    ) -> Result<(), StoreError> {
        let write = self.prepare(targets, plugin, message);
        self.store.try_run(write).await?;
        self.woken(targets);
        Ok(())
    }

    /// Like [`Outbox::push`] without waiting for the disk: for a gateway's replies and
    /// mirrors, which have nobody to report a failure to but the log. Queued in order with
    /// every other store write, so the delivery loop sees it.
    pub fn queue(&self, targets: &[String], plugin: &str, message: &Outgoing) {
        let write = self.prepare(targets, plugin, message);
        let plugin = plugin.to_string();
        self.store.submit(move |s| {
            if let Err(e) = write(s) {
                tracing::error!(plugin, "outbox: cannot queue a message: {e}");
            }
        });
        self.woken(targets);
    }

    /// The store write that queues `message` for `targets` under the config in force now.
    fn prepare(
        &self,
        targets: &[String],
        plugin: &str,
        message: &Outgoing,
    ) -> impl FnOnce(&Store) -> Result<(), StoreError> + Send + 'static {
        let config = self.config.get();
        let caps = caps(&config.outbox);
        let (max_messages, max_mb) = (config.outbox.max_messages, config.outbox.max_mb);
        let plugin = plugin.to_string();
        let drops = self.drops.clone();
        let payloads: Vec<(String, String)> = targets
            .iter()
            .map(|target| {
                let (fitted, cut) = message.fitted(size_limit(&config, target));
                if cut > 0 {
                    tracing::info!(
                        plugin,
                        target = %target,
                        cut,
                        "outbox: message cut to the size its platform takes"
                    );
                }
                let payload = serde_json::to_string(&fitted).unwrap_or_default();
                (target.clone(), payload)
            })
            .collect();
        move |store: &Store| {
            for (target, payload) in payloads {
                let pushed = store.outbox_push_capped(&target, &plugin, &payload, &caps)?;
                if pushed.dropped > 0 {
                    drops.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(
                        target = %target,
                        dropped = pushed.dropped,
                        max_messages,
                        max_mb,
                        "outbox: queue over its cap; dropped its oldest messages"
                    );
                }
            }
            Ok(())
        }
    }

    /// The caps in force now, for `!status`.
    pub fn caps(&self) -> OutboxCaps {
        caps(&self.config.get().outbox)
    }

    /// The store behind it, for the delivery loop.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves when something was queued since the last call.
    pub async fn queued(&self) {
        self.wake.notified().await;
    }

    /// Wakes the delivery loop for what was queued for `targets`, and whoever waits on
    /// [`Outbox::pushed`].
    fn woken(&self, targets: &[String]) {
        self.lock_news().targets.extend(targets.iter().cloned());
        self.wake.notify_one();
        self.pushed.notify_one();
    }

    /// Wakes the delivery loop to look at every target: for what another hub sharing the
    /// store queued, or when a worker found its queue empty and stopped (something queued
    /// for its target meanwhile needs a new one).
    pub fn wake(&self) {
        self.lock_news().everything = true;
        self.wake.notify_one();
    }

    /// Wakes the delivery loop for what another hub sharing the store queued. Its pushes
    /// may have dropped messages past a cap, so they count as drops (see [`Outbox::drops`]).
    pub fn queued_elsewhere(&self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        self.wake();
    }

    /// Goes up whenever messages may have been dropped past a cap: when a push of this hub
    /// dropped some, and when another hub queued. A delivery worker holding messages it took
    /// before the number moved checks that each is still queued before posting it.
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::SeqCst)
    }

    /// The targets queued for since the last call, or `None` when every target must be
    /// looked at.
    pub fn take_news(&self) -> Option<HashSet<String>> {
        let news = std::mem::take(&mut *self.lock_news());
        (!news.everything).then_some(news.targets)
    }

    fn lock_news(&self) -> std::sync::MutexGuard<'_, News> {
        self.news.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves when this hub queued something since the last call.
    pub async fn pushed(&self) {
        self.pushed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        toml::from_str(toml).expect("config")
    }

    #[test]
    fn each_platform_has_its_own_size_limit() {
        let c = config(
            "[gateways.chat]\nkind = \"discord\"\n[gateways.slack-work]\n[gateways.odd]\nkind = \"slack\"\n",
        );
        let discord = SizeLimit::Chars(discord::QUEUED_LIMIT);
        let slack = SizeLimit::Chars(slack::QUEUED_LIMIT);
        let console = SizeLimit::Bytes(console::QUEUED_LIMIT_BYTES);
        assert_eq!(size_limit(&c, "console"), console);
        assert_eq!(size_limit(&c, "chat:1"), discord);
        assert_eq!(
            size_limit(&c, "discord:1"),
            discord,
            "by name, not configured"
        );
        assert_eq!(size_limit(&c, "slack-work:C1"), slack);
        assert_eq!(size_limit(&c, "odd:C1"), slack);
        assert_eq!(size_limit(&c, "elsewhere:1"), console);
    }

    #[tokio::test]
    async fn pushes_read_the_caps_in_force_and_cut_per_target() {
        let store = Store::open_in_memory().expect("store");
        let live = LiveConfig::new(config("[outbox]\nmax_messages = 2\n"));
        let outbox = Outbox::new(store.clone(), live.clone());
        let long = Outgoing::text("x".repeat(20_000));
        let targets = ["discord:1".to_string(), "console".to_string()];
        for _ in 0..3 {
            outbox.push(&targets, "p", &long).await.expect("push");
        }
        let usage = store.outbox_usage().expect("usage");
        assert_eq!(usage.iter().map(|u| u.messages).collect::<Vec<_>>(), [2, 2]);
        let queued = |target: &str| -> Outgoing {
            let item = store.outbox_pending(target, 1).expect("pending").remove(0);
            serde_json::from_str(&item.payload).expect("payload")
        };
        let discord = queued("discord:1").render_plain();
        assert!(discord.chars().count() <= discord::QUEUED_LIMIT);
        assert!(discord.ends_with("more characters)"), "{discord}");
        assert_eq!(queued("console"), long, "20,000 bytes fit the console");

        live.replace(config("[outbox]\nmax_messages = 3\n"));
        outbox.push(&targets, "p", &long).await.expect("push");
        assert_eq!(store.outbox_usage().expect("usage")[0].messages, 3);
    }
}

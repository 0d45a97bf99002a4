//! Gateways turn platform messages into [`ChatMessage`](crate::message::ChatMessage)s for
//! the router, and deliver queued outbox messages to their targets. Only the local console
//! exists so far; targets of gateways that are not running stay queued.

pub mod console;

use std::time::Duration;

use crate::outbox::Outbox;

/// How often undeliverable targets are looked at again even when nothing new was queued.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Messages taken from one target's queue per pass.
const BATCH: usize = 100;

/// Drains the outbox forever: each target's messages in order, to its gateway.
pub async fn deliver(outbox: Outbox, console: console::ConsoleHub) {
    loop {
        drain(&outbox, &console);
        tokio::select! {
            _ = outbox.queued() => {}
            _ = tokio::time::sleep(RETRY_EVERY) => {}
        }
    }
}

fn drain(outbox: &Outbox, console: &console::ConsoleHub) {
    let store = outbox.store();
    let targets = match store.outbox_targets() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("outbox: {e}");
            return;
        }
    };
    for (target, _) in targets {
        if target != "console" {
            // No gateway for it yet: it stays queued, in order, for when one runs.
            continue;
        }
        let items = match store.outbox_pending(&target, BATCH) {
            Ok(items) => items,
            Err(e) => {
                tracing::error!("outbox: {e}");
                continue;
            }
        };
        for item in items {
            console.deliver(&item.plugin, &item.payload);
            if let Err(e) = store.outbox_mark_sent(item.id) {
                tracing::error!("outbox: {e}");
            }
        }
    }
}

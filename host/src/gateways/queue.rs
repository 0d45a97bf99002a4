//! What the incoming side of a platform gateway puts in the outbox: the reply to a command,
//! for the channel it came from, and the copies its mirror rules ask for. One place for
//! the Discord and Slack gateways, so that both queue under the same plugin names
//! (`roost`, `mirror`) and report a failure to queue the same way.

use crate::config::MirrorRule;
use crate::message::Outgoing;
use crate::outbox::Outbox;

/// The outbox as gateway `gateway` queues into it, with the gateway's mirror rules.
pub struct Queue {
    gateway: String,
    outbox: Outbox,
    mirror: Vec<MirrorRule>,
}

impl Queue {
    /// Queues for gateway `gateway` into `outbox`, copying by `mirror`.
    pub fn new(gateway: &str, outbox: Outbox, mirror: Vec<MirrorRule>) -> Self {
        Self {
            gateway: gateway.to_string(),
            outbox,
            mirror,
        }
    }

    /// Queues `reply` for `<gateway>:<channel>`. A failure is logged by the outbox: the
    /// command ran, and only its answer is lost.
    pub fn reply(&self, channel: &str, reply: &Outgoing) {
        let target = format!("{}:{channel}", self.gateway);
        self.outbox.queue(&[target], "roost", reply);
    }

    /// Whether a mirror rule copies `channel` anywhere: when not, a gateway need not build
    /// the copy (nor look up its author's name).
    pub fn mirrors(&self, channel: &str) -> bool {
        self.mirror.iter().any(|r| r.from == channel)
    }

    /// Queues `copy` (a mirrored post, edit or delete of a message in `channel`) for every
    /// target a mirror rule copies `channel` to. A failure is logged by the outbox.
    pub fn mirror(&self, channel: &str, copy: &Outgoing) {
        for rule in self.mirror.iter().filter(|r| r.from == channel) {
            self.outbox.queue(&rule.to, "mirror", copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live_config::LiveConfig;
    use crate::message::RelayAction;
    use crate::store::Store;

    fn rule(from: &str, to: &[&str]) -> MirrorRule {
        MirrorRule {
            from: from.to_string(),
            to: to.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn replies_go_to_the_channel_asked_and_copies_only_where_a_rule_says() {
        let store = Store::open_in_memory().expect("store");
        let outbox = Outbox::new(store.clone(), LiveConfig::new(Default::default()));
        let rules = vec![rule("C1", &["discord:9", "console"]), rule("C2", &["x:1"])];
        let queue = Queue::new("slack", outbox, rules);

        queue.reply("C7", &Outgoing::text("pong"));
        assert!(queue.mirrors("C1") && !queue.mirrors("C7"));
        let copy = Outgoing::relay("slack:C1:1.2".into(), RelayAction::Post, "ann: hi");
        queue.mirror("C1", &copy);
        queue.mirror("C7", &copy);
        // The store runs its work in order: once this has run, so have the writes above.
        store.run(|_| ()).await.expect("store thread");

        let queued = |target: &str| store.outbox_pending(target, 10).expect("pending");
        let reply = queued("slack:C7");
        assert_eq!((reply.len(), reply[0].plugin.as_str()), (1, "roost"));
        for target in ["discord:9", "console"] {
            let copies = queued(target);
            assert_eq!(copies.len(), 1, "{target}");
            assert_eq!(copies[0].plugin, "mirror");
            let got: Outgoing = serde_json::from_str(&copies[0].payload).expect("payload");
            assert_eq!(got, copy);
        }
        assert!(queued("x:1").is_empty(), "C2's rule is not C1's");
    }
}

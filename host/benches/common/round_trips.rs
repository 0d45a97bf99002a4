//! Times chat commands through the router in process, for the round-trip benches.

use std::time::{Duration, Instant};

use roost::message::ChatMessage;
use roost::router::Router;

/// Median and p99 of `rounds` `text` commands from the console identity, after `warmup`
/// untimed ones; every reply must read `want`.
pub async fn time_round_trips(
    router: &Router,
    text: &str,
    want: &str,
    warmup: usize,
    rounds: usize,
) -> (Duration, Duration) {
    let msg = ChatMessage {
        gateway: "bench".into(),
        channel: "bench".into(),
        identity: "console".into(),
        text: text.into(),
    };
    for _ in 0..warmup {
        router.handle(&msg).await.expect("reply");
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let reply = router.handle(&msg).await.expect("reply");
        samples.push(t.elapsed());
        assert_eq!(reply.render_plain(), want);
    }
    samples.sort();
    (samples[rounds / 2], samples[rounds * 99 / 100])
}

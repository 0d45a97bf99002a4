//! Times chat commands through the router in process, for the round-trip benches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use roost::message::ChatMessage;
use roost::router::Router;

/// Median and p99 of `rounds` `text` commands from the console identity, after `warmup`
/// untimed ones; every reply must read `want`. Timed from a task on the runtime's workers,
/// where a gateway's task runs in the daemon (the thread that called `block_on` is not one
/// of them, and every call from it would cross threads twice).
pub async fn time_round_trips(
    router: Arc<Router>,
    text: &str,
    want: &str,
    warmup: usize,
    rounds: usize,
) -> (Duration, Duration) {
    let samples = round_trip_samples(router, text, want, warmup, rounds).await;
    (samples[rounds / 2], samples[rounds * 99 / 100])
}

/// Every round trip of [`time_round_trips`], sorted, for a bench that reports more than the
/// median and p99.
pub async fn round_trip_samples(
    router: Arc<Router>,
    text: &str,
    want: &str,
    warmup: usize,
    rounds: usize,
) -> Vec<Duration> {
    let (text, want) = (text.to_string(), want.to_string());
    tokio::spawn(async move { time_on_this_task(&router, &text, &want, warmup, rounds).await })
        .await
        .expect("the timing task")
}

async fn time_on_this_task(
    router: &Router,
    text: &str,
    want: &str,
    warmup: usize,
    rounds: usize,
) -> Vec<Duration> {
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
    samples
}

//! Discord gateway benchmark against the fake Discord, in one run:
//! - message in on the gateway → reply out at the REST endpoint (`!ping` → `pong`): median
//!   and p99 one at a time, and messages/s for a burst, for roost (router → bot plugin →
//!   persistent outbox → delivery worker) and for a bare serenity echo bot (handler →
//!   `say`), both serenity clients against the same kind of fake;
//! - the outbox drain rate after an outage: 10,000 messages queued on disk, daemon started,
//!   time until the fake has all of them; beside it the floor for in-order delivery: a
//!   bare serenity client posting the same 10,000 one after another (each post waits for
//!   the one before, as a queue kept in order must), nothing stored.
//!
//! Run: `cargo build --release -p roost -p roost-tests --benches --bins` then
//! `cargo bench -p roost-tests --bench discord` (uses `target/release/roost`).

use std::time::{Duration, Instant};

use roost_tests::fake_discord::{FakeDiscord, TOKEN};
use roost_tests::{BASE_CONFIG, Daemon};
use serenity::all::{Context, EventHandler, GatewayIntents, Message};

const CHANNEL: u64 = 111;
const USER: u64 = 222;
const DRAIN_CHANNEL: u64 = 777;
const FLOOR_CHANNEL: u64 = 778;
const WARMUP: usize = 50;
const ROUNDS: usize = 500;
const BURST: usize = 1000;
const QUEUED: usize = 10_000;

struct Figures {
    median: Duration,
    p99: Duration,
    per_second: f64,
}

/// Latency one message at a time, then throughput for a burst.
fn measure(fake: &FakeDiscord) -> Figures {
    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..(WARMUP + ROUNDS) {
        let before = fake.count_in(CHANNEL);
        let sent = Instant::now();
        fake.user_says(CHANNEL, USER, "!ping");
        last_of(fake, CHANNEL, before + 1, "a reply");
        let reply = fake.posted_in(CHANNEL).swap_remove(before);
        assert_eq!(reply.content, "pong");
        if round >= WARMUP {
            samples.push(reply.received_at.duration_since(sent));
        }
    }
    samples.sort();
    let before = fake.count_in(CHANNEL);
    let start = Instant::now();
    for _ in 0..BURST {
        fake.user_says(CHANNEL, USER, "!ping");
    }
    let last = last_of(fake, CHANNEL, before + BURST, "the burst's replies");
    Figures {
        median: samples[ROUNDS / 2],
        p99: samples[ROUNDS * 99 / 100],
        per_second: BURST as f64 / last.duration_since(start).as_secs_f64(),
    }
}

/// When the `n`th message arrived in `channel`, once it has. Polls by count: copying every
/// message posted so far at each poll (thousands, under the fake's lock) would slow the
/// fake, and so the bot measured, by the measuring itself.
fn last_of(fake: &FakeDiscord, channel: u64, n: usize, what: &str) -> Instant {
    fake.wait_for(what, || (fake.count_in(channel) >= n).then_some(()));
    fake.posted_in(channel)[n - 1].received_at
}

struct Echo;

#[serenity::async_trait]
impl EventHandler for Echo {
    async fn message(&self, ctx: Context, msg: Message) {
        if !msg.author.bot && msg.content == "!ping" {
            let _ = msg.channel_id.say(&ctx.http, "pong").await;
        }
    }
}

/// A fake without Discord's per-channel bucket: the bench posts thousands of messages into
/// one channel, which the real bucket (5 a second) would turn into a measure of itself.
fn unlimited_fake() -> FakeDiscord {
    let fake = FakeDiscord::start();
    fake.set_rate_limits(false);
    fake
}

/// Seconds a bare serenity client takes to post [`QUEUED`] messages into one channel one
/// after another: what ordered delivery costs on the wire alone, the ceiling for the drain
/// row. Run as a task on the runtime's workers, as roost's delivery worker runs.
async fn in_order_floor(http: serenity::http::Http) -> f64 {
    let channel = serenity::all::ChannelId::new(FLOOR_CHANNEL);
    let start = Instant::now();
    for i in 0..QUEUED {
        channel
            .say(&http, format!("queued {i}"))
            .await
            .expect("post");
    }
    start.elapsed().as_secs_f64()
}

fn bare_serenity() -> (Figures, f64) {
    let fake = unlimited_fake();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = || {
        serenity::http::HttpBuilder::new(TOKEN)
            .proxy(fake.api_base())
            .ratelimiter_disabled(true)
            .build()
    };
    let client_http = http();
    runtime.spawn(async move {
        let intents = GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
        let mut client = serenity::client::ClientBuilder::new_with_http(client_http, intents)
            .event_handler(Echo)
            .await
            .expect("client");
        let _ = client.start().await;
    });
    fake.wait_connected();
    let figures = measure(&fake);
    let seconds = runtime
        .block_on(runtime.spawn(in_order_floor(http())))
        .expect("the floor's task");
    assert_eq!(fake.count_in(FLOOR_CHANNEL), QUEUED, "each posted once");
    runtime.shutdown_background();
    (figures, QUEUED as f64 / seconds)
}

fn config(fake: &FakeDiscord) -> String {
    format!(
        "{BASE_CONFIG}\n[gateways.discord]\napi_base = \"{}\"\n",
        fake.api_base()
    )
    .replace("log = \"info,roost=debug\"", "log = \"warn,roost=info\"")
}

fn roost(fake: &FakeDiscord) -> (Figures, Daemon) {
    let d = Daemon::start_full(&config(fake), &[], &[("ROOST_DISCORD_TOKEN", TOKEN)]);
    fake.wait_connected();
    (measure(fake), d)
}

/// Seconds to deliver [`QUEUED`] messages queued on disk while the daemon was down.
fn drain(fake: &FakeDiscord, mut d: Daemon) -> f64 {
    d.kill9();
    let db = rusqlite::Connection::open(d.db_path()).expect("db");
    db.execute_batch("BEGIN").expect("begin");
    for i in 0..QUEUED {
        db.execute(
            "INSERT INTO outbox (target, plugin, payload, created_at) VALUES (?1, 'bench', ?2, 0)",
            rusqlite::params![
                format!("discord:{DRAIN_CHANNEL}"),
                format!(r#"{{"parts":[{{"kind":"text","text":"queued {i}"}}]}}"#)
            ],
        )
        .expect("queue");
    }
    db.execute_batch("COMMIT").expect("commit");
    drop(db);
    let start = Instant::now();
    d.restart();
    let last = last_of(fake, DRAIN_CHANNEL, QUEUED, "the drained queue");
    let posted = fake.posted_in(DRAIN_CHANNEL);
    assert_eq!(posted.len(), QUEUED, "each queued message once");
    assert!(
        posted
            .iter()
            .enumerate()
            .all(|(i, p)| p.content == format!("queued {i}")),
        "in order"
    );
    last.duration_since(start).as_secs_f64()
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let (bare, floor) = bare_serenity();
    let fake = unlimited_fake();
    let (ours, daemon) = roost(&fake);
    println!("| what | roost | bare serenity echo bot | roost overhead |");
    println!("| --- | --- | --- | --- |");
    for (what, r, b) in [
        ("median, !ping in → pong at REST", ours.median, bare.median),
        ("p99", ours.p99, bare.p99),
    ] {
        println!(
            "| {what} | {} | {} | {} |",
            us(r),
            us(b),
            us(r.saturating_sub(b))
        );
    }
    println!(
        "| burst of {BURST}, replies/s | {:.0} | {:.0} | {:.2}× the time |",
        ours.per_second,
        bare.per_second,
        bare.per_second / ours.per_second
    );
    let seconds = drain(&fake, daemon);
    println!(
        "outbox drain after an outage: {QUEUED} messages in {seconds:.2} s ({:.0} messages/s), in order, once each",
        QUEUED as f64 / seconds
    );
    println!(
        "in-order floor: a bare serenity client posting {QUEUED} one after another: {floor:.0} messages/s"
    );
}

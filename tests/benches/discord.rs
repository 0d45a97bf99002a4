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
//! This machine's speed moves from minute to minute (the in-order floor has measured
//! 3,700–8,400 posts/s in runs an hour apart), so the burst and the drain are each taken
//! [`ROUNDS_OF_THROUGHPUT`] times, roost's right after its peer's (the bare bot's burst, the
//! floor's posts), and the bench prints every round and the median.
//!
//! Run: `cargo build --release -p roost -p roost-tests --benches --bins` then
//! `cargo bench -p roost-tests --bench discord` (uses `target/release/roost`).

use std::time::{Duration, Instant};

use roost_tests::fake_discord::{FakeDiscord, TOKEN};
use roost_tests::{BASE_CONFIG, Daemon};
use serenity::all::{Context, EventHandler, GatewayIntents, Message};

const CHANNEL: u64 = 111;
const USER: u64 = 222;
/// Round `r` of the drain posts into `DRAIN_CHANNEL + r`, of the floor into
/// `FLOOR_CHANNEL + r`: each round counts its own channel from zero.
const DRAIN_CHANNEL: u64 = 7_000;
const FLOOR_CHANNEL: u64 = 8_000;
const ROUNDS_OF_THROUGHPUT: u64 = 3;
const WARMUP: usize = 50;
const ROUNDS: usize = 500;
const BURST: usize = 1000;
const QUEUED: usize = 10_000;

struct Latency {
    median: Duration,
    p99: Duration,
}

/// Latency one message at a time: `!ping` in on the gateway → `pong` at REST.
fn latency(fake: &FakeDiscord) -> Latency {
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
    Latency {
        median: samples[ROUNDS / 2],
        p99: samples[ROUNDS * 99 / 100],
    }
}

/// Replies a second for a burst of [`BURST`] `!ping`s sent at once.
fn burst(fake: &FakeDiscord) -> f64 {
    let before = fake.count_in(CHANNEL);
    let start = Instant::now();
    for _ in 0..BURST {
        fake.user_says(CHANNEL, USER, "!ping");
    }
    let last = last_of(fake, CHANNEL, before + BURST, "the burst's replies");
    BURST as f64 / last.duration_since(start).as_secs_f64()
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

/// Seconds a bare serenity client takes to post [`QUEUED`] messages into `channel` one
/// after another: what ordered delivery costs on the wire alone, the ceiling for the drain
/// row. Run as a task on the runtime's workers, as roost's delivery worker runs.
async fn post_in_order(http: serenity::http::Http, channel: u64) -> f64 {
    let channel = serenity::all::ChannelId::new(channel);
    let start = Instant::now();
    for i in 0..QUEUED {
        channel
            .say(&http, format!("queued {i}"))
            .await
            .expect("post");
    }
    start.elapsed().as_secs_f64()
}

/// The peer: a bare serenity echo bot on a fake of its own, and the runtime it runs on.
struct BareBot {
    fake: FakeDiscord,
    runtime: tokio::runtime::Runtime,
}

impl BareBot {
    fn start() -> Self {
        let fake = unlimited_fake();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let bot = Self { fake, runtime };
        let client_http = bot.http();
        bot.runtime.spawn(async move {
            let intents = GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
            let mut client = serenity::client::ClientBuilder::new_with_http(client_http, intents)
                .event_handler(Echo)
                .await
                .expect("client");
            let _ = client.start().await;
        });
        bot.fake.wait_connected();
        bot
    }

    fn http(&self) -> serenity::http::Http {
        serenity::http::HttpBuilder::new(TOKEN)
            .proxy(self.fake.api_base())
            .ratelimiter_disabled(true)
            .build()
    }

    /// Posts a second for [`QUEUED`] posts in order, into the floor's channel of `round`.
    fn in_order_floor(&self, round: u64) -> f64 {
        let channel = FLOOR_CHANNEL + round;
        let seconds = self
            .runtime
            .block_on(self.runtime.spawn(post_in_order(self.http(), channel)))
            .expect("the floor's task");
        assert_eq!(self.fake.count_in(channel), QUEUED, "each posted once");
        QUEUED as f64 / seconds
    }
}

fn config(fake: &FakeDiscord) -> String {
    format!(
        "{BASE_CONFIG}\n[gateways.discord]\napi_base = \"{}\"\n",
        fake.api_base()
    )
    .replace("log = \"info,roost=debug\"", "log = \"warn,roost=info\"")
}

fn roost(fake: &FakeDiscord) -> Daemon {
    let d = Daemon::start_full(&config(fake), &[], &[("ROOST_DISCORD_TOKEN", TOKEN)]);
    fake.wait_connected();
    d
}

/// Messages a second to deliver [`QUEUED`] messages queued on disk while the daemon was
/// down, into the drain's channel of `round`: from the daemon's start (its start-up and
/// gateway connect included) to the last post, and from the first post to the last (the
/// posting alone, as the floor measures it).
fn drain(fake: &FakeDiscord, d: &mut Daemon, round: u64) -> (f64, f64) {
    let channel = DRAIN_CHANNEL + round;
    d.kill9();
    let db = rusqlite::Connection::open(d.db_path()).expect("db");
    db.execute_batch("BEGIN").expect("begin");
    for i in 0..QUEUED {
        db.execute(
            "INSERT INTO outbox (target, plugin, payload, created_at) VALUES (?1, 'bench', ?2, 0)",
            rusqlite::params![
                format!("discord:{channel}"),
                format!(r#"{{"parts":[{{"kind":"text","text":"queued {i}"}}]}}"#)
            ],
        )
        .expect("queue");
    }
    db.execute_batch("COMMIT").expect("commit");
    drop(db);
    let start = Instant::now();
    d.restart();
    let last = last_of(fake, channel, QUEUED, "the drained queue");
    let posted = fake.posted_in(channel);
    assert_eq!(posted.len(), QUEUED, "each queued message once");
    assert!(
        posted
            .iter()
            .enumerate()
            .all(|(i, p)| p.content == format!("queued {i}")),
        "in order"
    );
    let posting = last.duration_since(posted[0].received_at).as_secs_f64();
    (
        QUEUED as f64 / last.duration_since(start).as_secs_f64(),
        (QUEUED - 1) as f64 / posting,
    )
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Each round's figure, roost's first and its peer's after the slash.
fn rounds(pairs: &[(f64, f64)]) -> String {
    let each: Vec<String> = pairs
        .iter()
        .map(|(ours, theirs)| format!("{ours:.0}/{theirs:.0}"))
        .collect();
    each.join(", ")
}

fn main() {
    let bare = BareBot::start();
    let fake = unlimited_fake();
    let mut daemon = roost(&fake);
    let (ours, theirs) = (latency(&fake), latency(&bare.fake));
    let bursts: Vec<(f64, f64)> = (0..ROUNDS_OF_THROUGHPUT)
        .map(|_| {
            let theirs = burst(&bare.fake);
            (burst(&fake), theirs)
        })
        .collect();
    let mut drains = Vec::new();
    let mut postings = Vec::new();
    for round in 0..ROUNDS_OF_THROUGHPUT {
        let floor = bare.in_order_floor(round);
        let (whole, posting) = drain(&fake, &mut daemon, round);
        drains.push((whole, floor));
        postings.push((posting, floor));
    }
    println!("| what | roost | bare serenity echo bot | roost overhead |");
    println!("| --- | --- | --- | --- |");
    for (what, r, b) in [
        (
            "median, !ping in → pong at REST",
            ours.median,
            theirs.median,
        ),
        ("p99", ours.p99, theirs.p99),
    ] {
        println!(
            "| {what} | {} | {} | {} |",
            us(r),
            us(b),
            us(r.saturating_sub(b))
        );
    }
    let (ours_burst, bare_burst) = (
        median(bursts.iter().map(|b| b.0).collect()),
        median(bursts.iter().map(|b| b.1).collect()),
    );
    println!(
        "| burst of {BURST}, replies/s, median of {ROUNDS_OF_THROUGHPUT} | {ours_burst:.0} | {bare_burst:.0} | {:.2}× the time |",
        bare_burst / ours_burst
    );
    println!(
        "bursts, roost/bare bot replies/s, round by round: {}",
        rounds(&bursts)
    );
    let floor = median(drains.iter().map(|d| d.1).collect());
    println!(
        "outbox drain after an outage, {QUEUED} messages, in order, once each, median of {ROUNDS_OF_THROUGHPUT}: {:.0} messages/s from the daemon's start, {:.0} from its first post to its last",
        median(drains.iter().map(|d| d.0).collect()),
        median(postings.iter().map(|d| d.0).collect()),
    );
    println!(
        "in-order floor (a bare serenity client posting {QUEUED} one after another), each taken just before a drain: median {floor:.0} messages/s"
    );
    println!(
        "drains, roost from start/floor messages/s, round by round: {}",
        rounds(&drains)
    );
    println!(
        "drains, roost first post to last/floor messages/s, round by round: {}",
        rounds(&postings)
    );
}

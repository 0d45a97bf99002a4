//! The store on SQLite and on Postgres side by side, through the same `Store` API the
//! daemon uses: KV set and get latency (median, p99), KV writes per second from 8
//! concurrent writers (how plugins write, through the store's thread), outbox push rate
//! and drain rate (attempt mark, then sent mark, as the delivery worker does).
//!
//! SQLite: a file in a temporary directory (`synchronous = FULL`, as the daemon runs it).
//! Postgres: a throwaway cluster on loopback started here with the system's initdb, fsync
//! on as a real server runs (the tests' shared cluster has it off), `synchronous_commit =
//! on` as the daemon sets it.
//!
//! Run: `bash host/benches/store_sqlite_vs_postgres.sh` (results in
//! target/bench/store.txt).

use std::time::{Duration, Instant};

use roost::store::Store;

#[path = "../src/store/test_pg.rs"]
#[allow(dead_code)]
mod test_pg;

const SETS: usize = 2_000;
const GETS: usize = 20_000;
const WRITERS: usize = 8;
const WRITES_EACH: usize = 250;
const MESSAGES: usize = 2_000;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Store::open(&dir.path().join("roost.db")).expect("sqlite store");
    let cluster = test_pg::Cluster::start(true).expect("a Postgres cluster");
    let pg = cluster.server();
    let postgres = Store::open_postgres(&pg.url, pg.password.as_deref()).expect("postgres");
    println!("{:<34} {:>14} {:>14}", "store", "SQLite", "Postgres");
    let runtime = roost::async_runtime::build().expect("runtime");
    let rows: Vec<(&str, [String; 2])> = vec![
        (
            "kv set, median / p99",
            both(&sqlite, &postgres, kv_set_latency),
        ),
        (
            "kv get, median / p99",
            both(&sqlite, &postgres, kv_get_latency),
        ),
        (
            "kv set, 8 writers, writes/s",
            both(&sqlite, &postgres, |s| {
                runtime.block_on(concurrent_writes(s.clone()))
            }),
        ),
        (
            "outbox push, messages/s",
            both(&sqlite, &postgres, push_rate),
        ),
        (
            "outbox drain, messages/s",
            both(&sqlite, &postgres, drain_rate),
        ),
    ];
    for (what, [a, b]) in rows {
        println!("{what:<34} {a:>14} {b:>14}");
    }
}

fn both(a: &Store, b: &Store, measure: impl Fn(&Store) -> String) -> [String; 2] {
    [measure(a), measure(b)]
}

fn kv_set_latency(store: &Store) -> String {
    let value = vec![b'x'; 100];
    let times: Vec<Duration> = (0..SETS)
        .map(|i| {
            let key = format!("key-{}", i % 100);
            let start = Instant::now();
            store.kv_set("bench", &key, &value).expect("set");
            start.elapsed()
        })
        .collect();
    median_p99(times)
}

fn kv_get_latency(store: &Store) -> String {
    let times: Vec<Duration> = (0..GETS)
        .map(|i| {
            let key = format!("key-{}", i % 100);
            let start = Instant::now();
            let got = store.kv_get("bench", &key).expect("get");
            let elapsed = start.elapsed();
            assert!(got.is_some());
            elapsed
        })
        .collect();
    median_p99(times)
}

async fn concurrent_writes(store: Store) -> String {
    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..WRITES_EACH {
                    let key = format!("w{w}-{}", i % 50);
                    store
                        .run(move |s| s.kv_set("bench-many", &key, b"value"))
                        .await
                        .expect("store thread")
                        .expect("set");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    rate(WRITERS * WRITES_EACH, start.elapsed())
}

fn push_rate(store: &Store) -> String {
    let start = Instant::now();
    for i in 0..MESSAGES {
        store
            .outbox_push("bench:1", "bench", &format!("{{\"text\":\"message {i}\"}}"))
            .expect("push");
    }
    rate(MESSAGES, start.elapsed())
}

fn drain_rate(store: &Store) -> String {
    let start = Instant::now();
    let mut drained = 0;
    // As the delivery worker does at full speed: one call per batch of 100 removes the
    // messages sent, keeps the platform id of the last, and counts the attempts of the
    // next ones.
    let mut sent: Vec<i64> = Vec::new();
    loop {
        let last_post = sent.last().map(|id| id.to_string());
        let batch = store
            .outbox_take("bench:1", &sent, last_post.as_deref(), 100)
            .expect("take");
        if batch.is_empty() {
            break;
        }
        sent = batch.iter().map(|item| item.id).collect();
        drained += batch.len();
    }
    assert_eq!(drained, MESSAGES, "every pushed message drained once");
    rate(drained, start.elapsed())
}

fn median_p99(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    format!("{} / {}", short(at(0.5)), short(at(0.99)))
}

fn short(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn rate(n: usize, took: Duration) -> String {
    format!("{:.0}", n as f64 / took.as_secs_f64())
}

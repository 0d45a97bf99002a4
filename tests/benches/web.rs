//! The HTTP benchmarks of issue "Plugins reach the web", each against its peer in the same
//! run, all on loopback:
//! - outgoing: a plugin's GET round trip (the `faulty` fixture's `!httploop`, timed inside
//!   the plugin: SDK → wasi:http → host grant checks → hyper → the server and back) against
//!   a native reqwest client GETting the same server;
//! - webhooks in: `POST /hooks/git-hooks` (signature check, JSON, KV, `chat.send` committed
//!   to the outbox, then the 200) against a bare hyper server that only answers 200: median
//!   and p99 one at a time, and requests/s from 8 client threads;
//! - the daemon's idle resident memory with the HTTP server on and off.
//!
//! Run: `bash host/benches/web_vs_native.sh` (builds in release, writes target/bench/web.txt).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, GIT_HOOKS_WASM};

const ROUNDS: usize = 2_000;
const CLIENTS: usize = 8;
const LOAD_SECS: u64 = 5;
const SECRET: &str = "bench secret";

struct Figures {
    median: Duration,
    p99: Duration,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort();
    Figures {
        median: samples[samples.len() / 2],
        p99: samples[samples.len() * 99 / 100],
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A server on 127.0.0.1 answering every request with `body`: the feed the plugin reads
/// and the bare peer of the webhook route.
fn serve(runtime: &tokio::runtime::Runtime, body: &'static str) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move || async move { body });
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn outgoing(runtime: &tokio::runtime::Runtime) {
    let base = serve(runtime, r#"[{"id":"m1","title":"Ajax - PSV 2:1"}]"#);
    let port = base.rsplit(':').next().expect("port");
    let d = Daemon::start_with_plugins(
        &format!(
            "[plugins.faulty.grants]\nhttp_hosts = [\"http://127.0.0.1:{port}\"]\nhttp_private = true\n\
             http_requests_per_minute = 100000\n[plugins.faulty.limits]\ncall_timeout_ms = 120000\n"
        ),
        &[("faulty", FAULTY_WASM)],
    );
    let url = format!("{base}/feed");
    d.chat(&format!("!httploop {url} 200"));
    let reply = d.chat(&format!("!httploop {url} {ROUNDS}"));
    println!(
        "outgoing, plugin GET ({ROUNDS} in a row, timed in the plugin): {}",
        reply.trim()
    );
    let client = reqwest::blocking::Client::new();
    let get = || {
        let r = client.get(&url).send().expect("get");
        assert!(r.status().is_success());
        r.bytes().expect("body");
    };
    (0..200).for_each(|_| get());
    let started = Instant::now();
    let samples: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            get();
            t.elapsed()
        })
        .collect();
    let rps = ROUNDS as f64 / started.elapsed().as_secs_f64();
    let f = figures(samples);
    println!(
        "outgoing, native reqwest ({ROUNDS} in a row): median_us={:.1} p99_us={:.1} rps={rps:.0}",
        us(f.median),
        us(f.p99)
    );
}

fn signature(body: &str) -> String {
    roost_tests::github_signature(SECRET, body)
}

/// POSTs one signed push (delivery `n`) to `url`; panics unless the answer is `want`.
fn push(client: &reqwest::blocking::Client, url: &str, n: usize, want: u16) {
    let body = format!(
        r#"{{"ref":"refs/heads/main","repository":{{"full_name":"acme/site"}},"pusher":{{"name":"alice"}},"commits":[{{"message":"c{n}"}}],"head_commit":{{"message":"c{n}"}}}}"#
    );
    let r = client
        .post(url)
        .header("x-github-event", "push")
        .header("x-github-delivery", format!("bench-{n}"))
        .header("x-hub-signature-256", signature(&body))
        .body(body)
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), want, "{:?}", r.text());
}

/// Median and p99 one at a time, then requests/s from [`CLIENTS`] threads.
fn load(url: &str, next: &Arc<AtomicUsize>) -> (Figures, f64) {
    let client = reqwest::blocking::Client::new();
    let one = |client: &reqwest::blocking::Client| {
        push(client, url, next.fetch_add(1, Ordering::SeqCst), 200)
    };
    (0..200).for_each(|_| one(&client));
    let samples = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            one(&client);
            t.elapsed()
        })
        .collect();
    let done = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(LOAD_SECS);
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let (done, next) = (done.clone(), next.clone());
            s.spawn(move || {
                let client = reqwest::blocking::Client::new();
                while Instant::now() < until {
                    push(&client, url, next.fetch_add(1, Ordering::SeqCst), 200);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (
        figures(samples),
        done.load(Ordering::SeqCst) as f64 / LOAD_SECS as f64,
    )
}

fn webhooks(runtime: &tokio::runtime::Runtime) {
    let config = format!(
        "{BASE_CONFIG}\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [plugins.git-hooks.grants]\nwebhooks = true\nsecrets = [\"github_webhook_secret\"]\nchannels = [\"announce\"]\n\
         [plugins.git-hooks.config]\nchannel = \"announce\"\n"
    )
    // Info, not the tests' debug: no line per request ("roost ready" and the page's
    // address, which the harness waits for, are info).
    .replace("log = \"info,roost=debug\"", "log = \"info\"");
    let d = Daemon::start_full(
        &config,
        &[("git-hooks", GIT_HOOKS_WASM)],
        &[("ROOST_SECRET_GITHUB_WEBHOOK_SECRET", SECRET)],
    );
    let url = format!("http://{}/hooks/git-hooks", d.http_addr());
    let next = Arc::new(AtomicUsize::new(0));
    let (f, rps) = load(&url, &next);
    println!(
        "webhook in -> git-hooks -> outbox committed: median_us={:.1} p99_us={:.1}; {CLIENTS} clients: rps={rps:.0}",
        us(f.median),
        us(f.p99)
    );
    let bare = format!("{}/hooks/git-hooks", serve(runtime, ""));
    let (f, rps) = load(&bare, &next);
    println!(
        "bare hyper (axum) answering 200: median_us={:.1} p99_us={:.1}; {CLIENTS} clients: rps={rps:.0}",
        us(f.median),
        us(f.p99)
    );
    drop(d);
}

fn rss_mb(d: &Daemon) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).expect("status");
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// Idle RSS of a daemon on the starter plugins, with and without the HTTP server; each
/// read 4 s after start (past the hand-back of the pages only starting used), with the
/// page fetched once first (so the server's code is paged in).
fn idle_rss() {
    let off = Daemon::start("");
    std::thread::sleep(Duration::from_secs(4));
    let without = rss_mb(&off);
    drop(off);
    let on = Daemon::start("[http]\nlisten = \"127.0.0.1:0\"\n");
    std::thread::sleep(Duration::from_secs(4));
    let addr = on.http_addr();
    let page = roost_tests::http_raw(
        &addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status, 200);
    std::thread::sleep(Duration::from_secs(1));
    let with = rss_mb(&on);
    println!(
        "idle RSS: {without:.1} MB without [http], {with:.1} MB with it (+{:.1} MB)",
        with - without
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    outgoing(&runtime);
    webhooks(&runtime);
    idle_rss();
}

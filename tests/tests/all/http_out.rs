//! Outgoing HTTP (`wasi:http/outgoing-handler`) through the real binary and the
//! `match-feed` example plugin, against a fake JSON API on 127.0.0.1. Every refused request
//! here is an attack from SECURITY.md: an ungranted host, a private address by literal IP
//! and by a name resolving to loopback, a redirect to an ungranted host, a body over the
//! cap and a server that never answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use roost_tests::{Daemon, FAULTY_WASM, MATCH_FEED_WASM, PATIENCE};

/// A fake feed API on 127.0.0.1, stopped when dropped (the Python e2e tests use it too).
pub(super) struct FakeApi {
    pub(super) addr: SocketAddr,
    /// Requests `/feed` has answered: how a test sees the plugin's timer poll.
    pub(super) feed_hits: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApi {
    pub(super) fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake api runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind fake api");
        let addr = listener.local_addr().expect("addr");
        let port = addr.port();
        let feed_hits = Arc::new(AtomicUsize::new(0));
        let hits = feed_hits.clone();
        let app = Router::new()
            .route(
                "/feed",
                get(move || async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        r#"[{"id":"m1","title":"Ajax - PSV 2:1"},{"id":2,"title":"Feyenoord - AZ 0:0"}]"#,
                    )
                }),
            )
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .route("/garbage", get(|| async { "this is {not json" }))
            // A posted body's length and whether it came through intact (byte i is i % 251).
            .route(
                "/echo",
                post(|body: Bytes| async move {
                    let intact = body.iter().enumerate().all(|(i, b)| usize::from(*b) == i % 251);
                    format!("{} bytes, intact: {intact}", body.len())
                }),
            )
            .route(
                "/huge",
                get(|| async { vec![b'x'; 10 * 1024 * 1024].into_response() }),
            )
            // The same without a Content-Length: the cap is hit while the body streams in.
            .route(
                "/huge-chunked",
                get(|| async {
                    let chunks = (0..160).map(|_| Ok::<_, std::convert::Infallible>(vec![b'x'; 64 * 1024]));
                    axum::body::Body::from_stream(futures_util::stream::iter(chunks))
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "[]"
                }),
            )
            .route(
                "/elsewhere",
                get(move || async move {
                    (
                        StatusCode::FOUND,
                        [(header::LOCATION, format!("http://localhost:{port}/feed"))],
                    )
                }),
            )
            .route(
                "/moved",
                get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/feed")]) }),
            );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            feed_hits,
            _runtime: runtime,
        }
    }

    /// Waits until `/feed` has answered `n` requests in all.
    fn wait_for_feed_hits(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.feed_hits.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "/feed was requested {} times, not {n}",
                self.feed_hits.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A daemon running match-feed with `grants` (TOML lines) and `config` (TOML lines).
fn daemon(grants: &str, config: &str) -> Daemon {
    Daemon::start_with_plugins(
        &format!(
            "[plugins.match-feed.grants]\nchannels = [\"announce\"]\n{grants}\n\
             [plugins.match-feed.limits]\ncall_timeout_ms = 5000\n\
             [plugins.match-feed.config]\nchannel = \"announce\"\n{config}\n"
        ),
        &[("match-feed", MATCH_FEED_WASM)],
    )
}

#[test]
fn a_host_not_in_http_hosts_is_denied_and_the_log_names_the_grant_to_add() {
    let api = FakeApi::start();
    let d = daemon(&format!("http_hosts = [\"{}\"]", api.url("")), "");
    let reply = d.chat("!feed https://api.example.com/matches");
    assert!(reply.contains("denied"), "{reply}");
    d.wait_for_log("not granted to plugin `match-feed`");
    d.wait_for_log("add \"https://api.example.com\" to http_hosts");
    // Same host, other port: a different server, so denied too.
    let other = format!("http://127.0.0.1:{}/feed", api.addr.port() ^ 1);
    assert!(d.chat(&format!("!feed {other}")).contains("denied"));
}

#[test]
fn private_addresses_are_refused_by_literal_ip_and_by_a_name_resolving_to_loopback() {
    let api = FakeApi::start();
    let port = api.addr.port();
    // Granted by name and by IP, but without http_private: the resolved address decides.
    let d = daemon(
        &format!("http_hosts = [\"http://127.0.0.1:{port}\", \"http://localhost:{port}\"]"),
        "",
    );
    let by_ip = d.chat(&format!("!feed http://127.0.0.1:{port}/feed"));
    assert!(by_ip.contains("refused"), "{by_ip}");
    let by_name = d.chat(&format!("!feed http://localhost:{port}/feed"));
    assert!(by_name.contains("refused"), "{by_name}");
    d.wait_for_log("resolves to private or local address(es) 127.0.0.1");
    assert_eq!(d.count_posts("new:"), 0);
}

#[test]
fn match_feed_posts_new_entries_once_and_survives_a_misbehaving_api() {
    let api = FakeApi::start();
    let port = api.addr.port();
    let d = daemon(
        &format!(
            "http_hosts = [\"http://127.0.0.1:{port}\"]\nhttp_private = true\nhttp_timeout_ms = 1000"
        ),
        &format!("url = \"{}\"\nevery_secs = 1", api.url("/feed")),
    );
    // The timer polls; each entry is posted once, however often it polls.
    d.wait_for_post("new: Ajax - PSV 2:1");
    d.wait_for_post("new: Feyenoord - AZ 0:0");
    // Two more requests: the actor runs one timer call at a time, so once the second has
    // reached the API the first has ended, having fetched both entries again.
    let seen = api.feed_hits.load(Ordering::SeqCst);
    api.wait_for_feed_hits(seen + 2);
    assert_eq!(d.count_posts("new: Ajax"), 1, "{:#?}", d.posts());
    assert_eq!(d.count_posts("new: Feyenoord"), 1, "{:#?}", d.posts());

    let fail = d.chat(&format!("!feed {}", api.url("/fail")));
    assert!(fail.contains("HTTP 500"), "{fail}");
    let garbage = d.chat(&format!("!feed {}", api.url("/garbage")));
    assert!(garbage.contains("JSON"), "{garbage}");

    // A 10 MB body is over the default 1024 KiB cap: refused, logged, no crash.
    let huge = d.chat(&format!("!feed {}", api.url("/huge")));
    assert!(huge.contains("too large"), "{huge}");
    d.wait_for_log("over the 1048576-byte cap (http_response_kb)");

    // A server that never answers: the request ends at http_timeout_ms.
    let started = Instant::now();
    let slow = d.chat(&format!("!feed {}", api.url("/slow")));
    assert!(slow.contains("timed out"), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(4), "{slow}");

    // A redirect within the grant is followed; one to an ungranted host is refused.
    let moved = d.chat(&format!("!feed {}", api.url("/moved")));
    assert!(moved.contains("0 new entries"), "{moved}");
    let elsewhere = d.chat(&format!("!feed {}", api.url("/elsewhere")));
    assert!(elsewhere.contains("denied"), "{elsewhere}");
    d.wait_for_log(&format!("add \"http://localhost:{port}\" to http_hosts"));

    // Still alive and polling.
    assert!(d.chat("!feed").contains("0 new entries"));
    assert_eq!(d.count_posts("new: Ajax"), 1);
}

/// A body bigger than one write: the host refuses the request before reading it, so the
/// plugin's body stream breaks; the plugin must still learn why (denied), not "stream
/// closed".
#[test]
fn a_post_to_an_ungranted_host_says_denied_not_a_broken_stream() {
    let api = FakeApi::start();
    let d = Daemon::start_with_plugins(
        "[plugins.faulty.grants]\nhttp_hosts = [\"https://api.example.com\"]\n",
        &[("faulty", FAULTY_WASM)],
    );
    let reply = d.chat(&format!("!httppost {} 20000", api.url("/feed")));
    assert!(reply.contains("denied"), "{reply}");
}

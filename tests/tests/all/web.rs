//! The daemon's HTTP server (`[http]`): the status page in a real headless Chromium,
//! `/metrics` read by a Prometheus text parser, `/api/status` as JSON, bad requests
//! answered with a 4xx and a reason, the token, and `roost check` refusing an address
//! other machines can reach when no token is set.

use std::path::PathBuf;
use std::process::Command;

use roost_tests::{Daemon, FAULTY_WASM, http_raw, roost_in, starter_dir};

/// A daemon serving HTTP on a free loopback port, with the faulty plugin, and the
/// server's address (`127.0.0.1:PORT`).
fn web_daemon(extra: &str) -> (Daemon, String) {
    let d = Daemon::start_with_plugins(
        &format!("[http]\nlisten = \"127.0.0.1:0\"\n{extra}"),
        &[("faulty", FAULTY_WASM)],
    );
    let addr = d.http_addr();
    (d, addr)
}

/// Sends `request` as is and returns the status code and the body.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let reply = http_raw(addr, request.as_bytes());
    (reply.status, reply.body)
}

/// `GET path` with optional extra header lines.
fn get(addr: &str, path: &str, headers: &str) -> (u16, String) {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n"),
    )
}

/// Where tests leave files for a person to look at: `target/test-output/`.
fn test_output_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/all-… → target
    let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
    let dir = target.join("test-output");
    std::fs::create_dir_all(&dir).expect("test output dir");
    dir
}

/// Runs the system's Chromium headless on `url` with `args`; fails with how to install it.
fn chromium(profile: &std::path::Path, args: &[&str], url: &str) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium (`make test-deps` installs it)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a person opening the page sees, rendered by a real browser running its script:
/// every plugin by name, and a plugin's crash as its last error.
#[test]
fn the_status_page_shows_plugins_and_a_crash_in_headless_chromium() {
    let (d, addr) = web_daemon("");
    let reply = d.chat("!panic");
    assert!(reply.contains("plugin faulty failed"), "{reply}");
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://{addr}/");
    let dom = chromium(profile.path(), &["--dump-dom"], &url);
    for name in ["bot", "faulty"] {
        assert!(
            dom.contains(&format!("id=\"plugin-{name}\"")),
            "{name}: {dom}"
        );
    }
    assert!(dom.contains("last error:"), "{dom}");
    assert!(dom.contains("faulty panicked on purpose"), "{dom}");
    assert!(dom.contains("id=\"gateways\""), "{dom}");
    // The refresh script ran (the page is the same without it).
    assert!(dom.contains("data-live=\"on\""), "{dom}");

    let shot = test_output_dir().join("web-status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
}

/// `/metrics` is valid Prometheus text: plugin calls counted, call durations as a
/// histogram, gateway state, and this server's own requests by route and status.
#[test]
fn metrics_parse_as_prometheus_text() {
    let (d, addr) = web_daemon("");
    assert!(d.chat("!ping").to_lowercase().contains("pong"));
    let _ = get(&addr, "/no-such-page", "");
    let (status, body) = get(&addr, "/metrics", "");
    assert_eq!(status, 200, "{body}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("prometheus text");
    let find = |metric: &str, label: &str, value: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get(label) == Some(value))
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("no {metric}{{{label}={value:?}}} in\n{body}"))
    };
    match find("roost_plugin_calls_total", "plugin", "bot") {
        prometheus_parse::Value::Counter(n) => assert!(n >= 1.0, "bot calls: {n}"),
        v => panic!("calls is a counter: {v:?}"),
    }
    match find("roost_plugin_call_duration_seconds", "plugin", "bot") {
        prometheus_parse::Value::Histogram(buckets) => {
            let all = buckets.last().expect("buckets");
            assert!(
                all.less_than.is_infinite() && all.count >= 1.0,
                "{buckets:?}"
            );
        }
        v => panic!("durations are a histogram: {v:?}"),
    }
    assert_eq!(
        find("roost_gateway_connected", "gateway", "console"),
        prometheus_parse::Value::Gauge(1.0)
    );
    assert!(matches!(
        find("roost_plugin_up", "plugin", "faulty"),
        prometheus_parse::Value::Gauge(_)
    ));
    let not_found = scrape.samples.iter().find(|s| {
        s.metric == "roost_http_requests_total"
            && s.labels.get("route") == Some("other")
            && s.labels.get("status") == Some("404")
    });
    assert!(not_found.is_some(), "the 404 was counted:\n{body}");
    // The same snapshot as JSON.
    let (status, json) = get(&addr, "/api/status", "");
    assert_eq!(status, 200, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    let names: Vec<&str> = json["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"bot") && names.contains(&"faulty"),
        "{names:?}"
    );
    assert_eq!(json["gateways"][0]["state"], "connected", "{json}");
}

/// Garbage, an unknown page and a method the server does not take each get a 4xx that
/// says why, and the daemon keeps serving.
#[test]
fn a_bad_request_gets_a_4xx_with_a_reason_and_the_daemon_lives() {
    let (d, addr) = web_daemon("");
    let (status, _) = raw(&addr, "\x16\x03\x01 this is not http\r\n\r\n");
    assert_eq!(status, 400);
    let (status, body) = get(&addr, "/../../etc/passwd", "");
    assert_eq!(status, 404);
    assert!(body.contains("/api/status"), "{body}");
    let (status, body) = raw(
        &addr,
        &format!(
            "POST /metrics HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        ),
    );
    assert_eq!(status, 405);
    assert!(body.contains("only answers GET"), "{body}");
    assert_eq!(get(&addr, "/", "").0, 200);
    assert!(d.chat("!ping").to_lowercase().contains("pong"));
}

/// With a token file, a request without the token is refused; with it, served.
#[test]
fn a_token_file_makes_every_request_carry_the_token() {
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("http.token");
    std::fs::write(&token, "s3cret\n").expect("token");
    let (_d, addr) = web_daemon(&format!("token_file = {:?}\n", token.display().to_string()));
    let (status, body) = get(&addr, "/api/status", "");
    assert_eq!(status, 401);
    assert!(body.contains("Bearer"), "{body}");
    assert_eq!(
        get(&addr, "/api/status", "Authorization: Bearer nope\r\n").0,
        401
    );
    assert_eq!(
        get(&addr, "/api/status", "Authorization: Bearer s3cret\r\n").0,
        200
    );
    assert_eq!(get(&addr, "/?token=s3cret", "").0, 200);
    // The stylesheet and script are the same in every build: no token needed.
    assert_eq!(get(&addr, "/assets/live.js", "").0, 200);
}

#[test]
fn check_refuses_a_non_loopback_listen_without_a_token() {
    let dir = starter_dir();
    let path = dir.path().join("config/roost.toml");
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("\n[http]\nlisten = \"0.0.0.0:8750\"\n");
    let line = text
        .lines()
        .position(|l| l.starts_with("listen = \"0.0.0.0"))
        .expect("line")
        + 1;
    std::fs::write(&path, &text).expect("write");
    let out = roost_in(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("roost.toml:{line}:10")), "{err}");
    assert!(err.contains("token_file"), "{err}");
}

//! Webhooks in (`POST /hooks/<plugin>/…`) through the real binary and the `git-hooks`
//! example plugin: GitHub-signed deliveries posted once, bad signatures refused with 401
//! and nothing posted, oversized bodies, unknown and ungranted plugins, the wrong method,
//! and webhooks that arrive while the plugin reloads. Each refusal is an attack listed in
//! SECURITY.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use roost_tests::{
    BASE_CONFIG, Daemon, GIT_HOOKS_WASM, HELLO_WASM, HttpReply, github_signature as signature,
    http_raw,
};

/// The webhook secret both GitHub (here: the test) and the plugin know.
const SECRET: &str = "It's a Secret to Everybody";

/// A push event whose head commit says `message`.
fn push(message: &str) -> String {
    serde_json::json!({
        "ref": "refs/heads/main",
        "repository": {"full_name": "acme/site"},
        "pusher": {"name": "alice"},
        "commits": [{"message": "first"}, {"message": message}],
        "head_commit": {"message": message},
    })
    .to_string()
}

/// POSTs `body` to `path` with `headers` (name, value).
pub(super) fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpReply {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_raw(addr, request.as_bytes())
}

/// Delivers a GitHub event signed with `secret` (unsigned when `None`).
fn deliver(addr: &str, event: &str, id: &str, body: &str, secret: Option<&str>) -> HttpReply {
    let sig = secret.map(|s| signature(s, body));
    let mut headers = vec![("X-GitHub-Event", event), ("X-GitHub-Delivery", id)];
    if let Some(sig) = &sig {
        headers.push(("X-Hub-Signature-256", sig));
    }
    post(addr, "/hooks/git-hooks", &headers, body)
}

/// A daemon with git-hooks (granted webhooks, plus `grants` lines) and hello (not granted),
/// its HTTP server on a free port behind a token, and the server's address.
fn daemon(grants: &str) -> (Daemon, String, tempfile::TempDir) {
    let token_dir = tempfile::tempdir().expect("token dir");
    let token = token_dir.path().join("token");
    std::fs::write(&token, "page-token\n").expect("token");
    let config = format!(
        "{BASE_CONFIG}\n[http]\nlisten = \"127.0.0.1:0\"\ntoken_file = {:?}\n\
         [plugins.git-hooks.grants]\nwebhooks = true\nsecrets = [\"github_webhook_secret\"]\nchannels = [\"announce\"]\n{grants}\n\
         [plugins.git-hooks.config]\nchannel = \"announce\"\n",
        token.display().to_string()
    );
    let d = Daemon::start_full(
        &config,
        &[("git-hooks", GIT_HOOKS_WASM), ("hello", HELLO_WASM)],
        &[("ROOST_SECRET_GITHUB_WEBHOOK_SECRET", SECRET)],
    );
    let addr = d.http_addr();
    (d, addr, token_dir)
}

#[test]
fn signed_deliveries_are_posted_once_and_bad_signatures_get_401_and_post_nothing() {
    let (d, addr, _token) = daemon("");
    // The status page wants the token; the webhook route does not (GitHub cannot send it).
    let page = http_raw(
        &addr,
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(page.status, 401, "{}", page.body);

    let forged = deliver(
        &addr,
        "push",
        "d-1",
        &push("EVIL forged"),
        Some("a guessed secret"),
    );
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert!(forged.body.contains("does not match"), "{}", forged.body);
    let unsigned = deliver(&addr, "push", "d-2", &push("EVIL unsigned"), None);
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    // A genuine body with another body's signature: the signature covers the body.
    let swapped = post(
        &addr,
        "/hooks/git-hooks",
        &[
            ("X-GitHub-Event", "push"),
            (
                "X-Hub-Signature-256",
                &signature(SECRET, &push("Fix the build")),
            ),
        ],
        &push("EVIL swapped"),
    );
    assert_eq!(swapped.status, 401, "{}", swapped.body);

    let good = deliver(&addr, "push", "d-3", &push("Fix the build"), Some(SECRET));
    assert_eq!(good.status, 200, "{}", good.body);
    d.wait_for_post("alice pushed 2 commits to acme/site main: Fix the build");
    // GitHub redelivers after a timeout: answered, not posted again.
    let again = deliver(&addr, "push", "d-3", &push("Fix the build"), Some(SECRET));
    assert_eq!((again.status, again.body.trim()), (200, "already posted"));

    let run = serde_json::json!({
        "action": "completed",
        "repository": {"full_name": "acme/site"},
        "workflow_run": {"name": "build", "head_branch": "main", "conclusion": "failure", "html_url": "https://ci.example/1"},
    })
    .to_string();
    assert_eq!(
        deliver(&addr, "workflow_run", "d-4", &run, Some(SECRET)).status,
        200
    );
    // Posts reach the console in order, so once this one is there every earlier one is.
    d.wait_for_post("CI build on acme/site main: failure https://ci.example/1");
    assert_eq!(d.count_posts("EVIL"), 0, "{:#?}", d.posts());
    assert_eq!(d.count_posts("Fix the build"), 1, "{:#?}", d.posts());

    let metrics = http_raw(
        &addr,
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer page-token\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(
        metrics
            .body
            .contains("roost_webhook_requests_total{plugin=\"git-hooks\",status=\"401\"} 3"),
        "{}",
        metrics.body
    );
}

#[test]
fn oversized_unknown_ungranted_and_wrongly_sent_webhooks_get_a_4xx_with_a_reason() {
    let (d, addr, _token) = daemon("webhook_kb = 1");
    let big = push(&"x".repeat(2048));
    let too_big = deliver(&addr, "push", "big", &big, Some(SECRET));
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert!(too_big.body.contains("webhook_kb"), "{}", too_big.body);

    let unknown = post(&addr, "/hooks/nobody/x", &[], "{}");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // hello runs but has no `webhooks = true`: the same 404, naming nothing more.
    let ungranted = post(&addr, "/hooks/hello", &[], "{}");
    assert_eq!(ungranted.status, 404, "{}", ungranted.body);
    assert_eq!(
        ungranted.body.replace("hello", "X"),
        post(&addr, "/hooks/nobodyy", &[], "{}")
            .body
            .replace("nobodyy", "X")
    );

    let get = http_raw(
        &addr,
        format!("GET /hooks/git-hooks HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(get.status, 405, "{}", get.body);
    assert_eq!(get.header("allow"), Some("POST"));

    // Still serving: a small signed push goes through.
    let ok = deliver(&addr, "push", "small", &push("small one"), Some(SECRET));
    assert_eq!(ok.status, 200, "{}", ok.body);
    d.wait_for_post("small one");
}

/// While the plugin is reloaded over and over, every webhook gets either a 200 whose
/// event is posted, or a 503 with `Retry-After`: never a 200 for an event that is lost.
#[test]
fn webhooks_during_reloads_are_answered_or_told_to_retry_and_none_is_lost() {
    let (d, addr, _token) = daemon("");
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (addr, done) = (addr.clone(), done.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            let mut i = 0;
            while !done.load(Ordering::SeqCst) || i < 20 {
                let message = format!("reload push #{i}");
                let r = deliver(
                    &addr,
                    "push",
                    &format!("r-{i}"),
                    &push(&message),
                    Some(SECRET),
                );
                answers.push((message, r));
                i += 1;
            }
            answers
        })
    };
    for _ in 0..5 {
        let reply = d.chat("!reload git-hooks");
        assert!(reply.contains("reloaded"), "{reply}");
    }
    done.store(true, Ordering::SeqCst);
    let answers = sender.join().expect("sender thread");
    let mut posted = 0;
    for (message, r) in &answers {
        match r.status {
            200 => {
                d.wait_for_post(&format!("main: {message}"));
                posted += 1;
            }
            503 => assert!(r.header("retry-after").is_some(), "{r:?}"),
            other => panic!("{message}: answered {other}: {}", r.body),
        }
    }
    assert!(posted > 0, "no webhook got through: {answers:#?}");
}

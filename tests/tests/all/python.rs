//! Python plugins end to end, through the real binary only: `roost new --lang python`,
//! `roost build --install` (which installs componentize-py into the user's cache the
//! first time: pip must reach the Python package index once), then chat. Each test builds
//! and loads one Python plugin (about 10 s each), so there are few of them.

use std::time::{Duration, Instant};

use roost_tests::dns::{DnsServer, test_zones};
use roost_tests::{BASE_CONFIG, Daemon, FAULTY_WASM, StartOptions, roost_in};

/// A Python component is 18 MB; its first compile in a debug host takes tens of seconds.
const LOAD_PATIENCE: Duration = Duration::from_secs(300);

fn chat_until_slow(d: &Daemon, line: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let reply = d.chat(line);
        if ok(&reply) {
            return reply;
        }
        assert!(
            start.elapsed() < LOAD_PATIENCE,
            "{line:?} never gave the expected reply; last:\n{reply}\nlog:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_new_python_plugin_builds_installs_answers_keeps_kv_and_survives_exceptions() {
    let d = Daemon::start("");
    let work = tempfile::tempdir().expect("tempdir");
    let out = roost_in(work.path(), &["new", "dice", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("dice");

    // A command that raises: answered with type, message and the plugin's own line.
    let source = std::fs::read_to_string(project.join("dice.py")).expect("read");
    let source = source.replace(
        "    @command(help=\"the last roll\")",
        "    @command(help=\"divide\")\n    def div(self, ctx, n: int):\n        return str(10 // n)\n\n    @command(help=\"the last roll\")",
    );
    std::fs::write(project.join("dice.py"), &source).expect("write");

    let started = Instant::now();
    let config = d.config_path();
    let out = roost_in(
        &project,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "build",
            "--install",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("roost build --install: {:?}", started.elapsed());
    assert!(d.plugins_dir().join("dice.wasm").is_file());

    let loaded = Instant::now();
    chat_until_slow(&d, "!help", |r| r.contains("!roll"));
    eprintln!("first load: {:?}", loaded.elapsed());
    let rolled = d.chat("!roll 2d6");
    assert!(rolled.starts_with("console rolled 2d6: "), "{rolled}");
    let total = rolled
        .trim()
        .rsplit(": ")
        .next()
        .expect("total")
        .to_string();
    assert_eq!(d.chat("!roll").trim(), "usage: !roll NdM");

    // KV outlives the instance.
    d.chat("!reload dice");
    chat_until_slow(&d, "!last", |r| {
        r.trim() == format!("console rolled {total}")
    });

    let (ok, failed) = d.chat_outcome("!div 0");
    assert!(!ok, "{failed}");
    // The component's CPython (3.14) words it "division by zero".
    assert!(
        failed.contains("ZeroDivisionError: ") && failed.contains("by zero"),
        "{failed}"
    );
    assert!(
        failed.contains("dice.py:") && failed.contains("in div"),
        "{failed}"
    );
    assert_eq!(d.chat("!div 5").trim(), "2", "the next command is served");
}

#[test]
fn a_syntax_error_is_reported_by_roost_build_with_file_and_line() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = roost_in(work.path(), &["new", "broken", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("broken");
    let mut source = std::fs::read_to_string(project.join("broken.py")).expect("read");
    let line = source.lines().count() + 1;
    source.push_str("def oops(:\n");
    std::fs::write(project.join("broken.py"), source).expect("write");
    let out = roost_in(&project, &["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("broken.py:{line}:")) && said.contains("SyntaxError"),
        "{said}"
    );
}

/// A Python plugin using capabilities beyond kv: `secrets` (uncaught refusals answer the
/// host's message), `sqlite` (every storage class back, a blob parameter) and memory.
const PYCAP: &str = r#"# Secrets, sqlite, DNS and memory, end to end.

from roost import Plugin, command, dns, secrets, sqlite


class Pycap(Plugin):
    @command(help="read a secret")
    def pysecret(self, ctx, name: str):
        return f"{name}: {len(secrets.get(name))} bytes"

    @command(help="query a granted database with one blob parameter")
    def pysql(self, ctx, path: str, *words: str):
        with sqlite.open(path) as db:
            cursor = db.execute(" ".join(words), [b"\x00\xff"])
            lines = [",".join(cursor.columns)]
            lines += [" ".join(f"{sqlite.type_name(v)}:{v!r}" for v in row) for row in cursor]
        return "\n".join(lines)

    @command(help="ask each NAME/TYPE at once; a line per answer or failure")
    def pydns(self, ctx, server: str, *asks: str):
        questions = [dns.Question(*a.split("/", 1), server=server) for a in asks]
        lines = []
        for q, r in zip(questions, dns.lookup_many(questions)):
            if isinstance(r, Exception):
                lines.append(f"{q.name} {q.rtype}: {type(r).__name__}: {r}")
            else:
                lines.append(" ".join([f"{q.name} {q.rtype}:", r.rcode] + [x.data for x in r.answer]))
        return "\n".join(lines)

    @command(help="hold MiB of memory")
    def hold(self, ctx, mib: int):
        self.held = None
        self.held = bytearray(mib * 1024 * 1024)
        return f"holding {mib} MiB"
"#;

#[test]
fn a_python_plugin_is_refused_like_a_rust_one_reads_granted_secrets_sqlite_and_dns_and_gets_python_memory()
 {
    const SECRET: &str = "RGAPI-python-plugin-test-key";
    let work = tempfile::tempdir().expect("tempdir");
    let db = work.path().join("shop.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("create db");
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER, name TEXT, price REAL, photo BLOB);
             INSERT INTO items VALUES (1, 'tea', 2.5, x'89504e47'), (2, CAST(x'ff41' AS TEXT), NULL, NULL);",
        )
        .expect("fill db");
    }
    let dns_server = DnsServer::start(&test_zones());
    // The Rust fixture plugin and the Python plugin are granted the same secret.
    let config = format!(
        "{BASE_CONFIG}\n[plugins.faulty.grants]\nsecrets = [\"riot_api_key\"]\n\n\
         [plugins.pycap.grants]\nsecrets = [\"riot_api_key\"]\nsqlite_read = [{:?}]\n\
         dns_servers = [{:?}]\n",
        db.display().to_string(),
        dns_server.addr()
    );
    let d = Daemon::start_with(
        &config,
        &[("faulty", FAULTY_WASM)],
        StartOptions {
            env: &[("ROOST_SECRET_RIOT_API_KEY", SECRET)],
            ..StartOptions::default()
        },
    );

    let out = roost_in(work.path(), &["new", "pycap", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("pycap");
    std::fs::write(project.join("pycap.py"), PYCAP).expect("write plugin");
    let config_path = d.config_path();
    let out = roost_in(
        &project,
        &[
            "--config",
            config_path.to_str().expect("utf-8"),
            "build",
            "--install",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    chat_until_slow(&d, "!help", |r| r.contains("!pysecret"));

    // A secret the grants do not name: the Python plugin's uncaught exception is answered
    // exactly as the Rust plugin's `?` is, but for the command and the plugin's name.
    let (ok, rust) = d.chat_outcome("!secretleak other_key");
    assert!(!ok, "{rust}");
    assert!(
        rust.contains(
            "access denied: secret `other_key` is not granted to plugin `faulty` (add \"other_key\" to secrets in [plugins.faulty.grants])"
        ),
        "{rust}"
    );
    let (ok, python) = d.chat_outcome("!pysecret other_key");
    assert!(!ok, "{python}");
    let expected = rust
        .replace("!secretleak", "!pysecret")
        .replace("plugin `faulty`", "plugin `pycap`")
        .replace("[plugins.faulty.", "[plugins.pycap.");
    assert_eq!(python, expected);

    // Granted: the secret, and a query on the granted database with every storage class,
    // TEXT that is not UTF-8 included, and a blob parameter.
    assert_eq!(
        d.chat("!pysecret riot_api_key").trim(),
        format!("riot_api_key: {} bytes", SECRET.len())
    );
    let rows = d.chat(&format!(
        "!pysql {} SELECT id, name, price, photo, ? AS p FROM items ORDER BY id",
        db.display()
    ));
    assert_eq!(
        rows.trim(),
        "id,name,price,photo,p\n\
         integer:1 text:'tea' real:2.5 blob:b'\\x89PNG' blob:b'\\x00\\xff'\n\
         integer:2 text:TextBytes(b'\\xffA') null:None null:None blob:b'\\x00\\xff'",
        "{rows}"
    );
    let (ok, refused) = d.chat_outcome(&format!("!pysql {} DELETE FROM items", db.display()));
    assert!(
        !ok && refused.contains("access denied: statement refused"),
        "{refused}"
    );

    // DNS, several questions in one host call: answers in order, a failure in its place.
    let answers = d.chat(&format!(
        "!pydns {0} www.example.test/CNAME gone.example.test/A app.hosted.test/AAAA \
         www.example.test/NOPE",
        dns_server.addr()
    ));
    assert_eq!(
        answers.trim(),
        "www.example.test CNAME: NOERROR app.hosted.test.\n\
         gone.example.test A: NXDOMAIN\n\
         app.hosted.test AAAA: NOERROR 2001:db8::80\n\
         www.example.test NOPE: InvalidArgument: invalid argument: record type `NOPE`",
        "{answers}"
    );

    // Memory: 100 MiB is more than the default memory_mb (64) and fits python_memory_mb
    // (128), which the host gives a component it recognises as Python.
    assert_eq!(d.chat("!hold 100").trim(), "holding 100 MiB");
    // The plugin's own memory_mb wins: the config change reloads it, and 100 MiB no longer
    // fits.
    d.write_config_raw(&format!(
        "{config}\n[plugins.pycap.limits]\nmemory_mb = 64\n"
    ));
    let refused = chat_until_slow(&d, "!hold 100", |r| r.contains("MemoryError"));
    assert!(refused.contains("at pycap.py:"), "{refused}");
    assert_eq!(d.chat("!hold 32").trim(), "holding 32 MiB");
}

/// A Python plugin with webhooks in (a GitHub-signed push posted to chat) and HTTP out (a
/// JSON list fetched, a body posted, redirects, refusals).
const PYWEB: &str = r#"# Webhooks in and HTTP out, end to end.

from roost import Plugin, chat, command, http, secrets, webhook


class Pyweb(Plugin):
    def on_webhook(self, request):
        try:
            webhook.verify_github(secrets.get("github_webhook_secret"), request)
        except webhook.SignatureError as e:
            return webhook.Response.text(str(e), status=401)
        if request.path == "/bad":
            return "not a response"
        if request.path == "/boom":
            raise RuntimeError("kaboom")
        push = request.json()
        chat.send("announce", f"{push['pusher']['name']} pushed: {push['head_commit']['message']}")
        return webhook.Response.text("posted")

    @command(help="fetch a JSON list of entries, within timeout seconds if given")
    def fetch(self, ctx, url: str, timeout: float = 0.0):
        request = http.Request("GET", url)
        if timeout:
            request.timeout(timeout)
        entries = request.send().raise_for_status().json()
        return "titles: " + ", ".join(e["title"] for e in entries)

    @command(help="post n bytes")
    def upload(self, ctx, url: str, n: int):
        return http.post(url, bytes(i % 251 for i in range(n))).text()
"#;

/// A GitHub push whose head commit says `message`, by alice.
fn push(message: &str) -> String {
    serde_json::json!({"pusher": {"name": "alice"}, "head_commit": {"message": message}})
        .to_string()
}

#[test]
fn a_python_plugin_takes_signed_webhooks_and_fetches_json_from_granted_hosts_only() {
    use super::http_out::FakeApi;
    use super::webhooks::post;
    use roost_tests::github_signature as signature;
    const SECRET: &str = "It's a Secret to Everybody";

    let api = FakeApi::start();
    let port = api.addr.port();
    let work = tempfile::tempdir().expect("tempdir");
    let token = work.path().join("token");
    std::fs::write(&token, "page-token\n").expect("token");
    let config = format!(
        "{BASE_CONFIG}\n[http]\nlisten = \"127.0.0.1:0\"\ntoken_file = {:?}\n\n\
         [plugins.pyweb.grants]\nwebhooks = true\nsecrets = [\"github_webhook_secret\"]\n\
         channels = [\"announce\"]\nhttp_hosts = [\"http://127.0.0.1:{port}\"]\nhttp_private = true\n",
        token.display().to_string()
    );
    let d = Daemon::start_full(
        &config,
        &[],
        &[("ROOST_SECRET_GITHUB_WEBHOOK_SECRET", SECRET)],
    );
    let addr = d.http_addr();

    let out = roost_in(work.path(), &["new", "pyweb", "--lang", "python"]);
    assert!(out.status.success(), "{}", text(&out));
    let project = work.path().join("pyweb");
    std::fs::write(project.join("pyweb.py"), PYWEB).expect("write plugin");
    let config_path = d.config_path();
    let out = roost_in(
        &project,
        &[
            "--config",
            config_path.to_str().expect("utf-8"),
            "build",
            "--install",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    chat_until_slow(&d, "!help", |r| r.contains("!fetch"));

    // (a) Webhooks: a forged and an unsigned push get 401, a signed one is posted.
    let hook = |body: &str, sig: Option<&str>, path: &str| {
        let mut headers = vec![("X-GitHub-Event", "push")];
        let sig = sig.map(|s| signature(s, body));
        if let Some(sig) = &sig {
            headers.push(("X-Hub-Signature-256", sig.as_str()));
        }
        post(&addr, &format!("/hooks/pyweb{path}"), &headers, body)
    };
    let forged = hook(&push("EVIL forged"), Some("a guessed secret"), "");
    assert_eq!(
        (forged.status, forged.body.trim()),
        (401, "the signature does not match")
    );
    let unsigned = hook(&push("EVIL unsigned"), None, "");
    assert_eq!(
        (unsigned.status, unsigned.body.trim()),
        (401, "no x-hub-signature-256 header")
    );
    // A return value that is not a Response: a 500 saying so, not a trap.
    let bad = hook(&push("EVIL bad"), Some(SECRET), "/bad");
    assert_eq!(bad.status, 500, "{}", bad.body);
    assert!(
        bad.body.contains("not a roost.webhook.Response"),
        "{}",
        bad.body
    );
    // An exception: a 500 that tells the caller nothing more, the reason in the log.
    let boom = hook(&push("EVIL boom"), Some(SECRET), "/boom");
    assert_eq!(boom.status, 500, "{}", boom.body);
    assert!(!boom.body.contains("kaboom"), "{}", boom.body);
    let good = hook(&push("Fix the build"), Some(SECRET), "");
    assert_eq!((good.status, good.body.trim()), (200, "posted"));
    // Posts reach the console in order: once this one is there, every earlier one is.
    d.wait_for_post("alice pushed: Fix the build");
    assert_eq!(d.count_posts("EVIL"), 0, "{:#?}", d.posts());

    // (b) HTTP out: JSON from the granted fake API, a body of several 4 KiB chunks, a
    // redirect within the grant.
    let fetched = d.chat(&format!("!fetch {}", api.url("/feed")));
    assert_eq!(
        fetched.trim(),
        "titles: Ajax - PSV 2:1, Feyenoord - AZ 0:0",
        "{}",
        d.log()
    );
    let uploaded = d.chat(&format!("!upload {} 10000", api.url("/echo")));
    assert_eq!(uploaded.trim(), "10000 bytes, intact: true");
    let moved = d.chat(&format!("!fetch {}", api.url("/moved")));
    assert!(moved.starts_with("titles: Ajax"), "{moved}");
    let hits = api.feed_hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(hits, 2, "one fetch and one redirect reached /feed");

    // Refusals: an ungranted host (the same server by another name), a redirect to it,
    // an error status, a body over the cap. None reaches /feed again.
    let (ok, denied) = d.chat_outcome(&format!("!fetch http://localhost:{port}/feed"));
    assert!(!ok, "{denied}");
    assert!(
        denied.contains(&format!("access denied: http://localhost:{port}/feed: the host is not in this plugin's http_hosts grant")),
        "{denied}"
    );
    // A body for an ungranted host: the refusal, not a broken body stream.
    let (ok, upload) = d.chat_outcome(&format!("!upload http://localhost:{port}/echo 100000"));
    assert!(!ok && upload.contains("access denied"), "{upload}");
    let (ok, redirected) = d.chat_outcome(&format!("!fetch {}", api.url("/elsewhere")));
    assert!(!ok && redirected.contains("access denied"), "{redirected}");
    let (ok, failed) = d.chat_outcome(&format!("!fetch {}", api.url("/fail")));
    assert!(!ok, "{failed}");
    // Uncaught, a StatusError is answered as one line, as a Rust plugin's `?` is.
    assert!(
        failed.contains(&format!("HTTP 500: {}", api.url("/fail"))) && !failed.contains(" at "),
        "{failed}"
    );
    let (ok, huge) = d.chat_outcome(&format!("!fetch {}", api.url("/huge")));
    assert!(!ok && huge.contains("too large"), "{huge}");
    // A server that never answers, with the plugin's own timeout.
    let started = std::time::Instant::now();
    let (ok, slow) = d.chat_outcome(&format!("!fetch {} 0.5", api.url("/slow")));
    assert!(
        !ok && slow.contains(&format!("timeout: {}", api.url("/slow"))),
        "{slow}"
    );
    assert!(started.elapsed() < Duration::from_secs(4), "{slow}");
    // Past the cap mid-stream (no Content-Length): the error comes from the body stream.
    let (ok, streamed) = d.chat_outcome(&format!("!fetch {}", api.url("/huge-chunked")));
    assert!(!ok && streamed.contains("too large"), "{streamed}");
    assert_eq!(
        api.feed_hits.load(std::sync::atomic::Ordering::SeqCst),
        hits
    );
    // Still serving.
    assert!(
        d.chat(&format!("!fetch {}", api.url("/feed")))
            .starts_with("titles:")
    );
}

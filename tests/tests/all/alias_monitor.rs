//! alias-monitor against a real authoritative DNS server on 127.0.0.1 (the fixture in
//! `roost_tests::dns`), driven the way a user drives it: `roost invoke alias-monitor check`,
//! `!dns` in chat, and the watch timer posting to a channel only when findings change.

use roost_tests::dns::{DnsServer, bench_zone, test_zones};
use roost_tests::{Daemon, roost_in, starter_dir};

/// Config granting the fixture server and asking it for every lookup, with room in the
/// query budget for checking 150 names at once.
fn monitor_config(server: &DnsServer, extra: &str) -> String {
    let addr = server.addr();
    format!(
        "[plugins.alias-monitor.grants]\ndns_servers = [\"{addr}\"]\nchannels = [\"announce\"]\n\
         dns_queries_per_minute = 5000\n\
         [plugins.alias-monitor.limits]\ncall_timeout_ms = 30000\n\
         [plugins.alias-monitor.config]\nservers = [\"{addr}\"]\nchannel = \"announce\"\n{extra}"
    )
}

/// `roost invoke alias-monitor check NAME` in a starter dir whose config grants `server`
/// (replacing the starter's alias-monitor section).
fn check_with(server: &DnsServer, extra: &str, name: &str) -> (bool, String) {
    let (code, text) = invoke_check(server, extra, &[name]);
    (code == Some(0), text)
}

/// `roost invoke alias-monitor check ARGS…` (as [`check_with`]): its exit code, and its
/// stdout and stderr.
fn invoke_check(server: &DnsServer, extra: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = starter_dir();
    let path = dir.path().join("config/roost.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let cut = text
        .find("[plugins.alias-monitor]")
        .expect("starter has alias-monitor");
    let text = format!(
        "{}[plugins.alias-monitor]\n{}",
        &text[..cut],
        monitor_config(server, extra)
    );
    std::fs::write(&path, text).expect("write config");
    let mut argv = vec!["invoke", "alias-monitor", "check"];
    argv.extend(args);
    let out = roost_in(dir.path(), &argv);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn check(server: &DnsServer, name: &str) -> String {
    let (ok, report) = check_with(server, "", name);
    assert!(ok, "invoke failed:\n{report}");
    report
}

fn has_problem(report: &str) -> bool {
    report.contains("error:") || report.contains("warning:")
}

#[test]
fn a_cname_at_the_apex_is_an_error_citing_the_rfcs() {
    let server = DnsServer::start(&test_zones());
    let report = check(&server, "apex-cname.test");
    assert!(report.contains("error: CNAME at the zone apex"), "{report}");
    assert!(report.contains("RFC 1034 §3.6.2"), "{report}");
    assert!(report.contains("RFC 2181 §10.1"), "{report}");
    assert!(
        report.contains("apex-cname.test. 300 CNAME app.hosted.test."),
        "the proof is shown: {report}"
    );
}

#[test]
fn healthy_names_have_no_findings() {
    let server = DnsServer::start(&test_zones());
    for name in [
        "example.test",
        "www.example.test.",
        "WWW.Example.Test",
        "flat.test",
        "app.hosted.test",
        "anything.deep.wild.example.test",
        "bücher.example.test",
    ] {
        let report = check(&server, name);
        assert!(report.contains("ok, no problems found"), "{name}: {report}");
        assert!(!has_problem(&report), "{name}: {report}");
    }
}

#[test]
fn each_broken_alias_is_found_with_its_own_finding() {
    let server = DnsServer::start(&test_zones());
    for (name, needle) in [
        ("both.example.test", "CNAME beside other data"),
        ("dangling.example.test", "is NXDOMAIN"),
        ("noaddr.example.test", "has no addresses"),
        ("blog.example.test", "likely takeover risk"),
        ("chain1.example.test", "CNAME chain of 5 links"),
        ("loop-a.example.test", "CNAME loop"),
        (
            "aliased-targets.test",
            "MX exchange of aliased-targets.test is an alias",
        ),
        (
            "aliased-targets.test",
            "NS name server of aliased-targets.test is an alias",
        ),
        (
            "aliased-targets.test",
            "SOA MNAME of aliased-targets.test is an alias",
        ),
        ("_sip._tcp.aliased-targets.test", "SRV target"),
    ] {
        let report = check(&server, name);
        assert!(
            report.contains(needle),
            "{name} should report {needle:?}:\n{report}"
        );
    }
}

/// More names than the plugin asks ahead for at once (128), healthy and broken mixed: the
/// questions of many checks go out as concurrent batches (`dns.lookup-many`), and each
/// name's report must be what checking it alone gives.
#[test]
fn many_names_in_one_check_get_the_reports_each_gets_alone() {
    let mut zones = test_zones();
    zones.push(bench_zone(150));
    let server = DnsServer::start(&zones);
    let broken = [
        "both.example.test",
        "dangling.example.test",
        "noaddr.example.test",
        "blog.example.test",
        "chain1.example.test",
        "loop-a.example.test",
        "aliased-targets.test",
        "gone.example.test",
    ];
    let healthy: Vec<String> = (0..150).map(|i| format!("name{i}.bench.test")).collect();
    let mut names: Vec<&str> = healthy.iter().map(String::as_str).collect();
    for (i, name) in broken.iter().enumerate() {
        names.insert(i * 20, name);
    }
    let (code, all) = invoke_check(&server, "", &names);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains(&format!("checked {} names", names.len())),
        "{all}"
    );
    for name in broken
        .iter()
        .chain(["name0.bench.test", "name149.bench.test"].iter())
    {
        let alone = check(&server, name);
        assert!(
            all.contains(alone.trim_end()),
            "{name} alone:\n{alone}\nis not in the run of all:\n{all}"
        );
    }
    assert_eq!(all.matches("ok, no problems found").count(), 150, "{all}");
}

#[test]
fn a_flattened_apex_that_drifted_from_its_target_is_reported() {
    let server = DnsServer::start(&test_zones());
    let expect = "[plugins.alias-monitor.config.expect]\n\"drift.test\" = \"app.hosted.test\"\n\
                  \"flat.test\" = \"app.hosted.test\"\n\"www.example.test\" = \"other.hosted.test\"\n";
    let (_, drift) = check_with(&server, expect, "drift.test");
    assert!(drift.contains("flattened apex drift"), "{drift}");
    assert!(drift.contains("192.0.2.99"), "{drift}");
    let (_, flat) = check_with(&server, expect, "flat.test");
    assert!(!has_problem(&flat), "a correct flattening is fine: {flat}");
    let (_, www) = check_with(&server, expect, "www.example.test");
    assert!(
        www.contains("points to app.hosted.test., expected other.hosted.test."),
        "{www}"
    );
}

#[test]
fn two_servers_that_disagree_are_reported() {
    let a = DnsServer::start(&test_zones());
    let b = DnsServer::start(&test_zones());
    b.set(
        "www.example.test.",
        "CNAME",
        300,
        &["elsewhere.hosted.test."],
    );
    let dir = starter_dir();
    let path = dir.path().join("config/roost.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let cut = text
        .find("[plugins.alias-monitor]")
        .expect("alias-monitor section");
    let (aa, ba) = (a.addr(), b.addr());
    std::fs::write(
        &path,
        format!(
            "{}[plugins.alias-monitor.grants]\ndns_servers = [\"{aa}\", \"{ba}\"]\n\
             [plugins.alias-monitor.config]\nservers = [\"{aa}\", \"{ba}\"]\n",
            &text[..cut]
        ),
    )
    .expect("write");
    let out = roost_in(
        dir.path(),
        &["invoke", "alias-monitor", "check", "www.example.test"],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("servers disagree"), "{report}");
}

#[test]
fn a_stopped_server_is_unreachable_never_gone() {
    let server = DnsServer::start(&test_zones());
    server.stop();
    let report = check(&server, "www.example.test");
    assert!(report.contains("unreachable"), "{report}");
    assert!(!report.contains("NXDOMAIN"), "{report}");
    assert!(!report.contains("does not exist"), "{report}");
}

#[test]
fn a_server_that_is_not_granted_is_refused() {
    let granted = DnsServer::start(&test_zones());
    let other = DnsServer::start(&test_zones());
    let dir = starter_dir();
    let path = dir.path().join("config/roost.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let cut = text
        .find("[plugins.alias-monitor]")
        .expect("alias-monitor section");
    std::fs::write(
        &path,
        format!(
            "{}[plugins.alias-monitor.grants]\ndns_servers = [\"{}\"]\n\
             [plugins.alias-monitor.config]\nservers = [\"{}\"]\n",
            &text[..cut],
            granted.addr(),
            other.addr()
        ),
    )
    .expect("write");
    let out = roost_in(
        dir.path(),
        &["invoke", "alias-monitor", "check", "example.test"],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("not granted"), "{text}");
    assert!(!text.contains("ok, no problems found"), "{text}");
}

#[test]
fn the_monitor_posts_once_per_change_and_once_when_fixed() {
    let server = DnsServer::start(&test_zones());
    let d = Daemon::start("");
    d.rewrite_config(&monitor_config(
        &server,
        "names = [\"www.example.test\", \"example.test\"]\ninterval_secs = 1\n",
    ));
    let state = d.chat_until("!dns", |r| r.contains("www.example.test: ok"));
    assert!(state.contains("watching 2 names"), "{state}");
    // Break it: point the alias at a name that does not exist.
    server.set("www.example.test.", "CNAME", 300, &["gone.hosted.test."]);
    d.wait_for_posts(
        "www.example.test now aliases gone.hosted.test (was app.hosted.test)",
        1,
    );
    let posts = d.posts();
    assert!(
        posts.iter().all(|p| !p.text.contains("→ (none)")),
        "the old target did not lose its addresses: {posts:#?}"
    );
    // Several more rounds with nothing new: still one post.
    // Wait for two later rounds (each changes the reply's check times), then count.
    let mut seen = d.chat("!dns");
    for _ in 0..2 {
        seen = d.chat_until("!dns", |r| r != seen);
    }
    assert_eq!(
        d.count_posts("www.example.test now aliases"),
        1,
        "one post for one change:\n{}",
        d.log()
    );
    // Fix it: one more post, saying what was fixed.
    server.set("www.example.test.", "CNAME", 300, &["app.hosted.test."]);
    d.wait_for_posts(
        "www.example.test now aliases app.hosted.test (was gone.hosted.test)",
        1,
    );
    assert!(d.count_posts("fixed") >= 1, "{}", d.log());
    // The healthy apex never posted.
    assert_eq!(d.count_posts("example.test: "), 0, "{}", d.log());
}

#[test]
fn a_ttl_change_is_one_changed_post_and_an_outage_is_not_a_change() {
    let server = DnsServer::start(&test_zones());
    let d = Daemon::start("");
    d.rewrite_config(&monitor_config(
        &server,
        "names = [\"www.example.test\"]\ninterval_secs = 1\n",
    ));
    d.chat_until("!dns", |r| r.contains("www.example.test: ok"));
    server.set("www.example.test.", "CNAME", 60, &["app.hosted.test."]);
    d.wait_for_posts("records changed (CNAME TTL 300 → 60)", 1);
    server.stop();
    d.wait_for_posts("unreachable", 1);
    server.resume();
    d.wait_for_posts("fixed", 1);
    assert_eq!(
        d.count_posts("records changed"),
        1,
        "an outage is never a record change:\n{}",
        d.log()
    );
    let posts = d.posts();
    assert!(
        posts.iter().all(|p| !p.text.contains("NXDOMAIN")),
        "{posts:#?}"
    );
}

#[test]
fn chat_checks_any_name_for_a_trusted_user() {
    let server = DnsServer::start(&test_zones());
    let d = Daemon::start("");
    d.rewrite_config(&monitor_config(&server, "names = []\n"));
    let reply = d.chat_until("!dns check loop-a.example.test", |r| {
        !r.contains("unknown command")
    });
    assert!(reply.contains("CNAME loop"), "{reply}");
    let usage = d.chat("!check");
    assert!(usage.contains("!check <name>"), "{usage}");
}

/// A resolver with no upstream answers NXDOMAIN for every name: the monitor says so about
/// the resolver, and never that the names do not exist.
#[test]
fn a_resolver_answering_nxdomain_for_everything_is_blamed_not_the_names() {
    let server = DnsServer::start_nxdomain_for_all();
    for name in ["example.org", "github.com", "."] {
        let report = check(&server, name);
        assert!(
            report.contains(&format!(
                "the resolver at {} answers NXDOMAIN for everything; can't judge",
                server.addr()
            )),
            "{name}: {report}"
        );
        assert!(
            !report.contains("does not exist") && !report.contains("re-create"),
            "{name}: {report}"
        );
    }
}

/// `check --exit-code` exits 1 when it finds a warning or an error, for scripts and CI.
#[test]
fn check_exit_code_is_one_on_problems() {
    let server = DnsServer::start(&test_zones());
    let (code, report) = invoke_check(&server, "", &["--exit-code", "dangling.example.test"]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("error: dangling alias"),
        "the report is shown: {report}"
    );
    let (code, report) = invoke_check(&server, "", &["www.example.test", "--exit-code"]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("ok, no problems found"), "{report}");
    let (code, report) = invoke_check(&server, "", &["dangling.example.test"]);
    assert_eq!(
        code,
        Some(0),
        "without the option problems are no failure: {report}"
    );
}

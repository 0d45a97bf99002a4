//! Each finding, each healthy case, and the failure modes, driven through the engine with
//! the in-memory zone table of `common`.

mod common;

use alias_monitor::engine::report;
use alias_monitor::engine::suffixes::TABLE_DATE;
use alias_monitor::engine::{Check, CheckSettings, Fqdn, Kind, Resolver, Severity, check};
use common::{Behavior, S1, S2, Zones};

fn settings(servers: &[&str]) -> CheckSettings {
    CheckSettings {
        servers: servers.iter().map(|s| s.to_string()).collect(),
        max_chain: 3,
    }
}

fn run_with(zones: Zones, name: &str, expect: Option<&str>, s: &CheckSettings) -> (Check, Zones) {
    let mut res = Resolver::new(zones);
    let name = Fqdn::parse(name).unwrap();
    let expect = expect.map(|e| Fqdn::parse(e).unwrap());
    let c = check(&name, expect.as_ref(), s, &mut res);
    let zones = res.inner().clone();
    (c, zones)
}

fn run(name: &str) -> Check {
    run_with(Zones::world(), name, None, &settings(&[S1])).0
}

fn kinds(c: &Check) -> Vec<Kind> {
    c.findings.iter().map(|f| f.kind).collect()
}

fn only(c: &Check, kind: Kind) -> &alias_monitor::engine::Finding {
    let found: Vec<_> = c.findings.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(found.len(), 1, "{kind:?} in {}", report::render(c));
    found[0]
}

fn assert_healthy(c: &Check) {
    let text = report::render(c);
    assert!(c.findings.is_empty(), "{text}");
    assert!(c.reliable, "{text}");
    assert!(text.contains("ok, no problems found"), "{text}");
    let lower = text.to_lowercase();
    assert!(
        !lower.contains("error") && !lower.contains("warning"),
        "{text}"
    );
}

#[test]
fn a_healthy_apex_and_a_healthy_alias_have_no_findings() {
    let apex = run("example.test");
    assert_healthy(&apex);
    assert!(apex.apex);
    let text = report::render(&apex);
    assert!(text.contains("example.test. 300 A 192.0.2.1"), "{text}");
    assert!(
        text.contains("example.test. 300 MX 10 mail.example.test."),
        "{text}"
    );

    let www = run("www.example.test");
    assert_healthy(&www);
    assert!(!www.apex);
    let text = report::render(&www);
    assert!(
        text.contains("www.example.test. 300 CNAME app.hosted.test."),
        "{text}"
    );
    assert!(
        text.contains("app.hosted.test. 300 AAAA 2001:db8::10"),
        "{text}"
    );
    assert_healthy(&run("_xmpp._tcp.example.test"));
}

#[test]
fn a_cname_at_the_apex_is_an_error_with_the_soa_as_proof() {
    let c = run("apex.test");
    let f = only(&c, Kind::ApexCname);
    assert_eq!(f.severity(), Severity::Error);
    assert!(
        f.proof
            .iter()
            .any(|p| p == "apex.test. 300 CNAME app.hosted.test."),
        "{f:?}"
    );
    assert!(
        f.proof.iter().any(|p| p.starts_with("apex.test. 300 SOA ")),
        "{f:?}"
    );
    assert_eq!(f.kind.reference(), Some("RFC 1034 §3.6.2, RFC 2181 §10.1"));
    let text = report::render(&c);
    assert!(
        text.contains("use your provider's ALIAS/ANAME/flattening, or A/AAAA records"),
        "{text}"
    );
    assert!(!kinds(&c).contains(&Kind::CnameBesideData), "{text}");
}

#[test]
fn a_server_that_lets_the_cname_win_still_shows_the_apex_through_ns() {
    let mut zones = Zones::world();
    zones.server(S1).chase = true;
    let (c, _) = run_with(zones, "apex.test", None, &settings(&[S1]));
    let f = only(&c, Kind::ApexCname);
    assert!(
        f.proof.iter().any(|p| p.starts_with("apex.test. 300 NS ")),
        "{f:?}"
    );
}

#[test]
fn a_cname_beside_other_data_names_the_other_types() {
    let c = run("mixed.example.test");
    let f = only(&c, Kind::CnameBesideData);
    assert_eq!(f.severity(), Severity::Error);
    assert!(f.title.contains("CNAME with MX, TXT"), "{}", f.title);
    assert!(
        f.proof.iter().any(|p| p.contains("TXT \"v=spf1 -all\"")),
        "{f:?}"
    );
    assert!(f.kind.reference().unwrap().contains("RFC 1912 §2.4"));
}

#[test]
fn mx_ns_srv_targets_and_the_mname_must_not_be_aliases() {
    let mx = run("mxalias.test");
    let f = only(&mx, Kind::MxAlias);
    assert_eq!(f.severity(), Severity::Error);
    assert_eq!(f.kind.reference(), Some("RFC 2181 §10.3"));
    assert!(
        f.proof
            .contains(&"mxalias.test. 300 MX 10 mail.mxalias.test.".to_string())
    );
    assert!(
        f.proof
            .contains(&"mail.mxalias.test. 300 CNAME app.hosted.test.".to_string())
    );

    let ns = run("nsalias.test");
    assert_eq!(only(&ns, Kind::NsAlias).severity(), Severity::Error);
    let mname = only(&ns, Kind::MnameAlias);
    assert_eq!(mname.severity(), Severity::Warning);
    assert!(mname.title.contains("SOA MNAME"), "{}", mname.title);

    let srv = run("_sip._tcp.example.test");
    let f = only(&srv, Kind::SrvAlias);
    assert_eq!(f.kind.reference(), Some("RFC 2782"));
    assert!(f.title.contains("sipalias.example.test."), "{}", f.title);
}

#[test]
fn chains_longer_than_max_chain_are_reported_and_shorter_ones_are_not() {
    let c = run("c1.example.test");
    let f = only(&c, Kind::LongChain);
    assert_eq!(f.severity(), Severity::Warning);
    assert!(f.title.contains("4 links"), "{}", f.title);
    assert!(
        f.title.contains("c1.example.test. → c2.example.test. → c3.example.test. → c4.example.test. → app.hosted.test."),
        "{}",
        f.title
    );
    let s = CheckSettings {
        max_chain: 4,
        ..settings(&[S1])
    };
    assert_healthy(&run_with(Zones::world(), "c1.example.test", None, &s).0);
}

#[test]
fn a_loop_is_an_error() {
    let c = run("loop1.example.test");
    let f = only(&c, Kind::Loop);
    assert_eq!(f.severity(), Severity::Error);
    assert!(
        f.title
            .contains("loop1.example.test. → loop2.example.test. → loop1.example.test.")
    );
}

#[test]
fn dangling_targets_are_nxdomain_or_have_no_addresses() {
    let c = run("dangling.example.test");
    let f = only(&c, Kind::Dangling);
    assert_eq!(f.severity(), Severity::Error);
    assert!(
        f.title.contains("dangling") && f.title.contains("NXDOMAIN"),
        "{}",
        f.title
    );
    assert!(
        f.proof
            .iter()
            .any(|p| p.starts_with("gone.hosted.test.: NXDOMAIN")),
        "{f:?}"
    );

    let c = run("noaddr.example.test");
    let f = only(&c, Kind::NoAddresses);
    assert_eq!(f.severity(), Severity::Warning);
    assert!(f.title.contains("no addresses"), "{}", f.title);
}

#[test]
fn a_dangling_target_under_a_claimable_suffix_is_a_takeover_risk() {
    let c = run("takeover.example.test");
    let f = only(&c, Kind::TakeoverRisk);
    assert_eq!(f.severity(), Severity::Error);
    assert!(f.title.contains("likely takeover risk"), "{}", f.title);
    assert!(
        f.title.contains("Heroku") && f.title.contains(TABLE_DATE),
        "{}",
        f.title
    );
    assert!(!kinds(&c).contains(&Kind::Dangling));
}

#[test]
fn a_flattened_apex_must_match_its_expected_target() {
    let (ok, _) = run_with(
        Zones::world(),
        "flat.test",
        Some("app.hosted.test"),
        &settings(&[S1]),
    );
    assert_healthy(&ok);
    let (c, _) = run_with(
        Zones::world(),
        "drift.test",
        Some("app.hosted.test"),
        &settings(&[S1]),
    );
    let f = only(&c, Kind::Drift);
    assert_eq!(f.severity(), Severity::Warning);
    assert!(f.title.contains("198.51.100.99"), "{}", f.title);
    assert!(
        f.title.contains("198.51.100.10 2001:db8::10"),
        "{}",
        f.title
    );
    assert!(
        f.proof
            .contains(&"drift.test. 300 A 198.51.100.99".to_string()),
        "{f:?}"
    );
    assert!(
        f.proof
            .contains(&"app.hosted.test. 300 A 198.51.100.10".to_string()),
        "{f:?}"
    );
}

#[test]
fn drift_is_asked_of_every_server_and_names_the_one_that_drifted() {
    let mut zones = Zones::world();
    zones.add(S2, common::WORLD, Behavior::Up);
    zones.set(S2, "flat.test", "A", "flat.test. 300 A 198.51.100.77");
    let (c, _) = run_with(
        zones,
        "flat.test",
        Some("app.hosted.test"),
        &settings(&[S1, S2]),
    );
    let drift = only(&c, Kind::Drift);
    assert!(drift.title.contains(&format!("at {S2}")), "{}", drift.title);
    let disagree = only(&c, Kind::ServersDisagree);
    assert!(
        disagree
            .proof
            .iter()
            .any(|p| p.starts_with(S2) && p.contains("198.51.100.77")),
        "{disagree:?}"
    );
}

#[test]
fn servers_that_disagree_about_an_alias_are_reported() {
    let mut zones = Zones::world();
    zones.add(S2, common::WORLD, Behavior::Up);
    zones.set(
        S2,
        "www.example.test",
        "CNAME",
        "www.example.test. 300 CNAME other.hosted.test.",
    );
    let (c, _) = run_with(zones, "www.example.test", None, &settings(&[S1, S2]));
    let f = only(&c, Kind::ServersDisagree);
    assert_eq!(f.severity(), Severity::Warning);
    assert!(
        f.proof.iter().any(|p| p.contains("CNAME app.hosted.test.")),
        "{f:?}"
    );
    assert!(
        f.proof
            .iter()
            .any(|p| p.contains("CNAME other.hosted.test.")),
        "{f:?}"
    );

    let mut zones = Zones::world();
    zones.add(S2, common::WORLD, Behavior::Up);
    let (same, _) = run_with(zones, "www.example.test", None, &settings(&[S1, S2]));
    assert_healthy(&same);
}

#[test]
fn a_target_other_than_the_expected_one_is_reported() {
    let (c, _) = run_with(
        Zones::world(),
        "other.example.test",
        Some("app.hosted.test"),
        &settings(&[S1]),
    );
    let f = only(&c, Kind::UnexpectedTarget);
    assert!(
        f.title
            .contains("points to other.hosted.test., expected app.hosted.test."),
        "{}",
        f.title
    );
    let (ok, _) = run_with(
        Zones::world(),
        "www.example.test",
        Some("app.hosted.test."),
        &settings(&[S1]),
    );
    assert_healthy(&ok);
    // Anywhere along the chain counts.
    let s = CheckSettings {
        max_chain: 5,
        ..settings(&[S1])
    };
    let (ok, _) = run_with(
        Zones::world(),
        "c1.example.test",
        Some("c3.example.test"),
        &s,
    );
    assert_healthy(&ok);
}

#[test]
fn a_missing_name_is_nxdomain_and_not_a_timeout() {
    let c = run("missing.example.test");
    let f = only(&c, Kind::NameMissing);
    assert!(f.title.contains("does not exist (NXDOMAIN)"), "{}", f.title);
    assert!(c.reliable);
    assert!(!report::render(&c).contains("unreachable"));
}

/// A resolver with no upstream answers NXDOMAIN (AA clear) for every name, the root
/// included: the resolver is reported, not the names.
#[test]
fn a_resolver_that_answers_nxdomain_for_everything_is_blamed_not_the_name() {
    for name in ["example.org", "github.com", ".", "www.example.test"] {
        let mut zones = Zones::world();
        zones.server(S1).behavior = Behavior::NxdomainForAll;
        let (c, _) = run_with(zones, name, None, &settings(&[S1]));
        assert_eq!(
            kinds(&c),
            [Kind::ResolverNxdomain],
            "{name}: {}",
            report::render(&c)
        );
        let text = report::render(&c);
        assert!(
            text.contains(&format!(
                "the resolver at {S1} answers NXDOMAIN for everything; can't judge"
            )),
            "{text}"
        );
        assert!(
            !text.contains("does not exist") && !text.contains("re-create"),
            "{text}"
        );
        assert!(!c.reliable, "nothing about the name is known");
    }
}

/// A working resolver's NXDOMAIN is hearsay (AA clear): a warning that says who said it,
/// never "does not exist".
#[test]
fn a_non_authoritative_nxdomain_is_never_does_not_exist() {
    let mut zones = Zones::world();
    zones.server(S1).behavior = Behavior::Resolver;
    let (c, _) = run_with(zones, "missing.example.test", None, &settings(&[S1]));
    let f = only(&c, Kind::NotFoundByResolver);
    assert_eq!(f.severity(), Severity::Warning);
    assert!(
        f.title.contains("not an authoritative answer"),
        "{}",
        f.title
    );
    assert!(!kinds(&c).contains(&Kind::NameMissing));
    assert!(!report::render(&c).contains("does not exist (NXDOMAIN)"));
}

#[test]
fn a_silent_server_is_retried_then_unreachable_never_nxdomain() {
    let mut zones = Zones::world();
    zones.server(S1).behavior = Behavior::Silent;
    let (c, zones) = run_with(zones, "www.example.test", None, &settings(&[S1]));
    let f = only(&c, Kind::Unreachable);
    assert_eq!(f.severity(), Severity::Warning);
    assert!(f.title.contains("unreachable"), "{}", f.title);
    assert!(!c.reliable);
    assert!(c.records.is_empty() && c.rcode.is_none());
    assert_eq!(kinds(&c), [Kind::Unreachable]);
    let text = report::render(&c);
    assert!(
        !text.contains("NXDOMAIN") && !text.contains("gone"),
        "{text}"
    );
    // Three attempts, then the server is left alone for the rest of the run.
    assert_eq!(zones.total(), 3);

    let mut zones = Zones::world();
    zones.server(S1).behavior = Behavior::Down;
    let (c, _) = run_with(zones, "www.example.test", None, &settings(&[S1]));
    assert!(
        only(&c, Kind::Unreachable)
            .title
            .contains("connection refused")
    );
}

#[test]
fn a_flaky_server_that_answers_on_a_retry_is_fine() {
    let mut zones = Zones::world();
    zones.server(S1).behavior = Behavior::Flaky(2);
    let (c, _) = run_with(zones, "www.example.test", None, &settings(&[S1]));
    assert_healthy(&c);
}

#[test]
fn one_dead_server_of_two_is_reported_and_the_other_is_analysed() {
    let mut zones = Zones::world();
    zones.add(S2, common::WORLD, Behavior::Down);
    let (c, _) = run_with(zones, "dangling.example.test", None, &settings(&[S2, S1]));
    assert_eq!(c.server.as_deref(), Some(S1));
    assert!(c.reliable);
    only(&c, Kind::Unreachable);
    only(&c, Kind::Dangling);
}

#[test]
fn servfail_and_refused_are_kept_apart() {
    let mut zones = Zones::world();
    zones.server(S1).behavior = Behavior::ServFail;
    let (c, _) = run_with(zones, "www.example.test", None, &settings(&[S1]));
    let f = only(&c, Kind::Declined);
    assert!(f.title.contains("SERVFAIL"), "{}", f.title);
    assert!(!c.reliable);

    let c = run("elsewhere.invalid");
    let f = only(&c, Kind::Declined);
    assert!(f.title.contains("REFUSED"), "{}", f.title);
    assert!(!kinds(&c).contains(&Kind::NameMissing));
}

#[test]
fn idn_trailing_dot_and_case_name_the_same_zone() {
    let c = run("Bücher.TEST.");
    assert_healthy(&c);
    assert_eq!(c.name.as_str(), "xn--bcher-kva.test.");
    assert!(report::headline(&c).starts_with("bücher.test (xn--bcher-kva.test): ok"));
    assert_healthy(&run("WWW.bücher.test"));
    assert_healthy(&run("www.example.test."));
}

#[test]
fn wildcards_are_followed_like_any_alias() {
    assert_healthy(&run("anything.wild.example.test"));
    assert_healthy(&run("*.wild.example.test"));
    let c = run("x.wildgone.example.test");
    let f = only(&c, Kind::Dangling);
    assert!(
        f.proof
            .iter()
            .any(|p| p.starts_with("x.wildgone.example.test. 300 CNAME gone.hosted.test."))
    );
}

#[test]
fn one_run_asks_each_question_once() {
    let mut res = Resolver::new(Zones::world());
    let s = settings(&[S1]);
    let names = [
        "www.example.test",
        "mixed.example.test",
        "c4.example.test",
        "anything.wild.example.test",
    ];
    for n in names {
        check(&Fqdn::parse(n).unwrap(), None, &s, &mut res);
    }
    let zones = res.inner();
    assert_eq!(zones.count("app.hosted.test", "CNAME"), 1);
    assert_eq!(zones.count("app.hosted.test", "A"), 1);
    assert!(zones.asked.values().all(|n| *n == 1), "{:?}", zones.asked);
    // A plain name needs CNAME, SOA, A, AAAA and MX; an alias adds NS, TXT and its target.
    let mut res = Resolver::new(Zones::world());
    check(
        &Fqdn::parse("mail.example.test").unwrap(),
        None,
        &s,
        &mut res,
    );
    assert_eq!(res.sent(), 5);
}

/// Every owner name of the default world, and one that does not exist.
fn every_name() -> Vec<Fqdn> {
    let mut names: Vec<Fqdn> = Zones::world().servers[S1]
        .records
        .iter()
        .map(|r| Fqdn::parse(&r.name).unwrap())
        .collect();
    names.push(Fqdn::parse("nowhere.example.test").unwrap());
    names.sort();
    names.dedup();
    names
}

/// The reports of checking `names` one after another, after asking ahead or not; the
/// queries the servers received in all, and those the checks themselves sent.
fn check_all(
    zones: Zones,
    names: &[Fqdn],
    s: &CheckSettings,
    ahead: bool,
) -> (Vec<String>, u32, u32) {
    let mut res = Resolver::new(zones);
    if ahead {
        alias_monitor::engine::ask_ahead(&mut res, names, s);
    }
    let before = res.inner().total();
    let reports = names
        .iter()
        .map(|n| report::render(&check(n, None, s, &mut res)))
        .collect();
    let total = res.inner().total();
    (reports, total, total - before)
}

#[test]
fn asking_ahead_changes_no_report_and_asks_no_more_questions() {
    let names = every_name();
    assert!(names.len() > 20, "{names:?}");
    let s = settings(&[S1]);
    let (plain, asked_plain, _) = check_all(Zones::world(), &names, &s, false);
    let (ahead, asked_ahead, by_checks) = check_all(Zones::world(), &names, &s, true);
    assert_eq!(plain, ahead);
    assert!(asked_ahead <= asked_plain, "{asked_ahead} > {asked_plain}");
    // Most questions were asked ahead: the checks were left with the rest.
    assert!(
        by_checks * 3 < asked_plain,
        "{by_checks} of {asked_plain} left to the checks"
    );
}

#[test]
fn asking_ahead_of_two_servers_changes_no_report() {
    let names = every_name();
    let mut zones = Zones::world();
    zones.add(S2, "", Behavior::NxdomainForAll);
    let s = settings(&[S2, S1]);
    let (plain, ..) = check_all(zones.clone(), &names, &s, false);
    let (ahead, ..) = check_all(zones, &names, &s, true);
    assert_eq!(plain, ahead);
}

#[test]
fn asking_ahead_asks_a_silent_server_once_and_leaves_it_to_the_checks() {
    let names = every_name();
    let mut zones = Zones::world();
    zones.add(S2, "", Behavior::Silent);
    let asked_ahead = |servers: &[&str]| {
        let mut res = Resolver::new(zones.clone());
        alias_monitor::engine::ask_ahead(&mut res, &names, &settings(servers));
        res.inner().total()
    };
    assert_eq!(asked_ahead(&[S2, S1]), asked_ahead(&[S1]) + 1);
    let s = settings(&[S2, S1]);
    let (plain, ..) = check_all(zones.clone(), &names, &s, false);
    let (ahead, ..) = check_all(zones, &names, &s, true);
    assert_eq!(plain, ahead);
}

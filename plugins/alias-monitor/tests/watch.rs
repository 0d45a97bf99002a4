//! The periodic watch: the baseline, exactly one notice per change, none without one, and
//! an unreachable server that never looks like records going away.

mod common;

use alias_monitor::engine::watch::{Baseline, Notice, update};
use alias_monitor::engine::{CheckSettings, Fqdn, Resolver, check};
use common::{Behavior, S1, Zones};

/// A watched name over a zone table that the test edits between rounds; each round is a
/// new [`Resolver`], as in the plugin (nothing is cached across runs).
struct Watch {
    zones: Zones,
    name: Fqdn,
    expect: Option<Fqdn>,
    baseline: Option<Baseline>,
    settings: CheckSettings,
}

impl Watch {
    fn new(name: &str) -> Self {
        Self {
            zones: Zones::world(),
            name: Fqdn::parse(name).unwrap(),
            expect: None,
            baseline: None,
            settings: CheckSettings {
                servers: vec![S1.into()],
                max_chain: 3,
            },
        }
    }

    fn round(&mut self) -> Option<Notice> {
        let mut res = Resolver::new(std::mem::take(&mut self.zones));
        let c = check(&self.name, self.expect.as_ref(), &self.settings, &mut res);
        self.zones = std::mem::take(res.inner_mut());
        let (next, notice) = update(self.baseline.as_ref(), &c);
        self.baseline = Some(next);
        notice
    }
}

#[test]
fn the_first_round_of_a_healthy_name_is_silent_and_so_are_unchanged_rounds() {
    let mut w = Watch::new("www.example.test");
    assert_eq!(w.round(), None);
    assert_eq!(w.round(), None);
    assert_eq!(w.round(), None);
}

#[test]
fn the_first_round_posts_existing_problems_once() {
    let mut w = Watch::new("dangling.example.test");
    let first = w.round().expect("problems are posted on the first round");
    assert_eq!(
        first.summary,
        "dangling.example.test: 1 problem (1 error) on the first check"
    );
    assert!(
        first.details.contains("new error: dangling alias"),
        "{}",
        first.details
    );
    assert_eq!(w.round(), None);
}

#[test]
fn a_changed_target_is_one_notice_and_its_fix_is_another() {
    let mut w = Watch::new("www.example.test");
    assert_eq!(w.round(), None);
    w.zones.set(
        S1,
        "www.example.test",
        "CNAME",
        "www.example.test. 300 CNAME gone.hosted.test.",
    );
    let changed = w.round().expect("a change is posted");
    assert_eq!(
        changed.summary,
        "www.example.test now aliases gone.hosted.test (was app.hosted.test); 1 new problem"
    );
    assert!(
        changed.details.contains(
            "info: records changed: www.example.test now aliases gone.hosted.test (was app.hosted.test)"
        ),
        "{}",
        changed.details
    );
    // The old target left the chain; it did not lose its addresses.
    assert!(
        changed
            .details
            .contains("info: records changed: app.hosted.test is no longer in the chain"),
        "{}",
        changed.details
    );
    assert!(!changed.details.contains("(none)"), "{}", changed.details);
    assert!(
        changed.details.contains("new error: dangling alias"),
        "{}",
        changed.details
    );
    assert!(
        changed.details.contains("fix: remove the CNAME"),
        "{}",
        changed.details
    );
    assert_eq!(w.round(), None, "exactly one notice per change");

    w.zones.set(
        S1,
        "www.example.test",
        "CNAME",
        "www.example.test. 300 CNAME app.hosted.test.",
    );
    let fixed = w.round().expect("the fix is posted");
    assert!(fixed.summary.starts_with("www.example.test now aliases app.hosted.test (was gone.hosted.test); fixed: dangling alias"), "{}", fixed.summary);
    assert!(
        fixed
            .details
            .contains("app.hosted.test joined the chain: A 198.51.100.10, AAAA 2001:db8::10"),
        "{}",
        fixed.details
    );
    assert!(
        fixed.details.contains("fixed: dangling alias"),
        "{}",
        fixed.details
    );
    assert_eq!(w.round(), None);
}

#[test]
fn a_ttl_change_is_a_change() {
    let mut w = Watch::new("www.example.test");
    w.round();
    w.zones.set(
        S1,
        "www.example.test",
        "CNAME",
        "www.example.test. 60 CNAME app.hosted.test.",
    );
    let n = w.round().expect("posted");
    assert_eq!(
        n.summary,
        "www.example.test: records changed (CNAME TTL 300 → 60)"
    );
    assert_eq!(w.round(), None);
}

#[test]
fn an_unreachable_server_keeps_the_records_and_is_not_a_record_change() {
    let mut w = Watch::new("dangling.example.test");
    w.round();
    w.zones.server(S1).behavior = Behavior::Silent;
    let down = w.round().expect("unreachable is a new problem");
    assert_eq!(
        down.summary,
        "dangling.example.test: 1 new problem; unreachable: 127.0.0.1:5353 (last known records kept)"
    );
    assert!(
        !down.summary.contains("records changed"),
        "{}",
        down.summary
    );
    assert!(
        !down.summary.contains("fixed"),
        "the dangling alias is not fixed: {}",
        down.summary
    );
    assert!(down.details.contains("unreachable"), "{}", down.details);
    assert!(
        !down.details.contains("NXDOMAIN") && !down.details.contains("gone"),
        "{}",
        down.details
    );
    let kept = w.baseline.clone().unwrap();
    assert!(kept.known && kept.records.iter().any(|r| r.rtype == "CNAME"));
    assert_eq!(w.round(), None, "still down: nothing new");

    w.zones.server(S1).behavior = Behavior::Up;
    let back = w.round().expect("the server coming back is posted");
    assert!(
        back.summary
            .starts_with("dangling.example.test: fixed: 127.0.0.1:5353 unreachable"),
        "{}",
        back.summary
    );
    assert!(
        !back.summary.contains("records changed"),
        "{}",
        back.summary
    );
    assert_eq!(w.round(), None);
}

#[test]
fn a_server_down_from_the_start_does_not_invent_a_change_when_it_comes_up() {
    let mut w = Watch::new("www.example.test");
    w.zones.server(S1).behavior = Behavior::Down;
    let first = w.round().expect("unreachable is a problem");
    assert!(first.details.contains("unreachable"), "{}", first.details);
    w.zones.server(S1).behavior = Behavior::Up;
    let back = w.round().expect("fixed");
    assert!(
        back.summary.starts_with("www.example.test: fixed: "),
        "{}",
        back.summary
    );
    assert!(
        !back.summary.contains("records changed"),
        "{}",
        back.summary
    );
}

#[test]
fn a_name_that_disappears_says_so() {
    let mut w = Watch::new("www.example.test");
    w.round();
    let server = w.zones.server(S1);
    server.records.retain(|r| r.name != "www.example.test.");
    let gone = w.round().expect("posted");
    assert!(gone.summary.starts_with("www.example.test is no longer an alias (was app.hosted.test); records changed (NOERROR → NXDOMAIN); 1 new problem"), "{}", gone.summary);
    assert!(
        gone.details.contains("does not exist (NXDOMAIN)"),
        "{}",
        gone.details
    );
}

#[test]
fn drift_of_a_flattened_apex_appears_when_the_target_moves() {
    let mut w = Watch::new("flat.test");
    w.expect = Some(Fqdn::parse("app.hosted.test").unwrap());
    assert_eq!(w.round(), None);
    w.zones.set(
        S1,
        "app.hosted.test",
        "A",
        "app.hosted.test. 300 A 198.51.100.20",
    );
    let n = w.round().expect("drift is posted");
    assert!(
        n.summary.starts_with("flat.test: 1 new problem"),
        "{}",
        n.summary
    );
    assert!(
        n.details.contains("new warning: flattened apex drift"),
        "{}",
        n.details
    );
}

use super::*;
use crate::report::{Status, TestCase};

use Status::{Failed, Passed};

fn outcome(cases: &[(&str, Status)]) -> Outcome {
    let mut o = Outcome {
        cases: cases
            .iter()
            .map(|(n, s)| TestCase {
                name: n.to_string(),
                status: *s,
                detail: if s.is_failure() {
                    format!("assert in {n}")
                } else {
                    String::new()
                },
            })
            .collect(),
        source: "junit",
        listing: Listing::Every,
        ..Outcome::default()
    };
    let n = |s: Status| cases.iter().filter(|c| c.1 == s).count() as u32;
    (o.passed, o.failed, o.xfailed) = (n(Passed), n(Failed), n(Status::XFailed));
    o
}

fn tested(cases: &[(&str, Status)]) -> Ran {
    ran(outcome(cases))
}

fn ran(outcome: Outcome) -> Ran {
    Ran::Tested {
        outcome,
        scope: Scope::All,
        duration: Duration::from_millis(420),
    }
}

fn text(v: &Verdict) -> &str {
    v.message
        .as_ref()
        .map_or("(nothing posted)", |m| m.0.as_str())
}

/// A red state with `failing` failing (and `test_ok` passing).
fn red(failing: &[&str]) -> Health {
    let mut cases: Vec<(&str, Status)> = failing.iter().map(|n| (*n, Failed)).collect();
    cases.push(("test_ok", Passed));
    judge("a", &Health::default(), &tested(&cases)).health
}

#[test]
fn green_to_red_names_the_newly_failing_tests_with_their_first_lines() {
    let v = judge(
        "api",
        &Health::default(),
        &tested(&[("t.py::test_a", Passed), ("t.py::test_x", Failed)]),
    );
    let (text, detail) = v.message.expect("posted");
    assert_eq!(
        text,
        "api: 1 failed, 1 passed in 0.4 s. newly failing: t.py::test_x"
    );
    assert_eq!(detail, "t.py::test_x\n    assert in t.py::test_x");
    assert_eq!(v.health.state, State::Red);
}

#[test]
fn red_to_green_names_the_fixed_tests_and_green_to_green_says_nothing() {
    let red = red(&["x"]);
    let v = judge("api", &red, &tested(&[("x", Passed), ("test_ok", Passed)]));
    assert_eq!(text(&v), "api: 2 passed in 0.4 s. fixed: x");
    let again = judge("api", &v.health, &tested(&[("x", Passed)]));
    assert_eq!(again.message, None);
    assert_eq!(
        judge("api", &Health::default(), &tested(&[("x", Passed)])).message,
        None,
        "a first green run is no news"
    );
}

#[test]
fn red_to_red_is_posted_only_when_the_set_changes() {
    let red = red(&["x", "y"]);
    let same = tested(&[("x", Failed), ("y", Failed), ("test_ok", Passed)]);
    assert_eq!(judge("a", &red, &same).message, None);
    let v = judge(
        "a",
        &red,
        &tested(&[("x", Passed), ("y", Failed), ("z", Failed)]),
    );
    assert_eq!(
        text(&v),
        "a: 2 failed, 1 passed in 0.4 s. newly failing: z. fixed: x. still failing: y"
    );
}

#[test]
fn broken_runs_are_posted_once_per_reason() {
    let broken = Ran::Broken {
        reason: "cannot start pytest: not on PATH".into(),
        detail: String::new(),
    };
    let v = judge("a", &Health::default(), &broken);
    assert_eq!(text(&v), "a: cannot start pytest: not on PATH");
    assert_eq!(judge("a", &v.health, &broken).message, None);
    let back = judge("a", &v.health, &tested(&[("x", Passed)]));
    assert!(text(&back).contains("Runs again"), "{}", text(&back));
}

/// Issue 19, item 4: red → broken (a collection error) → red. The broken run keeps the
/// last complete run's failures; the next complete run is compared with those, so only
/// the really new failures are "newly failing" and nothing is called fixed.
#[test]
fn a_broken_run_keeps_the_last_complete_results_and_the_next_is_compared_with_them() {
    let before = red(&["t1", "t2", "t3"]);
    let collection = Ran::Broken {
        reason: "cannot collect tests/test_new.py: ImportError: cannot import name 'x'".into(),
        detail: "tests/test_new.py\n    E   ImportError: cannot import name 'x'".into(),
    };
    let v = judge("api", &before, &collection);
    assert_eq!(
        text(&v),
        "api: cannot collect tests/test_new.py: ImportError: cannot import name 'x' \
         (no test ran; the last complete run's 3 failing kept)"
    );
    assert!(!text(&v).contains("fixed"));
    assert_eq!(v.health.failing, before.failing);
    let after = tested(&[
        ("t1", Failed),
        ("t2", Failed),
        ("t3", Failed),
        ("tests/test_new.py::test_n", Failed),
        ("test_ok", Passed),
    ]);
    let back = judge("api", &v.health, &after);
    assert_eq!(
        text(&back),
        "api: 4 failed, 1 passed in 0.4 s. Runs again (was: cannot collect tests/test_new.py: \
         ImportError: cannot import name 'x'). newly failing: tests/test_new.py::test_n. \
         still failing: t1, t2, t3"
    );
    let (_, detail) = back.message.expect("posted");
    assert_eq!(
        detail,
        "tests/test_new.py::test_n\n    assert in tests/test_new.py::test_n"
    );
}

/// Issue 19, item 5: a failing test marked xfail is "now expected to fail", a deleted one
/// "removed"; neither is "fixed".
#[test]
fn xfail_and_deleted_tests_are_called_what_they_are() {
    let before = red(&["t_xf", "t_gone", "t_fix"]);
    let v = judge(
        "a",
        &before,
        &tested(&[
            ("t_xf", Status::XFailed),
            ("t_fix", Passed),
            ("test_ok", Passed),
        ]),
    );
    assert_eq!(
        text(&v),
        "a: 2 passed, 1 xfailed in 0.4 s. fixed: t_fix. now expected to fail: t_xf. \
         removed: t_gone"
    );
    assert_eq!(v.health.state, State::Green);
}

#[test]
fn a_report_of_failures_only_cannot_say_fixed_and_an_early_stop_keeps_what_did_not_run() {
    let before = red(&["t1", "t2"]);
    let mut only_failures = outcome(&[("t2", Failed)]);
    only_failures.listing = Listing::FailuresOnly;
    let v = judge("a", &before, &ran(only_failures));
    assert!(
        text(&v).contains("no longer failing: t1") && !text(&v).contains("fixed"),
        "{}",
        text(&v)
    );
    let mut stopped = outcome(&[("t2", Failed), ("t9", Failed)]);
    stopped.listing = Listing::Partial;
    let v = judge("a", &before, &ran(stopped));
    assert_eq!(
        text(&v),
        "a: 2 failed in 0.4 s. newly failing: t9. still failing: t2, t1"
    );
    assert_eq!(v.health.failing_names(), ["t9", "t2", "t1"]);
}

/// Issue 19, item 6: newly failing tests come first and are never hidden behind "and N
/// more" while older failures are listed; each list is in file (report) order.
#[test]
fn newly_failing_come_first_in_file_order_and_are_never_hidden_behind_older_ones() {
    let old: Vec<String> = (1..=180).map(|i| format!("t.py::test_old[{i}]")).collect();
    let old_refs: Vec<&str> = old.iter().map(String::as_str).collect();
    let before = red(&old_refs);
    let mut cases: Vec<(&str, Status)> = old_refs.iter().map(|n| (*n, Failed)).collect();
    cases.insert(0, ("t.py::test_easter[easter_date2]", Failed));
    cases.insert(1, ("t.py::test_easter[easter_date10]", Failed));
    cases.push(("u.py::test_new", Failed));
    let v = judge("a", &before, &tested(&cases));
    let t = text(&v);
    assert!(
        t.contains(
            ". newly failing: t.py::test_easter[easter_date2], t.py::test_easter[easter_date10], \
             u.py::test_new. still failing: t.py::test_old[1], "
        ),
        "{t}"
    );
    assert!(t.ends_with("t.py::test_old[7] and 173 more"), "{t}");

    let many: Vec<String> = (1..=12).map(|i| format!("new{i}")).collect();
    let mut cases: Vec<(&str, Status)> = many.iter().map(|n| (n.as_str(), Failed)).collect();
    cases.extend(old_refs.iter().map(|n| (*n, Failed)));
    let v = judge("a", &before, &tested(&cases));
    let t = text(&v);
    assert!(
        t.contains("new10 and 2 more. still failing: 180 tests"),
        "no older failure is named while newer ones are hidden: {t}"
    );
}

/// Issue 19, item 7: every newly failing test shown in the detail block keeps its name
/// and first line, however long the others' failures are.
#[test]
fn the_detail_block_is_cut_per_test_and_keeps_every_name() {
    let newly: Vec<Failure> = (1..=5)
        .map(|i| Failure {
            name: format!("tests/test_ü.py::test_{i}[São Paulo]"),
            detail: format!(
                "E   AssertionError: {}\n{}",
                "ü".repeat(500),
                "x\n".repeat(40)
            ),
        })
        .collect();
    let block = details(&newly);
    assert!(block.chars().count() <= DETAIL_CHARS + 5, "{block}");
    for f in &newly {
        let at = block.find(&f.name).expect("every name is kept");
        let next = block[at..].lines().nth(1).expect("a line of why");
        assert!(next.starts_with("    E   AssertionError: üü"), "{next}");
        assert!(next.ends_with('…'), "{next}");
    }
}

#[test]
fn a_green_failed_only_run_asks_for_the_whole_suite_without_posting() {
    let red = red(&["x"]);
    let v = judge(
        "a",
        &red,
        &Ran::Tested {
            outcome: outcome(&[("x", Passed)]),
            scope: Scope::Failed,
            duration: Duration::ZERO,
        },
    );
    assert!(v.run_all_next);
    assert_eq!(v.message, None);
    assert_eq!(v.health, red);
}

/// Issue 19, item 8: a run asked for in chat answers even when nothing changed.
#[test]
fn the_answer_to_a_run_asked_for_says_the_result_when_nothing_changed() {
    let before = red(&["x"]);
    let same = tested(&[("x", Failed), ("test_ok", Passed)]);
    let v = judge("a", &before, &same);
    assert_eq!(v.message, None);
    assert_eq!(
        answer("a", &v.health, &same),
        "a: 1 failed, 1 passed in 0.4 s, no change. still failing: x"
    );
}

#[test]
fn health_written_before_failures_were_ordered_still_reads() {
    let old = r#"{"state":"broken","failing":{"t.py::b":"why","t.py::a":""},"reason":"r"}"#;
    let h: Health = serde_json::from_str(old).expect("reads");
    assert_eq!(h.failing_names(), ["t.py::a", "t.py::b"]);
    assert_eq!(h.baseline(), State::Red);
}

//! Whether a finished run changed a project's state, and what to tell the channel: green to
//! red with the newly failing tests, red to green with the fixed ones, red to red when the
//! set of failures changed, and a broken run (the runner could not run the tests) once per
//! distinct reason. Nothing is posted when nothing changed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::Outcome;
use crate::runner::Scope;

/// Most test names listed in one message.
const MAX_NAMES: usize = 10;
/// Most failures whose first lines are shown in one message.
const MAX_DETAILS: usize = 5;

/// A project's state as the channel last heard it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Never ran to the end.
    #[default]
    Unknown,
    Green,
    Red,
    /// The runner could not run the tests (missing, crashed, timed out, did not compile).
    Broken,
}

/// What the plugin keeps about a project between runs (in KV, so a restart does not
/// re-announce a known red).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub state: State,
    /// Failing tests and the first lines of why, when red.
    pub failing: BTreeMap<String, String>,
    /// Why, when broken.
    pub reason: String,
}

/// How a run ended, as far as the verdict cares (cancelled runs never get here).
#[derive(Debug, Clone)]
pub enum Ran {
    /// The tests ran; `scope` says whether all of them.
    Tested {
        outcome: Outcome,
        scope: Scope,
        duration: Duration,
    },
    /// They did not; `reason` is one line, `detail` what the runner printed last.
    Broken { reason: String, detail: String },
}

/// The new state and, when it changed, the message for the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub health: Health,
    /// One line of text, then (optionally) a code block.
    pub message: Option<(String, String)>,
    /// A failed-only run came out green: run the whole suite next.
    pub run_all_next: bool,
}

/// Judges `ran` against `before` for project `project`.
pub fn judge(project: &str, before: &Health, ran: &Ran) -> Verdict {
    match ran {
        Ran::Broken { reason, detail } => {
            let health = Health {
                state: State::Broken,
                failing: before.failing.clone(),
                reason: reason.clone(),
            };
            let changed = before.state != State::Broken || before.reason != *reason;
            Verdict {
                message: changed.then(|| (format!("{project}: {reason}"), detail.clone())),
                health,
                run_all_next: false,
            }
        }
        Ran::Tested {
            outcome,
            scope,
            duration,
        } => {
            if *scope == Scope::Failed && outcome.is_green() {
                // Only the old failures ran and they pass: the suite decides.
                return Verdict {
                    health: before.clone(),
                    message: None,
                    run_all_next: true,
                };
            }
            let failing: BTreeMap<String, String> = outcome
                .failing()
                .map(|c| (c.name.clone(), c.detail.clone()))
                .collect();
            let health = Health {
                state: if outcome.is_green() {
                    State::Green
                } else {
                    State::Red
                },
                failing,
                reason: String::new(),
            };
            let message = message(project, before, &health, outcome, *duration);
            Verdict {
                health,
                message,
                run_all_next: false,
            }
        }
    }
}

fn message(
    project: &str,
    before: &Health,
    after: &Health,
    outcome: &Outcome,
    duration: Duration,
) -> Option<(String, String)> {
    let head = format!(
        "{project}: {} in {:.1} s",
        outcome.counts(),
        duration.as_secs_f64()
    );
    let was_red = before.state == State::Red;
    let newly: Vec<&String> = after
        .failing
        .keys()
        .filter(|n| !was_red || !before.failing.contains_key(*n))
        .collect();
    let fixed: Vec<&String> = if was_red {
        before
            .failing
            .keys()
            .filter(|n| !after.failing.contains_key(*n))
            .collect()
    } else {
        Vec::new()
    };
    match after.state {
        State::Green => match before.state {
            State::Red => Some((format!("{head}. fixed: {}", names(&fixed)), String::new())),
            State::Broken => Some((
                format!("{head}. Runs again (was: {})", before.reason),
                String::new(),
            )),
            State::Green | State::Unknown => None,
        },
        State::Red => {
            if was_red && newly.is_empty() && fixed.is_empty() {
                return None;
            }
            let mut text = head;
            if !newly.is_empty() {
                text += &format!(". newly failing: {}", names(&newly));
            } else if after.failing.is_empty() {
                text += ". (the failing tests' names are not in the output)";
            }
            if !fixed.is_empty() {
                text += &format!(". fixed: {}", names(&fixed));
                let still: Vec<&String> = after
                    .failing
                    .keys()
                    .filter(|n| !newly.contains(n))
                    .collect();
                if !still.is_empty() {
                    text += &format!(". still failing: {}", names(&still));
                }
            }
            let details: Vec<String> = newly
                .iter()
                .take(MAX_DETAILS)
                .filter_map(|n| {
                    let d = after.failing.get(*n)?;
                    (!d.is_empty()).then(|| format!("{n}\n{}", indent(d)))
                })
                .collect();
            Some((text, details.join("\n")))
        }
        State::Unknown | State::Broken => None,
    }
}

fn names(list: &[&String]) -> String {
    let mut shown: Vec<&str> = list.iter().take(MAX_NAMES).map(|s| s.as_str()).collect();
    let more = list.len().saturating_sub(MAX_NAMES);
    let extra = format!("and {more} more");
    if more > 0 {
        shown.push(&extra);
    }
    shown.join(", ")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Status, TestCase};

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
            ..Outcome::default()
        };
        o.passed = cases.iter().filter(|c| c.1 == Status::Passed).count() as u32;
        o.failed = cases.iter().filter(|c| c.1 == Status::Failed).count() as u32;
        o
    }

    fn tested(cases: &[(&str, Status)]) -> Ran {
        Ran::Tested {
            outcome: outcome(cases),
            scope: Scope::All,
            duration: Duration::from_millis(420),
        }
    }

    use Status::{Failed, Passed};

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
        let red = judge("api", &Health::default(), &tested(&[("x", Failed)])).health;
        let v = judge("api", &red, &tested(&[("x", Passed)]));
        assert_eq!(
            v.message.expect("posted").0,
            "api: 1 passed in 0.4 s. fixed: x"
        );
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
        let red = judge(
            "a",
            &Health::default(),
            &tested(&[("x", Failed), ("y", Failed)]),
        )
        .health;
        assert_eq!(
            judge("a", &red, &tested(&[("x", Failed), ("y", Failed)])).message,
            None
        );
        let v = judge(
            "a",
            &red,
            &tested(&[("x", Passed), ("y", Failed), ("z", Failed)]),
        );
        let text = v.message.expect("posted").0;
        assert!(text.contains("newly failing: z"), "{text}");
        assert!(text.contains("fixed: x"), "{text}");
        assert!(text.contains("still failing: y"), "{text}");
    }

    #[test]
    fn broken_runs_are_posted_once_per_reason() {
        let broken = Ran::Broken {
            reason: "cannot start pytest: not on PATH".into(),
            detail: String::new(),
        };
        let v = judge("a", &Health::default(), &broken);
        assert_eq!(
            v.message.as_ref().map(|m| m.0.as_str()),
            Some("a: cannot start pytest: not on PATH")
        );
        assert_eq!(judge("a", &v.health, &broken).message, None);
        let back = judge("a", &v.health, &tested(&[("x", Passed)]));
        assert!(back.message.expect("posted").0.contains("Runs again"));
    }

    #[test]
    fn a_green_failed_only_run_asks_for_the_whole_suite_without_posting() {
        let red = judge("a", &Health::default(), &tested(&[("x", Failed)])).health;
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
}

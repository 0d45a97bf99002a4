//! Whether a finished run changed a project's state, and what to tell the channel.
//!
//! A *complete* run (the tests ran) is compared with the last complete run: green to red
//! with the newly failing tests, red to green or red to red with what changed for each
//! test (fixed, now expected to fail, now skipped, removed). A *broken* run (the runner
//! could not run the tests: a collection error, a compile error, a timeout) is posted
//! once per distinct reason and keeps the last complete run's results, so the next
//! complete run is compared with those, not with the broken one. Nothing is posted when
//! nothing changed, unless the run was asked for in chat ([`answer`]).

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::report::{Listing, Outcome, Status};
use crate::runner::Scope;

/// Most test names listed in one message, over all its lists.
const MAX_NAMES: usize = 10;
/// Most newly failing tests whose first lines are shown in one message.
const MAX_DETAILS: usize = 5;
/// Most characters of the detail block of one message; each test gets an equal share.
const DETAIL_CHARS: usize = 1600;
/// A failure line cut to fit its test's share keeps at least this many characters.
const MIN_LINE_CHARS: usize = 24;

/// A project's state as the channel last heard it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Never ran to the end.
    #[default]
    Unknown,
    /// The last complete run passed.
    Green,
    /// The last complete run had failures.
    Red,
    /// The runner could not run the tests (missing, crashed, timed out, did not compile,
    /// could not collect them).
    Broken,
}

/// One failing test: its name and the first lines of why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// As the runner names it (a pytest node id, a libtest path).
    pub name: String,
    /// The first lines of why.
    pub detail: String,
}

/// What the plugin keeps about a project between runs (in KV, so a restart does not
/// re-announce a known red).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// What the channel last heard.
    pub state: State,
    /// The failing tests of the last complete run, in report order.
    #[serde(default, deserialize_with = "failures_in_either_form")]
    pub failing: Vec<Failure>,
    /// Why, when broken.
    pub reason: String,
    /// The state of the last complete run, which the next complete run is compared with;
    /// `None` in what versions before it wrote.
    #[serde(default)]
    pub complete: Option<State>,
}

impl Health {
    /// The state of the last complete run: Green, Red or Unknown, never Broken.
    pub fn baseline(&self) -> State {
        match (self.complete, self.state) {
            (Some(state), _) => state,
            (None, State::Broken) if self.failing.is_empty() => State::Unknown,
            (None, State::Broken) => State::Red,
            (None, state) => state,
        }
    }

    /// The names of the failing tests, in report order.
    pub fn failing_names(&self) -> Vec<&str> {
        self.failing.iter().map(|f| f.name.as_str()).collect()
    }
}

/// Failures as a list, or as the name → detail map versions before ordering wrote.
fn failures_in_either_form<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Failure>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<Failure>),
        Map(std::collections::BTreeMap<String, String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(list) => list,
        Either::Map(map) => map
            .into_iter()
            .map(|(name, detail)| Failure { name, detail })
            .collect(),
    })
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
    /// They did not; `reason` is one line, `detail` the error or the runner's last output.
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
        Ran::Broken { reason, detail } => broken(project, before, reason, detail),
        Ran::Tested { outcome, scope, .. } if *scope == Scope::Failed && outcome.is_green() => {
            // Only the old failures ran and they pass: the suite decides.
            Verdict {
                health: before.clone(),
                message: None,
                run_all_next: true,
            }
        }
        Ran::Tested {
            outcome, duration, ..
        } => tested(project, before, outcome, *duration),
    }
}

/// A broken run: the last complete run's results stay; posted when the reason is new.
fn broken(project: &str, before: &Health, reason: &str, detail: &str) -> Verdict {
    let health = Health {
        state: State::Broken,
        failing: before.failing.clone(),
        reason: reason.to_string(),
        complete: Some(before.baseline()),
    };
    let changed = before.state != State::Broken || before.reason != reason;
    let mut text = format!("{project}: {reason}");
    if health.baseline() == State::Red {
        text += &format!(
            " (no test ran; the last complete run's {} failing kept)",
            health.failing.len()
        );
    }
    Verdict {
        message: changed.then(|| (text, detail.to_string())),
        health,
        run_all_next: false,
    }
}

/// A complete run, compared with the last complete one.
fn tested(project: &str, before: &Health, outcome: &Outcome, duration: Duration) -> Verdict {
    let baseline: &[Failure] = if before.baseline() == State::Red {
        &before.failing
    } else {
        &[]
    };
    let changes = Changes::between(baseline, outcome);
    let failing: Vec<Failure> = changes.failing().into_iter().cloned().collect();
    let state = if failing.is_empty() && outcome.is_green() {
        State::Green
    } else {
        State::Red
    };
    let health = Health {
        state,
        failing,
        reason: String::new(),
        complete: Some(state),
    };
    let was_broken = before.state == State::Broken;
    let news = was_broken || changes.any() || turned(before.baseline(), health.state);
    let message = news.then(|| {
        let mut text = head(project, outcome, duration);
        if was_broken {
            text += &format!(". Runs again (was: {})", before.reason);
        }
        if health.state == State::Red && health.failing.is_empty() {
            text += ". (the failing tests' names are not in the output)";
        }
        text += &changes.lists();
        (text, details(&changes.newly))
    });
    Verdict {
        health,
        message,
        run_all_next: false,
    }
}

/// Whether going from `then` to `now` is news: to red, or from red to green (a first green
/// run is not).
fn turned(then: State, now: State) -> bool {
    then != now && (now == State::Red || then == State::Red)
}

/// "api: 2 failed, 10 passed in 0.4 s".
fn head(project: &str, outcome: &Outcome, duration: Duration) -> String {
    format!(
        "{project}: {} in {:.1} s",
        outcome.counts(),
        duration.as_secs_f64()
    )
}

/// What happened to each test between the last complete run and this one.
#[derive(Debug, Default)]
struct Changes<'a> {
    /// Failing now, not in the last complete run: report order.
    newly: Vec<Failure>,
    /// Failing now and then: report order.
    still: Vec<Failure>,
    /// Failing then, did not run now (the runner stopped early): kept as failing.
    not_run: Vec<&'a Failure>,
    /// Failing then; now passing, xfailed, skipped, gone, or not named: last run's order.
    fixed: Vec<&'a str>,
    expected: Vec<&'a str>,
    skipped: Vec<&'a str>,
    removed: Vec<&'a str>,
    not_failing: Vec<&'a str>,
}

impl<'a> Changes<'a> {
    fn between(baseline: &'a [Failure], outcome: &Outcome) -> Changes<'a> {
        let was_failing: HashMap<&str, ()> =
            baseline.iter().map(|f| (f.name.as_str(), ())).collect();
        let now: HashMap<&str, Status> = outcome
            .cases
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect();
        let mut changes = Changes::default();
        for case in outcome.failing() {
            let failure = Failure {
                name: case.name.clone(),
                detail: case.detail.clone(),
            };
            if was_failing.contains_key(case.name.as_str()) {
                changes.still.push(failure);
            } else {
                changes.newly.push(failure);
            }
        }
        for old in baseline {
            changes.place_old(old, now.get(old.name.as_str()).copied(), outcome.listing);
        }
        changes
    }

    /// Files a test of the last complete run's failures by what this run says of it.
    fn place_old(&mut self, old: &'a Failure, now: Option<Status>, listing: Listing) {
        let name = old.name.as_str();
        match (now, listing) {
            (Some(status), _) if status.is_failure() => {}
            (Some(Status::XFailed), _) => self.expected.push(name),
            (Some(Status::Skipped), _) => self.skipped.push(name),
            (Some(_), _) => self.fixed.push(name),
            (None, Listing::Every) => self.removed.push(name),
            (None, Listing::FailuresOnly) => self.not_failing.push(name),
            (None, Listing::Partial) => self.not_run.push(old),
        }
    }

    /// Every test failing after this run: this run's failures, then those it did not run.
    fn failing(&self) -> Vec<&Failure> {
        self.newly
            .iter()
            .chain(&self.still)
            .chain(self.not_run.iter().copied())
            .collect()
    }

    /// Whether any test changed state.
    fn any(&self) -> bool {
        !(self.newly.is_empty()
            && self.fixed.is_empty()
            && self.expected.is_empty()
            && self.skipped.is_empty()
            && self.removed.is_empty()
            && self.not_failing.is_empty())
    }

    /// ". newly failing: a, b. fixed: c. still failing: d and 170 more": the changes
    /// first, newly failing before all, within each list in file order; the names shown
    /// are shared out in that order, so no newly failing test is hidden while an older one
    /// is shown. Still failing tests are listed only beside a change.
    fn lists(&self) -> String {
        let newly: Vec<&str> = self.newly.iter().map(|f| f.name.as_str()).collect();
        let mut still: Vec<&str> = self.still.iter().map(|f| f.name.as_str()).collect();
        still.extend(self.not_run.iter().map(|f| f.name.as_str()));
        if !self.any() {
            still.clear();
        }
        let lists: [(&str, &[&str]); 7] = [
            ("newly failing", &newly),
            ("fixed", &self.fixed),
            ("now expected to fail", &self.expected),
            ("now skipped", &self.skipped),
            ("removed", &self.removed),
            ("no longer failing", &self.not_failing),
            ("still failing", &still),
        ];
        let mut room = MAX_NAMES;
        let mut text = String::new();
        for (label, names) in lists.iter().filter(|(_, n)| !n.is_empty()) {
            let shown = names.len().min(room);
            room -= shown;
            text += &format!(". {label}: {}", listed(names, shown));
        }
        text
    }
}

/// The first `shown` of `names`, then how many more: "a, b and 3 more", or "5 tests".
pub fn listed(names: &[&str], shown: usize) -> String {
    let more = names.len().saturating_sub(shown);
    if shown == 0 {
        return match more {
            1 => "1 test".to_string(),
            n => format!("{n} tests"),
        };
    }
    let list = names[..shown.min(names.len())].join(", ");
    if more == 0 {
        list
    } else {
        format!("{list} and {more} more")
    }
}

/// Each newly failing test's name, whole, with its first failure lines: the block is cut
/// per test (an equal share of [`DETAIL_CHARS`] each), never across a name.
fn details(newly: &[Failure]) -> String {
    let shown: Vec<&Failure> = newly
        .iter()
        .filter(|f| !f.detail.is_empty())
        .take(MAX_DETAILS)
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    let share = DETAIL_CHARS / shown.len();
    shown
        .iter()
        .map(|f| block(f, share))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `name` and the indented lines of why that fit in `share` characters; a line that does
/// not fit is cut (with "…") when enough of it would show, and the rest are left out.
fn block(f: &Failure, share: usize) -> String {
    let mut out = f.name.clone();
    let mut left = share.saturating_sub(f.name.chars().count());
    for (i, line) in f.detail.lines().enumerate() {
        let line = format!("    {line}");
        let len = line.chars().count() + 1;
        if len <= left {
            out.push('\n');
            out.push_str(&line);
            left -= len;
            continue;
        }
        // The first line always shows, cut if need be.
        let room = if i == 0 {
            left.max(MIN_LINE_CHARS)
        } else {
            left
        };
        if room >= MIN_LINE_CHARS {
            let cut: String = line.chars().take(room - 2).collect();
            out.push('\n');
            out.push_str(cut.trim_end());
            out.push('…');
        }
        break;
    }
    out
}

/// What to answer a run asked for in chat when the state did not change (so the verdict
/// posted nothing): the result all the same.
pub fn answer(project: &str, health: &Health, ran: &Ran) -> String {
    match ran {
        Ran::Broken { reason, .. } => format!("{project}: still broken: {reason}"),
        Ran::Tested {
            outcome, duration, ..
        } => {
            let mut text = head(project, outcome, *duration);
            text += ", no change";
            let failing = health.failing_names();
            if !failing.is_empty() {
                text += &format!(
                    ". still failing: {}",
                    listed(&failing, failing.len().min(MAX_NAMES))
                );
            }
            text
        }
    }
}

#[cfg(test)]
mod tests;

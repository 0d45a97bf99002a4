//! What the periodic watch keeps between checks of a name ([`Baseline`]) and what it says
//! when a new check differs ([`Notice`]): records or TTLs changed, problems new or fixed.
//!
//! A check that could not see the whole picture (a server did not answer) never counts as
//! a change of records: the last good records are kept, the problems known before are
//! kept, and only the new ones (such as "unreachable") are added.

use std::collections::{BTreeMap, BTreeSet};

use super::check::Check;
use super::findings::{Finding, Kind, Severity};
use super::lookup::Record;
use super::report;

/// One record as remembered: the TTL only when the answer was authoritative (a cache's
/// TTLs count down and would look like a change every time).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Remembered {
    /// Owner name.
    pub name: String,
    /// Type mnemonic.
    pub rtype: String,
    /// TTL from an authoritative answer.
    pub ttl: Option<u32>,
    /// Data.
    pub data: String,
}

/// A problem as remembered: enough to say "fixed: …" later.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// [`Finding::key`].
    pub key: String,
    /// Its severity.
    pub severity: Severity,
    /// Its title.
    pub title: String,
}

/// The state of one watched name after a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Whether `rcode` and `records` come from a complete check (else they are unknown).
    pub known: bool,
    /// The name's response code ("NOERROR", "NXDOMAIN").
    pub rcode: String,
    /// The name's records.
    pub records: Vec<Remembered>,
    /// The problems found.
    pub problems: Vec<Problem>,
}

/// What to post when a check differs from the baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line: "www.example.test: records changed (CNAME a. → b.); 1 new problem".
    pub summary: String,
    /// The details, one item per line.
    pub details: String,
}

/// The new baseline after `check`, and the notice to post if anything changed since
/// `old` (`None` for the first check of a name: only its problems are posted).
pub fn update(old: Option<&Baseline>, check: &Check) -> (Baseline, Option<Notice>) {
    let found: Vec<Problem> = check.findings.iter().map(problem).collect();
    let mut next = Baseline {
        known: check.reliable,
        rcode: check.rcode.map(|r| r.to_string()).unwrap_or_default(),
        records: remember(&check.records, check.authoritative),
        problems: found.clone(),
    };
    if !check.reliable {
        if let Some(old) = old {
            next.known = old.known;
            next.rcode = old.rcode.clone();
            next.records = old.records.clone();
            let mut merged = old.problems.clone();
            for p in found {
                match merged.iter_mut().find(|q| q.key == p.key) {
                    Some(q) => *q = p,
                    None => merged.push(p),
                }
            }
            next.problems = merged;
        } else {
            next.records.clear();
            next.rcode.clear();
        }
    }

    let name = check.name.display();
    let Some(old) = old else {
        if check.findings.is_empty() {
            return (next, None);
        }
        let summary = format!(
            "{name}: {} on the first check",
            report::count(&check.findings)
        );
        let details = details(&[], &sorted(&check.findings), &[]);
        return (next, Some(Notice { summary, details }));
    };

    let changes = if old.known && next.known {
        diff(old, &next, check.name.as_str())
    } else {
        Vec::new()
    };
    let old_keys: BTreeSet<&str> = old.problems.iter().map(|p| p.key.as_str()).collect();
    let new_keys: BTreeSet<&str> = next.problems.iter().map(|p| p.key.as_str()).collect();
    let new: Vec<&Finding> = sorted(&check.findings)
        .into_iter()
        .filter(|f| !old_keys.contains(f.key().as_str()))
        .collect();
    let fixed: Vec<&Problem> = old
        .problems
        .iter()
        .filter(|p| !new_keys.contains(p.key.as_str()))
        .collect();
    if changes.is_empty() && new.is_empty() && fixed.is_empty() {
        return (next, None);
    }

    let mut parts = Vec::new();
    if !changes.is_empty() {
        parts.push(format!("records changed ({})", short(&changes)));
    }
    if !new.is_empty() {
        parts.push(format!(
            "{} new problem{}",
            new.len(),
            if new.len() == 1 { "" } else { "s" }
        ));
    }
    let unreachable: Vec<&str> = new
        .iter()
        .filter(|f| f.kind == Kind::Unreachable)
        .map(|f| f.subject.as_str())
        .collect();
    if !unreachable.is_empty() {
        parts.push(format!(
            "unreachable: {} (last known records kept)",
            unreachable.join(", ")
        ));
    }
    if !fixed.is_empty() {
        let titles: Vec<&str> = fixed.iter().map(|p| p.title.as_str()).collect();
        parts.push(format!("fixed: {}", titles.join("; ")));
    }
    let summary = format!("{name}: {}", parts.join("; "));
    let change_lines: Vec<String> = changes.iter().map(|c| c.line.clone()).collect();
    let details = details(&change_lines, &new, &fixed);
    (next, Some(Notice { summary, details }))
}

fn problem(f: &Finding) -> Problem {
    Problem {
        key: f.key(),
        severity: f.severity(),
        title: f.title.clone(),
    }
}

fn sorted(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| std::cmp::Reverse(f.severity()));
    v
}

fn remember(records: &[Record], authoritative: bool) -> Vec<Remembered> {
    let mut v: Vec<Remembered> = records
        .iter()
        .map(|r| Remembered {
            name: r.name.clone(),
            rtype: r.rtype.clone(),
            ttl: authoritative.then_some(r.ttl),
            data: r.data.clone(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn details(changes: &[String], new: &[&Finding], fixed: &[&Problem]) -> String {
    let mut lines: Vec<String> = changes
        .iter()
        .map(|c| format!("{}: records changed: {c}", Severity::Info))
        .collect();
    for f in new {
        lines.extend(report::finding_lines(f, "new "));
    }
    for p in fixed {
        lines.push(format!("fixed: {}", p.title));
    }
    lines.join("\n")
}

/// One changed RRset.
struct Change {
    /// Whether it is owned by the watched name itself (not by a name down its chain).
    own: bool,
    /// "CNAME app.test. → gone.test." or "app.test. A TTL 300 → 60".
    line: String,
}

/// The changed RRsets between two baselines, the watched name's own first.
fn diff(old: &Baseline, new: &Baseline, name: &str) -> Vec<Change> {
    type Sets = BTreeMap<(String, String), Vec<(String, Option<u32>)>>;
    let group = |b: &Baseline| {
        let mut m: Sets = BTreeMap::new();
        for r in &b.records {
            m.entry((r.name.clone(), r.rtype.clone()))
                .or_default()
                .push((r.data.clone(), r.ttl));
        }
        m
    };
    let (a, b) = (group(old), group(new));
    let keys: BTreeSet<&(String, String)> = a.keys().chain(b.keys()).collect();
    let mut changes = Vec::new();
    if old.rcode != new.rcode {
        changes.push(Change {
            own: true,
            line: format!("{} → {}", old.rcode, new.rcode),
        });
    }
    for key in keys {
        let (owner, rtype) = key;
        let before = a.get(key).cloned().unwrap_or_default();
        let after = b.get(key).cloned().unwrap_or_default();
        let data = |v: &[(String, Option<u32>)]| -> BTreeSet<String> {
            v.iter().map(|(d, _)| d.clone()).collect()
        };
        let ttls = |v: &[(String, Option<u32>)]| -> BTreeSet<u32> {
            v.iter().filter_map(|(_, t)| *t).collect()
        };
        let own = owner == name;
        let prefix = if own {
            String::new()
        } else {
            format!("{owner} ")
        };
        let (d0, d1) = (data(&before), data(&after));
        let line = if d0 != d1 {
            format!("{prefix}{rtype} {} → {}", join(&d0), join(&d1))
        } else {
            let (t0, t1) = (ttls(&before), ttls(&after));
            if t0 == t1 || t0.is_empty() || t1.is_empty() {
                continue;
            }
            format!("{prefix}{rtype} TTL {} → {}", join(&t0), join(&t1))
        };
        changes.push(Change { own, line });
    }
    changes.sort_by_key(|c| !c.own);
    changes
}

fn join<T: ToString>(set: &BTreeSet<T>) -> String {
    if set.is_empty() {
        return "(none)".into();
    }
    set.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// The changes for the one-line summary: the watched name's own, else all; at most two.
fn short(changes: &[Change]) -> String {
    let own: Vec<&Change> = changes.iter().filter(|c| c.own).collect();
    let shown: Vec<&Change> = if own.is_empty() {
        changes.iter().collect()
    } else {
        own
    };
    let mut text: Vec<String> = shown.iter().take(2).map(|c| c.line.clone()).collect();
    if shown.len() > 2 {
        text.push(format!("{} more", shown.len() - 2));
    }
    text.join(", ")
}

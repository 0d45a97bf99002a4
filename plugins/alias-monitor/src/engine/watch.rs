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

    let mut parts: Vec<String> = changes
        .iter()
        .filter(|c| c.alias)
        .map(|c| c.line.clone())
        .collect();
    let others = short(&changes);
    if !others.is_empty() {
        parts.push(format!("records changed ({others})"));
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
    let summary = match parts.first() {
        // The alias line names the owner already.
        Some(first) if first.starts_with(&format!("{name} ")) => parts.join("; "),
        _ => format!("{name}: {}", parts.join("; ")),
    };
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

/// One change, worded per owner name: the watched name's alias moving is one change ("now
/// aliases b (was a)"), and a name that left the chain is said to be no longer followed —
/// never that it lost its addresses, which nobody asked.
struct Change {
    /// Whether it is owned by the watched name itself (not by a name down its chain).
    own: bool,
    /// Whether it is the watched name's alias target moving (said on its own in the
    /// summary, not as "records changed").
    alias: bool,
    /// "www.example.test now aliases b.test (was a.test)", "app.test A TTL 300 → 60".
    line: String,
}

type Sets = BTreeMap<(String, String), Vec<(String, Option<u32>)>>;

/// The changes between two baselines, the watched name's own first.
fn diff(old: &Baseline, new: &Baseline, name: &str) -> Vec<Change> {
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
    let owners = |m: &Sets| -> BTreeSet<String> { m.keys().map(|(o, _)| o.clone()).collect() };
    let (in_a, in_b) = (owners(&a), owners(&b));
    let mut changes = Vec::new();
    if old.rcode != new.rcode {
        changes.push(Change {
            own: true,
            alias: false,
            line: format!("{} → {}", old.rcode, new.rcode),
        });
    }
    for owner in in_a.union(&in_b) {
        let own = owner == name;
        if !own && !in_b.contains(owner) {
            changes.push(Change {
                own,
                alias: false,
                line: format!("{} is no longer in the chain", bare(owner)),
            });
            continue;
        }
        if !own && !in_a.contains(owner) {
            changes.push(Change {
                own,
                alias: false,
                line: format!("{} joined the chain: {}", bare(owner), rrsets(&b, owner)),
            });
            continue;
        }
        let rtypes: BTreeSet<&String> = a
            .keys()
            .chain(b.keys())
            .filter(|(o, _)| o == owner)
            .map(|(_, t)| t)
            .collect();
        for rtype in rtypes {
            let key = (owner.clone(), rtype.clone());
            let before = a.get(&key).map(Vec::as_slice).unwrap_or_default();
            let after = b.get(&key).map(Vec::as_slice).unwrap_or_default();
            changes.extend(rrset_change(owner, rtype, own, before, after));
        }
    }
    changes.sort_by_key(|c| !c.own);
    changes
}

/// How one RRset of `owner` changed, if it did: its data, else its TTL.
fn rrset_change(
    owner: &str,
    rtype: &str,
    own: bool,
    before: &[(String, Option<u32>)],
    after: &[(String, Option<u32>)],
) -> Option<Change> {
    let data = |v: &[(String, Option<u32>)]| -> BTreeSet<String> {
        v.iter().map(|(d, _)| d.clone()).collect()
    };
    let ttls = |v: &[(String, Option<u32>)]| -> BTreeSet<u32> {
        v.iter().filter_map(|(_, t)| *t).collect()
    };
    let prefix = if own {
        String::new()
    } else {
        format!("{} ", bare(owner))
    };
    let (d0, d1) = (data(before), data(after));
    if d0 != d1 {
        if own && rtype == "CNAME" {
            return Some(Change {
                own,
                alias: true,
                line: alias_moved(owner, &d0, &d1),
            });
        }
        return Some(Change {
            own,
            alias: false,
            line: format!("{prefix}{rtype} {} → {}", join(&d0), join(&d1)),
        });
    }
    let (t0, t1) = (ttls(before), ttls(after));
    if t0 == t1 || t0.is_empty() || t1.is_empty() {
        return None;
    }
    Some(Change {
        own,
        alias: false,
        line: format!("{prefix}{rtype} TTL {} → {}", join(&t0), join(&t1)),
    })
}

/// "www.example.test now aliases b.test (was a.test)", or that it became or stopped
/// being an alias.
fn alias_moved(owner: &str, before: &BTreeSet<String>, after: &BTreeSet<String>) -> String {
    let targets = |set: &BTreeSet<String>| -> String {
        set.iter().map(|t| bare(t)).collect::<Vec<_>>().join(", ")
    };
    let owner = bare(owner);
    match (before.is_empty(), after.is_empty()) {
        (true, _) => format!("{owner} now aliases {} (was not an alias)", targets(after)),
        (_, true) => format!("{owner} is no longer an alias (was {})", targets(before)),
        _ => format!(
            "{owner} now aliases {} (was {})",
            targets(after),
            targets(before)
        ),
    }
}

/// "A 192.0.2.1, AAAA 2001:db8::1": every RRset of `owner`.
fn rrsets(m: &Sets, owner: &str) -> String {
    m.iter()
        .filter(|((o, _), _)| o == owner)
        .map(|((_, t), v)| {
            let data: BTreeSet<String> = v.iter().map(|(d, _)| d.clone()).collect();
            format!("{t} {}", join(&data))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A name without its trailing dot, as people write it.
fn bare(name: &str) -> &str {
    name.strip_suffix('.')
        .filter(|n| !n.is_empty())
        .unwrap_or(name)
}

fn join<T: ToString>(set: &BTreeSet<T>) -> String {
    if set.is_empty() {
        return "(none)".into();
    }
    set.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// The changes for the one-line summary: the watched name's own, else all; at most two.
/// The alias moving is said on its own, not here.
fn short(changes: &[Change]) -> String {
    let any_own = changes.iter().any(|c| c.own);
    let shown: Vec<&Change> = changes
        .iter()
        .filter(|c| !c.alias && (c.own || !any_own))
        .collect();
    let mut text: Vec<String> = shown.iter().take(2).map(|c| c.line.clone()).collect();
    if shown.len() > 2 {
        text.push(format!("{} more", shown.len() - 2));
    }
    text.join(", ")
}

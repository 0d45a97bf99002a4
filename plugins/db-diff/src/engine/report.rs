//! What a diff found, per table and per object, and its renderings: sqldiff's
//! `--summary`, git's `--stat`, and the one-line summary of chat notices.

use super::data::Counts;
use super::settings::SettingChange;

/// Per-table counts (and what happened to the table itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStat {
    /// The table's name.
    pub name: String,
    /// Rows inserted.
    pub inserts: u64,
    /// Rows deleted.
    pub deletes: u64,
    /// Rows changed in place.
    pub updates: u64,
    /// Rows equal in both (only in [`crate::engine::Mode::Counts`]).
    pub unchanged: u64,
    /// "added", "dropped", "schema changed", or None.
    pub schema: Option<&'static str>,
}

impl TableStat {
    /// Whether the table differs at all.
    pub fn changed(&self) -> bool {
        self.schema.is_some() || self.inserts + self.deletes + self.updates > 0
    }

    /// sqldiff's summary line: `t: 3 changes, 1 inserts, 2 deletes, 5 unchanged`, plus the
    /// schema note in parentheses.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "{}: {} changes, {} inserts, {} deletes, {} unchanged",
            self.name, self.updates, self.inserts, self.deletes, self.unchanged
        );
        if let Some(note) = self.schema {
            s.push_str(&format!(" ({note})"));
        }
        s
    }
}

/// An index, view or trigger that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// "index", "view" or "trigger".
    pub kind: String,
    /// Its name.
    pub name: String,
    /// "added", "dropped" or "changed".
    pub what: &'static str,
}

/// The result of [`diff`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// The SQL that turns A into B (empty when they are equal, and in counts and changeset
    /// modes).
    pub sql: String,
    /// [`crate::engine::Mode::Changeset`]: the row changes as a binary SQLite changeset (empty otherwise,
    /// and when no row that a changeset can carry differs).
    pub changeset: Vec<u8>,
    /// What the output leaves out, one line each, naming the tables and objects (a
    /// changeset cannot carry schema changes or rows of tables without a PRIMARY KEY).
    pub notes: Vec<String>,
    /// Every table in scope, in B's order then A's dropped ones.
    pub tables: Vec<TableStat>,
    /// Indexes, views and triggers that differ.
    pub objects: Vec<ObjectChange>,
    /// Database-level settings that differ (`user_version`, `application_id`, the
    /// AUTOINCREMENT counters): what a user who versions their schema relies on.
    pub settings: Vec<SettingChange>,
}

impl Diff {
    /// Whether A and B differ (in the compared scope).
    pub fn differs(&self) -> bool {
        !self.sql.trim().is_empty()
            || self.tables.iter().any(TableStat::changed)
            || !self.objects.is_empty()
            || !self.settings.is_empty()
    }

    /// `--summary`: one sqldiff-style line per table, then one per changed object.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            out.push_str(&t.summary_line());
            out.push('\n');
        }
        for o in &self.objects {
            out.push_str(&format!("{} {}: {}\n", o.kind, o.name, o.what));
        }
        for c in &self.settings {
            out.push_str(&format!("{}: {}\n", c.label(), c.what()));
        }
        out
    }

    /// The changed tables only, comma-separated: `t: 3 changes, 1 inserts` (zero counts
    /// left out), for chat notices.
    pub fn short_summary(&self) -> String {
        let mut parts = Vec::new();
        for t in self.tables.iter().filter(|t| t.changed()) {
            let mut bits = Vec::new();
            if let Some(n) = t.schema {
                bits.push(n.to_string());
            }
            for (n, w) in [
                (t.updates, "changes"),
                (t.inserts, "inserts"),
                (t.deletes, "deletes"),
            ] {
                if n > 0 {
                    bits.push(format!("{n} {w}"));
                }
            }
            parts.push(format!("{}: {}", t.name, bits.join(", ")));
        }
        for o in &self.objects {
            parts.push(format!("{} {}: {}", o.kind, o.name, o.what));
        }
        for c in &self.settings {
            parts.push(format!("{}: {}", c.label(), c.what()));
        }
        parts.join("; ")
    }

    /// `--stat`: git-style lines `name | N +I -D ~U` and a total line.
    pub fn stat(&self) -> String {
        let changed: Vec<&TableStat> = self.tables.iter().filter(|t| t.changed()).collect();
        let width = changed
            .iter()
            .map(|t| t.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        let (mut i, mut d, mut u) = (0, 0, 0);
        for t in &changed {
            let total = t.inserts + t.deletes + t.updates;
            out.push_str(&format!(
                " {:<width$} | {total:>6} +{} -{} ~{}{}\n",
                t.name,
                t.inserts,
                t.deletes,
                t.updates,
                t.schema.map(|s| format!(" ({s})")).unwrap_or_default()
            ));
            i += t.inserts;
            d += t.deletes;
            u += t.updates;
        }
        for o in &self.objects {
            out.push_str(&format!(" {} {} ({})\n", o.kind, o.name, o.what));
        }
        for c in &self.settings {
            out.push_str(&format!(" {} ({})\n", c.label(), c.what()));
        }
        out.push_str(&format!(
            " {} tables changed, {i} inserts(+), {d} deletes(-), {u} changes(~)\n",
            changed.len()
        ));
        out
    }
}

/// A table's stat line before its rows are counted.
pub(super) fn stat(name: &str, schema: Option<&'static str>) -> TableStat {
    TableStat {
        name: name.to_string(),
        inserts: 0,
        deletes: 0,
        updates: 0,
        unchanged: 0,
        schema,
    }
}

/// Adds `c` to table `name`'s stat line (a new line, "added" when `added`, if it has none).
pub(super) fn merge_stat(stats: &mut Vec<TableStat>, name: &str, c: Counts, added: bool) {
    let i = match stats.iter().position(|s| s.name.eq_ignore_ascii_case(name)) {
        Some(i) => i,
        None => {
            stats.push(stat(name, added.then_some("added")));
            stats.len() - 1
        }
    };
    let s = &mut stats[i];
    s.inserts += c.inserts;
    s.deletes += c.deletes;
    s.updates += c.updates;
    s.unchanged += c.unchanged;
}

/// An index, view or trigger that differs.
pub(super) fn change(kind: &str, name: &str, what: &'static str) -> ObjectChange {
    ObjectChange {
        kind: kind.to_string(),
        name: name.to_string(),
        what,
    }
}

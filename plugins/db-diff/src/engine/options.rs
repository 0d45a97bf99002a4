//! [`Options`]: what to compare and how to show it, with sqldiff's option meanings.

/// What the engine produces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// SQL that turns A into B (the default).
    #[default]
    Sql,
    /// Per-table counts only (`--summary`, `--stat`); no SQL is produced.
    Counts,
    /// `--changeset`: the row changes as a binary SQLite changeset (the session
    /// extension's format) in [`crate::engine::Diff::changeset`]; no SQL is produced.
    Changeset,
}

/// Options of one diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// SQL or counts.
    pub mode: Mode,
    /// `--schema`: schema changes only, no row changes.
    pub schema_only: bool,
    /// `--table T`: only table T (its indexes and triggers too). Case-insensitive.
    pub table: Option<String>,
    /// `--primarykey`: match rows of rowid tables on their declared PRIMARY KEY instead of
    /// the rowid.
    pub primary_key: bool,
    /// `--transaction`: wrap the whole output in `BEGIN TRANSACTION; … COMMIT;`.
    pub transaction: bool,
    /// `--ignore-column T.C`: columns (table, column; case-insensitive) whose values are
    /// not compared. Inserted rows still carry B's value.
    pub ignore_columns: Vec<(String, String)>,
}

impl Options {
    /// Whether `table.column` is ignored.
    pub fn ignored(&self, table: &str, column: &str) -> bool {
        self.ignore_columns
            .iter()
            .any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(column))
    }

    /// Whether objects of table `name` are in scope (`--table`).
    pub fn in_scope(&self, name: &str) -> bool {
        self.table
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case(name))
    }
}

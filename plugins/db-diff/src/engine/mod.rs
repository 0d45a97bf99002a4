//! The diff engine: SQL that turns database A into database B, computed inside SQLite.
//!
//! The engine talks to SQLite only through [`Db`]: one connection on which A is the schema
//! `main` and B is attached as `aux`. Every comparison is a set query that SQLite runs
//! (`NOT EXISTS` on the key, joins on the key with an exact per-column comparison, or
//! `GROUP BY` counts for tables without a usable key); the engine only reads the rows that
//! differ, plus the schema.
//!
//! ```text
//! let diff = engine::diff(&mut db, &Options::default())?;
//! print!("{}", diff.sql);
//! ```

pub mod changeset;
mod data;
pub mod literal;
mod options;
pub mod parse;
mod plan;
mod report;
mod schema;
mod scope;
mod settings;
mod tables;

pub use options::{Mode, Options};
pub use plan::diff;
pub use report::{Diff, ObjectChange, TableStat};
pub use settings::SettingChange;

/// A column value with its storage class: the SDK's, so rows cross from the host's
/// `sqlite` capability into the engine without a copy.
pub use roost_plugin::sqlite::Value;

/// A connection on which database A is the schema `main` and database B is attached as
/// `aux`. Read-only use is enough: the engine only runs `SELECT`s (including `pragma_*`
/// table-valued functions).
pub trait Db {
    /// Runs `sql` with `?` parameters and calls `row` with each result row, in order. An
    /// `Err` from `row` stops the query and is returned. Implementations fetch rows in
    /// bounded batches; the engine never runs a second query from inside `row`.
    fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        row: &mut dyn FnMut(Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String>;

    /// Runs `first` and `second` (no parameters) and calls `row` with each result row and
    /// the query it came from: each query's rows in its order, the two interleaved. The
    /// plugin's connection runs the two at once on two connections (SQLite works on both
    /// while the plugin handles rows); this default runs them one after the other.
    fn query_both(
        &mut self,
        first: &str,
        second: &str,
        row: &mut dyn FnMut(Pass, Vec<Value>) -> Result<(), String>,
    ) -> Result<(), String> {
        one_after_other(self, first, second, row)
    }
}

/// [`Db::query_both`] on one connection: `first` to its end, then `second`.
pub fn one_after_other<D: Db + ?Sized>(
    db: &mut D,
    first: &str,
    second: &str,
    row: &mut dyn FnMut(Pass, Vec<Value>) -> Result<(), String>,
) -> Result<(), String> {
    db.query(first, &[], &mut |r| row(Pass::First, r))?;
    db.query(second, &[], &mut |r| row(Pass::Second, r))
}

/// Which of the two queries of [`Db::query_both`] a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    First,
    Second,
}

/// Every row of a (small) query, e.g. schema reads.
pub(crate) fn query_all(
    db: &mut dyn Db,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Vec<Value>>, String> {
    let mut rows = Vec::new();
    db.query(sql, params, &mut |r| {
        rows.push(r);
        Ok(())
    })?;
    Ok(rows)
}

/// The first column of the first row as an integer (counts); 0 when there is none.
pub(crate) fn query_count(db: &mut dyn Db, sql: &str) -> Result<u64, String> {
    let rows = query_all(db, sql, &[])?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

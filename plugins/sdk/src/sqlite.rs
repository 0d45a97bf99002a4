//! Read-only SQLite access to database files the plugin's grants name
//! (`[plugins.NAME.grants] sqlite_read = [...]`, `sqlite_write = [...]` for snapshots).
//!
//! ```text
//! use roost_plugin::sqlite::{Connection, Value};
//!
//! let mut db = Connection::open("/data/prod.db")?;
//! db.attach("/data/staging.db", "aux")?;
//! let mut cursor = db.query("SELECT name FROM aux.sqlite_schema WHERE type = ?", &[Value::from("table")])?;
//! while let Some(batch) = cursor.next_batch(1000)? { /* ... */ }
//! ```
//!
//! Statements run inside SQLite on the host; rows come back in batches with their storage
//! classes. A new query on a connection ends the previous cursor. Transactions are refused;
//! a cursor left unread for the plugin's `sqlite_cursor_idle_ms` is reset (its next batch is
//! an [`Error::NotFound`]), so read cursors through and drop the ones you stop reading; rows
//! and batches are capped at a quarter of `memory_mb` ([`Error::TooLarge`]).

use crate::__bindings::roost::plugin::sqlite as wit;
use crate::Error;

/// A column value with its storage class (what SQL `typeof()` says); the SDK's copy of the
/// WIT `value` variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit IEEE float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// TEXT whose bytes are not valid UTF-8, exactly as stored (a WIT `string`, and so
    /// [`Value::Text`], cannot carry them). Its `typeof()` is "text".
    TextBytes(Vec<u8>),
}

impl Value {
    /// The SQL `typeof()` name: "null", "integer", "real", "text" or "blob".
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) | Value::TextBytes(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// `Value::from(5)` is an integer parameter.
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

/// `Value::from(0.5)` is a real parameter.
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

/// `Value::from("x")` is a text parameter.
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

/// `Value::from(String)` is a text parameter.
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

/// `Value::from(bytes)` is a blob parameter.
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl From<wit::Value> for Value {
    fn from(v: wit::Value) -> Self {
        match v {
            wit::Value::Null => Value::Null,
            wit::Value::Integer(i) => Value::Integer(i),
            wit::Value::Real(r) => Value::Real(r),
            wit::Value::Text(t) => Value::Text(t),
            wit::Value::Blob(b) => Value::Blob(b),
            wit::Value::TextBytes(b) => Value::TextBytes(b),
        }
    }
}

impl From<&Value> for wit::Value {
    fn from(v: &Value) -> Self {
        match v {
            Value::Null => wit::Value::Null,
            Value::Integer(i) => wit::Value::Integer(*i),
            Value::Real(r) => wit::Value::Real(*r),
            Value::Text(t) => wit::Value::Text(t.clone()),
            Value::Blob(b) => wit::Value::Blob(b.clone()),
            Value::TextBytes(b) => wit::Value::TextBytes(b.clone()),
        }
    }
}

/// One read-only connection: a granted database file as schema `main`, plus at most one
/// more granted file attached under a name of the plugin's choice.
#[derive(Debug)]
pub struct Connection {
    inner: wit::Connection,
}

impl Connection {
    /// Opens `path` read-only. The path must lie inside a file or directory granted in
    /// `sqlite_read`; otherwise [`Error::AccessDenied`]. A missing file is
    /// [`Error::NotFound`]; a file that is not a database is an error from the host.
    pub fn open(path: &str) -> Result<Self, Error> {
        wit::Connection::open(path)
            .map(|inner| Connection { inner })
            .map_err(Error::from)
    }

    /// Attaches another granted database read-only as `schema` (not "main" or "temp").
    pub fn attach(&mut self, path: &str, schema: &str) -> Result<(), Error> {
        self.inner.attach(path, schema).map_err(Error::from)
    }

    /// Runs one statement with `?` parameters and returns its rows as a [`Cursor`].
    /// Statements that write, ATTACH, or load extensions are refused by the host.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Cursor, Error> {
        let params: Vec<wit::Value> = params.iter().map(wit::Value::from).collect();
        self.inner
            .query(sql, &params)
            .map(|inner| Cursor { inner, done: false })
            .map_err(Error::from)
    }

    /// Writes a consistent copy of `main` to `path` (SQLite's online backup). The path must
    /// lie in a directory granted in `sqlite_write`.
    pub fn snapshot(&mut self, path: &str) -> Result<(), Error> {
        self.inner.snapshot(path).map_err(Error::from)
    }
}

/// The rows of one query, fetched from the host in batches.
#[derive(Debug)]
pub struct Cursor {
    inner: wit::Cursor,
    done: bool,
}

impl Cursor {
    /// The column names, in order.
    pub fn columns(&self) -> Vec<String> {
        self.inner.columns()
    }

    /// Up to `max` more rows, or `None` once there are no more. The host may return fewer
    /// than `max` (it also caps batches in bytes).
    pub fn next_batch(&mut self, max: u32) -> Result<Option<Vec<Vec<Value>>>, Error> {
        if self.done {
            return Ok(None);
        }
        let rows = self.inner.next(max.max(1)).map_err(Error::from)?;
        if rows.is_empty() {
            self.done = true;
            return Ok(None);
        }
        Ok(Some(
            rows.into_iter()
                .map(|row| row.into_iter().map(Value::from).collect())
                .collect(),
        ))
    }

    /// Every remaining row, one at a time, fetched in batches of `batch` rows. Stops after
    /// the first error, which it yields.
    pub fn rows(self, batch: u32) -> Rows {
        Rows {
            cursor: self,
            batch,
            buffered: std::collections::VecDeque::new(),
            failed: false,
        }
    }
}

/// An iterator over a [`Cursor`]'s rows; see [`Cursor::rows`].
#[derive(Debug)]
pub struct Rows {
    cursor: Cursor,
    batch: u32,
    buffered: std::collections::VecDeque<Vec<Value>>,
    failed: bool,
}

impl Iterator for Rows {
    type Item = Result<Vec<Value>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.buffered.is_empty() {
            match self.cursor.next_batch(self.batch) {
                Ok(Some(rows)) => self.buffered.extend(rows),
                Ok(None) => return None,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffered.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways_and_name_their_type() {
        for v in [
            Value::Null,
            Value::from(3),
            Value::from(0.5),
            Value::from("x"),
            Value::from(vec![1u8, 2]),
            Value::TextBytes(vec![0xff, 0]),
        ] {
            let back = Value::from(wit::Value::from(&v));
            assert_eq!(back, v);
        }
        assert_eq!(Value::from(-0.0).type_name(), "real");
        assert_eq!(Value::TextBytes(vec![0xff]).type_name(), "text");
        assert_eq!(Value::from("a").as_str(), Some("a"));
        assert_eq!(Value::from(7).as_i64(), Some(7));
    }
}

//! The plugin's own key-value store in the host's database. Needs no grant: the host
//! prefixes every key with the plugin's name, so a plugin can neither see nor touch
//! another plugin's keys. A successful write survives a crash of the host.

use crate::__bindings::roost::plugin::kv as wit;
use crate::Error;

/// The value stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    wit::get(key).map_err(Error::from)
}

/// The value stored under `key` as text, or `None`. A value that is not UTF-8 is an
/// [`Error::InvalidArgument`].
pub fn get_string(key: &str) -> Result<Option<String>, Error> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::InvalidArgument(format!("the value of `{key}` is not UTF-8"))),
    }
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
    wit::set(key, value.as_ref()).map_err(Error::from)
}

/// Stores the text `value` under `key`; read it back with [`get_string`].
pub fn set_string(key: &str, value: &str) -> Result<(), Error> {
    set(key, value.as_bytes())
}

/// Removes `key`; removing a missing key is not an error.
pub fn delete(key: &str) -> Result<(), Error> {
    wit::delete(key).map_err(Error::from)
}

/// The keys starting with `prefix`, sorted; `""` lists every key. (The WIT call is
/// `kv.keys`.) The host caps how many one call returns.
pub fn list(prefix: &str) -> Result<Vec<String>, Error> {
    wit::keys(prefix).map_err(Error::from)
}

/// One write in an atomic [`batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store the value under the key.
    Set(String, Vec<u8>),
    /// Remove the key.
    Delete(String),
}

impl Op {
    /// A write of `value` under `key`.
    pub fn set(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Op::Set(key.into(), value.into())
    }

    /// A removal of `key`.
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete(key.into())
    }
}

/// Applies every write in `ops`, or none of them.
pub fn batch(ops: impl IntoIterator<Item = Op>) -> Result<(), Error> {
    let ops: Vec<wit::Op> = ops
        .into_iter()
        .map(|op| match op {
            Op::Set(key, value) => wit::Op::Set((key, value)),
            Op::Delete(key) => wit::Op::Delete(key),
        })
        .collect();
    wit::batch(&ops).map_err(Error::from)
}

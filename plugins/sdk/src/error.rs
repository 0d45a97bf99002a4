//! [`Error`]: why the host refused a capability call.

use std::fmt;

use crate::__bindings::roost::plugin::types as wit;

/// Why the host refused a capability call ([`kv`](crate::kv), [`chat`](crate::chat),
/// [`timer`](crate::timer), [`admin`](crate::admin)). Mirrors the WIT `error` variant. A
/// refused call is never a trap: the plugin decides what to do.
///
/// `?` turns it into the `String` error of the [`Plugin`](crate::Plugin) hooks, using the
/// `Display` text (e.g. "access denied: channel `ops` is not granted").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The plugin's grants in config do not allow this; the text says what is missing.
    AccessDenied(String),
    /// The named thing (plugin, timer, …) does not exist.
    NotFound(String),
    /// An argument is malformed (an empty key, a zero interval, …).
    InvalidArgument(String),
    /// A size limit was exceeded (value, batch, message).
    TooLarge(String),
    /// Anything else; the detail is in the host's log.
    Other(String),
}

impl Error {
    /// The host's explanation, without the kind.
    pub fn reason(&self) -> &str {
        match self {
            Error::AccessDenied(r)
            | Error::NotFound(r)
            | Error::InvalidArgument(r)
            | Error::TooLarge(r)
            | Error::Other(r) => r,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Error::AccessDenied(_) => "access denied",
            Error::NotFound(_) => "not found",
            Error::InvalidArgument(_) => "invalid argument",
            Error::TooLarge(_) => "too large",
            Error::Other(r) => return f.write_str(r),
        };
        match self.reason() {
            "" => f.write_str(kind),
            reason => write!(f, "{kind}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// Lets `?` on a capability call work inside hooks that return `Result<_, String>`.
impl From<Error> for String {
    fn from(e: Error) -> Self {
        e.to_string()
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::AccessDenied(r) => Error::AccessDenied(r),
            wit::Error::NotFound(r) => Error::NotFound(r),
            wit::Error::InvalidArgument(r) => Error::InvalidArgument(r),
            wit::Error::TooLarge(r) => Error::TooLarge(r),
            wit::Error::Other(r) => Error::Other(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_and_the_reason() {
        assert_eq!(
            Error::AccessDenied("no grant".into()).to_string(),
            "access denied: no grant"
        );
        assert_eq!(Error::NotFound(String::new()).to_string(), "not found");
        assert_eq!(Error::Other("disk full".into()).to_string(), "disk full");
        let s: String = Error::TooLarge("value".into()).into();
        assert_eq!(s, "too large: value");
    }
}

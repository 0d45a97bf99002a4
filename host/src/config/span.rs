//! Where in the file a problem is: key paths, their spans in the TOML document, and
//! line:column positions counted in characters, as editors count them.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ConfigError;

pub(super) fn location(path: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

/// One step of a key path into the document.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    pub(super) fn key(k: &str) -> Self {
        Seg::Key(k.to_string())
    }
}

/// A validation failure and where it is: the key path, and whether to point at the key
/// itself (a bad name) or at its value.
#[derive(Debug)]
pub(super) struct Problem {
    pub(super) at: Vec<Seg>,
    pub(super) on_key: bool,
    pub(super) message: String,
}

impl Problem {
    pub(super) fn value(at: &[&str], message: String) -> Self {
        Self {
            at: at.iter().map(|k| Seg::key(k)).collect(),
            on_key: false,
            message,
        }
    }

    pub(super) fn key(at: &[&str], message: String) -> Self {
        Self {
            at: at.iter().map(|k| Seg::key(k)).collect(),
            on_key: true,
            message,
        }
    }
}

/// `plugins.bot.grants.channels[0]`, quoting keys that are not bare TOML keys.
pub(super) fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    let _ = write!(out, "{k:?}");
                }
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// The byte span of the key or value at `path`. When the path runs out early (the value is
/// a default, not in the file) the deepest part that exists is used, so the error still
/// points at the right table.
pub(super) fn span_of(
    doc: &Spanned<DeTable<'_>>,
    path: &[Seg],
    on_key: bool,
) -> Option<Range<usize>> {
    let mut best = None;
    let mut node: Option<&DeValue<'_>> = None;
    let mut table = Some(doc.get_ref());
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let found = match (seg, table, node) {
            (Seg::Key(k), Some(t), _) => t.get_key_value(k.as_str()).map(|(key, value)| {
                if last && on_key {
                    (key.span(), value)
                } else {
                    (value.span(), value)
                }
            }),
            (Seg::Index(n), _, Some(DeValue::Array(a))) => a.get(*n).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((span, value)) = found else {
            break;
        };
        best = Some(span);
        node = Some(value.get_ref());
        table = value.get_ref().as_table();
    }
    best
}

/// Turns a serde error into a [`ConfigError::Schema`], prefixing the message with the key
/// path of the table (for an unknown key) or value (for a bad value) it points at.
pub(super) fn schema_error(
    path: &Path,
    text: &str,
    doc: &Spanned<DeTable<'_>>,
    err: &toml::de::Error,
) -> ConfigError {
    let message = err.message().trim();
    let span = err.span();
    let located = span
        .as_ref()
        .and_then(|s| locate(doc.get_ref(), s, &mut Vec::new()));
    let message = match located {
        Some((mut at, on_key)) => {
            if on_key {
                at.pop();
            }
            if at.is_empty() {
                message.to_string()
            } else {
                format!("{}: {message}", dotted(&at))
            }
        }
        None => message.to_string(),
    };
    ConfigError::Schema {
        path: path.to_path_buf(),
        position: span.map(|s| line_col(text, s.start)),
        message,
    }
}

/// Finds the key or value whose span is exactly `span`: its path, and whether it was the key.
pub(super) fn locate(
    table: &DeTable<'_>,
    span: &Range<usize>,
    at: &mut Vec<Seg>,
) -> Option<(Vec<Seg>, bool)> {
    for (key, value) in table.iter() {
        at.push(Seg::Key(key.get_ref().to_string()));
        if key.span() == *span {
            return Some((at.clone(), true));
        }
        if let Some(found) = locate_value(value, span, at) {
            return Some(found);
        }
        at.pop();
    }
    None
}

pub(super) fn locate_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    at: &mut Vec<Seg>,
) -> Option<(Vec<Seg>, bool)> {
    // Children first: a table declared by a header shares nothing with its keys, but an
    // inline value's span contains its children's.
    match value.get_ref() {
        DeValue::Table(t) => {
            if let Some(found) = locate(t, span, at) {
                return Some(found);
            }
        }
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                at.push(Seg::Index(i));
                if let Some(found) = locate_value(item, span, at) {
                    return Some(found);
                }
                at.pop();
            }
        }
        _ => {}
    }
    (value.span() == *span).then(|| (at.clone(), false))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

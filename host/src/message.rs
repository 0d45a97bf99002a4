//! The host's own message types: what gateways produce (incoming chat) and what they
//! deliver (outgoing parts), independent of any platform and of the WIT types.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One chat message as a gateway saw it, before routing.
#[derive(Debug, Clone)]
pub struct ChatMessage {
    /// Gateway instance name, e.g. "console".
    pub gateway: String,
    /// Channel within that gateway.
    pub channel: String,
    /// Stable sender identity, e.g. "console" or "discord:123".
    pub identity: String,
    /// The text as typed.
    pub text: String,
}

/// One part of an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Part {
    Text { text: String },
    Code { language: String, code: String },
    Attachment { filename: String, data: Vec<u8> },
}

/// A reply or an announcement: its parts in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub parts: Vec<Part>,
    /// Set on copies made by a mirror rule, so the copy can later be edited or deleted
    /// along with its original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<Relay>,
}

/// What a mirrored message does to its copy on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayAction {
    /// Post the copy and remember its id on the target.
    Post,
    /// Replace the copy's text.
    Edit,
    /// Delete the copy.
    Delete,
}

/// A mirrored message: the original's key (`<gateway>:<channel>:<message id>`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub key: String,
    pub action: RelayAction,
}

impl Outgoing {
    /// A message of one text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Text { text: text.into() }],
            relay: None,
        }
    }

    /// A mirrored copy of original `key`: `text` posted, edited, or (`Delete`) removed.
    pub fn relay(key: String, action: RelayAction, text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Text { text: text.into() }],
            relay: Some(Relay { key, action }),
        }
    }

    /// Plain-text rendering for the console and logs: code blocks fenced, attachments named.
    pub fn render_plain(&self) -> String {
        self.plain_parts().collect::<Vec<_>>().join("\n")
    }

    /// The parts of [`Outgoing::render_plain`], to be joined with newlines; a text part is
    /// borrowed, so a large reply can be written out without a copy of it.
    pub fn plain_parts(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.parts.iter().map(|part| match part {
            Part::Text { text } => Cow::Borrowed(text.as_str()),
            Part::Code { language, code } => Cow::Owned(format!(
                "```{language}\n{}\n```",
                code.trim_end_matches('\n')
            )),
            Part::Attachment { filename, data } => {
                Cow::Owned(attachment_line(filename, data.len()))
            }
        })
    }
}

/// How much of one message a target's platform can take, and in what unit: the most the
/// outbox stores per message for that target (see [`Outgoing::fitted`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeLimit {
    /// At most this many characters (Unicode scalar values), as Discord and Slack count.
    Chars(usize),
    /// At most this many bytes of UTF-8.
    Bytes(usize),
}

/// Room kept under a [`SizeLimit`] for the "… (cut: N more characters)" line; the longest
/// such line (a 20-digit count) is 47 bytes.
const CUT_MARKER_ROOM: usize = 64;

impl SizeLimit {
    fn max(self) -> usize {
        match self {
            SizeLimit::Chars(n) | SizeLimit::Bytes(n) => n,
        }
    }

    fn measure(self, s: &str) -> usize {
        match self {
            SizeLimit::Chars(_) => s.chars().count(),
            SizeLimit::Bytes(_) => s.len(),
        }
    }

    /// The longest start of `s` at most `n` units long, ending at a character boundary.
    fn prefix(self, s: &str, n: usize) -> &str {
        let end = match self {
            SizeLimit::Chars(_) => s.char_indices().nth(n).map_or(s.len(), |(i, _)| i),
            SizeLimit::Bytes(_) => {
                let mut end = n.min(s.len());
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                end
            }
        };
        &s[..end]
    }

    fn unit(self) -> &'static str {
        match self {
            SizeLimit::Chars(_) => "characters",
            SizeLimit::Bytes(_) => "bytes",
        }
    }
}

/// Characters a code part adds around its code when rendered: "```", the language, two line
/// breaks and the closing "```".
fn fence_cost(limit: SizeLimit, language: &str) -> usize {
    limit.measure(language) + 8
}

impl Outgoing {
    /// This message as the outbox stores it for a target whose platform takes `limit`:
    /// attachments become the line that names them (no gateway uploads files; each renders
    /// them as that line), and a message that renders longer than `limit` is cut, parts in
    /// order, ending with a visible "… (cut: N more characters)" line. Also returns N, 0
    /// when it fit. The result renders within `limit` (`limit` of at least 64 units).
    pub fn fitted(&self, limit: SizeLimit) -> (Outgoing, usize) {
        let shown = Outgoing {
            parts: self.parts.iter().map(shown_part).collect(),
            relay: self.relay.clone(),
        };
        let total = limit.measure(&shown.render_plain());
        if total <= limit.max() {
            return (shown, 0);
        }
        let budget = limit.max().saturating_sub(CUT_MARKER_ROOM);
        let mut kept = Outgoing {
            parts: Vec::new(),
            relay: shown.relay.clone(),
        };
        let mut used = 0usize;
        for part in shown.parts {
            let room = budget.saturating_sub(used + usize::from(!kept.parts.is_empty()));
            let (part, whole) = cut_part(part, room, limit);
            if let Some(part) = part {
                used += usize::from(!kept.parts.is_empty()) + part_cost(&part, limit);
                kept.parts.push(part);
            }
            if !whole {
                break;
            }
        }
        let cut = total.saturating_sub(limit.measure(&kept.render_plain()));
        kept.parts.push(Part::Text {
            text: format!("… (cut: {cut} more {})", limit.unit()),
        });
        (kept, cut)
    }
}

/// How an attachment renders: its name and size.
fn attachment_line(filename: &str, len: usize) -> String {
    format!("[attachment {filename}, {len} bytes]")
}

/// A part as every gateway shows it: attachments reduced to their name and size.
fn shown_part(part: &Part) -> Part {
    match part {
        Part::Attachment { filename, data } => Part::Text {
            text: attachment_line(filename, data.len()),
        },
        other => other.clone(),
    }
}

/// Units `part` takes when rendered.
fn part_cost(part: &Part, limit: SizeLimit) -> usize {
    match part {
        Part::Text { text } => limit.measure(text),
        Part::Code { language, code } => fence_cost(limit, language) + limit.measure(code),
        Part::Attachment { filename, data } => {
            limit.measure(&attachment_line(filename, data.len()))
        }
    }
}

/// `part` within `room` units: the part itself and `true` when it fits whole, else what of
/// it fits (`None` when nothing useful does) and `false`.
fn cut_part(part: Part, room: usize, limit: SizeLimit) -> (Option<Part>, bool) {
    if part_cost(&part, limit) <= room {
        return (Some(part), true);
    }
    let cut = match part {
        Part::Text { text } if room > 0 => Some(Part::Text {
            text: limit.prefix(&text, room).to_string(),
        }),
        Part::Code { language, code } if room > fence_cost(limit, &language) => {
            let code = limit
                .prefix(&code, room - fence_cost(limit, &language))
                .to_string();
            Some(Part::Code { language, code })
        }
        _ => None,
    };
    (cut, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Part {
        Part::Text { text: t.into() }
    }

    #[test]
    fn a_message_within_the_limit_is_kept_as_it_is() {
        let m = Outgoing {
            parts: vec![
                text("hi"),
                Part::Code {
                    language: "rust".into(),
                    code: "fn x() {}".into(),
                },
            ],
            relay: None,
        };
        let (fitted, cut) = m.fitted(SizeLimit::Chars(2000));
        assert_eq!(cut, 0);
        assert_eq!(fitted, m);
    }

    #[test]
    fn attachments_are_stored_as_the_line_that_names_them() {
        let m = Outgoing {
            parts: vec![Part::Attachment {
                filename: "log.txt".into(),
                data: vec![0; 100_000],
            }],
            relay: None,
        };
        let (fitted, cut) = m.fitted(SizeLimit::Bytes(1000));
        assert_eq!(cut, 0);
        assert_eq!(
            fitted.parts,
            vec![text("[attachment log.txt, 100000 bytes]")]
        );
        assert_eq!(fitted.render_plain(), m.render_plain());
    }

    #[test]
    fn a_long_message_is_cut_with_a_marker_and_renders_within_the_limit() {
        for limit in [SizeLimit::Chars(2000), SizeLimit::Bytes(2000)] {
            let m = Outgoing {
                parts: vec![
                    text("head"),
                    Part::Code {
                        language: "sh".into(),
                        code: "é".repeat(5000),
                    },
                    text("tail"),
                ],
                relay: None,
            };
            let total = limit.measure(&m.render_plain());
            let (fitted, cut) = m.fitted(limit);
            let rendered = fitted.render_plain();
            let kept = limit.measure(&rendered);
            assert!(kept <= 2000, "{limit:?}: {kept}");
            assert!(kept > 1800, "{limit:?}: only {kept} kept");
            assert!(
                rendered.ends_with(&format!("… (cut: {cut} more {})", limit.unit())),
                "{rendered}"
            );
            assert!(rendered.starts_with("head\n```sh\né"), "{rendered}");
            assert!(rendered.contains("é\n```\n…"), "the code block is closed");
            let marker = limit.measure(&format!("\n… (cut: {cut} more {})", limit.unit()));
            assert_eq!(kept - marker + cut, total, "{limit:?}: the count is exact");
        }
    }

    #[test]
    fn a_mirrored_edit_keeps_its_relay_when_cut() {
        let m = Outgoing::relay("k".into(), RelayAction::Edit, "x".repeat(10_000));
        let (fitted, cut) = m.fitted(SizeLimit::Chars(2000));
        assert_eq!(cut, 10_000 - (2000 - CUT_MARKER_ROOM));
        assert_eq!(fitted.relay, m.relay);
    }
}

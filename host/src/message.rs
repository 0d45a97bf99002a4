//! The host's own message types: what gateways produce (incoming chat) and what they
//! deliver (outgoing parts), independent of any platform and of the WIT types.

use serde::{Deserialize, Serialize};

use crate::runtime::bindings::{Attachment, CodeBlock, Content};

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
        let mut out: Vec<String> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            match part {
                Part::Text { text } => out.push(text.clone()),
                Part::Code { language, code } => out.push(format!(
                    "```{language}\n{}\n```",
                    code.trim_end_matches('\n')
                )),
                Part::Attachment { filename, data } => {
                    out.push(format!("[attachment {filename}, {} bytes]", data.len()))
                }
            }
        }
        out.join("\n")
    }
}

impl From<Vec<Content>> for Outgoing {
    fn from(parts: Vec<Content>) -> Self {
        Self {
            parts: parts
                .into_iter()
                .map(|c| match c {
                    Content::Text(text) => Part::Text { text },
                    Content::Code(CodeBlock { language, code }) => Part::Code { language, code },
                    Content::Attachment(Attachment { filename, data }) => {
                        Part::Attachment { filename, data }
                    }
                })
                .collect(),
            relay: None,
        }
    }
}

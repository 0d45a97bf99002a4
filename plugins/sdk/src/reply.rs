//! [`Reply`]: an outgoing chat message.

use crate::__bindings::roost::plugin::types as wit;

/// An outgoing chat message: text, code blocks and attachments, in order. What
/// [`Plugin::on_command`](crate::Plugin::on_command) answers with and what
/// [`chat::send`](crate::chat::send) posts. Each gateway renders the parts its own way
/// (a Discord code block, a Slack file upload, plain text on the console).
///
/// ```
/// # use roost_plugin::Reply;
/// let reply = Reply::text("3 tests failed:")
///     .code("text", "test_a\ntest_b\ntest_c")
///     .attachment("log.txt", b"full log".to_vec())
///     .and_text("run `!tests` again after a fix");
/// assert!(!reply.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    parts: Vec<Part>,
}

/// One part of a [`Reply`]; the SDK's copy of the WIT `content` variant.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Code { language: String, code: String },
    Attachment { filename: String, data: Vec<u8> },
}

impl Reply {
    /// An empty message, to start a reply that opens with a code block or attachment.
    /// Answering a command with an empty reply sends nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A message of one line (or paragraph) of text: the common case.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new().and_text(text)
    }

    /// Appends more text after what is there.
    pub fn and_text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// Appends a code block; `language` is a highlighting hint such as "sql" or "" for none.
    pub fn code(mut self, language: impl Into<String>, code: impl Into<String>) -> Self {
        self.parts.push(Part::Code {
            language: language.into(),
            code: code.into(),
        });
        self
    }

    /// Appends `text` meant for the shell's stderr: `roost invoke` prints it there, plain,
    /// and keeps it out of stdout (notes beside output a script reads). It travels as a code
    /// block of language `stderr`, which is how a chat would show it: use it only when
    /// [`Command::from_shell`](crate::Command::from_shell).
    pub fn and_stderr(self, text: impl Into<String>) -> Self {
        self.code("stderr", text)
    }

    /// Appends a file named `filename`.
    pub fn attachment(mut self, filename: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.parts.push(Part::Attachment {
            filename: filename.into(),
            data: data.into(),
        });
        self
    }

    /// Whether the message has no parts.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The message as plain text, the way the console shows it: text as is, code in
    /// ``` fences, attachments as `[attachment NAME, N bytes]`, one part per line. Meant
    /// for tests and logs.
    pub fn to_plain_text(&self) -> String {
        let lines: Vec<String> = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Text(t) => t.clone(),
                Part::Code { language, code } => format!("```{language}\n{code}\n```"),
                Part::Attachment { filename, data } => {
                    format!("[attachment {filename}, {} bytes]", data.len())
                }
            })
            .collect();
        lines.join("\n")
    }

    /// The WIT `message` the host receives.
    pub(crate) fn into_message(self) -> wit::Message {
        self.parts
            .into_iter()
            .map(|part| match part {
                Part::Text(t) => wit::Content::Text(t),
                Part::Code { language, code } => {
                    wit::Content::Code(wit::CodeBlock { language, code })
                }
                Part::Attachment { filename, data } => {
                    wit::Content::Attachment(wit::Attachment { filename, data })
                }
            })
            .collect()
    }
}

/// `"pong".into()` is a one-line text reply.
impl From<&str> for Reply {
    fn from(text: &str) -> Self {
        Reply::text(text)
    }
}

/// `format!(..).into()` is a one-line text reply.
impl From<String> for Reply {
    fn from(text: String) -> Self {
        Reply::text(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_their_order_in_the_wit_message() {
        let msg = Reply::text("a")
            .code("sql", "select 1")
            .attachment("f", vec![1, 2])
            .and_text("b")
            .into_message();
        assert_eq!(msg.len(), 4);
        assert!(matches!(&msg[0], wit::Content::Text(t) if t == "a"));
        assert!(
            matches!(&msg[1], wit::Content::Code(c) if c.language == "sql" && c.code == "select 1")
        );
        assert!(
            matches!(&msg[2], wit::Content::Attachment(a) if a.filename == "f" && a.data == [1, 2])
        );
        assert!(matches!(&msg[3], wit::Content::Text(t) if t == "b"));
    }

    #[test]
    fn plain_text_shows_every_part() {
        let reply = Reply::new()
            .code("", "x")
            .attachment("a.txt", b"hey".to_vec());
        assert_eq!(
            reply.to_plain_text(),
            "```\nx\n```\n[attachment a.txt, 3 bytes]"
        );
        assert!(Reply::new().is_empty());
        assert_eq!(Reply::from("pong"), Reply::text("pong"));
    }
}

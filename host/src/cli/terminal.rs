//! Text from plugins and mirrored chat users reaches the user's terminal only as text:
//! control characters (escape sequences that clear the screen or set the title, carriage
//! returns that overwrite a line) are shown in caret notation, as `cat -v` does.

use std::borrow::Cow;
use std::io::Write;

use crate::message::Outgoing;

/// `text` with every control character except newline and tab made visible (`^[`, `^M`,
/// `^?`, and `\u{9b}` for the C1 controls).
pub fn visible(text: &str) -> Cow<'_, str> {
    let is_control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !is_control(c) => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Prints one line of plugin text to stdout, made [`visible`]. A closed pipe (`| head`)
/// is an error of kind `BrokenPipe`, which callers end on quietly.
pub fn print_line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", visible(text))?;
    out.flush()
}

/// Prints a reply to stdout as [`Outgoing::render_plain`] shows it, made [`visible`], part
/// by part: a large reply (a diff's SQL) is written from where it lies, never copied whole.
pub fn print_reply(reply: &Outgoing) -> std::io::Result<()> {
    // Buffered: stdout alone writes each line as it ends (a report of a thousand names
    // was two thousand system calls).
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    for (i, part) in reply.plain_parts().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(visible(&part).as_bytes())?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_become_caret_notation_and_text_stays() {
        assert_eq!(visible("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(visible("\u{1b}[2J\u{1b}]0;pwned\u{7}"), "^[[2J^[]0;pwned^G");
        assert_eq!(visible("a\rb\u{7f}\u{9b}"), "a^Mb^?\\u{9b}");
    }
}

//! Platform-neutral text work every chat gateway needs before posting: splitting a long
//! message at the platform's size limit without breaking code blocks, and neutralising
//! mass mentions in text that came from somewhere else.

/// Zero-width space: placed after `@` it keeps `@everyone` readable but inert.
const ZWSP: char = '\u{200B}';

/// A code fence line starts with this.
const FENCE: &str = "```";

/// Splits `text` into pieces of at most `limit` characters, preferring line breaks. A code
/// block cut by a split is closed at the end of one piece and reopened (with its language)
/// at the start of the next, so every piece renders on its own. Lines longer than a piece are
/// cut at character boundaries. An empty text gives no pieces.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    // Room kept in every piece for a closing fence ("\n```") and a reopened fence line.
    const CLOSE: usize = 4;
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_len = 0usize;
    // The fence line that opened the code block we are in, if any.
    let mut open: Option<String> = None;

    for line in text.split('\n') {
        let fence_len = open.as_ref().map_or(0, |f| f.chars().count() + 1);
        let room = limit.saturating_sub(CLOSE + fence_len).max(1);
        for part in cut_line(line, room) {
            let part_len = part.chars().count();
            let sep = usize::from(!current.is_empty());
            if current_len + sep + part_len + CLOSE > limit && !is_only_fence(&current, &open) {
                if open.is_some() {
                    current.push('\n');
                    current.push_str(FENCE);
                }
                pieces.push(std::mem::take(&mut current));
                current_len = 0;
                if let Some(fence) = &open {
                    current.push_str(fence);
                    current_len = fence.chars().count();
                }
            }
            if !current.is_empty() {
                current.push('\n');
                current_len += 1;
            }
            current.push_str(part);
            current_len += part_len;
        }
        if line.trim_start().starts_with(FENCE) {
            open = match open {
                Some(_) => None,
                None => Some(line.trim().to_string()),
            };
        }
    }
    if !current.is_empty() && !is_only_fence(&current, &open) {
        pieces.push(current);
    }
    pieces
}

/// Whether `current` holds nothing but the fence we reopened (flushing it would post an
/// empty code block).
fn is_only_fence(current: &str, open: &Option<String>) -> bool {
    current.is_empty() || open.as_deref() == Some(current)
}

/// `line` cut into parts of at most `room` characters (the line itself when it fits).
fn cut_line(line: &str, room: usize) -> Vec<&str> {
    if line.chars().count() <= room {
        return vec![line];
    }
    let mut parts = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let end = rest.char_indices().nth(room).map_or(rest.len(), |(i, _)| i);
        parts.push(&rest[..end]);
        rest = &rest[end..];
    }
    parts
}

/// `@everyone` and `@here` made inert (a zero-width space after the `@`), for text relayed
/// from users or plugins: a bot must never ping a whole server because someone else typed it.
/// Gateways also tell the platform to resolve no mentions at all; this covers clients that
/// render the text anyway.
pub fn neutralise_mass_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        if rest.starts_with("everyone") || rest.starts_with("here") {
            out.push(ZWSP);
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fences_balance(piece: &str) -> bool {
        piece
            .lines()
            .filter(|l| l.trim_start().starts_with(FENCE))
            .count()
            % 2
            == 0
    }

    #[test]
    fn short_text_is_one_piece_and_empty_text_none() {
        assert_eq!(split("hello", 2000), vec!["hello".to_string()]);
        assert!(split("", 2000).is_empty());
    }

    #[test]
    fn long_prose_splits_at_line_breaks_within_the_limit() {
        let line = "x".repeat(90);
        let text = vec![line.as_str(); 50].join("\n");
        let pieces = split(&text, 2000);
        assert!(pieces.len() >= 3, "{}", pieces.len());
        for p in &pieces {
            assert!(p.chars().count() <= 2000);
            assert!(p.lines().all(|l| l == line), "lines are kept whole");
        }
        assert_eq!(pieces.join("\n"), text, "nothing lost or added");
    }

    #[test]
    fn a_code_block_cut_in_two_is_closed_and_reopened_with_its_language() {
        let code: Vec<String> = (0..300).map(|i| format!("let v{i} = {i};")).collect();
        let text = format!("before\n```rust\n{}\n```\nafter", code.join("\n"));
        let pieces = split(&text, 2000);
        assert!(pieces.len() >= 3);
        for (i, p) in pieces.iter().enumerate() {
            assert!(p.chars().count() <= 2000, "piece {i} too long");
            assert!(fences_balance(p), "piece {i} has an open code block:\n{p}");
            if i > 0 && i + 1 < pieces.len() {
                assert!(p.starts_with("```rust\n"), "piece {i} reopens the block");
            }
        }
        let kept: Vec<&str> = pieces
            .iter()
            .flat_map(|p| p.lines())
            .filter(|l| l.starts_with("let "))
            .collect();
        assert_eq!(kept.len(), 300, "every code line arrives once");
        assert!(pieces[pieces.len() - 1].ends_with("after"));
    }

    #[test]
    fn one_huge_line_is_cut_at_character_boundaries() {
        let text = "é".repeat(4500);
        let pieces = split(&text, 2000);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.chars().count() <= 2000));
    }

    #[test]
    fn mass_mentions_are_made_inert_and_other_text_kept() {
        let out = neutralise_mass_mentions("hi @everyone and @here, mail a@b.c");
        assert!(!out.contains("@everyone") && !out.contains("@here"));
        assert_eq!(out.replace(ZWSP, ""), "hi @everyone and @here, mail a@b.c");
    }
}

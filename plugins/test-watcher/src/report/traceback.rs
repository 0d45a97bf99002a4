//! pytest's short tracebacks (`path:line: in function`, the source line, then `E   …`)
//! read for what a person needs first: the exception and the place in the project's own
//! code that raised it, not pytest's, importlib's or Python's frames around it.

/// Frames whose path contains one of these are not the project's own code: Python itself,
/// installed packages (a virtualenv inside the project too), pytest and its plugin system.
const FOREIGN: &[&str] = &[
    "/lib/python",
    "site-packages/",
    "dist-packages/",
    "_pytest/",
    "pluggy/",
    "<frozen",
];

/// Whether `line` is one entry of a short traceback: `path:line: in function`.
pub fn is_frame(line: &str) -> bool {
    if line.starts_with(char::is_whitespace) || line.starts_with("E ") {
        return false;
    }
    let Some((place, _)) = line.split_once(": in ") else {
        return false;
    };
    place.rsplit_once(':').is_some_and(|(path, n)| {
        !path.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether a frame line points into the project's own code.
fn is_own(frame: &str) -> bool {
    !FOREIGN.iter().any(|f| frame.contains(f))
}

/// An exception line: `E` and the text pytest prints after it.
fn is_exception(line: &str) -> bool {
    line.starts_with("E ") || line == "E"
}

/// What raised and where, in at most `n` lines: the last frame in the project's own code
/// with its source line, then the exception lines (`E   …`), the first ones and the last
/// one when they do not all fit. `None` when `lines` hold no exception line.
pub fn exception(lines: &[&str], n: usize) -> Option<Vec<String>> {
    let first_e = lines.iter().position(|l| is_exception(l))?;
    let exception: Vec<&str> = lines[first_e..]
        .iter()
        .copied()
        .filter(|l| is_exception(l))
        .collect();
    let mut place = own_frame(&lines[..first_e]);
    // The exception matters more than where it was raised.
    if place.len() + 1 > n {
        place.clear();
    }
    let room = n.saturating_sub(place.len()).max(1);
    let mut shown: Vec<&str> = if exception.len() <= room {
        exception
    } else {
        let mut head = exception[..room - 1].to_vec();
        head.extend(exception.last().copied());
        head
    };
    place.append(&mut shown);
    Some(place.into_iter().map(str::to_string).collect())
}

/// The last frame in the project's own code and the source line under it; empty when
/// every frame is Python's or pytest's (a SyntaxError names its place in its `E` lines).
fn own_frame<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let Some(at) = lines.iter().rposition(|l| is_frame(l) && is_own(l)) else {
        return Vec::new();
    };
    let mut out = vec![lines[at]];
    if let Some(source) = lines
        .get(at + 1)
        .filter(|l| l.starts_with(char::is_whitespace))
    {
        out.push(source);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.trim().is_empty()).collect()
    }

    #[test]
    fn an_import_error_shows_the_projects_frame_and_the_exception() {
        let text = "ImportError while importing test module '/p/tests/test_new.py'.\n\
            Hint: make sure your test modules/packages have valid Python names.\nTraceback:\n\
            /usr/lib/python3.11/importlib/__init__.py:126: in import_module\n    return _bootstrap._gcd_import(name[level:], package, level)\n\
            tests/test_new.py:1: in <module>\n    from app import nope\n\
            E   ImportError: cannot import name 'nope' from 'app' (/p/app.py)\n";
        assert_eq!(
            exception(&lines(text), 4).expect("an exception"),
            [
                "tests/test_new.py:1: in <module>",
                "    from app import nope",
                "E   ImportError: cannot import name 'nope' from 'app' (/p/app.py)",
            ]
        );
    }

    #[test]
    fn a_syntax_error_is_its_own_place_and_pytests_frames_are_skipped() {
        let text = "/usr/lib/python3/dist-packages/_pytest/python.py:618: in _importtestmodule\n    mod = import_path(self.path)\n\
            <frozen importlib._bootstrap>:1206: in _gcd_import\n    ???\n\
            /usr/lib/python3.11/ast.py:50: in parse\n    return compile(source, filename, mode, flags,\n\
            E     File \"/p/tests/test_new.py\", line 1\nE       def test_n(:\nE                  ^\nE   SyntaxError: invalid syntax\n";
        let shown = exception(&lines(text), 4).expect("an exception");
        assert_eq!(shown[0], "E     File \"/p/tests/test_new.py\", line 1");
        assert_eq!(shown[3], "E   SyntaxError: invalid syntax");
        let short = exception(&lines(text), 2).expect("an exception");
        assert_eq!(
            short,
            [
                "E     File \"/p/tests/test_new.py\", line 1",
                "E   SyntaxError: invalid syntax"
            ],
            "the first and the last exception lines when they do not all fit"
        );
    }

    #[test]
    fn frames_are_told_from_source_and_assertion_lines() {
        assert!(is_frame("tests/test_a.py:3: in <module>"));
        assert!(is_frame("/usr/lib/python3.11/ast.py:50: in parse"));
        assert!(!is_frame("    assert x == 1"));
        assert!(!is_frame("E   assert 1: in x"));
        assert!(!is_frame("tests/test_a.py:8: AssertionError"));
        assert!(exception(&["no exception here"], 4).is_none());
    }
}

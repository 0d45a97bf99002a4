//! pytest runs that never got to the tests: a test module that cannot be imported or
//! parsed (`Interrupted: 1 error during collection`), a `conftest.py` that cannot be
//! loaded. Such a run says nothing about the tests, so it is *broken*, not red: its one
//! "error" must not replace the failures the last complete run found.

use super::traceback;

/// Lines of exception and place shown per module that could not be collected.
const LINES_PER_ERROR: usize = 5;
/// Most modules whose error is shown.
const MAX_SHOWN: usize = 5;

/// Why pytest ran no test: one line for the channel, and the exception with its place for
/// each module it could not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// One line: `cannot collect tests/x.py: ImportError: …`.
    pub reason: String,
    /// Per module: its name, then where in the project and the exception, indented.
    pub detail: String,
}

/// One module (or conftest) pytest could not load, and its error output.
struct Failed<'a> {
    what: String,
    body: Vec<&'a str>,
}

/// The collection or conftest errors that stopped a pytest run, if that is how it ended.
pub fn interrupted(output: &str) -> Option<Interrupted> {
    let lines: Vec<&str> = output.lines().map(str::trim_end).collect();
    if let Some(conftest) = conftest_error(&lines) {
        return Some(describe(&[conftest], "cannot load"));
    }
    let stopped = lines
        .iter()
        .any(|l| l.contains("Interrupted: ") && l.contains("during collection"));
    if !stopped {
        return None;
    }
    let modules = collection_errors(&lines);
    if modules.is_empty() {
        return Some(Interrupted {
            reason: "pytest stopped while collecting the tests".to_string(),
            detail: String::new(),
        });
    }
    Some(describe(&modules, "cannot collect"))
}

/// `ImportError while loading conftest '/p/conftest.py'.` and the traceback under it
/// (pytest exits with 4 and prints no sections).
fn conftest_error<'a>(lines: &[&'a str]) -> Option<Failed<'a>> {
    let at = lines
        .iter()
        .position(|l| l.starts_with("ImportError while loading conftest '"))?;
    let path = lines[at]
        .trim_start_matches("ImportError while loading conftest '")
        .trim_end_matches('.')
        .trim_end_matches('\'');
    let body = lines[at + 1..]
        .iter()
        .copied()
        .take_while(|l| !l.starts_with('='))
        .collect();
    Some(Failed {
        what: path.to_string(),
        body,
    })
}

/// Each `____ ERROR collecting tests/test_x.py ____` section: the module and its lines.
fn collection_errors<'a>(lines: &[&'a str]) -> Vec<Failed<'a>> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(what) = line
            .trim_matches('_')
            .trim()
            .strip_prefix("ERROR collecting ")
        else {
            continue;
        };
        if !line.starts_with('_') {
            continue;
        }
        let body = lines[i + 1..]
            .iter()
            .copied()
            .take_while(|l| !is_rule(l))
            .collect();
        found.push(Failed {
            what: what.to_string(),
            body,
        });
    }
    found
}

/// A section rule pytest draws: `____ name ____`, `---- generated xml ----`, `==== … ====`.
fn is_rule(line: &str) -> bool {
    ["____", "----", "===="]
        .iter()
        .any(|r| line.starts_with(r) && line.ends_with(&r[..1]))
}

/// The reason line (`cannot collect tests/x.py: ImportError: …`) and the detail block.
fn describe(failed: &[Failed<'_>], verb: &str) -> Interrupted {
    let shown: Vec<(String, Vec<String>)> = failed
        .iter()
        .map(|f| (f.what.clone(), what_broke(&f.body)))
        .collect();
    let reason = match shown.as_slice() {
        [(what, lines)] => match lines.last() {
            Some(last) => format!("{verb} {what}: {}", exception_text(last)),
            None => format!("{verb} {what}"),
        },
        _ => format!(
            "{verb} {} test modules: {}",
            shown.len(),
            shown
                .iter()
                .map(|(w, _)| w.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let detail = shown
        .iter()
        .take(MAX_SHOWN)
        .map(|(what, lines)| {
            let body: Vec<String> = lines.iter().map(|l| format!("    {l}")).collect();
            format!("{what}\n{}", body.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    Interrupted { reason, detail }
}

/// The exception and its place in the project, else the first lines of `body`.
fn what_broke(body: &[&str]) -> Vec<String> {
    let lines: Vec<&str> = body
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    traceback::exception(&lines, LINES_PER_ERROR).unwrap_or_else(|| {
        lines
            .iter()
            .take(LINES_PER_ERROR)
            .map(|l| l.to_string())
            .collect()
    })
}

/// `E   ImportError: …` as the text after the `E`.
fn exception_text(line: &str) -> &str {
    line.strip_prefix('E').unwrap_or(line).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pytest 7.2 on a test module importing a name its module does not have.
    const IMPORT: &str = "\
============================= test session starts ==============================
collected 9 items / 1 error

==================================== ERRORS ====================================
______________________ ERROR collecting tests/test_new.py ______________________
ImportError while importing test module '/p/tests/test_new.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_new.py:1: in <module>
    from app import nope
E   ImportError: cannot import name 'nope' from 'app' (/p/app.py)
--------------------- generated xml file: /p/r.xml ---------------------
=========================== short test summary info ============================
ERROR tests/test_new.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
=============================== 1 error in 0.08s ===============================
";

    /// pytest 7.2 on a conftest.py with a syntax error (exit code 4, on stderr).
    const CONFTEST: &str = "\
ImportError while loading conftest '/p/conftest.py'.
/usr/lib/python3.11/ast.py:50: in parse
    return compile(source, filename, mode, flags,
E     File \"/p/conftest.py\", line 2
E       def broken(:
E                  ^
E   SyntaxError: invalid syntax
";

    #[test]
    fn a_collection_error_names_the_module_the_exception_and_its_place() {
        let i = interrupted(IMPORT).expect("interrupted");
        assert_eq!(
            i.reason,
            "cannot collect tests/test_new.py: ImportError: cannot import name 'nope' from 'app' (/p/app.py)"
        );
        assert_eq!(
            i.detail,
            "tests/test_new.py\n    tests/test_new.py:1: in <module>\n        from app import nope\n    \
             E   ImportError: cannot import name 'nope' from 'app' (/p/app.py)"
        );
    }

    #[test]
    fn a_broken_conftest_is_named_with_its_syntax_error() {
        let i = interrupted(CONFTEST).expect("interrupted");
        assert_eq!(
            i.reason,
            "cannot load /p/conftest.py: SyntaxError: invalid syntax"
        );
        assert!(
            i.detail.contains("line 2") && !i.detail.contains("ast.py"),
            "{}",
            i.detail
        );
    }

    #[test]
    fn several_modules_are_listed_and_a_normal_run_is_not_interrupted() {
        let two = IMPORT.replace(
            "--------------------- generated",
            "______ ERROR collecting tests/test_b.py ______\nE   SyntaxError: invalid syntax\n--------------------- generated",
        );
        let i = interrupted(&two).expect("interrupted");
        assert_eq!(
            i.reason,
            "cannot collect 2 test modules: tests/test_new.py, tests/test_b.py"
        );
        assert!(
            i.detail.contains("tests/test_b.py\n    E   SyntaxError"),
            "{}",
            i.detail
        );
        assert_eq!(interrupted("1 failed, 3 passed in 0.1s\n"), None);
    }
}

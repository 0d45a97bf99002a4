//! The fallback when there is no JUnit report: the summary lines pytest, libtest
//! (`cargo test`) and `go test` print. Only the tail of the output is kept by the host, so
//! these parsers read what comes last: pytest's and libtest's summaries are at the end.

use super::{Listing, Outcome, Status, TestCase, first_lines, natural_cmp, why};
use crate::runner::Kind;

/// Lines of failure detail kept per test.
const DETAIL_LINES: usize = 4;

/// The outcome the output of a run of `kind` describes, or `None` if it has no summary
/// (the runner did not get as far as running tests).
pub fn parse(kind: Kind, output: &str) -> Option<Outcome> {
    match kind {
        Kind::Pytest => pytest(output),
        Kind::Cargo | Kind::Nextest => libtest(output),
        Kind::Go | Kind::Gotestsum => go(output),
        Kind::Other => pytest(output)
            .or_else(|| libtest(output))
            .or_else(|| go(output)),
    }
}

/// `=== 1 failed, 3 passed, 1 skipped in 0.12s ===` (or the `-q` form without `=`), and
/// the `FAILED id - message` / `ERROR id - message` lines of the short summary.
fn pytest(output: &str) -> Option<Outcome> {
    let line = output
        .lines()
        .rev()
        .map(|l| l.trim().trim_matches('=').trim())
        .find(|l| {
            l.contains(" in ")
                && ["passed", "failed", "error", "skipped", "no tests ran"]
                    .iter()
                    .any(|w| l.contains(w))
        })?;
    let counts = line.rsplit_once(" in ").map_or(line, |(c, _)| c);
    let mut o = Outcome {
        source: "summary",
        ..Outcome::default()
    };
    for part in counts.split(", ") {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (
            words.next().and_then(|n| n.parse::<u32>().ok()),
            words.next(),
        ) else {
            continue;
        };
        match what {
            "passed" | "xpassed" => o.passed += n,
            "failed" => o.failed += n,
            "error" | "errors" => o.errors += n,
            "xfailed" => o.xfailed += n,
            "skipped" | "deselected" => o.skipped += n,
            _ => {}
        }
    }
    for l in output.lines() {
        let (status, rest) = if let Some(rest) = l.strip_prefix("FAILED ") {
            (Status::Failed, rest)
        } else if let Some(rest) = l.strip_prefix("ERROR ") {
            (Status::Error, rest)
        } else {
            continue;
        };
        let (name, detail) = split_node_id(rest);
        let mut detail = detail.trim().to_string();
        if detail.is_empty() && status == Status::Error {
            detail = collect_error(output, name.trim());
        }
        o.cases.push(TestCase {
            name: name.trim().to_string(),
            status,
            detail,
        });
    }
    Some(o)
}

/// `tests/t.py::test_x[a - b] - assert 1 == 2` as the node id and the message: the id
/// ends at the first ` - ` after its parameters' closing bracket, since a parametrized id
/// may itself hold ` - `, spaces and brackets.
fn split_node_id(rest: &str) -> (&str, &str) {
    let first_dash = rest.find(" - ").unwrap_or(rest.len());
    let name_start = rest[..first_dash].rfind("::").map_or(0, |i| i + 2);
    let mut id_end = rest[name_start..]
        .find(['[', ' '])
        .map_or(rest.len(), |n| name_start + n);
    if rest[id_end..].starts_with('[') {
        id_end = rest[id_end..]
            .find("] - ")
            .map_or(rest.len(), |close| id_end + close + 1);
    }
    let message = rest[id_end..].trim_start();
    (
        &rest[..id_end],
        message.strip_prefix("- ").unwrap_or(message),
    )
}

/// Whether the runner stopped before running every test (pytest `-x`/`--maxfail`, cargo
/// after the first failing test target, nextest's fail-fast): the tests a report leaves
/// out did not run.
pub fn stopped_early(output: &str) -> bool {
    output.lines().any(|l| {
        let l = l.trim().trim_matches('!').trim();
        (l.starts_with("stopping after ") && l.contains(" failure"))
            || l.starts_with("error: test failed, to rerun pass")
            || l.starts_with("Cancelling due to test failure")
            || l.starts_with("Canceling due to test failure")
    })
}

/// Why pytest could not collect `id` (`ERROR id` with no message: an import error): its
/// `ERROR collecting id` section, down to the exception lines.
fn collect_error(output: &str, id: &str) -> String {
    let header = format!(" ERROR collecting {id} ");
    let body: Vec<&str> = output
        .lines()
        .skip_while(|l| !l.contains(&header))
        .skip(1)
        .take_while(|l| !l.starts_with("____") && !l.starts_with("----") && !l.starts_with("===="))
        .collect();
    why(&body.join("\n"), DETAIL_LINES)
}

/// `test result: FAILED. 3 passed; 1 failed; 0 ignored; …` per test binary, the
/// `test name ... ok|FAILED|ignored` lines, and the `---- name stdout ----` sections.
fn libtest(output: &str) -> Option<Outcome> {
    let mut o = Outcome {
        source: "summary",
        ..Outcome::default()
    };
    let mut found = false;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        found = true;
        for part in rest.split(';') {
            let part = part
                .trim()
                .trim_start_matches("ok.")
                .trim_start_matches("FAILED.");
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (
                words.next().and_then(|n| n.parse::<u32>().ok()),
                words.next(),
            ) {
                match what {
                    "passed" => o.passed += n,
                    "failed" => o.failed += n,
                    "ignored" => o.skipped += n,
                    _ => {}
                }
            }
        }
    }
    if !found {
        return None;
    }
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let status = match result.trim() {
            "ok" => Status::Passed,
            "FAILED" => Status::Failed,
            r if r.starts_with("ignored") => Status::Skipped,
            _ => continue,
        };
        let detail = if status == Status::Failed {
            section(output, &format!("---- {name} stdout ----"))
        } else {
            String::new()
        };
        o.cases.push(TestCase {
            name: name.to_string(),
            status,
            detail,
        });
    }
    // libtest prints in the order tests end; numbers in names sort as numbers.
    o.cases.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    if !o.cases.is_empty() {
        o.listing = Listing::Every;
    }
    Some(o)
}

/// The first lines after `header` (and the blank lines after it), up to the next blank
/// line.
fn section(output: &str, header: &str) -> String {
    let body: Vec<&str> = output
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty())
        .collect();
    first_lines(&body.join("\n"), DETAIL_LINES)
}

/// `--- FAIL: TestX (0.00s)` (with its indented detail lines), `--- PASS` and `--- SKIP`
/// under `-v`, and the `ok pkg` / `FAIL pkg` package lines.
fn go(output: &str) -> Option<Outcome> {
    let mut o = Outcome {
        source: "summary",
        ..Outcome::default()
    };
    let mut found = false;
    let lines: Vec<&str> = output.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let status = if trimmed.starts_with("--- FAIL: ") {
            Status::Failed
        } else if trimmed.starts_with("--- PASS: ") {
            Status::Passed
        } else if trimmed.starts_with("--- SKIP: ") {
            Status::Skipped
        } else {
            if trimmed.starts_with("ok  \t") || trimmed.starts_with("FAIL\t") {
                found = true;
            }
            continue;
        };
        found = true;
        let name = trimmed[10..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let detail = if status == Status::Failed {
            let indent = line.len() - trimmed.len();
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.len() - l.trim_start().len() > indent && !l.trim().is_empty())
                .map(|l| l.trim())
                .collect();
            first_lines(&body.join("\n"), DETAIL_LINES)
        } else {
            String::new()
        };
        o.cases.push(TestCase {
            name,
            status,
            detail,
        });
    }
    if !found {
        return None;
    }
    o.count();
    // `-v` names the passing tests too.
    if o.passed > 0 {
        o.listing = Listing::Every;
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_summary_and_short_failure_lines() {
        let out = "..F.s\n=================================== FAILURES ===\n___ test_x ___\n\n    def test_x():\n>       assert 1 == 2\nE       assert 1 == 2\n\ntest_a.py:4: AssertionError\n=========================== short test summary info ============================\nFAILED test_a.py::test_x - assert 1 == 2\n==================== 1 failed, 3 passed, 1 skipped in 0.05s ====================\n";
        let o = parse(Kind::Pytest, out).expect("summary");
        assert_eq!((o.passed, o.failed, o.skipped), (3, 1, 1));
        assert_eq!(o.cases[0].name, "test_a.py::test_x");
        assert_eq!(o.cases[0].detail, "assert 1 == 2");
        let o = parse(Kind::Pytest, "5 passed in 0.01s\n").expect("quiet summary");
        assert!(o.is_green() && o.passed == 5);
        assert!(parse(Kind::Pytest, "ImportError: no module named app\n").is_none());
    }

    #[test]
    fn libtest_summaries_add_up_over_test_binaries() {
        let out = "running 2 tests\ntest tests::ok_one ... ok\ntest tests::breaks ... FAILED\n\nfailures:\n\n---- tests::breaks stdout ----\n\nthread 'tests::breaks' panicked at src/lib.rs:9:9:\nassertion `left == right` failed\n  left: 1\n right: 2\n\nfailures:\n    tests::breaks\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\nrunning 1 test\ntest it ... ignored\n\ntest result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n";
        let o = parse(Kind::Cargo, out).expect("summary");
        assert_eq!((o.passed, o.failed, o.skipped), (1, 1, 1));
        let failing: Vec<_> = o.failing().collect();
        assert_eq!(failing[0].name, "tests::breaks");
        assert!(
            failing[0].detail.contains("panicked at src/lib.rs:9:9"),
            "{}",
            failing[0].detail
        );
        assert!(parse(Kind::Cargo, "error[E0425]: cannot find value `x`\n").is_none());
    }

    /// What pytest 7 prints (`-q`) for a test module that imports a missing module.
    const IMPORT_ERROR: &str = "\
==================================== ERRORS ====================================
__________________________ ERROR collecting test_a.py __________________________
ImportError while importing test module '/tmp/p/test_a.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
test_a.py:1: in <module>
    import nope
E   ModuleNotFoundError: No module named 'nope'
=========================== short test summary info ============================
ERROR test_a.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 error in 0.06s
";

    #[test]
    fn an_import_error_says_which_exception_and_one_error_is_singular() {
        let o = parse(Kind::Pytest, IMPORT_ERROR).expect("a summary");
        assert_eq!(o.counts(), "1 error");
        let failing: Vec<_> = o.failing().collect();
        assert_eq!(failing.len(), 1);
        assert_eq!(
            failing[0].detail,
            "test_a.py:1: in <module>\n    import nope\n\
             E   ModuleNotFoundError: No module named 'nope'"
        );
    }

    /// pytest 7.2's short summary for parametrized ids with spaces, brackets, ` - ` and
    /// non-ASCII (which pytest escapes), a strict xpass, and its counts.
    const PARAMETRIZED: &str = "\
FAILED tests/test_a.py::test_xps
FAILED tests/test_a.py::test_city[S\\xe3o Paulo] - AssertionError: assert 'São...
FAILED tests/test_a.py::test_city[a [b]] - AssertionError: assert 'a [b]' == ...
FAILED tests/test_a.py::test_city[x - y] - AssertionError: assert 'x - y' == ...
FAILED tests/test_a.py::TestK::test_y - assert [1] == [2]
============== 5 failed, 1 passed, 1 xfailed, 1 xpassed in 0.08s ===============
";

    #[test]
    fn parametrized_ids_keep_their_spaces_brackets_and_dashes() {
        let o = parse(Kind::Pytest, PARAMETRIZED).expect("a summary");
        let names: Vec<&str> = o.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tests/test_a.py::test_xps",
                "tests/test_a.py::test_city[S\\xe3o Paulo]",
                "tests/test_a.py::test_city[a [b]]",
                "tests/test_a.py::test_city[x - y]",
                "tests/test_a.py::TestK::test_y",
            ]
        );
        assert_eq!(o.cases[3].detail, "AssertionError: assert 'x - y' == ...");
        assert_eq!(o.cases[4].detail, "assert [1] == [2]");
        assert_eq!(o.counts(), "5 failed, 2 passed, 1 xfailed");
        assert_eq!(o.listing, Listing::FailuresOnly);
    }

    #[test]
    fn an_early_stop_is_noticed() {
        assert!(stopped_early(
            "!!!!!!!!!!!! stopping after 1 failures !!!!!!!!!!!!\n1 failed, 1 passed in 0.15s\n"
        ));
        assert!(stopped_early("error: test failed, to rerun pass `--lib`\n"));
        assert!(!stopped_early("1 failed, 1 passed in 0.15s\n"));
    }

    #[test]
    fn libtest_names_sort_numbers_as_numbers() {
        let out = "test t::easter_date10 ... FAILED\ntest t::easter_date2 ... FAILED\ntest t::a ... ok\n\ntest result: FAILED. 1 passed; 2 failed; 0 ignored\n";
        let o = parse(Kind::Cargo, out).expect("summary");
        let names: Vec<&str> = o.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["t::a", "t::easter_date2", "t::easter_date10"]);
        assert_eq!(o.listing, Listing::Every);
    }

    #[test]
    fn go_fail_lines_with_their_detail() {
        let out = "--- FAIL: TestAdd (0.00s)\n    add_test.go:8: got 3, want 4\n--- PASS: TestSub (0.00s)\nFAIL\nFAIL\texample.com/calc\t0.002s\n";
        let o = parse(Kind::Go, out).expect("summary");
        assert_eq!((o.passed, o.failed), (1, 1));
        assert_eq!(o.cases[0].name, "TestAdd");
        assert_eq!(o.cases[0].detail, "add_test.go:8: got 3, want 4");
        let o = parse(Kind::Go, "ok  \texample.com/calc\t0.002s\n").expect("ok line");
        assert!(o.is_green());
    }
}

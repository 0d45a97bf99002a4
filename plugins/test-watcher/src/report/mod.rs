//! What a finished run says: counts and per-test results. A JUnit XML report is preferred
//! ([`junit`]); without one the runner's summary lines are parsed ([`summary`]).

pub mod collect;
pub mod junit;
pub mod summary;
pub mod traceback;

use serde::{Deserialize, Serialize};

/// One test's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    /// Broke outside its assertions (setup, collection).
    Error,
    Skipped,
    /// Failed as its `xfail` mark expects: not a failure, and not a pass either.
    #[serde(rename = "xfailed")]
    XFailed,
}

impl Status {
    /// Whether this result makes the suite red.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Error)
    }
}

/// One test: its name as the runner prints it (a pytest node id, a libtest path, a Go
/// test name) and, for failures, the first lines of why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    pub name: String,
    pub status: Status,
    pub detail: String,
}

/// Which tests a report names, which says what a test missing from it means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Listing {
    /// Every test that exists ran and is named (JUnit, libtest's `test x ... ok` lines):
    /// a test missing from it was removed.
    Every,
    /// Only the failures are named (pytest's short summary): a test missing from it
    /// passed, was skipped or removed, nobody can tell which.
    #[default]
    FailuresOnly,
    /// The runner stopped early (pytest `-x`, `cargo test` after a failing target): a test
    /// missing from it did not run, and keeps the result it had.
    Partial,
}

/// The results of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    /// Failed as their `xfail` mark expects.
    pub xfailed: u32,
    /// The tests the report names, in its order (for pytest: file order): every test for
    /// JUnit and libtest, at least every failure for the others.
    pub cases: Vec<TestCase>,
    /// What a test missing from `cases` means.
    pub listing: Listing,
    /// "junit" or "summary": where the numbers came from.
    pub source: &'static str,
}

impl Outcome {
    /// No test failed or broke.
    pub fn is_green(&self) -> bool {
        self.failed == 0 && self.errors == 0
    }

    /// The failing tests, in report order.
    pub fn failing(&self) -> impl Iterator<Item = &TestCase> {
        self.cases.iter().filter(|c| c.status.is_failure())
    }

    /// "2 failed, 10 passed, 1 skipped": the counts that are not zero.
    pub fn counts(&self) -> String {
        let parts: Vec<String> = [
            (self.failed, "failed"),
            (
                self.errors,
                if self.errors == 1 { "error" } else { "errors" },
            ),
            (self.passed, "passed"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "no tests ran".to_string()
        } else {
            parts.join(", ")
        }
    }

    fn count(&mut self) {
        let n = |s: Status| self.cases.iter().filter(|c| c.status == s).count() as u32;
        (self.passed, self.failed, self.errors) =
            (n(Status::Passed), n(Status::Failed), n(Status::Error));
        (self.skipped, self.xfailed) = (n(Status::Skipped), n(Status::XFailed));
    }
}

/// Why a test failed, in at most `n` lines: the first non-blank lines of `text`; but when
/// it holds a pytest short traceback (a module that cannot be imported or parsed while
/// collecting, `--tb=short`), the last frame in the project's own code and the exception
/// (`E   …`), which say what broke and where, not pytest's hint and its own frames.
pub fn why(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.iter().any(|l| traceback::is_frame(l))
        && let Some(shown) = traceback::exception(&lines, n)
    {
        return shown.join("\n");
    }
    first_lines(text, n)
}

/// The first `n` non-blank lines of `text`, each trimmed at the end.
pub fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Orders names the way a person reads them: runs of digits by their value, so
/// `easter_date2` comes before `easter_date10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        let (Some(x), Some(y)) = (a.chars().next(), b.chars().next()) else {
            return a.len().cmp(&b.len());
        };
        if x.is_ascii_digit() && y.is_ascii_digit() {
            let (na, ra) = split_digits(a);
            let (nb, rb) = split_digits(b);
            let ta = na.trim_start_matches('0');
            let tb = nb.trim_start_matches('0');
            let order = ta.len().cmp(&tb.len()).then(ta.cmp(tb));
            if order.is_ne() {
                return order;
            }
            (a, b) = (ra, rb);
        } else if x != y {
            return x.cmp(&y);
        } else {
            (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
        }
    }
}

/// The leading run of ASCII digits of `s`, and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_names_sort_as_numbers() {
        let mut names = vec![
            "easter_date10",
            "easter_date2",
            "easter_date1",
            "b",
            "a10b",
            "a9c",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "a9c",
                "a10b",
                "b",
                "easter_date1",
                "easter_date2",
                "easter_date10"
            ]
        );
    }
}

//! What a finished run says: counts and per-test results. A JUnit XML report is preferred
//! ([`junit`]); without one the runner's summary lines are parsed ([`summary`]).

pub mod junit;
pub mod summary;

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

/// The results of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub passed: u32,
    pub failed: u32,
    pub errors: u32,
    pub skipped: u32,
    /// The tests the report names: every test for JUnit and libtest, at least every
    /// failure for the others.
    pub cases: Vec<TestCase>,
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
        (self.passed, self.failed, self.errors, self.skipped) = (
            n(Status::Passed),
            n(Status::Failed),
            n(Status::Error),
            n(Status::Skipped),
        );
    }
}

/// Why a test failed, in at most `n` lines: the first non-blank lines of `text`; but when
/// it holds a pytest `Traceback:` (an import error while collecting: "ImportError while
/// importing…", "Hint: …", "Traceback:", frames, `E   ModuleNotFoundError: …`), the lines
/// before it without the hint, then the exception lines (`E   …`), which say what broke.
pub fn why(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let Some(tb) = lines.iter().position(|l| l.trim() == "Traceback:") else {
        return first_lines(text, n);
    };
    let exception: Vec<&str> = lines[tb..]
        .iter()
        .copied()
        .filter(|l| l.starts_with("E ") || *l == "E")
        .collect();
    if exception.is_empty() {
        return first_lines(text, n);
    }
    let shown = exception.len().min(n.saturating_sub(1).max(1));
    let head: Vec<&str> = lines[..tb]
        .iter()
        .copied()
        .filter(|l| !l.starts_with("Hint: "))
        .take(n.saturating_sub(shown))
        .collect();
    let tail = &exception[exception.len() - shown..];
    head.iter()
        .chain(tail)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
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

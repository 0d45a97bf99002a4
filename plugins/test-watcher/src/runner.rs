//! The test runners the plugin understands: their default arguments, which files they
//! care about, what they write (so their own output never starts a run), where a JUnit
//! report comes from, and how to run only the tests that failed.

use serde::Deserialize;

/// A runner family. Inferred from the runner's name and arguments unless the config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// pytest: JUnit XML through `--junitxml`, summary lines otherwise.
    Pytest,
    /// `cargo test`: libtest's summary lines.
    Cargo,
    /// `cargo nextest run`: the JUnit file its profile configures, summary otherwise.
    Nextest,
    /// `go test`: `--- FAIL` lines and package results.
    Go,
    /// gotestsum: JUnit XML through `--junitfile`.
    Gotestsum,
    /// Anything else: the exit code decides; summary lines are tried anyway.
    Other,
}

/// Which tests a run covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole suite.
    All,
    /// Only the tests that failed last time ("failed first, then all").
    Failed,
}

impl Kind {
    /// The family of `runner` run with `args`.
    pub fn infer(runner: &str, args: &[String]) -> Kind {
        let base = runner.rsplit('/').next().unwrap_or(runner);
        let has = |word: &str| args.iter().any(|a| a == word);
        match base {
            "pytest" | "py.test" | "pytest-3" => Kind::Pytest,
            b if b.starts_with("python") && has("pytest") => Kind::Pytest,
            "cargo" if has("nextest") => Kind::Nextest,
            "cargo" => Kind::Cargo,
            "cargo-nextest" => Kind::Nextest,
            "go" => Kind::Go,
            "gotestsum" => Kind::Gotestsum,
            _ => Kind::Other,
        }
    }

    /// Arguments used when the config gives none.
    pub fn default_args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Kind::Pytest | Kind::Other => &[],
            Kind::Cargo => &["test"],
            Kind::Nextest => &["nextest", "run"],
            Kind::Go => &["test", "./..."],
            Kind::Gotestsum => &["--", "./..."],
        };
        args.iter().map(|s| s.to_string()).collect()
    }

    /// Extensions whose changes start a run when the config lists none (pytest-watch
    /// watches `.py` only).
    pub fn default_extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Pytest => &[".py"],
            Kind::Cargo | Kind::Nextest => &[".rs", ".toml"],
            Kind::Go | Kind::Gotestsum => &[".go", "go.mod", "go.sum"],
            Kind::Other => &[],
        }
    }

    /// What the runner itself writes inside the project: never a reason to run again.
    pub fn default_ignore(self) -> &'static [&'static str] {
        match self {
            Kind::Pytest => &[
                "__pycache__/",
                "*.pyc",
                ".pytest_cache/",
                ".coverage*",
                "htmlcov/",
                ".tox/",
                ".nox/",
                ".venv/",
                ".mypy_cache/",
                ".ruff_cache/",
                ".hypothesis/",
            ],
            Kind::Cargo | Kind::Nextest => &["target/"],
            Kind::Go | Kind::Gotestsum | Kind::Other => &[],
        }
    }

    /// The JUnit report to read back by default, relative to the project root.
    pub fn default_report(self, project: &str) -> Option<String> {
        match self {
            Kind::Pytest | Kind::Gotestsum => Some(format!(".roost/junit-{project}.xml")),
            // Where `[profile.default.junit] path = "junit.xml"` puts it.
            Kind::Nextest => Some("target/nextest/default/junit.xml".to_string()),
            Kind::Cargo | Kind::Go | Kind::Other => None,
        }
    }

    /// Whether this runner can be told to run only some tests.
    pub fn can_rerun_failed(self) -> bool {
        matches!(self, Kind::Pytest | Kind::Cargo | Kind::Go)
    }

    /// The arguments of one run: the configured ones, the report option, the extra ones,
    /// and for [`Scope::Failed`] a filter naming `failing`.
    pub fn arguments(
        self,
        args: &[String],
        extra: &[String],
        report: Option<&str>,
        scope: Scope,
        failing: &[String],
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let (Kind::Gotestsum, Some(report)) = (self, report) {
            out.extend(["--junitfile".to_string(), report.to_string()]);
        }
        out.extend(args.iter().cloned());
        if let (Kind::Pytest, Some(report)) = (self, report) {
            // xunit1 adds each test's file, so names read as pytest node ids.
            out.extend([
                format!("--junitxml={report}"),
                "-o".to_string(),
                "junit_family=xunit1".to_string(),
            ]);
        }
        out.extend(extra.iter().cloned());
        if scope == Scope::Failed && !failing.is_empty() {
            match self {
                // pytest remembers what failed in its own cache: the same set.
                Kind::Pytest => out.push("--lf".to_string()),
                Kind::Cargo => {
                    if !out.iter().any(|a| a == "--") {
                        out.push("--".to_string());
                    }
                    out.push("--exact".to_string());
                    out.extend(failing.iter().cloned());
                }
                Kind::Go => {
                    let names: Vec<&str> = failing
                        .iter()
                        .map(|n| n.rsplit("::").next().unwrap_or(n))
                        .collect();
                    out.extend(["-run".to_string(), format!("^({})$", names.join("|"))]);
                }
                Kind::Nextest | Kind::Gotestsum | Kind::Other => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn runners_are_recognised_by_name_and_arguments() {
        assert_eq!(Kind::infer("pytest", &[]), Kind::Pytest);
        assert_eq!(Kind::infer("/usr/bin/pytest-3", &[]), Kind::Pytest);
        assert_eq!(Kind::infer("python3", &s(&["-m", "pytest"])), Kind::Pytest);
        assert_eq!(Kind::infer("cargo", &s(&["test"])), Kind::Cargo);
        assert_eq!(Kind::infer("cargo", &s(&["nextest", "run"])), Kind::Nextest);
        assert_eq!(Kind::infer("go", &[]), Kind::Go);
        assert_eq!(Kind::infer("make", &s(&["check"])), Kind::Other);
    }

    #[test]
    fn pytest_writes_an_xunit1_report_and_reruns_its_last_failures() {
        let args = Kind::Pytest.arguments(&s(&["-q"]), &s(&["-x"]), Some("r.xml"), Scope::All, &[]);
        assert_eq!(
            args,
            s(&["-q", "--junitxml=r.xml", "-o", "junit_family=xunit1", "-x"])
        );
        let args = Kind::Pytest.arguments(&[], &[], None, Scope::Failed, &s(&["t.py::test_a"]));
        assert_eq!(args, s(&["--lf"]));
    }

    #[test]
    fn cargo_and_go_filter_by_the_failing_names() {
        let args =
            Kind::Cargo.arguments(&s(&["test"]), &[], None, Scope::Failed, &s(&["m::a", "b"]));
        assert_eq!(args, s(&["test", "--", "--exact", "m::a", "b"]));
        let args = Kind::Go.arguments(
            &s(&["test", "./..."]),
            &[],
            None,
            Scope::Failed,
            &s(&["pkg::TestA", "TestB"]),
        );
        assert_eq!(args, s(&["test", "./...", "-run", "^(TestA|TestB)$"]));
        let args =
            Kind::Gotestsum.arguments(&s(&["--", "./..."]), &[], Some("j.xml"), Scope::All, &[]);
        assert_eq!(args, s(&["--junitfile", "j.xml", "--", "./..."]));
    }
}

//! JUnit XML, as pytest (`--junitxml`), cargo-nextest and gotestsum write it.

use super::{Listing, Outcome, Status, TestCase, why};
use crate::runner::Kind;

/// Lines of a failure message kept per test.
const DETAIL_LINES: usize = 4;

/// The outcome a JUnit report describes; an error when it is not XML.
pub fn parse(xml: &str, kind: Kind) -> Result<Outcome, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("JUnit report: {e}"))?;
    let mut outcome = Outcome {
        source: "junit",
        listing: Listing::Every,
        ..Outcome::default()
    };
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let name = case.attribute("name").unwrap_or("");
        let class = case.attribute("classname").unwrap_or("");
        let name = match (kind, case.attribute("file")) {
            (Kind::Pytest, Some(file)) => pytest_node_id(file, class, name),
            _ if class.is_empty() => name.to_string(),
            _ => format!("{class}::{name}"),
        };
        let mut status = Status::Passed;
        let mut detail = String::new();
        for child in case.children().filter(|c| c.is_element()) {
            let found = match child.tag_name().name() {
                "failure" => Status::Failed,
                "error" => Status::Error,
                // pytest marks an expected failure as a skip of type `pytest.xfail`.
                "skipped" if child.attribute("type") == Some("pytest.xfail") => Status::XFailed,
                "skipped" => Status::Skipped,
                _ => continue,
            };
            // A failure wins over a skip, an error over a pass.
            if status == Status::Passed || found.is_failure() {
                status = found;
                let message = child.attribute("message").unwrap_or("");
                let text = child.text().unwrap_or("");
                // pytest repeats a one-line message as the text ("[XPASS(strict)] …").
                let full = if text.trim().starts_with(message.trim()) {
                    text.to_string()
                } else {
                    format!("{message}\n{text}")
                };
                detail = why(&full, DETAIL_LINES);
            }
        }
        outcome.cases.push(TestCase {
            name,
            status,
            detail,
        });
    }
    outcome.count();
    Ok(outcome)
}

/// `tests/test_a.py::TestK::test_x` from pytest's xunit1 attributes: the class part is
/// what `classname` adds to the module path of `file`.
fn pytest_node_id(file: &str, class: &str, name: &str) -> String {
    let module = file.trim_end_matches(".py").replace(['/', '\\'], ".");
    let rest = class
        .strip_prefix(module.as_str())
        .map(|r| r.trim_start_matches('.'))
        .unwrap_or("");
    if rest.is_empty() {
        format!("{file}::{name}")
    } else {
        format!("{file}::{}::{name}", rest.replace('.', "::"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pytest 7 writes with `-o junit_family=xunit1` for a module with a function, a
    /// class and a skipped test, one failing.
    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="0.031"><testcase classname="tests.test_math" file="tests/test_math.py" line="0" name="test_add" time="0.001" /><testcase classname="tests.test_math" file="tests/test_math.py" line="3" name="test_x" time="0.001"><failure message="assert 2 == 3&#10; +  where 2 = add(1, 1)">def test_x():
&gt;       assert add(1, 1) == 3
E       assert 2 == 3</failure></testcase><testcase classname="tests.test_math.TestK" file="tests/test_math.py" line="7" name="test_y" time="0.001" /><testcase classname="tests.test_math" file="tests/test_math.py" line="10" name="test_skip" time="0.000"><skipped type="pytest.skip" message="later">tests/test_math.py:11: later</skipped></testcase></testsuite></testsuites>"#;

    #[test]
    fn pytest_reports_give_node_ids_counts_and_first_failure_lines() {
        let o = parse(PYTEST, Kind::Pytest).expect("parses");
        assert_eq!((o.passed, o.failed, o.errors, o.skipped), (2, 1, 0, 1));
        let names: Vec<&str> = o.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tests/test_math.py::test_add",
                "tests/test_math.py::test_x",
                "tests/test_math.py::TestK::test_y",
                "tests/test_math.py::test_skip",
            ]
        );
        let failing: Vec<_> = o.failing().collect();
        assert_eq!(failing.len(), 1);
        assert!(
            failing[0].detail.starts_with("assert 2 == 3"),
            "{}",
            failing[0].detail
        );
        assert_eq!(o.counts(), "1 failed, 2 passed, 1 skipped");
    }

    /// What pytest 7 writes for a test module that imports a missing module.
    const IMPORT_ERROR: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="1" time="0.064"><testcase classname="" name="test_a" time="0.000"><error message="collection failure">ImportError while importing test module '/tmp/p/test_a.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
test_a.py:1: in &lt;module&gt;
    import nope
E   ModuleNotFoundError: No module named 'nope'</error></testcase></testsuite></testsuites>"#;

    #[test]
    fn an_import_error_shows_the_exception_not_the_hint() {
        let o = parse(IMPORT_ERROR, Kind::Pytest).expect("parses");
        assert_eq!(o.counts(), "1 error");
        let failing: Vec<_> = o.failing().collect();
        assert_eq!(
            failing[0].detail,
            "test_a.py:1: in <module>\n    import nope\n\
             E   ModuleNotFoundError: No module named 'nope'"
        );
    }

    /// What pytest 7.2 writes for an xfail that failed, a non-strict xpass and a strict
    /// one, and parametrized ids with spaces, brackets and non-ASCII (escaped by pytest).
    const XFAIL: &str = r#"<testsuites><testsuite name="pytest"><testcase classname="tests.test_a" name="test_xf" file="tests/test_a.py" line="9" time="0.000"><skipped type="pytest.xfail" message="known bug" /></testcase><testcase classname="tests.test_a" name="test_xps" file="tests/test_a.py" line="13" time="0.006"><failure message="[XPASS(strict)] fixed now">[XPASS(strict)] fixed now</failure></testcase><testcase classname="tests.test_a" name="test_xp" file="tests/test_a.py" line="17" time="0.000" /><testcase classname="tests.test_a" name="test_city[S\xe3o Paulo]" file="tests/test_a.py" line="21"><failure message="AssertionError: assert 'São Paulo' == 'nope'">E AssertionError</failure></testcase><testcase classname="tests.test_a" name="test_city[x - y] [b]" file="tests/test_a.py" line="21" /></testsuite></testsuites>"#;

    #[test]
    fn xfail_is_its_own_status_and_a_strict_xpass_fails() {
        let o = parse(XFAIL, Kind::Pytest).expect("parses");
        let got: Vec<(&str, Status)> = o
            .cases
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect();
        assert_eq!(
            got,
            [
                ("tests/test_a.py::test_xf", Status::XFailed),
                ("tests/test_a.py::test_xps", Status::Failed),
                ("tests/test_a.py::test_xp", Status::Passed),
                ("tests/test_a.py::test_city[S\\xe3o Paulo]", Status::Failed),
                ("tests/test_a.py::test_city[x - y] [b]", Status::Passed),
            ]
        );
        assert_eq!(o.counts(), "2 failed, 2 passed, 1 xfailed");
        assert_eq!(o.cases[1].detail, "[XPASS(strict)] fixed now");
        assert_eq!(o.listing, Listing::Every);
    }

    #[test]
    fn nextest_and_gotestsum_names_are_class_then_name() {
        let xml = r#"<testsuites><testsuite name="core"><testcase name="tests::it_works" classname="core"/><testcase name="tests::broken" classname="core"><failure type="test failure">thread 'tests::broken' panicked</failure></testcase></testsuite></testsuites>"#;
        let o = parse(xml, Kind::Nextest).expect("parses");
        assert_eq!(o.cases[1].name, "core::tests::broken");
        assert_eq!(o.cases[1].status, Status::Failed);
        assert!(o.cases[1].detail.contains("panicked"));
    }

    #[test]
    fn a_broken_report_is_an_error_not_a_green_run() {
        assert!(parse("<testsuites><testcase", Kind::Pytest).is_err());
    }
}

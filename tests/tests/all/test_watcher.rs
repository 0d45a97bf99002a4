//! test-watcher driven the way a user drives it: a real project on disk (pytest from the
//! system, `make test` installs it; a cargo crate), files saved the way editors save them,
//! results read from the console channel and `!tests`.

use std::path::Path;
use std::time::{Duration, Instant};

use roost_tests::{Daemon, PATIENCE};

const MATH: &str = "def add(a, b):\n    return a + b\n";

const TESTS_GREEN: &str = "from mathlib import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\ndef test_x():\n    assert add(2, 2) == 4\n";

/// One character longer than [`TESTS_GREEN`]: pytest caches rewritten test modules keyed
/// by the source's size and whole-second mtime, so two saves of equal size within one
/// second would run the stale module (with any watcher).
const TESTS_RED: &str = "from mathlib import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\ndef test_x():\n    assert add(2, 2) == 50\n";

/// A Python project: `mathlib.py`, `test_math.py` (green), a `.gitignore`.
fn python_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("mathlib.py"), MATH);
    write(&dir.path().join("test_math.py"), TESTS_GREEN);
    write(&dir.path().join(".gitignore"), "generated_*.py\n");
    dir
}

/// Saves `text` to `path` the way editors do: a temporary file renamed over the target.
fn write(path: &Path, text: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// Config for a project `name` at `root` run by `runner`, posting to the console.
fn config(name: &str, root: &Path, runner: &str, programs: &[&str], extra: &str) -> String {
    let root = root.display();
    let programs: Vec<String> = programs.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[channels.tests]\ntargets = [\"console\"]\n\
         [plugins.test-watcher]\nenabled = true\n\
         [plugins.test-watcher.grants]\nchannels = [\"tests\"]\nwatch_roots = [\"{root}\"]\n\
         programs = [{}]\nprocess_dirs = [\"{root}\"]\nread_files = [\"{root}\"]\n\
         env = [\"PYTHONDONTWRITEBYTECODE\"]\n\
         [plugins.test-watcher.config.projects.{name}]\nroot = \"{root}\"\nrunner = \"{runner}\"\n\
         channel = \"tests\"\n{extra}",
        programs.join(", ")
    )
}

/// What `!tests` says about `project`: its one line.
fn project_line(reply: &str, project: &str) -> String {
    roost_tests::line_starting(reply, &format!("{project}: "))
}

/// The runs of `project` that ended since the plugin started, as `!tests` counts them
/// ("runs since start: 3 finished, 1 cancelled"), and whether one is going on.
fn runs(line: &str) -> (u32, u32, bool) {
    let figures = line
        .split_once("runs since start: ")
        .map_or("", |(_, rest)| rest);
    let number = |word: &str| {
        figures
            .split(", ")
            .find_map(|part| part.strip_suffix(word))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let cancelled = figures
        .split_once(", ")
        .and_then(|(_, c)| c.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (number(" finished"), cancelled, line.contains("[running"))
}

/// Waits until at least `finished` runs of `project` finished and none is going on;
/// returns (finished, cancelled) and the project's `!tests` line.
fn wait_runs(d: &Daemon, project: &str, finished: u32) -> (u32, u32, String) {
    let reply = d.chat_until("!tests", |r| {
        let (done, _, running) = runs(&project_line(r, project));
        done >= finished && !running
    });
    let line = project_line(&reply, project);
    let (done, cancelled, _) = runs(&line);
    (done, cancelled, line)
}

/// The `n`th console post (from 1) that contains `needle`, once there is one.
fn nth_post(d: &Daemon, needle: &str, n: usize) -> String {
    d.wait_for_posts(needle, n);
    d.posts()
        .into_iter()
        .filter(|p| p.text.contains(needle))
        .nth(n - 1)
        .map(|p| p.text)
        .unwrap_or_default()
}

/// Whether any live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 3 && f[2].parse::<i32>().ok() == Some(pgid) && f[0] != "Z"
    })
}

#[test]
fn pytest_results_go_to_the_channel_only_when_the_state_changes() {
    let project = python_project();
    let d = Daemon::start(&config("api", project.path(), "pytest", &["pytest"], ""));
    // Run on start: green, which is no news.
    let (_, _, line) = wait_runs(&d, "api", 1);
    assert!(line.contains("api: passed (2 passed)"), "{line}");
    assert!(line.contains("read from the JUnit report"), "{line}");

    // Break a test: one run, and the channel hears which test broke and why.
    write(&project.path().join("test_math.py"), TESTS_RED);
    let posted = d.wait_for_post("newly failing: test_math.py::test_x");
    assert!(posted.contains("api: 1 failed, 1 passed"), "{posted}");
    assert!(
        posted.contains("assert 4 == 50"),
        "first failure lines: {posted}"
    );
    let listed = d.chat("!tests");
    assert!(listed.contains("failing: test_math.py::test_x"), "{listed}");

    // A second save of the same red state: a run, but no message.
    write(&project.path().join("mathlib.py"), &format!("{MATH}\n"));
    wait_runs(&d, "api", 3);

    // Fix it.
    write(&project.path().join("test_math.py"), TESTS_GREEN);
    d.wait_for_post("fixed: test_math.py::test_x");
    assert_eq!(
        d.count_posts("newly failing"),
        1,
        "red → red was not posted again: {:#?}",
        d.posts()
    );
    // pytest's own writes (caches, the report) never started a run: four runs, each
    // started by what the test did.
    let (finished, cancelled, line) = wait_runs(&d, "api", 4);
    assert_eq!((finished, cancelled), (4, 0), "{line}\n{}", d.log());
    assert!(line.contains("after a change to test_math.py"), "{line}");

    let log = d.chat("!tests log api");
    assert!(log.contains("2 passed"), "{log}");
}

#[test]
fn a_burst_of_saves_restarts_the_run_at_most_once_and_ignored_files_start_none() {
    let project = python_project();
    let d = Daemon::start(&config(
        "api",
        project.path(),
        "pytest",
        &["pytest"],
        // Long enough that a loaded machine still sees the burst as one.
        "debounce_ms = 400\n",
    ));
    wait_runs(&d, "api", 1);

    // 20 saves 5 ms apart: the first starts a run at once, a later one may cancel it
    // once, and one run follows the burst.
    for i in 0..20 {
        write(
            &project.path().join("mathlib.py"),
            &format!("{MATH}# {i}\n"),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (finished, cancelled, line) = wait_runs(&d, "api", 2);
    assert_eq!(finished, 2, "{line}\n{}", d.log());
    assert!(cancelled <= 1, "{line}\n{}", d.log());

    // Files the project's .gitignore names, editor swap and backup files, `.git`; then a
    // real change, whose run must be the only one, started by it alone.
    std::fs::create_dir_all(project.path().join(".git")).expect("mkdir");
    write(&project.path().join("generated_models.py"), "x = 1\n");
    std::fs::write(project.path().join(".mathlib.py.swp"), "swap").expect("write");
    std::fs::write(project.path().join("mathlib.py~"), "backup").expect("write");
    std::fs::write(project.path().join("4913"), "").expect("write");
    std::fs::write(project.path().join(".git/index"), "x").expect("write");
    write(&project.path().join("helpers.py"), "HELP = 1\n");
    let reply = d.chat_until("!tests", |r| {
        let line = project_line(r, "api");
        line.contains("after a change to helpers.py") && !runs(&line).2
    });
    let line = project_line(&reply, "api");
    assert_eq!(
        runs(&line),
        (3, cancelled, false),
        "nothing ignored started or cancelled a run: {line}\n{}",
        d.log()
    );
}

#[test]
fn a_save_during_a_slow_run_cancels_it_and_its_process_group_is_gone() {
    let project = python_project();
    let pgid_file = project.path().join("pgid.txt");
    let slow = format!(
        "import os, time\n\n\ndef test_slow():\n    with open({:?}, 'w') as f:\n        f.write(str(os.getpgid(0)))\n    time.sleep(60)\n",
        pgid_file.display().to_string()
    );
    write(&project.path().join("test_slow.py"), &slow);
    let d = Daemon::start(&config("api", project.path(), "pytest", &["pytest"], ""));
    let start = Instant::now();
    let pgid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pgid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "slow test never started:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(group_alive(pgid));

    write(
        &project.path().join("test_slow.py"),
        "def test_slow():\n    pass\n",
    );
    d.chat_until("!tests", |r| runs(&project_line(r, "api")).1 == 1);
    assert!(!group_alive(pgid), "the cancelled run's group outlived it");
    let (finished, cancelled, line) = wait_runs(&d, "api", 1);
    assert_eq!((finished, cancelled), (1, 1), "{line}");
    assert!(line.contains("api: passed (3 passed)"), "{line}");
    assert_eq!(
        d.count_posts("newly failing"),
        0,
        "cancelled is not failed: {:#?}",
        d.posts()
    );
}

#[test]
fn a_missing_runner_is_a_clear_error_in_chat_not_a_crash() {
    let project = python_project();
    let d = Daemon::start(&config(
        "api",
        project.path(),
        "no-such-pytest-xyz",
        &["no-such-pytest-xyz"],
        "kind = \"pytest\"\n",
    ));
    let posted = d.wait_for_post("api: cannot start `no-such-pytest-xyz`");
    assert!(posted.contains("not on the host's PATH"), "{posted}");
    let reply = d.chat("!tests run api");
    assert!(reply.contains("cannot start"), "{reply}");
    let status = d.chat("!status");
    assert!(
        !status.contains("restarting"),
        "the plugin did not crash: {status}"
    );
}

#[test]
fn grants_refuse_what_the_config_does_not_name() {
    let project = python_project();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let root = project.path().display();
    let other = elsewhere.path().display();
    // Watch and run outside the grant, an ungranted program, an ungranted variable.
    let d = Daemon::start(&format!(
        "[channels.tests]\ntargets = [\"console\"]\n\
         [plugins.test-watcher]\nenabled = true\n\
         [plugins.test-watcher.grants]\nchannels = [\"tests\"]\nwatch_roots = [\"{root}\"]\n\
         programs = [\"pytest\"]\nprocess_dirs = [\"{root}\"]\n\
         [plugins.test-watcher.config.projects.outside]\nroot = \"{other}\"\nchannel = \"tests\"\n\
         [plugins.test-watcher.config.projects.runner]\nroot = \"{root}\"\nrunner = \"python3\"\nchannel = \"tests\"\n\
         [plugins.test-watcher.config.projects.secret]\nroot = \"{root}\"\nchannel = \"tests\"\nenv = {{ DISCORD_TOKEN = \"x\" }}\n"
    ));
    let outside = d.wait_for_post("outside: cannot watch");
    assert!(
        outside.contains("add it to watch_roots"),
        "the error says which grant: {outside}"
    );
    d.wait_for_post(
        "runner: cannot start `python3`: access denied: program `python3` is not granted",
    );
    d.wait_for_post("secret: cannot start `pytest`: access denied: environment variable `DISCORD_TOKEN` is not granted");
    // A symlink inside the granted root pointing out of it is refused too.
    let link = project.path().join("out");
    std::os::unix::fs::symlink(elsewhere.path(), &link).expect("symlink");
    d.rewrite_config(&config(
        "linked",
        project.path(),
        "pytest",
        &["pytest"],
        &format!("watch = [\"{}\"]\n", link.display()),
    ));
    d.wait_for_post("linked: cannot watch");
}

/// A cargo crate: `add` and two tests, one of which `broken` breaks.
fn cargo_project(broken: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        &dir.path().join("Cargo.toml"),
        "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    write(&dir.path().join("src/lib.rs"), &cargo_lib(broken));
    dir
}

fn cargo_lib(broken: bool) -> String {
    let want = if broken { 5 } else { 4 };
    format!(
        "pub fn add(a: i32, b: i32) -> i32 {{ a + b }}\n\n#[cfg(test)]\nmod tests {{\n    use super::*;\n\n    #[test]\n    fn adds() {{ assert_eq!(add(1, 2), 3); }}\n\n    #[test]\n    fn test_x() {{ assert_eq!(add(2, 2), {want}); }}\n}}\n"
    )
}

#[test]
fn cargo_test_results_are_read_from_its_summary() {
    let project = cargo_project(false);
    let d = Daemon::start(&config(
        "calc",
        project.path(),
        "cargo",
        &["cargo"],
        "timeout_ms = 300000\n",
    ));
    let (_, _, line) = wait_runs(&d, "calc", 1);
    assert!(line.contains("calc: passed"), "{line}");
    assert!(
        line.contains("read from the runner's summary lines"),
        "{line}"
    );
    write(&project.path().join("src/lib.rs"), &cargo_lib(true));
    let posted = d.wait_for_post("newly failing: tests::test_x");
    assert!(posted.contains("calc: 1 failed, 1 passed"), "{posted}");
    write(&project.path().join("src/lib.rs"), &cargo_lib(false));
    d.wait_for_post("fixed: tests::test_x");
    // cargo's own target/ never started a run.
    let (finished, cancelled, line) = wait_runs(&d, "calc", 3);
    assert_eq!((finished, cancelled), (3, 0), "{line}\n{}", d.log());
}

#[test]
fn failed_first_reruns_the_failures_then_the_suite_and_hooks_run_once_per_result() {
    let project = python_project();
    write(&project.path().join("test_math.py"), TESTS_RED);
    let hooks = tempfile::tempdir().expect("tempdir");
    let hook_log = hooks.path().join("hooks.log");
    let script = hooks.path().join("hook.sh");
    std::fs::write(&script, format!("echo \"$@\" >> {}\n", hook_log.display())).expect("write");
    let sh = format!("/bin/sh {}", script.display());
    let d = Daemon::start(&config(
        "api",
        project.path(),
        "pytest",
        &["pytest", "/bin/sh"],
        &format!(
            "failed_first = true\nonpass = \"{sh} pass\"\nonfail = \"{sh} fail\"\nonexit = \"{sh} exit\"\n"
        ),
    ));
    d.wait_for_post("newly failing: test_math.py::test_x");
    let hook_lines = |n: usize| {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&hook_log).unwrap_or_default();
            if text.lines().count() >= n {
                return text;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "hooks ran: {text:?}\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(hook_lines(2), "fail\nexit 1\n");

    write(&project.path().join("test_math.py"), TESTS_GREEN);
    d.wait_for_post("fixed: test_math.py::test_x");
    // The save ran only the failing test (pytest's --lf), which passed; the whole suite
    // then ran and is what the channel heard.
    let (finished, cancelled, line) = wait_runs(&d, "api", 3);
    assert_eq!((finished, cancelled), (3, 0), "{line}");
    assert!(
        line.contains("api: passed (2 passed)")
            && line.contains("the whole suite, after the failing tests passed"),
        "{line}"
    );
    let log = d.chat("!tests log");
    let failed_only = log
        .find("run-last-failure: rerun previous 1 failure")
        .unwrap_or_else(|| panic!("a failed-only run: {log}"));
    assert!(
        log[failed_only..].contains("2 passed"),
        "then the whole suite: {log}"
    );
    // The failed-only run that passed is not a result of its own: one onpass, one onexit.
    assert_eq!(hook_lines(4), "fail\nexit 1\npass\nexit 0\n");
}

#[test]
fn queue_lets_the_run_finish_and_runs_once_more() {
    let project = python_project();
    let started = project.path().join("started.txt");
    let slow = format!(
        "import time\n\n\ndef test_slow():\n    open({:?}, 'a').write('x')\n    time.sleep(2)\n",
        started.display().to_string()
    );
    write(&project.path().join("test_slow.py"), &slow);
    let d = Daemon::start(&config(
        "api",
        project.path(),
        "pytest",
        &["pytest"],
        "on_change = \"queue\"\n",
    ));
    let start = Instant::now();
    while !started.exists() {
        assert!(start.elapsed() < PATIENCE, "{}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Two saves during the run: one more run after it, not two, and nothing cancelled.
    write(&project.path().join("mathlib.py"), &format!("{MATH}# 1\n"));
    std::thread::sleep(Duration::from_millis(300));
    write(&project.path().join("mathlib.py"), &format!("{MATH}# 2\n"));
    let (finished, cancelled, line) = wait_runs(&d, "api", 2);
    assert_eq!((finished, cancelled), (2, 0), "{line}\n{}", d.log());
    assert!(line.contains("after a change to mathlib.py"), "{line}");
}

/// A test module whose import fails: pytest collects nothing and reports one error.
const TESTS_IMPORT_ERROR: &str = "import no_such_module_here\nfrom mathlib import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n";

#[test]
fn an_import_error_names_the_exception_and_one_project_needs_no_name() {
    let project = python_project();
    let d = Daemon::start(&config("api", project.path(), "pytest", &["pytest"], ""));
    wait_runs(&d, "api", 1);
    // The only project: `!tests run` and `!tests log` need no name.
    let ran = d.chat("!tests run");
    assert_eq!(
        ran.trim(),
        "api: running the tests; the result follows in `tests`",
        "{ran}"
    );
    d.wait_for_post("no change");
    let log = d.chat("!tests log");
    assert!(
        log.contains("api: last output") && log.contains("2 passed"),
        "{log}"
    );

    write(&project.path().join("test_math.py"), TESTS_IMPORT_ERROR);
    let posted = d.wait_for_post("api: cannot collect test_math.py");
    assert!(
        posted.contains("ModuleNotFoundError: No module named 'no_such_module_here'"),
        "the exception itself is in the message: {posted}"
    );
    assert!(
        posted.contains("test_math.py:1: in <module>\n        import no_such_module_here"),
        "and where it was raised: {posted}"
    );
}

/// The almanac project (`tests/fixtures/test-watcher/almanac`): Easter dates and place
/// slugs under pytest, 20 tests passing and one strict xfail, with parametrized ids that
/// count past 9 and hold spaces, brackets, ` - ` and non-ASCII.
fn almanac() -> tempfile::TempDir {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/test-watcher/almanac");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&from, dir.path());
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read the fixture").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy the fixture");
        }
    }
}

/// Saves `rel` in `root` with `from` replaced by `to` (which must be there).
fn edit(root: &Path, rel: &str, from: &str, to: &str) {
    edit_all(root, rel, &[(from, to)]);
}

/// Saves `rel` in `root` once, with each `(from, to)` replaced in turn.
fn edit_all(root: &Path, rel: &str, edits: &[(&str, &str)]) {
    let path = root.join(rel);
    let mut text = std::fs::read_to_string(&path).expect("read");
    for (from, to) in edits {
        assert!(text.contains(from), "{rel} has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    write(&path, &text);
}

/// The line of `slug` that strips accents, and what keeps them.
const ACCENTS: (&str, &str) = (
    "plain = unicodedata.normalize(\"NFKD\", place).encode(\"ascii\", \"ignore\").decode()",
    "plain = place",
);

/// The almanac as project `api`, without Python's bytecode cache (two saves of one size
/// within a second would otherwise import the stale module).
fn almanac_config(root: &Path, extra: &str) -> String {
    config(
        "api",
        root,
        "pytest",
        &["pytest"],
        &format!("env = {{ PYTHONDONTWRITEBYTECODE = \"1\" }}\n{extra}"),
    )
}

/// Easter a day late: the 3 decade tables and the 12 single years fail.
const EASTER_LATE: (&str, &str) = ("return month, day + 1", "return month, day + 2");

/// A test module for a function the almanac does not have yet.
const MOON_TEST: &str = "\"\"\"Full moons.\"\"\"\n\nfrom almanac import moon_phase\n\n\ndef test_full_moon():\n    assert moon_phase(2024, 3, 25) == \"full\"\n";

/// Issue 19, item 4: red → broken (a collection error) → red, and red → broken (a syntax
/// error in conftest.py) → red. The broken run says which module and what exception, keeps
/// the last complete run's failures, and the next complete run is compared with those.
#[test]
fn a_collection_error_is_broken_and_the_next_run_is_compared_with_the_last_complete_one() {
    let project = almanac();
    let root = project.path();
    let d = Daemon::start(&almanac_config(root, ""));
    wait_runs(&d, "api", 1);
    edit(root, "almanac.py", EASTER_LATE.0, EASTER_LATE.1);
    d.wait_for_post("newly failing");

    write(&root.join("tests/test_moon.py"), MOON_TEST);
    let broken = d.wait_for_post("api: cannot collect tests/test_moon.py");
    assert!(
        broken.contains("ImportError: cannot import name 'moon_phase' from 'almanac'")
            && broken.contains("tests/test_moon.py:3: in <module>")
            && broken.contains("the last complete run's 15 failing kept"),
        "the exception, where, and what is kept: {broken}"
    );
    assert!(
        !broken.contains("_pytest"),
        "not pytest's own frames: {broken}"
    );

    // The import works now; its test fails, the 15 old failures still fail.
    let moon = "\n\ndef moon_phase(year, month, day):\n    return \"new\"\n";
    edit(
        root,
        "almanac.py",
        "import unicodedata\n",
        &format!("import unicodedata\n{moon}"),
    );
    let back = d.wait_for_post("Runs again");
    assert!(
        back.contains(". newly failing: tests/test_moon.py::test_full_moon. still failing: "),
        "only the new test is newly failing: {back}"
    );

    // A syntax error in conftest.py, then mended: the same failures, nothing new.
    write(&root.join("conftest.py"), "def broken(:\n");
    let conftest = d.wait_for_post("cannot load");
    assert!(
        conftest.contains("conftest.py: SyntaxError") && conftest.contains("line 1"),
        "{conftest}"
    );
    write(&root.join("conftest.py"), "\"\"\"Root conftest.\"\"\"\n");
    let again = nth_post(&d, "Runs again", 2);
    assert!(
        again.contains("api: 16 failed") && !again.contains("newly failing"),
        "{again}"
    );
    assert_eq!(
        d.count_posts("fixed"),
        0,
        "a broken run fixed nothing: {:#?}",
        d.posts()
    );
}

/// Issue 19, item 5: failing tests marked xfail are "now expected to fail", a deleted
/// failing test is "removed", and a strict xfail that passes fails.
#[test]
fn xfail_and_deleted_tests_are_not_called_fixed_and_a_strict_xpass_fails() {
    let project = almanac();
    let root = project.path();
    let d = Daemon::start(&almanac_config(root, ""));
    wait_runs(&d, "api", 1);
    // Slugs keep their accents, and Easter 2011 is wrong.
    edit(root, "almanac.py", ACCENTS.0, ACCENTS.1);
    edit(
        root,
        "almanac.py",
        "    a = year % 19\n",
        "    if year == 2011:\n        return 4, 1\n    a = year % 19\n",
    );
    let red = d.wait_for_post("newly failing");
    assert!(
        red.contains("tests/test_easter.py::test_easter[easter_date12]"),
        "{red}"
    );

    edit(
        root,
        "tests/test_places.py",
        "@pytest.mark.parametrize",
        "@pytest.mark.xfail(reason=\"accents are kept for now\")\n@pytest.mark.parametrize",
    );
    let expected = d.wait_for_post("now expected to fail");
    assert!(
        expected.contains(
            "now expected to fail: tests/test_places.py::test_slug[S\\xe3o Paulo], \
             tests/test_places.py::test_slug[Z\\xfcrich], \
             tests/test_places.py::test_slug[C\\xf4te d'Ivoire]"
        ),
        "{expected}"
    );
    edit(root, "tests/test_easter.py", "    (2011, (4, 24)),\n", "");
    let removed = d.wait_for_post("removed");
    assert!(
        removed.contains("removed: tests/test_easter.py::test_easter[easter_date12]"),
        "{removed}"
    );
    assert_eq!(d.count_posts("fixed"), 0, "{:#?}", d.posts());

    // Accents stripped again and apostrophes dropped: the strict xfail passes, which
    // fails the suite.
    edit_all(
        root,
        "almanac.py",
        &[(ACCENTS.1, ACCENTS.0), (" or ch == \"'\"", "")],
    );
    let xpass = d.wait_for_post("newly failing: tests/test_marks.py::test_apostrophe");
    assert!(
        xpass.contains("[XPASS(strict)] slug() keeps apostrophes"),
        "{xpass}"
    );
}

/// Issue 19, items 6 and 7: newly failing tests come first, in file order with numbers
/// read as numbers, and are never hidden while older failures are named; the detail block
/// keeps each shown test's name and first lines however long the others' are.
#[test]
fn newly_failing_tests_come_first_in_file_order_each_with_its_name_and_first_lines() {
    let project = almanac();
    let root = project.path();
    let d = Daemon::start(&almanac_config(root, ""));
    wait_runs(&d, "api", 1);
    edit(root, "almanac.py", EASTER_LATE.0, EASTER_LATE.1);
    let posted = d.wait_for_post("newly failing");
    let table = |decade: &str| format!("tests/test_calendar.py::test_easter_table[{decade}]");
    let year = |n: u32| format!("tests/test_easter.py::test_easter[easter_date{n}]");
    let mut first: Vec<String> = ["1990s", "2000s", "2010s"].map(table).to_vec();
    first.extend((1..=7).map(year));
    assert!(
        posted.contains(&format!("newly failing: {} and 5 more", first.join(", "))),
        "{posted}"
    );
    // The decade tables fail with lines of 150 characters; every test shown keeps its name.
    for name in &first[..5] {
        assert!(
            posted.contains(&format!("\n{name}\n    ")),
            "{name} and its first line: {posted}"
        );
    }

    // Three more fail, last in file order: named first, ahead of the 15 older failures.
    edit(root, "almanac.py", ACCENTS.0, ACCENTS.1);
    let more = nth_post(&d, "newly failing", 2);
    assert!(
        more.contains(
            ". newly failing: tests/test_places.py::test_slug[S\\xe3o Paulo], \
             tests/test_places.py::test_slug[Z\\xfcrich], \
             tests/test_places.py::test_slug[C\\xf4te d'Ivoire]. still failing: "
        ) && more.contains(&format!("{} and 8 more", year(4))),
        "{more}"
    );
}

/// Issue 19, item 8: `!tests run` answers with the result even when nothing changed.
#[test]
fn a_run_asked_for_in_chat_always_answers_with_its_result() {
    let project = almanac();
    let root = project.path();
    let d = Daemon::start(&almanac_config(root, ""));
    wait_runs(&d, "api", 1);
    let reply = d.chat("!tests run api");
    assert_eq!(
        reply.trim(),
        "api: running the tests; the result follows in `tests`"
    );
    let answer = d.wait_for_post("no change");
    assert!(
        answer.starts_with("api: 20 passed, 1 xfailed in "),
        "{answer}"
    );

    edit(
        root,
        "tests/test_easter.py",
        "(2000, (4, 23))",
        "(2000, (4, 22))",
    );
    d.wait_for_post("newly failing");
    d.chat("!tests run");
    let answer = nth_post(&d, "no change", 2);
    assert!(
        answer
            .contains("no change. still failing: tests/test_easter.py::test_easter[easter_date1]"),
        "{answer}"
    );
}

/// Issue 19, item 9: a save starts a run at once, whatever the quiet period is set to.
#[test]
fn a_save_starts_a_run_at_once_however_long_the_quiet_period() {
    let project = almanac();
    let root = project.path();
    let d = Daemon::start(&almanac_config(
        root,
        "run_on_start = false\ndebounce_ms = 600000\nmax_wait_ms = 0\n",
    ));
    edit(root, "almanac.py", EASTER_LATE.0, EASTER_LATE.1);
    d.wait_for_post("newly failing");
    let (finished, cancelled, line) = wait_runs(&d, "api", 1);
    assert_eq!((finished, cancelled), (1, 0), "{line}");
    assert!(line.contains("after a change to almanac.py"), "{line}");
}

/// Issue 19, item 9: a formatter saving 31 files about 50 ms apart while a slow suite
/// runs, with the default debounce: the run going on is cancelled once, not once per save.
/// (60 ms apart here: at exactly the 50 ms debounce, whether two saves meet is a race.)
#[test]
fn a_formatter_burst_cancels_a_slow_suite_at_most_once() {
    let project = almanac();
    let root = project.path();
    let delay = root.join("delay.txt");
    std::fs::write(&delay, "15").expect("write");
    write(
        &root.join("tests/test_slow.py"),
        "import pathlib, time\n\n\ndef test_slow():\n    time.sleep(float(pathlib.Path(\"delay.txt\").read_text()))\n",
    );
    let d = Daemon::start(&almanac_config(root, ""));
    // The first run teaches the plugin how long the suite takes.
    wait_runs(&d, "api", 1);

    let files = ["almanac.py", "tests/test_easter.py", "tests/test_places.py"];
    for i in 0..31 {
        let path = root.join(files[i % files.len()]);
        let text = std::fs::read_to_string(&path).expect("read");
        write(&path, &format!("{text}# formatted {i}\n"));
        std::thread::sleep(Duration::from_millis(60));
    }
    // The run after the burst need not be slow.
    std::fs::write(&delay, "0").expect("write");
    let (finished, cancelled, line) = wait_runs(&d, "api", 2);
    assert_eq!(cancelled, 1, "{line}\n{}", d.log());
    assert!(finished <= 3, "{line}\n{}", d.log());
}

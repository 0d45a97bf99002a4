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
         [plugins.test-watcher.config.projects.{name}]\nroot = \"{root}\"\nrunner = \"{runner}\"\n\
         channel = \"tests\"\n{extra}",
        programs.join(", ")
    )
}

/// How many times the log says `needle`.
fn count(d: &Daemon, needle: &str) -> usize {
    d.log().matches(needle).count()
}

/// Waits until the log says `needle` at least `n` times.
fn wait_count(d: &Daemon, needle: &str, n: usize) {
    let start = Instant::now();
    while count(d, needle) < n {
        assert!(
            start.elapsed() < PATIENCE,
            "log never showed {needle:?} {n} times:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    wait_count(&d, "api: run finished: passed", 1);
    assert!(d.log().contains("[results from: junit]"), "{}", d.log());
    let listed = d.chat("!tests");
    assert!(listed.contains("api: passed (2 passed)"), "{listed}");

    // Break a test: one run, and the channel hears which test broke and why.
    write(&project.path().join("test_math.py"), TESTS_RED);
    d.wait_for_log("newly failing: test_math.py::test_x");
    assert!(d.log().contains("api: 1 failed, 1 passed"), "{}", d.log());
    assert!(
        d.log().contains("assert 4 == 50"),
        "first failure lines: {}",
        d.log()
    );
    let listed = d.chat("!tests");
    assert!(listed.contains("failing: test_math.py::test_x"), "{listed}");

    // A second save of the same red state: a run, but no message.
    write(&project.path().join("mathlib.py"), &format!("{MATH}\n"));
    wait_count(&d, "api: run finished: failed", 2);

    // Fix it.
    write(&project.path().join("test_math.py"), TESTS_GREEN);
    d.wait_for_log("fixed: test_math.py::test_x");
    assert_eq!(
        count(&d, "newly failing"),
        1,
        "red → red was not posted again"
    );
    assert_eq!(count(&d, "run cancelled"), 0);
    // pytest's own writes (caches, the report) never started a run.
    assert_eq!(count(&d, "api: run started"), 4, "{}", d.log());

    let log = d.chat("!tests log api");
    assert!(log.contains("2 passed"), "{log}");
}

#[test]
fn a_burst_of_saves_is_one_run_and_ignored_files_are_none() {
    let project = python_project();
    let d = Daemon::start(&config(
        "api",
        project.path(),
        "pytest",
        &["pytest"],
        // Long enough that a loaded machine still sees the burst as one.
        "debounce_ms = 400\n",
    ));
    wait_count(&d, "api: run finished", 1);

    for i in 0..20 {
        write(
            &project.path().join("mathlib.py"),
            &format!("{MATH}# {i}\n"),
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_count(&d, "api: run finished", 2);

    // Files the project's .gitignore names, editor swap and backup files, `.git`.
    std::fs::create_dir_all(project.path().join(".git")).expect("mkdir");
    write(&project.path().join("generated_models.py"), "x = 1\n");
    std::fs::write(project.path().join(".mathlib.py.swp"), "swap").expect("write");
    std::fs::write(project.path().join("mathlib.py~"), "backup").expect("write");
    std::fs::write(project.path().join("4913"), "").expect("write");
    std::fs::write(project.path().join(".git/index"), "x").expect("write");
    // Give a wrongly triggered run time to show up before the next real change.
    std::thread::sleep(Duration::from_millis(1500));
    write(&project.path().join("mathlib.py"), MATH);
    wait_count(&d, "api: run finished", 3);

    assert_eq!(count(&d, "api: run started"), 3, "{}", d.log());
    assert_eq!(count(&d, "run cancelled"), 0, "{}", d.log());
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
    d.wait_for_log("api: run cancelled");
    assert!(!group_alive(pgid), "the cancelled run's group outlived it");
    wait_count(&d, "api: run finished: passed", 1);
    assert!(
        !d.log().contains("newly failing"),
        "cancelled is not failed:\n{}",
        d.log()
    );
    let listed = d.chat("!tests");
    assert!(listed.contains("api: passed (3 passed)"), "{listed}");
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
    d.wait_for_log("api: cannot start `no-such-pytest-xyz`");
    assert!(d.log().contains("not on the host's PATH"), "{}", d.log());
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
    d.wait_for_log("outside: cannot watch");
    d.wait_for_log(
        "runner: cannot start `python3`: access denied: program `python3` is not granted",
    );
    d.wait_for_log("secret: cannot start `pytest`: access denied: environment variable `DISCORD_TOKEN` is not granted");
    assert!(
        d.log().contains("add it to watch_roots"),
        "the error says which grant: {}",
        d.log()
    );
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
    d.wait_for_log("linked: cannot watch");
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
    wait_count(&d, "calc: run finished: passed", 1);
    assert!(d.log().contains("[results from: summary]"), "{}", d.log());
    write(&project.path().join("src/lib.rs"), &cargo_lib(true));
    d.wait_for_log("newly failing: tests::test_x");
    assert!(d.log().contains("calc: 1 failed, 1 passed"), "{}", d.log());
    write(&project.path().join("src/lib.rs"), &cargo_lib(false));
    d.wait_for_log("fixed: tests::test_x");
    // cargo's own target/ never started a run.
    assert_eq!(count(&d, "calc: run started"), 3, "{}", d.log());
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
    d.wait_for_log("newly failing: test_math.py::test_x");
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
    d.wait_for_log("fixed: test_math.py::test_x");
    let log = d.log();
    let failed_only = log
        .find("api: run started (Failed)")
        .expect("a failed-only run");
    let suite = log[failed_only..]
        .find("api: run started (All)")
        .expect("then the whole suite");
    assert!(suite > 0);
    assert_eq!(count(&d, "api: run started"), 3, "{log}");
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
    wait_count(&d, "api: run finished: passed", 2);
    assert_eq!(count(&d, "run cancelled"), 0, "{}", d.log());
    assert_eq!(count(&d, "api: run started"), 2, "{}", d.log());
}

/// A test module whose import fails: pytest collects nothing and reports one error.
const TESTS_IMPORT_ERROR: &str = "import no_such_module_here\nfrom mathlib import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n";

#[test]
fn an_import_error_names_the_exception_and_one_project_needs_no_name() {
    let project = python_project();
    let d = Daemon::start(&config("api", project.path(), "pytest", &["pytest"], ""));
    wait_count(&d, "api: run finished: passed", 1);
    // The only project: `!tests run` and `!tests log` need no name.
    let ran = d.chat("!tests run");
    assert_eq!(ran.trim(), "api: running the tests", "{ran}");
    wait_count(&d, "api: run finished: passed", 2);
    let log = d.chat("!tests log");
    assert!(
        log.contains("api: last output") && log.contains("2 passed"),
        "{log}"
    );

    write(&project.path().join("test_math.py"), TESTS_IMPORT_ERROR);
    d.wait_for_log("newly failing");
    let posted = d.log();
    assert!(
        posted.contains("ModuleNotFoundError: No module named 'no_such_module_here'"),
        "the exception itself is in the message: {posted}"
    );
    assert!(posted.contains("api: 1 error in "), "{posted}");
}

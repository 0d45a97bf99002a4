//! The process capability with real programs (`sh`, `env`, `sleep`), real process groups
//! and real signals: no wasm, the `Host` methods called on a context as the runtime would.

use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use process::Host as _;

/// Longest a test waits for a job to end; only a failing test waits this long.
const PATIENCE: Duration = Duration::from_secs(30);

struct Fixture {
    dir: tempfile::TempDir,
    ctx: ProcessCtx,
    rx: mpsc::Receiver<Event>,
}

/// A project directory `work` granted to run in, `sh`/`env`/`sleep` granted, `PYTHONPATH`
/// granted, reports readable under `work/reports`.
fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn fixture_with(change: impl FnOnce(&mut ProcessGrant)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("work/reports")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("elsewhere")).expect("mkdir");
    let (tx, rx) = mpsc::channel(16);
    let mut grant = ProcessGrant {
        programs: vec!["sh".into(), "env".into(), "/bin/sleep".into()],
        dirs: vec![dir.path().join("work")],
        env: vec!["PYTHONPATH".into()],
        read_files: vec![dir.path().join("work/reports")],
        base: dir.path().to_path_buf(),
        ..ProcessGrant::default()
    };
    change(&mut grant);
    let ctx = ProcessCtx::new("t", grant, tx);
    Fixture { dir, ctx, rx }
}

fn spec(program: &str, args: &[&str]) -> JobSpec {
    JobSpec {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: "work".into(),
        env: vec![],
        shell: false,
        read_back: vec![],
        timeout_ms: 0,
    }
}

impl Fixture {
    async fn start(&mut self, spec: JobSpec) -> Result<u64, GuestError> {
        self.ctx.start(spec).await.expect("no trap")
    }

    async fn ended(&mut self) -> JobEnded {
        loop {
            let event = tokio::time::timeout(PATIENCE, self.rx.recv())
                .await
                .expect("job ended in time")
                .expect("mailbox open");
            if let Event::JobEnded(e) = event {
                return e;
            }
        }
    }

    /// The process group id the job wrote to `work/pgid`.
    async fn pgid(&self) -> Pid {
        let file = self.dir.path().join("work/pgid");
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some(pid) = text.trim().parse().ok().and_then(Pid::from_raw)
            {
                return pid;
            }
            assert!(start.elapsed() < PATIENCE, "job never wrote its pgid");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn a_job_returns_its_id_at_once_and_its_end_arrives_as_an_event() {
    let mut f = fixture();
    let id = f
        .start(spec("sh", &["-c", "echo out; echo err >&2; exit 3"]))
        .await
        .expect("started");
    let ended = f.ended().await;
    assert_eq!(ended.job, id);
    assert_eq!(ended.exit_code, Some(3));
    assert_eq!(ended.signal, None);
    assert!(!ended.cancelled && !ended.timed_out);
    assert_eq!(ended.stdout_tail, "out\n");
    assert_eq!(ended.stderr_tail, "err\n");
    assert_eq!((ended.stdout_bytes, ended.stderr_bytes), (4, 4));
}

#[tokio::test]
async fn the_environment_is_scrubbed_to_the_basics_and_the_granted_variables() {
    let mut f = fixture();
    let mut s = spec("env", &[]);
    s.env = vec![("PYTHONPATH".into(), "src".into())];
    f.start(s).await.expect("started");
    let ended = f.ended().await;
    assert_eq!(ended.exit_code, Some(0), "{ended:?}");
    let names: Vec<&str> = ended
        .stdout_tail
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    assert!(names.contains(&"PYTHONPATH"), "{names:?}");
    assert!(names.contains(&"PATH"), "{names:?}");
    for name in names {
        assert!(
            BASE_ENV.contains(&name) || name == "PYTHONPATH",
            "{name} leaked into the job's environment"
        );
    }
    assert!(ended.stdout_tail.contains("PYTHONPATH=src\n"));
}

#[tokio::test]
async fn ungranted_programs_variables_and_directories_are_refused() {
    let mut f = fixture();
    let outside = f.dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&outside, f.dir.path().join("work/link")).expect("symlink");

    let denied = |r: Result<u64, GuestError>, key: &str| match r {
        Err(GuestError::AccessDenied(why)) => assert!(why.contains(key), "{why}"),
        other => panic!("expected access denied naming {key}, got {other:?}"),
    };
    denied(f.start(spec("rm", &["-rf", "/"])).await, "programs");
    // Only the exact granted spelling counts: not a path to the same program.
    denied(f.start(spec("/bin/sh", &["-c", "true"])).await, "programs");
    let mut s = spec("env", &[]);
    s.env = vec![("DISCORD_TOKEN".into(), "stolen".into())];
    denied(f.start(s).await, "env");
    let mut s = spec("env", &[]);
    s.env = vec![("LD_PRELOAD".into(), "/tmp/evil.so".into())];
    denied(f.start(s).await, "env");
    for cwd in ["elsewhere", "work/../elsewhere", "work/link", "/"] {
        let mut s = spec("env", &[]);
        s.cwd = cwd.into();
        denied(f.start(s).await, "process_dirs");
    }
    let mut s = spec("echo hi", &[]);
    s.shell = true;
    denied(f.start(s).await, "shell");
    assert_eq!(f.ctx.live(), 0, "nothing was started");
}

#[tokio::test]
async fn nothing_is_granted_by_default() {
    let (tx, _rx) = mpsc::channel(4);
    let mut ctx = ProcessCtx::new("t", ProcessGrant::default(), tx);
    let got = ctx.start(spec("sh", &[])).await.expect("no trap");
    assert!(matches!(got, Err(GuestError::AccessDenied(_))), "{got:?}");
}

#[tokio::test]
async fn a_program_missing_from_path_is_a_clear_not_found() {
    let mut f = fixture_with(|g| g.programs.push("no-such-runner-xyz".into()));
    match f.start(spec("no-such-runner-xyz", &[])).await {
        Err(GuestError::NotFound(why)) => {
            assert!(
                why.contains("no-such-runner-xyz") && why.contains("PATH"),
                "{why}"
            );
        }
        other => panic!("expected not found, got {other:?}"),
    }
}

#[tokio::test]
async fn shell_command_lines_run_when_the_grant_allows_them() {
    let mut f = fixture_with(|g| g.shell = true);
    let mut s = spec("echo \"$0:$1\"", &["one"]);
    s.shell = true;
    f.start(s).await.expect("started");
    let ended = f.ended().await;
    assert_eq!(ended.stdout_tail, "sh:one\n");
}

#[tokio::test]
async fn cancel_ends_the_whole_group_before_the_event() {
    let mut f = fixture();
    let id = f
        .start(spec(
            "sh",
            &["-c", "echo $$ > pgid; sleep 30 & sleep 30 & wait"],
        ))
        .await
        .expect("started");
    let group = f.pgid().await;
    assert!(group_alive(group));
    f.ctx.cancel(id).await.expect("no trap").expect("running");
    let ended = f.ended().await;
    assert_eq!(ended.job, id);
    assert!(ended.cancelled, "{ended:?}");
    assert!(!ended.timed_out);
    assert_eq!(ended.signal, Some(Signal::TERM.as_raw()));
    assert!(
        !group_alive(group),
        "no process of the group may outlive job-ended"
    );
    assert!(matches!(
        f.ctx.cancel(id).await.expect("no trap"),
        Err(GuestError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_group_that_ignores_sigterm_gets_sigkill_after_the_grace_period() {
    let mut f = fixture();
    let id = f
        .start(spec(
            "sh",
            &["-c", "trap '' TERM; echo $$ > pgid; sleep 30 & wait; wait"],
        ))
        .await
        .expect("started");
    let group = f.pgid().await;
    f.ctx.cancel(id).await.expect("no trap").expect("running");
    let ended = f.ended().await;
    assert!(ended.cancelled);
    assert_eq!(ended.signal, Some(Signal::KILL.as_raw()));
    assert!(!group_alive(group));
}

#[tokio::test]
async fn a_job_past_its_timeout_is_ended_and_says_so() {
    let mut f = fixture();
    let mut s = spec("/bin/sleep", &["30"]);
    s.timeout_ms = 100;
    f.start(s).await.expect("started");
    let ended = f.ended().await;
    assert!(ended.timed_out && !ended.cancelled, "{ended:?}");
    assert_eq!(ended.exit_code, None);
}

#[tokio::test]
async fn output_beyond_the_cap_keeps_only_its_tail() {
    let mut f = fixture_with(|g| g.output_cap = 1000);
    f.start(spec(
        "sh",
        &[
            "-c",
            "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done",
        ],
    ))
    .await
    .expect("started");
    let ended = f.ended().await;
    assert!(ended.stdout_tail.len() <= 1000);
    assert!(
        ended.stdout_tail.ends_with("line1999\n"),
        "{}",
        ended.stdout_tail
    );
    assert!(ended.stdout_bytes > 10_000);
}

#[tokio::test]
async fn report_files_come_back_only_when_granted_and_written_during_the_job() {
    let mut f = fixture();
    std::fs::write(f.dir.path().join("work/reports/stale.xml"), "old").expect("write");
    let mut s = spec(
        "sh",
        &[
            "-c",
            "sleep 0.05; echo '<ok/>' > reports/junit.xml; echo secret > notes.txt",
        ],
    );
    s.read_back = vec![
        "reports/junit.xml".into(),
        "notes.txt".into(),
        "reports/stale.xml".into(),
        "reports/missing.xml".into(),
    ];
    f.start(s).await.expect("started");
    let ended = f.ended().await;
    let files: Vec<_> = ended.files.iter().map(|f| &f.contents).collect();
    assert_eq!(files[0], &Ok(b"<ok/>\n".to_vec()));
    assert!(
        matches!(files[1], Err(e) if e.contains("read_files")),
        "{:?}",
        files[1]
    );
    assert!(
        matches!(files[2], Err(e) if e.contains("not written during this job")),
        "{:?}",
        files[2]
    );
    assert!(files[3].is_err());
}

#[tokio::test]
async fn dropping_the_context_ends_running_groups() {
    let mut f = fixture();
    f.start(spec("sh", &["-c", "echo $$ > pgid; exec /bin/sleep 30"]))
        .await
        .expect("started");
    let group = f.pgid().await;
    let Fixture { dir: _dir, ctx, .. } = f;
    drop(ctx);
    let start = Instant::now();
    while group_alive(group) {
        assert!(start.elapsed() < PATIENCE, "group outlived its instance");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn too_many_jobs_are_refused() {
    let mut f = fixture();
    for _ in 0..MAX_JOBS {
        f.start(spec("/bin/sleep", &["30"])).await.expect("started");
    }
    let got = f.start(spec("/bin/sleep", &["30"])).await;
    assert!(matches!(got, Err(GuestError::TooLarge(_))), "{got:?}");
}

#[test]
fn a_report_written_in_the_same_clock_tick_as_the_start_is_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let grants = [dir.path().to_path_buf()];
    let (report, stale) = (dir.path().join("report.xml"), dir.path().join("stale.xml"));
    std::fs::write(&stale, "old").expect("write");
    let before = (Stamp::of(&report), Stamp::of(&stale));
    // Within microseconds of the "start": the same tick of the file-system clock.
    std::fs::write(&report, "<testsuites/>").expect("write");
    assert_eq!(
        read_one(&report, &grants, before.0.as_ref()).expect("read back"),
        b"<testsuites/>"
    );
    assert!(read_one(&stale, &grants, before.1.as_ref()).is_err());
    std::fs::write(&stale, "rewritten").expect("write");
    assert!(read_one(&stale, &grants, before.1.as_ref()).is_ok());
}

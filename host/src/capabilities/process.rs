//! `process`: programs the plugin's grant names, run in granted directories with a scrubbed
//! environment. `start` returns a job id at once; a task per job collects the tails of its
//! output, enforces the timeout and, when the job is over, sends `job-ended` through the
//! instance's event mailbox.
//!
//! Every job is the leader of its own process group. Cancelling it, its timeout and
//! dropping the instance all end the whole group the same way: SIGTERM, a grace period,
//! then SIGKILL. `job-ended` is sent only once no live process is left in the group, so a
//! test server the job started has released its port by the time the plugin hears of it.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wasmtime::component::{HasSelf, Linker};

use super::denied;
use super::registry::{Capability, InstanceEnv, counted};
use crate::abort_on_drop::AbortOnDrop;
use crate::config::Config;
use crate::runtime::bindings::roost::plugin::process::{self, JobSpec};
use crate::runtime::bindings::roost::plugin::types::{JobEnded, ReadBackFile};
use crate::runtime::bindings::{Event, GuestError};
use crate::runtime::state::PluginState;

/// Most jobs one instance may have running at once.
pub const MAX_JOBS: usize = 8;
/// Most bytes of arguments, environment and program text one job may be given.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;
/// Largest file read back after a job: it is copied into the guest's memory.
pub const MAX_READ_BACK_BYTES: u64 = 8 * 1024 * 1024;
/// Most files one job may ask to read back.
pub const MAX_READ_BACK_FILES: usize = 16;
/// Time between SIGTERM and SIGKILL when a job is cancelled, timed out or dropped: enough
/// for a test runner to write its report and a server to close its socket.
pub const GRACE: Duration = Duration::from_secs(3);
/// How long output is still read after the group is gone (a process that left the group
/// may hold the pipes open).
const DRAIN: Duration = Duration::from_millis(200);
/// How often the group is checked for live members while waiting for it to go.
const GROUP_POLL: Duration = Duration::from_millis(10);
/// The host variables every job gets: what programs need to find themselves and print
/// text, nothing that identifies a session or holds a secret.
pub const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];

/// What config grants, plus the limits that apply to every job. Nothing by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGrant {
    /// Program names (looked up on the host's PATH) or absolute paths.
    pub programs: Vec<String>,
    /// Directories jobs may run in (and below).
    pub dirs: Vec<PathBuf>,
    /// Environment variables a job may set, and that pass through from the host.
    pub env: Vec<String>,
    /// Whether `/bin/sh -c` command lines may be run.
    pub shell: bool,
    /// Files, or directories of files, whose contents may be read back after a job.
    pub read_files: Vec<PathBuf>,
    /// What relative paths are resolved against: the config file's directory.
    pub base: PathBuf,
    /// Longest a job may run.
    pub timeout: Duration,
    /// Most bytes kept of each output stream (the tail).
    pub output_cap: usize,
    /// The user jobs run as (`[host] job_user`), when the daemon runs as root.
    pub user: Option<String>,
}

impl Default for ProcessGrant {
    fn default() -> Self {
        Self {
            programs: Vec::new(),
            dirs: Vec::new(),
            env: Vec::new(),
            shell: false,
            read_files: Vec::new(),
            base: PathBuf::from("."),
            timeout: Duration::from_secs(600),
            output_cap: 64 * 1024,
            user: None,
        }
    }
}

/// One running job, as its context sees it.
struct Job {
    cancel: Option<oneshot::Sender<()>>,
    task: AbortOnDrop,
}

/// Per-instance context: the grant, the running jobs and the instance's mailbox.
pub struct ProcessCtx {
    plugin: String,
    grant: ProcessGrant,
    events: mpsc::Sender<Event>,
    jobs: HashMap<u64, Job>,
    next_id: u64,
}

/// A job ready to be spawned: everything checked against the grant.
#[derive(Debug)]
struct Checked {
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    read_back: Vec<String>,
    timeout: Duration,
}

impl ProcessCtx {
    /// Context whose `job-ended` events go to `events` (the instance's own event queue).
    pub fn new(plugin: &str, grant: ProcessGrant, events: mpsc::Sender<Event>) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
            events,
            jobs: HashMap::new(),
            next_id: 1,
        }
    }

    /// Number of jobs still running.
    pub fn live(&mut self) -> usize {
        self.jobs.retain(|_, j| !j.task.0.is_finished());
        self.jobs.len()
    }

    fn deny(&self, what: String, key: &str) -> GuestError {
        denied(
            &self.plugin,
            format!(
                "{what} is not granted to plugin `{0}` (add it to {key} in [plugins.{0}.grants])",
                self.plugin
            ),
        )
    }

    /// Checks `spec` against the grant, in the order a user fixes things: program,
    /// directory, environment.
    fn check(&self, spec: JobSpec) -> Result<Checked, GuestError> {
        let size = spec.program.len()
            + spec.cwd.len()
            + spec.args.iter().map(String::len).sum::<usize>()
            + spec
                .env
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + spec.read_back.iter().map(String::len).sum::<usize>();
        if size > MAX_SPEC_BYTES || spec.read_back.len() > MAX_READ_BACK_FILES {
            return Err(GuestError::TooLarge(format!(
                "job of {size} bytes or {} read-back files (limits {MAX_SPEC_BYTES} bytes, {MAX_READ_BACK_FILES} files)",
                spec.read_back.len()
            )));
        }
        if spec.program.contains('\0')
            || spec.args.iter().any(|a| a.contains('\0'))
            || spec.env.iter().any(|(_, v)| v.contains('\0'))
        {
            return Err(GuestError::InvalidArgument(
                "program, arguments and values cannot contain NUL".into(),
            ));
        }
        let (program, args) = if spec.shell {
            if !self.grant.shell {
                return Err(self.deny("running shell command lines".into(), "shell = true,"));
            }
            let mut args = vec!["-c".to_string(), spec.program, "sh".to_string()];
            args.extend(spec.args);
            (PathBuf::from("/bin/sh"), args)
        } else {
            if !self.grant.programs.contains(&spec.program) {
                return Err(self.deny(format!("program `{}`", spec.program), "programs"));
            }
            (self.locate(&spec.program)?, spec.args)
        };
        let cwd = self.directory(&spec.cwd)?;
        let mut env = Vec::with_capacity(spec.env.len());
        for (name, value) in spec.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(GuestError::InvalidArgument(format!(
                    "`{name}` is not an environment variable name"
                )));
            }
            if !self.grant.env.contains(&name) {
                return Err(self.deny(format!("environment variable `{name}`"), "env"));
            }
            env.push((name, value));
        }
        let timeout = match spec.timeout_ms {
            0 => self.grant.timeout,
            ms => Duration::from_millis(ms).min(self.grant.timeout),
        };
        Ok(Checked {
            program,
            args,
            cwd,
            env,
            read_back: spec.read_back,
            timeout,
        })
    }

    /// A granted program's path: absolute as granted, or found on the host's PATH.
    fn locate(&self, program: &str) -> Result<PathBuf, GuestError> {
        if Path::new(program).is_absolute() {
            return Ok(PathBuf::from(program));
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        which::which_in(program, Some(&path), &self.grant.base).map_err(|_| {
            GuestError::NotFound(format!(
                "`{program}` is not on the host's PATH ({})",
                path.to_string_lossy()
            ))
        })
    }

    /// The job's working directory, resolved, if it lies inside a granted directory.
    fn directory(&self, cwd: &str) -> Result<PathBuf, GuestError> {
        let wanted = match (cwd.is_empty(), self.grant.dirs.first()) {
            (false, _) => self.grant.base.join(cwd),
            (true, Some(first)) => first.clone(),
            (true, None) => {
                return Err(self.deny("running in any directory".into(), "process_dirs"));
            }
        };
        let real = std::fs::canonicalize(&wanted)
            .map_err(|e| GuestError::NotFound(format!("directory {cwd}: {e}")))?;
        if !covered(&self.grant.dirs, &real) {
            return Err(self.deny(
                format!("directory {cwd} (resolved to {})", real.display()),
                "process_dirs",
            ));
        }
        if !real.is_dir() {
            return Err(GuestError::InvalidArgument(format!(
                "{cwd} is not a directory"
            )));
        }
        Ok(real)
    }

    /// The environment a job starts with: the base variables and the granted ones the host
    /// has, then what the plugin set.
    fn environment(&self, set: Vec<(String, String)>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = BASE_ENV
            .iter()
            .map(|s| s.to_string())
            .chain(self.grant.env.iter().cloned())
            .filter_map(|name| std::env::var(&name).ok().map(|v| (name, v)))
            .collect();
        for (name, value) in set {
            env.retain(|(n, _)| *n != name);
            env.push((name, value));
        }
        env
    }

    fn start_job(&mut self, spec: JobSpec) -> Result<u64, GuestError> {
        if self.live() >= MAX_JOBS {
            return Err(GuestError::TooLarge(format!(
                "plugin already has {MAX_JOBS} jobs running"
            )));
        }
        let checked = self.check(spec)?;
        let before = checked
            .read_back
            .iter()
            .map(|path| Stamp::of(&checked.cwd.join(path)))
            .collect();
        let mut cmd = Command::new(&checked.program);
        cmd.args(&checked.args)
            .current_dir(&checked.cwd)
            .env_clear()
            .envs(self.environment(checked.env))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // The group guard ends the job with a grace period; tokio reaps a dropped child.
            .kill_on_drop(false);
        run_as(&mut cmd, self.grant.user.as_deref())?;
        restore_umask(&mut cmd);
        let mut live = reaper::live_groups();
        let child = cmd.spawn().map_err(|e| {
            let shown = checked.program.display();
            if e.kind() == std::io::ErrorKind::NotFound {
                GuestError::NotFound(format!("cannot start {shown}: {e}"))
            } else {
                GuestError::Other(format!("cannot start {shown}: {e}"))
            }
        })?;
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            reaper::register(&mut live, pid);
        }
        drop(live);
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(plugin = %self.plugin, job = id, program = %checked.program.display(), "job started");
        let (cancel, cancelled) = oneshot::channel();
        let run = Run {
            id,
            plugin: self.plugin.clone(),
            cwd: checked.cwd,
            read_back: checked.read_back,
            read_files: self.grant.read_files.clone(),
            timeout: checked.timeout,
            output_cap: self.grant.output_cap,
            before,
        };
        // Made before the task exists: a task aborted before its first poll (the instance
        // dropped at once) still ends the group when its future is dropped.
        let guard = GroupGuard(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .and_then(Pid::from_raw),
        );
        let task = tokio::spawn(run.run(child, guard, cancelled, self.events.clone()));
        self.jobs.insert(
            id,
            Job {
                cancel: Some(cancel),
                task: AbortOnDrop(task),
            },
        );
        Ok(id)
    }

    fn cancel_job(&mut self, id: u64) -> Result<(), GuestError> {
        self.live();
        let job = self
            .jobs
            .get_mut(&id)
            .ok_or_else(|| GuestError::NotFound(format!("no running job {id}")))?;
        if let Some(cancel) = job.cancel.take() {
            let _ = cancel.send(());
        }
        Ok(())
    }
}

/// Runs the job as `user` when the daemon is root; a daemon that is not root runs jobs
/// as itself (it cannot switch, and `roost check` says so).
fn run_as(cmd: &mut Command, user: Option<&str>) -> Result<(), GuestError> {
    let Some(name) = user else { return Ok(()) };
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => {
            // std drops the supplementary groups when root switches users.
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            Ok(())
        }
        Ok(None) => Err(GuestError::Other(format!(
            "[host] job_user `{name}` does not exist on this machine"
        ))),
        Err(e) => Err(GuestError::Other(format!(
            "cannot look up [host] job_user `{name}`: {e}"
        ))),
    }
}

/// Jobs get the umask roost was started with: their files are the user's project files,
/// made as the user's shell would make them, not private like the daemon's own.
fn restore_umask(cmd: &mut Command) {
    if let Some(mask) = crate::private_files::starting_umask() {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // umask(2), which is async-signal-safe and touches no shared memory.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::umask(mask);
                Ok(())
            });
        }
    }
}

/// Whether `real` (already canonical) is one of `roots` or inside one of them.
fn covered(roots: &[PathBuf], real: &Path) -> bool {
    roots.iter().any(|root| {
        std::fs::canonicalize(root).is_ok_and(|root| real == root || real.starts_with(&root))
    })
}

/// What a job's task needs once the child is running.
struct Run {
    id: u64,
    plugin: String,
    cwd: PathBuf,
    read_back: Vec<String>,
    read_files: Vec<PathBuf>,
    timeout: Duration,
    output_cap: usize,
    /// Each read-back file as it was just before the job was spawned.
    before: Vec<Option<Stamp>>,
}

/// How the wait for a job ended.
enum End {
    Exited(std::io::Result<ExitStatus>),
    Cancelled,
    TimedOut,
}

impl Run {
    async fn run(
        self,
        mut child: Child,
        mut guard: GroupGuard,
        cancelled: oneshot::Receiver<()>,
        events: mpsc::Sender<Event>,
    ) {
        let started = Instant::now();
        // The guard ends the group if this task is dropped (the instance went away)
        // before the job ended.
        let group = guard.0;
        let stdout = child
            .stdout
            .take()
            .map(|s| tokio::spawn(tail(s, self.output_cap)));
        let stderr = child
            .stderr
            .take()
            .map(|s| tokio::spawn(tail(s, self.output_cap)));

        let end = tokio::select! {
            status = child.wait() => End::Exited(status),
            Ok(()) = cancelled => End::Cancelled,
            _ = tokio::time::sleep(self.timeout) => End::TimedOut,
        };
        let cancelled = matches!(end, End::Cancelled);
        let timed_out = matches!(end, End::TimedOut);
        let (status, duration) = match end {
            End::Exited(status) => {
                let duration = started.elapsed();
                // Whatever the job left running in its group goes too.
                if let Some(group) = group {
                    end_group(group, &mut child).await;
                }
                (status.ok(), duration)
            }
            End::Cancelled | End::TimedOut => {
                let status = match group {
                    Some(group) => end_group(group, &mut child).await,
                    None => child.wait().await.ok(),
                };
                (status, started.elapsed())
            }
        };
        guard.0 = None;
        if let Some(group) = group {
            reaper::unregister(group.as_raw_pid());
        }
        let _ = tokio::task::spawn_blocking(reaper::end_escapees).await;
        tracing::debug!(plugin = %self.plugin, job = self.id, ?status, cancelled, timed_out, "job ended");

        let (stdout_tail, stdout_bytes) = drained(stdout).await;
        let (stderr_tail, stderr_bytes) = drained(stderr).await;
        let files = {
            let (cwd, wanted, grants, before) = (
                self.cwd.clone(),
                self.read_back.clone(),
                self.read_files.clone(),
                self.before.clone(),
            );
            tokio::task::spawn_blocking(move || read_back(&cwd, &wanted, &grants, &before))
                .await
                .unwrap_or_default()
        };
        use std::os::unix::process::ExitStatusExt;
        let ended = JobEnded {
            job: self.id,
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            cancelled,
            timed_out,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            stdout_tail,
            stderr_tail,
            stdout_bytes,
            stderr_bytes,
            files,
        };
        // Never dropped for a full mailbox: the plugin must hear how every job ended.
        let _ = events.send(Event::JobEnded(ended)).await;
    }
}

/// What a file looked like at one moment: a file written since differs in one of these,
/// however coarse the clock that stamps modification times (a few milliseconds on Linux,
/// so a time comparison cannot tell a report written just after the start from a stale
/// one written just before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The file at `path` now; `None` when there is none.
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// Ends process group `group` whose leader is `child`: SIGTERM, up to [`GRACE`] for the
/// leader to exit and every other member to go, then SIGKILL. Returns the leader's status.
async fn end_group(group: Pid, child: &mut Child) -> Option<ExitStatus> {
    if !group_alive(group) {
        return child.wait().await.ok();
    }
    let _ = rustix::process::kill_process_group(group, Signal::TERM);
    let deadline = tokio::time::Instant::now() + GRACE;
    let status = tokio::time::timeout_at(deadline, child.wait())
        .await
        .ok()
        .and_then(Result::ok);
    while group_alive(group) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(GROUP_POLL).await;
    }
    if group_alive(group) || status.is_none() {
        let _ = rustix::process::kill_process_group(group, Signal::KILL);
    }
    let status = match status {
        Some(s) => Some(s),
        None => child.wait().await.ok(),
    };
    // SIGKILL cannot be ignored; this only waits for the kernel to finish the job.
    let after_kill = tokio::time::Instant::now() + GRACE;
    while group_alive(group) && tokio::time::Instant::now() < after_kill {
        tokio::time::sleep(GROUP_POLL).await;
    }
    status
}

/// Ends a job's process group when its task is dropped before the job ended (the instance
/// is gone): SIGTERM now, SIGKILL after the grace period from a thread of its own.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(group) = self.0.take() else {
            return;
        };
        if !group_alive(group) {
            return;
        }
        let _ = rustix::process::kill_process_group(group, Signal::TERM);
        std::thread::spawn(move || {
            let deadline = Instant::now() + GRACE;
            while group_alive(group) && Instant::now() < deadline {
                std::thread::sleep(GROUP_POLL);
            }
            if group_alive(group) {
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
            }
            reaper::unregister(group.as_raw_pid());
            reaper::end_escapees();
        });
    }
}

/// Reads a stream to its end, keeping the last `cap` bytes; returns them and the total.
async fn tail(mut stream: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, u64) {
    let mut kept = VecDeque::with_capacity(cap.min(64 * 1024));
    let mut total = 0u64;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                kept.extend(&chunk[..n]);
                let excess = kept.len().saturating_sub(cap);
                kept.drain(..excess);
            }
        }
    }
    (kept.into(), total)
}

/// A stream's tail as text, waiting at most [`DRAIN`] for the reader to finish.
async fn drained(reader: Option<JoinHandle<(Vec<u8>, u64)>>) -> (String, u64) {
    let Some(mut reader) = reader else {
        return (String::new(), 0);
    };
    match tokio::time::timeout(DRAIN, &mut reader).await {
        Ok(Ok((bytes, total))) => (String::from_utf8_lossy(&bytes).into_owned(), total),
        _ => {
            reader.abort();
            (String::new(), 0)
        }
    }
}

/// The files a job asked for: each resolved against `cwd`, inside a `read_files` grant,
/// changed since `before` (or new), and not too large; otherwise the reason.
fn read_back(
    cwd: &Path,
    wanted: &[String],
    grants: &[PathBuf],
    before: &[Option<Stamp>],
) -> Vec<ReadBackFile> {
    wanted
        .iter()
        .enumerate()
        .map(|(i, path)| ReadBackFile {
            path: path.clone(),
            contents: read_one(
                &cwd.join(path),
                grants,
                before.get(i).and_then(Option::as_ref),
            )
            .map_err(|why| format!("{path}: {why}")),
        })
        .collect()
}

fn read_one(path: &Path, grants: &[PathBuf], before: Option<&Stamp>) -> Result<Vec<u8>, String> {
    let real = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    if !covered(grants, &real) {
        return Err(format!(
            "{} is not granted for reading back (add it to read_files)",
            real.display()
        ));
    }
    let meta = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if before.is_some() && Stamp::of(path).as_ref() == before {
        return Err("not written during this job".into());
    }
    if meta.len() > MAX_READ_BACK_BYTES {
        return Err(format!(
            "{} bytes (limit {MAX_READ_BACK_BYTES})",
            meta.len()
        ));
    }
    std::fs::read(&real).map_err(|e| e.to_string())
}

impl process::Host for ProcessCtx {
    async fn start(&mut self, spec: JobSpec) -> wasmtime::Result<Result<u64, GuestError>> {
        Ok(self.start_job(spec))
    }

    async fn cancel(&mut self, job: u64) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(self.cancel_job(job))
    }
}

/// The `process` capability: the programs, directories, variables and read-back files in
/// the plugin's grants, each job within `job_timeout_ms` and `job_output_kb`.
pub struct Process;

impl Capability for Process {
    type Grant = ProcessGrant;
    type Ctx = ProcessCtx;

    fn grant(config: &Config, plugin: &str) -> ProcessGrant {
        let limits = config.limits_for(plugin);
        let grants = config
            .plugin(plugin)
            .map(|p| p.grants.clone())
            .unwrap_or_default();
        ProcessGrant {
            programs: grants.programs,
            dirs: grants.process_dirs,
            env: grants.env,
            shell: grants.shell,
            read_files: grants.read_files,
            base: config.base_dir(),
            timeout: Duration::from_millis(limits.job_timeout_ms),
            output_cap: usize::try_from(limits.job_output_kb.saturating_mul(1024))
                .unwrap_or(usize::MAX),
            user: config.host.job_user.clone(),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &ProcessGrant) -> ProcessCtx {
        ProcessCtx::new(env.plugin, grant.clone(), env.events.clone())
    }

    fn usage(ctx: &mut ProcessCtx) -> Option<String> {
        counted(ctx.live(), "job running", "jobs running")
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        process::add_to_linker::<PluginState, HasSelf<ProcessCtx>>(linker, |s| &mut s.caps.process)
    }
}

pub mod reaper;
pub use reaper::group_alive;

#[cfg(test)]
mod tests;

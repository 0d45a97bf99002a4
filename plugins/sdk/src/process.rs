//! Running programs on the host. Needs grants: `programs` (names looked up on the host's
//! PATH, or absolute paths), `process_dirs` (where jobs may run), `env` (variables a job
//! may set), `read_files` (reports that may be read back) and `shell = true` for command
//! lines.
//!
//! ```text
//! use roost_plugin::prelude::*;
//!
//! let job = process::Job::new("pytest")
//!     .args(["-q", "--junitxml=.roost/junit.xml"])
//!     .cwd("../api")
//!     .read_back(".roost/junit.xml")
//!     .start()?;
//! // Later, in Plugin::on_job_ended(ended): ended.job == job.
//! ```
//!
//! `start` returns at once; how the job ended arrives as
//! [`Plugin::on_job_ended`](crate::Plugin::on_job_ended). [`cancel`] ends the job's whole
//! process group (SIGTERM, then SIGKILL after a grace period) and the event comes after
//! that, marked `cancelled`. Jobs die with the instance.

use std::fmt;
use std::time::Duration;

use crate::__bindings::roost::plugin::process as wit;
use crate::__bindings::roost::plugin::types as wit_types;
use crate::Error;

/// Names one job; its [`JobEnded`] carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(u64);

impl JobId {
    /// The host's number for the job, e.g. to keep it in [`kv`](crate::kv).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for JobId {
    fn from(id: u64) -> Self {
        JobId(id)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A job being set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    program: String,
    args: Vec<String>,
    cwd: String,
    env: Vec<(String, String)>,
    shell: bool,
    read_back: Vec<String>,
    timeout: Option<Duration>,
}

impl Job {
    /// Runs `program`, spelt exactly as the grant's `programs` list spells it.
    pub fn new(program: impl Into<String>) -> Self {
        Job {
            program: program.into(),
            args: Vec::new(),
            cwd: String::new(),
            env: Vec::new(),
            shell: false,
            read_back: Vec::new(),
            timeout: None,
        }
    }

    /// Runs `line` with `/bin/sh -c` (needs `shell = true` in the grant).
    pub fn shell(line: impl Into<String>) -> Self {
        Job {
            shell: true,
            ..Job::new(line)
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The working directory (inside a granted `process_dirs` entry; relative paths are
    /// resolved against the config file's directory). Default: the first granted one.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = dir.into();
        self
    }

    /// Sets a variable; its name must be granted in `env`.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Asks for a file (relative to the working directory) to be read back when the job
    /// ends; it comes back if `read_files` covers it and the job wrote it.
    pub fn read_back(mut self, path: impl Into<String>) -> Self {
        self.read_back.push(path.into());
        self
    }

    /// A timeout shorter than the plugin's `job_timeout_ms` limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts the job. [`Error::AccessDenied`] names the grant that is missing,
    /// [`Error::NotFound`] says the program is not on the host's PATH.
    pub fn start(&self) -> Result<JobId, Error> {
        let spec = wit::JobSpec {
            program: self.program.clone(),
            args: self.args.clone(),
            cwd: self.cwd.clone(),
            env: self.env.clone(),
            shell: self.shell,
            read_back: self.read_back.clone(),
            timeout_ms: self.timeout.map_or(0, |t| {
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
        };
        wit::start(&spec).map(JobId).map_err(Error::from)
    }
}

/// Ends a running job; its [`JobEnded`] follows with `cancelled` set. An unknown or
/// finished job is [`Error::NotFound`].
pub fn cancel(job: JobId) -> Result<(), Error> {
    wit::cancel(job.0).map_err(Error::from)
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnded {
    /// The job.
    pub job: JobId,
    /// Its exit code, when it exited on its own.
    pub exit_code: Option<i32>,
    /// The signal that ended it, otherwise.
    pub signal: Option<i32>,
    /// Ended by [`cancel`]: not a failure.
    pub cancelled: bool,
    /// Ended by the host after its timeout.
    pub timed_out: bool,
    /// From start to end.
    pub duration: Duration,
    /// The last bytes of standard output (the plugin's `job_output_kb` at most).
    pub stdout: String,
    /// The last bytes of standard error.
    pub stderr: String,
    /// Bytes written to standard output in all.
    pub stdout_bytes: u64,
    /// Bytes written to standard error in all.
    pub stderr_bytes: u64,
    /// The files asked for with [`Job::read_back`]: (path, contents or why not).
    pub files: Vec<(String, Result<Vec<u8>, String>)>,
}

impl JobEnded {
    /// Whether the job exited with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The contents of the read-back file `path`, if it came back.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, c)| c.as_deref().ok())
    }
}

impl From<wit_types::JobEnded> for JobEnded {
    fn from(e: wit_types::JobEnded) -> Self {
        JobEnded {
            job: JobId(e.job),
            exit_code: e.exit_code,
            signal: e.signal,
            cancelled: e.cancelled,
            timed_out: e.timed_out,
            duration: Duration::from_millis(e.duration_ms),
            stdout: e.stdout_tail,
            stderr: e.stderr_tail,
            stdout_bytes: e.stdout_bytes,
            stderr_bytes: e.stderr_bytes,
            files: e.files.into_iter().map(|f| (f.path, f.contents)).collect(),
        }
    }
}

//! The plugin: one watch subscription per project, at most one run per project, results
//! judged against the last complete run and posted only when the state changed (or when
//! the run was asked for in chat).
//!
//! A project's life: a batch of changes that names a watched extension goes to the
//! project's [`Pacer`], which says whether to start a run now, cancel the one going on, or
//! look again after a quiet period ([`crate::pace`]). When the run's job ends, a cancelled
//! run only lets the next one start; a finished run is read (JUnit report first, summary
//! lines otherwise), judged ([`crate::verdict`]), remembered in KV, announced if its state
//! changed, and its hooks run.
//!
//! - `runs`: starting, cancelling and ending runs, and the pacing timers.
//! - `results`: reading a finished run, judging it, posting, the hooks and the log.
//! - `overview`: what `!tests` says.

mod overview;
mod results;
mod runs;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use roost_plugin::prelude::*;
use roost_plugin::process::{Job, JobEnded, JobId};

use crate::pace::{Pacer, Timing};
use crate::runner::Scope;
use crate::settings::{self, Project, Settings};
use crate::verdict::Health;

/// Most characters of output kept for `!tests log` (chat messages are short).
const LOG_CHARS: usize = 1800;
/// What the host gathers into one batch before the plugin hears of it: the events of one
/// save (an editor's write, rename and chmod come within microseconds of each other), so
/// the run starts at once after a save. Every millisecond here is one the save waits; a
/// save whose events come further apart (an fsync between write and close) is a burst
/// of two batches, and costs at most one cancelled run.
const HOST_GATHER_MS: u32 = 2;
/// Most changed paths remembered to say what started a run.
const CAUSE_PATHS: usize = 3;
/// The tag prefix of a project's pacing timer.
const QUIET_TAG: &str = "quiet/";

/// A run in progress.
#[derive(Debug, Clone)]
struct Running {
    job: JobId,
    scope: Scope,
    started_ms: u64,
    /// A cancel was sent; its `job-ended` is still to come.
    cancelling: bool,
    /// What started it, as `!tests` says it.
    cause: String,
}

/// What `!tests` shows about the last run that finished.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct LastRun {
    finished_ms: u64,
    /// "passed", "failed" or "broken".
    result: String,
    counts: String,
    duration_ms: u64,
    failing: Vec<String>,
    /// "all" or "failed only".
    scope: String,
    /// What started it ("after a change to app.py", "asked in chat").
    #[serde(default)]
    cause: String,
    /// Where its results came from: "junit", "summary", "exit code" or "none".
    #[serde(default)]
    source: String,
}

/// How many runs ended since the plugin started, as `!tests` shows them.
#[derive(Debug, Clone, Copy, Default)]
struct RunCounts {
    finished: u32,
    cancelled: u32,
    /// Cancelled since the last one that finished (the quiet period doubles with each).
    cancelled_in_a_row: u32,
}

/// Relevant paths changed since the last run started.
#[derive(Debug, Clone, Default)]
struct Changed {
    /// The first few, in the order they came.
    paths: Vec<String>,
    /// More paths than those changed.
    more: bool,
    /// Anything changed (an overflow names no path).
    any: bool,
}

impl Changed {
    /// Notes the relevant paths of one batch.
    fn note<'a>(&mut self, paths: impl IntoIterator<Item = &'a str>) {
        self.any = true;
        for path in paths {
            if self.paths.iter().any(|p| p == path) {
                continue;
            }
            if self.paths.len() < CAUSE_PATHS {
                self.paths.push(path.to_string());
            } else {
                self.more = true;
            }
        }
    }
}

/// One project and its live state.
struct Live {
    project: Project,
    subscription: Option<SubscriptionId>,
    running: Option<Running>,
    health: Health,
    /// Hook commands still to run, one after the other (as pytest-watch runs them).
    hooks: VecDeque<(&'static str, Job)>,
    pacer: Pacer,
    /// A pacing timer is set and will call back.
    timer_set: bool,
    /// How long the last finished run took: the quiet period grows with it.
    recent_run_ms: u64,
    counts: RunCounts,
    changed: Changed,
    /// A run was asked for in chat: the next run that finishes posts its result, changed
    /// or not, and covers the whole suite.
    asked: bool,
}

impl Live {
    fn new(project: Project) -> Live {
        let name = project.name.clone();
        let last: LastRun = load(&name, "last");
        Live {
            project,
            subscription: None,
            running: None,
            health: load(&name, "health"),
            hooks: VecDeque::new(),
            pacer: Pacer::default(),
            timer_set: false,
            recent_run_ms: last.duration_ms,
            counts: RunCounts::default(),
            changed: Changed::default(),
            asked: false,
        }
    }

    /// The project's pacing now.
    fn timing(&self) -> Timing {
        let p = &self.project;
        Timing::new(
            u64::from(p.debounce_ms),
            u64::from(p.max_wait_ms),
            self.recent_run_ms,
            self.counts.cancelled_in_a_row,
        )
    }
}

/// What a job is for.
#[derive(Debug, Clone)]
enum Purpose {
    Run(String),
    Hook(String, &'static str),
}

/// The test-watcher plugin.
#[derive(Default)]
pub struct TestWatcher {
    projects: BTreeMap<String, Live>,
    jobs: HashMap<JobId, Purpose>,
    subscriptions: HashMap<SubscriptionId, String>,
}

fn key(project: &str, what: &str) -> String {
    format!("project/{project}/{what}")
}

fn load<T: serde::de::DeserializeOwned + Default>(project: &str, what: &str) -> T {
    kv::get(&key(project, what))
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

fn save<T: serde::Serialize>(project: &str, what: &str, value: &T) {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            if let Err(e) = kv::set(&key(project, what), bytes) {
                log::warn(format!("{project}: cannot save {what}: {e}"));
            }
        }
        Err(e) => log::warn(format!("{project}: cannot encode {what}: {e}")),
    }
}

/// The last `n` characters of `text`, starting at a line when possible.
fn tail(text: &str, n: usize) -> &str {
    if text.len() <= n {
        return text;
    }
    let mut start = text.len() - n;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) if i + 1 < cut.len() => &cut[i + 1..],
        _ => cut,
    }
}

impl Plugin for TestWatcher {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        let settings: Settings = cfg.decode()?;
        for project in settings::projects(&settings)? {
            let name = project.name.clone();
            let run_on_start = project.run_on_start;
            self.projects.insert(name.clone(), Live::new(project));
            self.subscribe(&name);
            if run_on_start {
                let _ = self.launch(&name, "run on start", false);
            }
        }
        Ok(
            Manifest::new("test-watcher", env!("CARGO_PKG_VERSION")).command(CommandSpec::new(
                "tests",
                "!tests [run [project] | log [project]]",
                "Test results of the watched projects; run them, or show the last output",
            )),
        )
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        match (cmd.arg(0), cmd.arg(2)) {
            (None, _) => Ok(Reply::text(self.overview())),
            (Some("run"), None) => {
                let name = which_project(self.projects.keys(), cmd.arg(1))?;
                Ok(Reply::text(self.request_run(&name)?))
            }
            (Some("log"), None) => {
                let name = which_project(self.projects.keys(), cmd.arg(1))?;
                let name = name.as_str();
                let log: String = kv::get_string(&key(name, "log"))?.unwrap_or_default();
                if log.trim().is_empty() {
                    return Ok(Reply::text(format!("{name}: no output yet")));
                }
                Ok(Reply::text(format!("{name}: last output")).code("", tail(&log, LOG_CHARS)))
            }
            _ => Err(format!("usage: {}", cmd.usage())),
        }
    }

    fn on_files_changed(&mut self, batch: FilesChanged) {
        let Some(name) = self.subscriptions.get(&batch.subscription).cloned() else {
            return;
        };
        let Some(live) = self.projects.get_mut(&name) else {
            return;
        };
        let relevant: Vec<&str> = batch
            .changes
            .iter()
            .map(|c| c.path.as_str())
            .filter(|p| live.project.triggers(p))
            .collect();
        if relevant.is_empty() && !batch.overflow {
            return;
        }
        log::debug(format!(
            "{name}: {} changed (first: {})",
            relevant.len(),
            relevant.first().unwrap_or(&"?")
        ));
        live.changed.note(relevant);
        self.changed(&name);
    }

    fn on_job_ended(&mut self, ended: JobEnded) {
        match self.jobs.remove(&ended.job) {
            Some(Purpose::Run(name)) => self.finished(&name, ended),
            Some(Purpose::Hook(name, which)) => {
                if !ended.success() {
                    log::warn(format!(
                        "{name}: {which} hook ended with {:?}: {}",
                        ended.exit_code,
                        tail(&ended.stderr, 300)
                    ));
                }
                self.next_hook(&name);
            }
            None => {}
        }
    }

    fn on_timer(&mut self, tag: &str) {
        if let Some(name) = tag.strip_prefix(QUIET_TAG) {
            self.woke(name);
        }
    }

    fn on_notice(&mut self, notice: &str) {
        log::warn(format!("host: {notice}"));
    }

    fn status(&self) -> String {
        self.short_status()
    }
}

/// The project a command means: the one named, or, when none is named, the only one
/// configured (a user with one project should not have to type its name).
fn which_project<'a>(
    configured: impl Iterator<Item = &'a String>,
    named: Option<&str>,
) -> Result<String, String> {
    let known: Vec<&str> = configured.map(String::as_str).collect();
    let list = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    match (named, known.as_slice()) {
        (Some(name), _) if known.contains(&name) => Ok(name.to_string()),
        (Some(name), _) => Err(format!("no project `{name}` (known: {list})")),
        (None, [only]) => Ok((*only).to_string()),
        (None, []) => Err("no project is configured".to_string()),
        (None, _) => Err(format!("which project? name one of: {list}")),
    }
}

impl TestWatcher {
    fn subscribe(&mut self, name: &str) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let p = &live.project;
        let result = watch::Subscription::new(p.watch.clone())
            .ignore(p.ignore.clone())
            .debounce(Duration::from_millis(u64::from(
                p.debounce_ms.min(HOST_GATHER_MS),
            )))
            .max_wait((p.max_wait_ms > 0).then(|| Duration::from_millis(u64::from(p.max_wait_ms))))
            .subscribe();
        match result {
            Ok(id) => {
                live.subscription = Some(id);
                self.subscriptions.insert(id, name.to_string());
            }
            Err(e) => {
                let reason = format!("cannot watch {}: {e}", p.watch.join(", "));
                log::warn(format!("{name}: {reason}"));
                self.broken(name, reason, String::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_only_project_needs_no_name_and_several_ask_which() {
        let one = names(&["api"]);
        assert_eq!(which_project(one.iter(), None).as_deref(), Ok("api"));
        assert_eq!(which_project(one.iter(), Some("api")).as_deref(), Ok("api"));
        let err = which_project(one.iter(), Some("web")).unwrap_err();
        assert_eq!(err, "no project `web` (known: api)");
        let two = names(&["api", "web"]);
        let err = which_project(two.iter(), None).unwrap_err();
        assert_eq!(err, "which project? name one of: api, web");
        assert!(which_project([].iter(), None).is_err());
    }
}

export_plugin!(TestWatcher);

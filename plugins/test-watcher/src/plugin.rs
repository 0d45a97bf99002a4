//! The plugin: one watch subscription per project, at most one run per project, results
//! judged against the last known state and posted only when it changed.
//!
//! A project's life: a batch of changes that names a watched extension starts a run (or,
//! while one is going, cancels it, queues one more, or is ignored, as `on_change` says).
//! When the run's job ends, a cancelled run only starts the next one; a finished run is
//! read (JUnit report first, summary lines otherwise), judged ([`crate::verdict`]),
//! remembered in KV, announced if its state changed, and its hooks run.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use roost_plugin::clock::now_ms;
use roost_plugin::prelude::*;
use roost_plugin::process::{self, Job, JobEnded, JobId};

use crate::report::{self, Outcome, Status};
use crate::runner::{Kind, Scope};
use crate::settings::{self, OnChange, Project, Settings};
use crate::verdict::{self, Health, Ran, State};

/// Most characters of output kept for `!tests log` (chat messages are short).
const LOG_CHARS: usize = 1800;
/// Most characters of runner output shown when a run is broken.
const BROKEN_DETAIL_CHARS: usize = 800;

/// A run in progress.
#[derive(Debug, Clone)]
struct Running {
    job: JobId,
    scope: Scope,
    started_ms: u64,
    /// A cancel was sent; its `job-ended` is still to come.
    cancelling: bool,
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
}

/// One project and its live state.
struct Live {
    project: Project,
    subscription: Option<SubscriptionId>,
    running: Option<Running>,
    /// A change (or `!tests run`) arrived during the run: run again after it.
    again: bool,
    health: Health,
    /// Hook commands still to run, one after the other (as pytest-watch runs them).
    hooks: VecDeque<(&'static str, Job)>,
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

fn ago(ms: u64) -> String {
    let secs = now_ms().saturating_sub(ms) / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

impl Plugin for TestWatcher {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        let settings: Settings = cfg.decode()?;
        for project in settings::projects(&settings)? {
            let name = project.name.clone();
            let health = load(&name, "health");
            self.projects.insert(
                name.clone(),
                Live {
                    project,
                    subscription: None,
                    running: None,
                    again: false,
                    health,
                    hooks: VecDeque::new(),
                },
            );
            self.subscribe(&name);
            if self
                .projects
                .get(&name)
                .is_some_and(|l| l.project.run_on_start)
            {
                let _ = self.start(&name, None);
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
                let note = self.start(&name, Some(Scope::All))?;
                Ok(Reply::text(note))
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
        let Some(live) = self.projects.get(&name) else {
            return;
        };
        let relevant =
            batch.overflow || batch.changes.iter().any(|c| live.project.triggers(&c.path));
        if !relevant {
            return;
        }
        let first = batch.changes.first().map(|c| c.path.as_str()).unwrap_or("");
        log::debug(format!(
            "{name}: {} changed (first: {first})",
            batch.changes.len()
        ));
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

    fn on_notice(&mut self, notice: &str) {
        log::warn(format!("host: {notice}"));
    }

    fn status(&self) -> String {
        if self.projects.is_empty() {
            return "no projects configured".to_string();
        }
        self.projects
            .values()
            .map(|l| {
                let state = match l.health.state {
                    State::Unknown => "not run yet".to_string(),
                    State::Green => "green".to_string(),
                    State::Red => format!("red ({} failing)", l.health.failing.len()),
                    State::Broken => "broken".to_string(),
                };
                let running = if l.running.is_some() { ", running" } else { "" };
                format!("{}: {state}{running}", l.project.name)
            })
            .collect::<Vec<_>>()
            .join("; ")
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

impl TestWatcher {
    fn subscribe(&mut self, name: &str) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let p = &live.project;
        let result = watch::Subscription::new(p.watch.clone())
            .ignore(p.ignore.clone())
            .debounce(Duration::from_millis(u64::from(p.debounce_ms)))
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

    /// A relevant change arrived for `name`.
    fn changed(&mut self, name: &str) {
        if self.projects.get(name).is_some_and(|l| l.running.is_none()) {
            let _ = self.start(name, None);
            return;
        }
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let Some(running) = live.running.as_mut() else {
            return;
        };
        match live.project.on_change {
            OnChange::Cancel => {
                live.again = true;
                if !running.cancelling {
                    running.cancelling = true;
                    if let Err(e) = process::cancel(running.job) {
                        log::warn(format!("{name}: cancel: {e}"));
                    }
                }
            }
            OnChange::Queue => live.again = true,
            OnChange::Ignore => {}
        }
    }

    /// Starts a run of `name` (all tests, or the failing ones first when the project asks
    /// for that and `scope` is `None`). A run in progress is cancelled first and this one
    /// follows it. Returns what to tell the user.
    fn start(&mut self, name: &str, scope: Option<Scope>) -> Result<String, String> {
        let live = self
            .projects
            .get_mut(name)
            .ok_or_else(|| format!("no project `{name}`"))?;
        if let Some(running) = live.running.as_mut() {
            live.again = true;
            if !running.cancelling {
                running.cancelling = true;
                process::cancel(running.job).map_err(|e| e.to_string())?;
            }
            return Ok(format!(
                "{name}: stopping the current run; a new one follows"
            ));
        }
        let p = live.project.clone();
        let scope = scope.unwrap_or(
            if p.failed_first && live.health.state == State::Red && p.kind.can_rerun_failed() {
                Scope::Failed
            } else {
                Scope::All
            },
        );
        let failing: Vec<String> = live.health.failing.keys().cloned().collect();
        let args = p
            .kind
            .arguments(&p.args, &p.extra_args, p.report.as_deref(), scope, &failing);
        let mut job = Job::new(p.runner.clone()).args(args).cwd(p.root.clone());
        for (k, v) in &p.env {
            job = job.env(k.clone(), v.clone());
        }
        if let Some(report) = &p.report {
            job = job.read_back(report.clone());
        }
        if p.timeout_ms > 0 {
            job = job.timeout(Duration::from_millis(p.timeout_ms));
        }
        let started = job.start();
        let Some(live) = self.projects.get_mut(name) else {
            return Err(format!("no project `{name}`"));
        };
        match started {
            Ok(id) => {
                live.running = Some(Running {
                    job: id,
                    scope,
                    started_ms: now_ms(),
                    cancelling: false,
                });
                live.again = false;
                self.jobs.insert(id, Purpose::Run(name.to_string()));
                log::info(format!("{name}: run started ({scope:?})"));
                Ok(format!("{name}: running the tests"))
            }
            Err(e) => {
                let reason = format!("cannot start `{}`: {e}", p.runner);
                self.broken(name, reason.clone(), String::new());
                Err(format!("{name}: {reason}"))
            }
        }
    }

    /// Records and announces (if new) that `name` could not run its tests.
    fn broken(&mut self, name: &str, reason: String, detail: String) {
        self.conclude(name, Ran::Broken { reason, detail }, None);
    }

    /// The run's job ended.
    fn finished(&mut self, name: &str, ended: JobEnded) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let Some(running) = live.running.take() else {
            return;
        };
        let output = format!("{}{}", ended.stdout, ended.stderr);
        let when = now_ms();
        if ended.cancelled {
            log::info(format!("{name}: run cancelled"));
            self.keep_log(
                name,
                &format!(
                    "(run cancelled after {:.1} s)\n",
                    ended.duration.as_secs_f64()
                ),
                false,
            );
        } else {
            let p = &live.project;
            let ran = read_run(p, &ended, running.scope, &output);
            self.keep_log(name, &output, true);
            self.conclude(name, ran, Some((&ended, running.scope, when)));
        }
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        if live.again && live.running.is_none() {
            let _ = self.start(name, None);
        }
    }

    /// Judges `ran`, remembers the result, posts a change, runs the hooks.
    fn conclude(&mut self, name: &str, ran: Ran, job: Option<(&JobEnded, Scope, u64)>) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let verdict = verdict::judge(name, &live.health, &ran);
        live.health = verdict.health.clone();
        save(name, "health", &live.health);
        if let Ran::Tested { outcome, .. } = &ran {
            remember_tests(name, outcome);
        }
        if let Some((ended, scope, finished_ms)) = job {
            let (result, counts) = match &ran {
                Ran::Tested { outcome, .. } if outcome.is_green() => ("passed", outcome.counts()),
                Ran::Tested { outcome, .. } => ("failed", outcome.counts()),
                Ran::Broken { reason, .. } => ("broken", reason.clone()),
            };
            let last = LastRun {
                finished_ms,
                result: result.to_string(),
                counts,
                duration_ms: ended.duration.as_millis() as u64,
                failing: live.health.failing.keys().cloned().collect(),
                scope: match scope {
                    Scope::All => "all".into(),
                    Scope::Failed => "failed only".into(),
                },
            };
            let source = match &ran {
                Ran::Tested { outcome, .. } => outcome.source,
                Ran::Broken { .. } => "none",
            };
            log::info(format!(
                "{name}: run finished: {} ({}) [results from: {source}]",
                last.result, last.counts
            ));
            save(name, "last", &last);
        }
        if let Some((text, detail)) = &verdict.message {
            self.post(name, text, detail);
        }
        if let Some((ended, _, _)) = job {
            let green = matches!(&ran, Ran::Tested { outcome, .. } if outcome.is_green());
            self.hooks(
                name,
                green,
                ended.exit_code.unwrap_or(-1),
                verdict.run_all_next,
            );
        }
        if verdict.run_all_next
            && let Some(live) = self.projects.get_mut(name)
        {
            // The failures pass on their own; the whole suite runs right away.
            live.again = false;
            let _ = self.start(name, Some(Scope::All));
        }
    }

    fn post(&self, name: &str, text: &str, detail: &str) {
        let Some(channel) = self
            .projects
            .get(name)
            .and_then(|l| l.project.channel.clone())
        else {
            log::info(format!("(no channel) {text}"));
            return;
        };
        let mut reply = Reply::text(text);
        if !detail.is_empty() {
            reply = reply.code("", tail(detail, BROKEN_DETAIL_CHARS * 2));
        }
        if let Err(e) = chat::send(&channel, reply) {
            log::warn(format!("{name}: cannot post to `{channel}`: {e}"));
        }
    }

    /// onpass / onfail after a finished run, and onexit after every finished run, one after
    /// the other. A failed-only run that passed is not the end of the run: its suite run
    /// decides.
    fn hooks(&mut self, name: &str, green: bool, exit_code: i32, partial: bool) {
        if partial {
            return;
        }
        let Some(live) = self.projects.get(name) else {
            return;
        };
        let p = &live.project;
        let mut wanted: Vec<(&'static str, String, Vec<String>)> = Vec::new();
        if green && let Some(cmd) = &p.onpass {
            wanted.push(("onpass", cmd.clone(), Vec::new()));
        }
        if !green && let Some(cmd) = &p.onfail {
            wanted.push(("onfail", cmd.clone(), Vec::new()));
        }
        if let Some(cmd) = &p.onexit {
            wanted.push(("onexit", cmd.clone(), vec![exit_code.to_string()]));
        }
        let (shell, root) = (p.shell, p.root.clone());
        let mut queue = VecDeque::new();
        for (which, cmd, extra) in wanted {
            let job = if shell {
                Job::shell(cmd.clone()).args(extra)
            } else {
                match shlex::split(&cmd) {
                    Some(words) if !words.is_empty() => Job::new(words[0].clone())
                        .args(words[1..].to_vec())
                        .args(extra),
                    _ => {
                        log::warn(format!("{name}: {which} `{cmd}` is not a command line"));
                        continue;
                    }
                }
            };
            queue.push_back((which, job.cwd(root.clone())));
        }
        let idle = self
            .jobs
            .values()
            .all(|p| !matches!(p, Purpose::Hook(n, _) if n == name));
        if let Some(live) = self.projects.get_mut(name) {
            live.hooks.extend(queue);
        }
        if idle {
            self.next_hook(name);
        }
    }

    /// Starts the next queued hook of `name`, if any (skipping those that cannot start).
    fn next_hook(&mut self, name: &str) {
        while let Some((which, job)) = self
            .projects
            .get_mut(name)
            .and_then(|l| l.hooks.pop_front())
        {
            match job.start() {
                Ok(id) => {
                    self.jobs.insert(id, Purpose::Hook(name.to_string(), which));
                    return;
                }
                Err(e) => log::warn(format!("{name}: cannot run the {which} hook: {e}")),
            }
        }
    }

    /// Keeps output for `!tests log`: with `clear`, only the last run's; otherwise appended
    /// like a terminal's scrollback.
    fn keep_log(&self, name: &str, output: &str, finished: bool) {
        let Some(live) = self.projects.get(name) else {
            return;
        };
        let mut log = if live.project.clear && finished {
            String::new()
        } else {
            kv::get_string(&key(name, "log"))
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        log.push_str(output);
        let kept = tail(&log, LOG_CHARS * 4).to_string();
        if let Err(e) = kv::set_string(&key(name, "log"), &kept) {
            log::warn(format!("{name}: cannot save the log: {e}"));
        }
    }

    fn overview(&self) -> String {
        if self.projects.is_empty() {
            return "no projects; add [plugins.test-watcher.config.projects.NAME] to roost.toml"
                .to_string();
        }
        let mut lines = Vec::new();
        for (name, live) in &self.projects {
            let last: LastRun = load(name, "last");
            let mut line = if last.finished_ms == 0 {
                format!("{name}: not run yet")
            } else {
                format!(
                    "{name}: {} ({}) in {:.1} s, {}",
                    last.result,
                    last.counts,
                    last.duration_ms as f64 / 1000.0,
                    ago(last.finished_ms)
                )
            };
            if live.health.state == State::Red && !live.health.failing.is_empty() {
                let names: Vec<&str> = live.health.failing.keys().map(String::as_str).collect();
                line += &format!("; failing: {}", names.join(", "));
            }
            if live.health.state == State::Broken {
                line += &format!("; {}", live.health.reason);
            }
            if let Some(r) = &live.running {
                line += &format!(
                    " [running for {}]",
                    ago(r.started_ms).trim_end_matches(" ago")
                );
            }
            lines.push(line);
        }
        lines.join("\n")
    }
}

/// What a finished (not cancelled) run says.
fn read_run(p: &Project, ended: &JobEnded, scope: Scope, output: &str) -> Ran {
    if ended.timed_out {
        return Ran::Broken {
            reason: format!(
                "the run timed out after {:.0} s",
                ended.duration.as_secs_f64()
            ),
            detail: tail(output, BROKEN_DETAIL_CHARS).to_string(),
        };
    }
    let from_report = p.report.as_deref().and_then(|path| {
        let bytes = ended.file(path)?;
        match report::junit::parse(&String::from_utf8_lossy(bytes), p.kind) {
            Ok(o) => Some(o),
            Err(e) => {
                log::warn(format!("{}: {e}; reading the output instead", p.name));
                None
            }
        }
    });
    if from_report.is_none()
        && let Some((_, Err(why))) = ended.files.first()
    {
        log::debug(format!("{}: no report: {why}", p.name));
    }
    let outcome = from_report.or_else(|| report::summary::parse(p.kind, output));
    let code = ended.exit_code;
    let nothing =
        |o: &Outcome| o.cases.is_empty() && o.passed + o.failed + o.errors + o.skipped == 0;
    // pytest exits 5 when it collected no tests: a quiet suite, not a broken one.
    let no_tests_ok = p.kind == Kind::Pytest && code == Some(5);
    match outcome {
        Some(o) if !nothing(&o) || code == Some(0) || no_tests_ok => Ran::Tested {
            outcome: o,
            scope,
            duration: ended.duration,
        },
        None if code == Some(0) || no_tests_ok => Ran::Tested {
            outcome: Outcome {
                source: "exit code",
                ..Outcome::default()
            },
            scope,
            duration: ended.duration,
        },
        _ => Ran::Broken {
            reason: match (code, ended.signal) {
                (Some(c), _) => format!("`{}` exited with {c} before reporting any test", p.runner),
                (None, Some(s)) => format!("`{}` was killed by signal {s}", p.runner),
                _ => format!("`{}` ended without a result", p.runner),
            },
            detail: tail(output, BROKEN_DETAIL_CHARS).to_string(),
        },
    }
}

/// Per-test results between runs: name → status, merged over runs that cover part of the
/// suite.
fn remember_tests(name: &str, outcome: &Outcome) {
    if outcome.cases.is_empty() {
        return;
    }
    let mut tests: BTreeMap<String, Status> = load(name, "tests");
    for case in &outcome.cases {
        tests.insert(case.name.clone(), case.status);
    }
    save(name, "tests", &tests);
}

export_plugin!(TestWatcher);

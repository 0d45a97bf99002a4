//! A finished run: read, judged, remembered, posted; then its hooks. Also the output kept
//! for `!tests log`.

use std::collections::{BTreeMap, VecDeque};

use roost_plugin::clock::now_ms;
use roost_plugin::prelude::*;
use roost_plugin::process::{Job, JobEnded};

use super::{LOG_CHARS, LastRun, Purpose, Running, TestWatcher, key, load, save, tail};
use crate::report::{self, Listing, Outcome, Status};
use crate::runner::{Kind, Scope};
use crate::settings::Project;
use crate::verdict::{self, Ran, Verdict};

/// Most characters of runner output shown when a run is broken.
const BROKEN_DETAIL_CHARS: usize = 800;
/// Most characters of a post's code block (a safety net: the verdict trims per test).
const POST_DETAIL_CHARS: usize = 2000;

/// A finished job as [`TestWatcher::conclude`] records it.
struct Finished<'a> {
    ended: &'a JobEnded,
    scope: Scope,
    cause: String,
}

impl TestWatcher {
    /// Records and announces (if new) that `name` could not run its tests.
    pub(super) fn broken(&mut self, name: &str, reason: String, detail: String) {
        self.conclude(name, Ran::Broken { reason, detail }, None);
    }

    /// Reads and judges a run that finished (was not cancelled).
    pub(super) fn judge_run(&mut self, name: &str, ended: &JobEnded, running: &Running) {
        let Some(live) = self.projects.get(name) else {
            return;
        };
        let output = format!("{}{}", ended.stdout, ended.stderr);
        let ran = read_run(&live.project, ended, running.scope, &output);
        self.keep_log(name, &output, true);
        let finished = Finished {
            ended,
            scope: running.scope,
            cause: running.cause.clone(),
        };
        self.conclude(name, ran, Some(finished));
    }

    /// Judges `ran`, remembers the result, posts a change (or the answer to a run asked
    /// for in chat), runs the hooks.
    fn conclude(&mut self, name: &str, ran: Ran, job: Option<Finished<'_>>) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let verdict = verdict::judge(name, &live.health, &ran);
        live.health = verdict.health.clone();
        save(name, "health", &live.health);
        if let Ran::Tested { outcome, .. } = &ran {
            remember_tests(name, outcome);
        }
        let answer = job.is_some() && live.asked && !verdict.run_all_next;
        if answer {
            live.asked = false;
        }
        if let Some(finished) = &job {
            record_last(name, &ran, &verdict, finished);
        }
        match &verdict.message {
            Some((text, detail)) => self.post(name, text, detail),
            None if answer => {
                let text = verdict::answer(name, &verdict.health, &ran);
                self.post(name, &text, "");
            }
            None => {}
        }
        if let Some(finished) = &job {
            let green = matches!(&ran, Ran::Tested { outcome, .. } if outcome.is_green());
            let code = finished.ended.exit_code.unwrap_or(-1);
            self.hooks(name, green, code, verdict.run_all_next);
        }
        let idle = self.projects.get(name).is_some_and(|l| l.running.is_none());
        if verdict.run_all_next && idle {
            // The failures pass on their own; the whole suite runs right away.
            let _ = self.launch(
                name,
                "the whole suite, after the failing tests passed",
                true,
            );
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
            let kept: String = detail.chars().take(POST_DETAIL_CHARS).collect();
            reply = reply.code("", kept);
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
        let queue: VecDeque<(&'static str, Job)> = wanted
            .into_iter()
            .filter_map(|(which, cmd, extra)| hook_job(p, name, which, &cmd, extra))
            .collect();
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
    pub(super) fn next_hook(&mut self, name: &str) {
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
    pub(super) fn keep_log(&self, name: &str, output: &str, finished: bool) {
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
}

/// The job of one hook command: through the shell when the project says so, otherwise
/// split like a shell would; `None` (and a warning) when it is not a command line.
fn hook_job(
    p: &Project,
    name: &str,
    which: &'static str,
    cmd: &str,
    extra: Vec<String>,
) -> Option<(&'static str, Job)> {
    let job = if p.shell {
        Job::shell(cmd.to_string()).args(extra)
    } else {
        match shlex::split(cmd) {
            Some(words) if !words.is_empty() => Job::new(words[0].clone())
                .args(words[1..].to_vec())
                .args(extra),
            _ => {
                log::warn(format!("{name}: {which} `{cmd}` is not a command line"));
                return None;
            }
        }
    };
    Some((which, job.cwd(p.root.clone())))
}

/// Saves what `!tests` shows about the run that just finished.
fn record_last(name: &str, ran: &Ran, verdict: &Verdict, finished: &Finished<'_>) {
    let (result, counts, source) = match ran {
        Ran::Tested { outcome, .. } if outcome.is_green() => {
            ("passed", outcome.counts(), outcome.source)
        }
        Ran::Tested { outcome, .. } => ("failed", outcome.counts(), outcome.source),
        Ran::Broken { reason, .. } => ("broken", reason.clone(), "none"),
    };
    let last = LastRun {
        finished_ms: now_ms(),
        result: result.to_string(),
        counts,
        duration_ms: u64::try_from(finished.ended.duration.as_millis()).unwrap_or(u64::MAX),
        failing: verdict
            .health
            .failing_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
        scope: match finished.scope {
            Scope::All => "all".into(),
            Scope::Failed => "failed only".into(),
        },
        cause: finished.cause.clone(),
        source: source.to_string(),
    };
    log::info(format!(
        "{name}: run finished: {} ({}) [results from: {source}]",
        last.result, last.counts
    ));
    save(name, "last", &last);
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
    // A run pytest stopped while collecting ran no test, whatever its report says.
    if matches!(p.kind, Kind::Pytest | Kind::Other)
        && let Some(stopped) = report::collect::interrupted(output)
    {
        return Ran::Broken {
            reason: stopped.reason,
            detail: stopped.detail,
        };
    }
    let outcome = read_outcome(p, ended, output);
    let code = ended.exit_code;
    let nothing =
        |o: &Outcome| o.cases.is_empty() && o.passed + o.failed + o.errors + o.skipped == 0;
    // pytest exits 5 when it collected no tests: a quiet suite, not a broken one.
    let no_tests_ok = p.kind == Kind::Pytest && code == Some(5);
    let duration = ended.duration;
    match outcome {
        Some(o) if !nothing(&o) || code == Some(0) || no_tests_ok => Ran::Tested {
            outcome: o,
            scope,
            duration,
        },
        None if code == Some(0) || no_tests_ok => Ran::Tested {
            outcome: Outcome {
                source: "exit code",
                ..Outcome::default()
            },
            scope,
            duration,
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

/// The results: from the JUnit report when there is a readable one, else from the
/// summary lines; marked partial when the runner stopped early or the host kept only the
/// tail of output the results were read from.
fn read_outcome(p: &Project, ended: &JobEnded, output: &str) -> Option<Outcome> {
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
    let mut outcome = from_report.or_else(|| report::summary::parse(p.kind, output))?;
    let cut = ended.stdout_bytes > ended.stdout.len() as u64
        || ended.stderr_bytes > ended.stderr.len() as u64;
    if report::summary::stopped_early(output) || (outcome.source == "summary" && cut) {
        outcome.listing = Listing::Partial;
    }
    Some(outcome)
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

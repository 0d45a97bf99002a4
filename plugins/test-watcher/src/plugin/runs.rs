//! Starting, cancelling and ending runs: what the pacer decides, carried out.

use std::time::Duration;

use roost_plugin::clock::now_ms;
use roost_plugin::prelude::*;
use roost_plugin::process::{self, Job, JobEnded};

use super::{Changed, Purpose, QUIET_TAG, Running, TestWatcher};
use crate::pace::Plan;
use crate::runner::Scope;
use crate::verdict::State;

impl TestWatcher {
    /// A batch of relevant changes arrived for `name` (already noted in `changed`).
    pub(super) fn changed(&mut self, name: &str) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let timing = live.timing();
        let running = live.running.is_some();
        let plan = live
            .pacer
            .changed(now_ms(), running, live.project.on_change, timing);
        self.apply(name, plan);
    }

    /// The pacing timer of `name` fired.
    pub(super) fn woke(&mut self, name: &str) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        live.timer_set = false;
        let timing = live.timing();
        let running = live.running.is_some();
        let plan = live.pacer.woke(now_ms(), running, timing);
        self.apply(name, plan);
    }

    /// Carries out what the pacer decided.
    fn apply(&mut self, name: &str, plan: Plan) {
        if plan.cancel {
            self.cancel_run(name);
        }
        let idle = self.projects.get(name).is_some_and(|l| l.running.is_none());
        if plan.start && idle {
            let _ = self.launch(name, "", false);
        }
        if let Some(ms) = plan.wake_in {
            self.set_timer(name, ms);
        }
    }

    /// Sets the pacing timer of `name`, unless one is set: it looks again when it fires.
    fn set_timer(&mut self, name: &str, ms: u64) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        if live.timer_set {
            return;
        }
        match timer::after(Duration::from_millis(ms), &format!("{QUIET_TAG}{name}")) {
            Ok(_) => live.timer_set = true,
            Err(e) => {
                // Without a timer the owed run would wait for the next change: run now.
                log::warn(format!("{name}: cannot set a timer: {e}"));
                if live.running.is_none() {
                    let _ = self.launch(name, "", false);
                }
            }
        }
    }

    /// `!tests run`: the whole suite now; a run going on is cancelled first and this one
    /// follows it. Its result is posted when it finishes, changed or not.
    pub(super) fn request_run(&mut self, name: &str) -> Result<String, String> {
        let live = self
            .projects
            .get_mut(name)
            .ok_or_else(|| format!("no project `{name}`"))?;
        let follows = match &live.project.channel {
            Some(channel) => format!("; the result follows in `{channel}`"),
            None => "; `!tests` shows the result (no channel is configured)".to_string(),
        };
        if live.running.is_some() {
            live.asked = true;
            live.pacer.owe(now_ms());
            self.cancel_run(name);
            return Ok(format!(
                "{name}: stopping the current run; a new one follows{follows}"
            ));
        }
        live.asked = true;
        if let Err(e) = self.launch(name, "", false) {
            if let Some(live) = self.projects.get_mut(name) {
                live.asked = false;
            }
            return Err(e);
        }
        Ok(format!("{name}: running the tests{follows}"))
    }

    /// Cancels the run of `name`, if one is going on and not already being cancelled.
    fn cancel_run(&mut self, name: &str) {
        let Some(running) = self.projects.get_mut(name).and_then(|l| l.running.as_mut()) else {
            return;
        };
        if running.cancelling {
            return;
        }
        running.cancelling = true;
        if let Err(e) = process::cancel(running.job) {
            log::warn(format!("{name}: cancel: {e}"));
        }
    }

    /// Starts a run of `name`: the whole suite when `whole` or asked for in chat, else
    /// only the failing tests when the project asks for that and is red. `fallback` says
    /// what started it when no change and no chat request did. The caller makes sure no
    /// run is going on.
    pub(super) fn launch(&mut self, name: &str, fallback: &str, whole: bool) -> Result<(), String> {
        let live = self
            .projects
            .get_mut(name)
            .ok_or_else(|| format!("no project `{name}`"))?;
        let p = live.project.clone();
        let scope = if !whole
            && !live.asked
            && p.failed_first
            && live.health.state == State::Red
            && p.kind.can_rerun_failed()
        {
            Scope::Failed
        } else {
            Scope::All
        };
        let failing: Vec<String> = live.health.failing.iter().map(|f| f.name.clone()).collect();
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
        match job.start() {
            Ok(id) => {
                let now = now_ms();
                let timing = live.timing();
                live.pacer.started(now, timing);
                let cause = cause(live.asked, &std::mem::take(&mut live.changed), fallback);
                live.running = Some(Running {
                    job: id,
                    scope,
                    started_ms: now,
                    cancelling: false,
                    cause,
                });
                self.jobs.insert(id, Purpose::Run(name.to_string()));
                log::info(format!("{name}: run started ({scope:?})"));
                Ok(())
            }
            Err(e) => {
                let reason = format!("cannot start `{}`: {e}", p.runner);
                self.broken(name, reason.clone(), String::new());
                Err(format!("{name}: {reason}"))
            }
        }
    }

    /// The run's job ended: a cancelled one only lets the next start; a finished one is
    /// judged. Then whatever the pacer owes starts, now or after a quiet period.
    pub(super) fn finished(&mut self, name: &str, ended: JobEnded) {
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let Some(running) = live.running.take() else {
            return;
        };
        if ended.cancelled {
            live.counts.cancelled += 1;
            live.counts.cancelled_in_a_row += 1;
            log::info(format!("{name}: run cancelled"));
            let note = format!(
                "(run cancelled after {:.1} s)\n",
                ended.duration.as_secs_f64()
            );
            self.keep_log(name, &note, false);
        } else {
            live.counts.finished += 1;
            live.counts.cancelled_in_a_row = 0;
            live.recent_run_ms = u64::try_from(ended.duration.as_millis()).unwrap_or(u64::MAX);
            self.judge_run(name, &ended, &running);
        }
        let Some(live) = self.projects.get_mut(name) else {
            return;
        };
        let timing = live.timing();
        let plan = live.pacer.ended(now_ms(), timing);
        self.apply(name, plan);
    }
}

/// What started a run, as `!tests` says it: "asked in chat", "after a change to app.py",
/// "after changes to a.py, b.py and more", or `fallback`.
fn cause(asked: bool, changed: &Changed, fallback: &str) -> String {
    let mut parts = Vec::new();
    if asked {
        parts.push("asked in chat".to_string());
    }
    let more = if changed.more { " and more" } else { "" };
    match changed.paths.as_slice() {
        [] if changed.any => parts.push("after changes (too many to list)".to_string()),
        [] => {}
        [one] if !changed.more => parts.push(format!("after a change to {one}")),
        paths => parts.push(format!("after changes to {}{more}", paths.join(", "))),
    }
    if parts.is_empty() && !fallback.is_empty() {
        parts.push(fallback.to_string());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(paths: &[&str]) -> Changed {
        let mut c = Changed::default();
        c.note(paths.iter().copied());
        c
    }

    #[test]
    fn a_run_says_what_started_it() {
        assert_eq!(
            cause(false, &changed(&["app.py", "app.py"]), "x"),
            "after a change to app.py"
        );
        assert_eq!(
            cause(false, &changed(&["a.py", "b.py"]), "x"),
            "after changes to a.py, b.py"
        );
        assert_eq!(
            cause(false, &changed(&["a.py", "b.py", "c.py", "d.py"]), "x"),
            "after changes to a.py, b.py, c.py and more"
        );
        assert_eq!(
            cause(true, &Changed::default(), "run on start"),
            "asked in chat"
        );
        assert_eq!(
            cause(false, &Changed::default(), "run on start"),
            "run on start"
        );
    }
}

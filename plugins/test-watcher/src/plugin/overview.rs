//! What `!tests` and the plugin's status line say about each project.

use roost_plugin::clock::now_ms;

use super::{LastRun, Live, TestWatcher, load};
use crate::verdict::{self, State};

/// Most failing test names `!tests` lists per project.
const MAX_LISTED: usize = 10;

/// "3 s ago", "2 min ago", "1 h ago".
fn ago(ms: u64) -> String {
    let secs = now_ms().saturating_sub(ms) / 1000;
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        _ => format!("{} h ago", secs / 3600),
    }
}

/// Where results came from, as a user reads it.
fn source(last: &LastRun) -> &'static str {
    match last.source.as_str() {
        "junit" => "read from the JUnit report",
        "summary" => "read from the runner's summary lines",
        "exit code" => "judged by the exit code",
        _ => "",
    }
}

impl TestWatcher {
    /// `!tests`: one line per project.
    pub(super) fn overview(&self) -> String {
        if self.projects.is_empty() {
            return "no projects; add [plugins.test-watcher.config.projects.NAME] to roost.toml"
                .to_string();
        }
        self.projects
            .iter()
            .map(|(name, live)| project_line(name, live))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The status line: each project's state, and whether it runs.
    pub(super) fn short_status(&self) -> String {
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

/// "api: failed (1 failed, 9 passed) in 0.4 s, 3 s ago, after a change to app.py, read
/// from the JUnit report; failing: …; runs since start: 3 finished, 1 cancelled".
fn project_line(name: &str, live: &Live) -> String {
    let last: LastRun = load(name, "last");
    let mut parts = vec![if last.finished_ms == 0 {
        format!("{name}: not run yet")
    } else {
        format!(
            "{name}: {} ({}) in {:.1} s, {}",
            last.result,
            last.counts,
            last.duration_ms as f64 / 1000.0,
            ago(last.finished_ms)
        )
    }];
    parts.extend(
        [last.cause.as_str(), source(&last)]
            .into_iter()
            .filter(|s| !s.is_empty() && last.finished_ms != 0)
            .map(str::to_string),
    );
    let mut line = parts.join(", ");
    let failing = live.health.failing_names();
    if !failing.is_empty() {
        let label = match live.health.state {
            State::Broken => "failing in the last complete run",
            _ => "failing",
        };
        let shown = failing.len().min(MAX_LISTED);
        line += &format!("; {label}: {}", verdict::listed(&failing, shown));
    }
    let c = live.counts;
    line += &format!(
        "; runs since start: {} finished, {} cancelled",
        c.finished, c.cancelled
    );
    if let Some(r) = &live.running {
        line += &format!(
            " [running for {}, {}]",
            ago(r.started_ms).trim_end_matches(" ago"),
            r.cause
        );
    }
    line
}

//! When a change starts a run. Two things must both hold: a save starts the tests at once
//! (no quiet period to sit out first), and a burst of saves (a formatter rewriting many
//! files, a `git checkout`) does not start and cancel run after run.
//!
//! - A change while the project is idle and no burst is going on starts a run at once
//!   (the host only gathers the events of one save, a few milliseconds).
//! - Changes less than the *quiet period* apart are one burst. The quiet period is
//!   `debounce_ms`, or a tenth of the suite's recent run time when that is longer (at most
//!   `max_wait_ms`): a 20-second suite waits 2 s of quiet, which costs a tenth of a run
//!   and saves a whole one. Until a run time is known, each cancelled run doubles it.
//! - Within a burst the run going on is cancelled at most once (with `on_change =
//!   "cancel"`); the next run starts when the burst has been quiet for the quiet period,
//!   or `max_wait_ms` after the first change it waits for. A run that starts while the
//!   burst goes on is not cancelled by it: later changes of the burst queue one more run.
//!
//! So a burst costs at most one cancelled run. The logic is plain data and time in
//! milliseconds, so it is tested without a host.

use crate::settings::OnChange;

/// The shortest timer the host accepts, in milliseconds.
pub const MIN_TIMER_MS: u64 = 10;

/// What to do now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Cancel the run going on.
    pub cancel: bool,
    /// Start a run.
    pub start: bool,
    /// Call [`Pacer::woke`] after this many milliseconds.
    pub wake_in: Option<u64>,
}

/// The timing of one project, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Quiet time that ends a burst.
    pub quiet: u64,
    /// Longest wait for quiet once a run is owed; 0 waits for quiet however long.
    pub max_wait: u64,
}

impl Timing {
    /// The quiet period for a suite whose recent run took `recent_run_ms`, with
    /// `cancelled` runs cancelled since the last one finished: `debounce_ms`, or a tenth of
    /// the run time, or `debounce_ms` doubled for each of those cancels (a suite whose run
    /// time is not known yet), whichever is longest, but at most `max_wait_ms` (unless that
    /// is 0).
    pub fn new(debounce_ms: u64, max_wait_ms: u64, recent_run_ms: u64, cancelled: u32) -> Timing {
        let backoff = debounce_ms.saturating_mul(1u64 << cancelled.min(16));
        let grown = (recent_run_ms / 10).max(backoff);
        let grown = match max_wait_ms {
            0 => grown,
            cap => grown.min(cap),
        };
        Timing {
            quiet: debounce_ms.max(grown),
            max_wait: max_wait_ms,
        }
    }
}

/// The burst going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Burst {
    last_change: u64,
    /// It cancelled a run, or a run started while it went on: no more cancelling.
    restarted: bool,
}

/// One project's pacing state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pacer {
    burst: Option<Burst>,
    /// Since when a run is owed: a change arrived that no run started since has seen.
    owed_since: Option<u64>,
    /// The last plan started the burst's leading run, which the burst may still cancel.
    leading: bool,
}

impl Pacer {
    /// A relevant change at `now`, with a run going on or not.
    pub fn changed(&mut self, now: u64, running: bool, on_change: OnChange, t: Timing) -> Plan {
        self.leading = false;
        let fresh = !self.in_burst(now, t);
        let restarted = match self.burst {
            Some(b) if !fresh => b.restarted,
            _ => false,
        };
        self.burst = Some(Burst {
            last_change: now,
            restarted,
        });
        if !running {
            if fresh && self.owed_since.is_none() {
                self.leading = true;
                return Plan {
                    start: true,
                    ..Plan::default()
                };
            }
            self.owe(now);
            return self.wait(now, t);
        }
        match on_change {
            OnChange::Ignore => Plan::default(),
            OnChange::Queue => {
                self.owe(now);
                Plan::default()
            }
            OnChange::Cancel => {
                self.owe(now);
                let cancel = !restarted;
                self.mark_restarted();
                Plan {
                    cancel,
                    ..Plan::default()
                }
            }
        }
    }

    /// A run was asked for (in chat) while one is going on: it is owed, whatever bursts.
    pub fn owe(&mut self, now: u64) {
        self.owed_since.get_or_insert(now);
    }

    /// A run starts at `now`: it sees every change so far. One that starts while a burst
    /// goes on is not cancelled by that burst.
    pub fn started(&mut self, now: u64, t: Timing) {
        self.owed_since = None;
        let leading = std::mem::take(&mut self.leading);
        if self.in_burst(now, t) && !leading {
            self.mark_restarted();
        }
    }

    /// The run ended (finished or cancelled) at `now`.
    pub fn ended(&mut self, now: u64, t: Timing) -> Plan {
        if self.owed_since.is_none() {
            return Plan::default();
        }
        self.due_or_wait(now, t)
    }

    /// The timer [`Plan::wake_in`] asked for fired at `now`.
    pub fn woke(&mut self, now: u64, running: bool, t: Timing) -> Plan {
        if !self.in_burst(now, t) {
            self.burst = None;
        }
        if running || self.owed_since.is_none() {
            return Plan::default();
        }
        self.due_or_wait(now, t)
    }

    fn due_or_wait(&mut self, now: u64, t: Timing) -> Plan {
        match self.due_at(t) {
            Some(due) if due > now => self.wait(now, t),
            _ => Plan {
                start: true,
                ..Plan::default()
            },
        }
    }

    /// A plan to look again when the owed run may be due.
    fn wait(&self, now: u64, t: Timing) -> Plan {
        let wake_in = self
            .due_at(t)
            .map(|due| due.saturating_sub(now).max(MIN_TIMER_MS));
        Plan {
            wake_in,
            ..Plan::default()
        }
    }

    /// When the owed run may start: the burst quiet for the quiet period, or the maximum
    /// wait over.
    fn due_at(&self, t: Timing) -> Option<u64> {
        let owed = self.owed_since?;
        let quiet = self
            .burst
            .map_or(owed, |b| b.last_change.saturating_add(t.quiet));
        Some(match t.max_wait {
            0 => quiet,
            max => quiet.min(owed.saturating_add(max)),
        })
    }

    fn in_burst(&self, now: u64, t: Timing) -> bool {
        self.burst
            .is_some_and(|b| now < b.last_change.saturating_add(t.quiet))
    }

    fn mark_restarted(&mut self) {
        if let Some(b) = self.burst.as_mut() {
            b.restarted = true;
        }
    }
}

#[cfg(test)]
mod tests;

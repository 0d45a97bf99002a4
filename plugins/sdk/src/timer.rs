//! Timers kept by the host. Need no grant. A timer fires as
//! [`Plugin::on_timer`](crate::Plugin::on_timer) with its tag, and dies with the instance:
//! after a reload or a crash, `init` sets timers up again.

use std::fmt;
use std::time::Duration;

use crate::__bindings::roost::plugin::timer as wit;
use crate::Error;

/// Names one timer, to [`cancel`] it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(u64);

impl TimerId {
    /// The host's number for the timer, e.g. to keep it in [`kv`](crate::kv).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A timer id read back from storage.
impl From<u64> for TimerId {
    fn from(id: u64) -> Self {
        TimerId(id)
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whole milliseconds, saturating: the WIT takes `u64` milliseconds.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Fires `on_timer(tag)` every `interval` until cancelled. The host may refuse intervals
/// below its minimum with [`Error::InvalidArgument`].
pub fn every(interval: Duration, tag: &str) -> Result<TimerId, Error> {
    wit::every(millis(interval), tag)
        .map(TimerId)
        .map_err(Error::from)
}

/// Fires `on_timer(tag)` once, after `delay`.
pub fn after(delay: Duration, tag: &str) -> Result<TimerId, Error> {
    wit::after(millis(delay), tag)
        .map(TimerId)
        .map_err(Error::from)
}

/// Stops a timer; an unknown (or already fired one-shot) id is [`Error::NotFound`].
pub fn cancel(id: TimerId) -> Result<(), Error> {
    wit::cancel(id.0).map_err(Error::from)
}

//! How many calls a plugin has served and how long they took: a fixed-bucket histogram
//! kept by the plugin's actor, read by the status page (p50/p99) and `/metrics`
//! (a Prometheus histogram). Fixed buckets keep it a few hundred bytes per plugin whatever
//! the number of calls, at the price of percentiles that are bucket bounds, not exact.

use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds; one more bucket (`+Inf`) holds the
/// rest. From 1 ms (a plain command) to the largest call time limits.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Calls (commands and events) into one plugin and their wall-clock durations. `status`
/// calls are not counted: the host makes them, not a user or an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallStats {
    /// Calls that ended, whatever their outcome.
    pub calls: u64,
    /// Calls that trapped, timed out or ran out of memory.
    pub crashes: u64,
    /// Calls per bucket (not cumulative); the last is `+Inf`.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Sum of all call durations, in seconds.
    pub sum_secs: f64,
}

impl CallStats {
    /// Counts one call that took `took`.
    pub fn record(&mut self, took: Duration, crashed: bool) {
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.calls += 1;
        self.sum_secs += secs;
        if crashed {
            self.crashes += 1;
        }
    }

    /// The bound under which a fraction `q` (0..=1) of calls ended, as a bucket bound in
    /// seconds; `None` when there were no calls, `f64::INFINITY` past the last bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.calls == 0 {
            return None;
        }
        let wanted = (q * self.calls as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= wanted {
                return Some(BUCKETS.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        Some(f64::INFINITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_the_bucket_bounds_the_calls_fall_under() {
        let mut s = CallStats::default();
        assert_eq!(s.quantile(0.5), None);
        for _ in 0..98 {
            s.record(Duration::from_micros(700), false);
        }
        s.record(Duration::from_millis(40), false);
        s.record(Duration::from_secs(30), true);
        assert_eq!(s.calls, 100);
        assert_eq!(s.crashes, 1);
        assert_eq!(s.quantile(0.5), Some(0.001));
        assert_eq!(s.quantile(0.99), Some(0.05));
        assert_eq!(s.quantile(1.0), Some(f64::INFINITY));
        assert_eq!(s.buckets.iter().sum::<u64>(), 100);
    }
}

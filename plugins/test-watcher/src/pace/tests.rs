use super::*;

/// A project driven the way the plugin drives it, one millisecond at a time: saves at
/// given times, runs that take `run_ms` (a cancelled one ends 5 ms after the cancel), one
/// timer at a time.
struct Sim {
    pacer: Pacer,
    on_change: OnChange,
    debounce: u64,
    max_wait: u64,
    /// The suite's recent run time, as the plugin knows it.
    recent: u64,
    run_ms: u64,
    run: Option<(u64, Option<u64>)>,
    wake_at: Option<u64>,
    cancels_in_a_row: u32,
    starts: Vec<u64>,
    cancelled: u32,
    finished: u32,
}

impl Sim {
    fn new(on_change: OnChange, recent: u64, run_ms: u64) -> Sim {
        Sim {
            pacer: Pacer::default(),
            on_change,
            debounce: 50,
            max_wait: 2000,
            recent,
            run_ms,
            run: None,
            wake_at: None,
            cancels_in_a_row: 0,
            starts: Vec::new(),
            cancelled: 0,
            finished: 0,
        }
    }

    fn timing(&self) -> Timing {
        Timing::new(
            self.debounce,
            self.max_wait,
            self.recent,
            self.cancels_in_a_row,
        )
    }

    /// Runs until `until`, with a save at each time in `saves`.
    fn play(&mut self, saves: &[u64], until: u64) {
        for now in 0..=until {
            if saves.contains(&now) {
                let plan =
                    self.pacer
                        .changed(now, self.run.is_some(), self.on_change, self.timing());
                self.apply(now, plan);
            }
            if let Some((started, cancel_at)) = self.run {
                let ends = cancel_at.unwrap_or(started + self.run_ms);
                if now == ends {
                    self.end(now, cancel_at.is_some());
                }
            }
            if self.wake_at == Some(now) {
                self.wake_at = None;
                let plan = self.pacer.woke(now, self.run.is_some(), self.timing());
                self.apply(now, plan);
            }
        }
    }

    fn end(&mut self, now: u64, cancelled: bool) {
        self.run = None;
        if cancelled {
            self.cancelled += 1;
            self.cancels_in_a_row += 1;
        } else {
            self.finished += 1;
            self.cancels_in_a_row = 0;
            self.recent = self.run_ms;
        }
        let plan = self.pacer.ended(now, self.timing());
        self.apply(now, plan);
    }

    fn apply(&mut self, now: u64, plan: Plan) {
        if plan.cancel
            && let Some((_, cancel_at)) = self.run.as_mut()
        {
            cancel_at.get_or_insert(now + 5);
        }
        if plan.start {
            assert!(self.run.is_none(), "two runs at once at {now} ms");
            self.run = Some((now, None));
            self.starts.push(now);
            self.pacer.started(now, self.timing());
        }
        if let Some(d) = plan.wake_in
            && self.wake_at.is_none()
        {
            self.wake_at = Some(now + d);
        }
    }
}

/// `n` saves `gap` ms apart from `from`.
fn burst(from: u64, n: u64, gap: u64) -> Vec<u64> {
    (0..n).map(|i| from + i * gap).collect()
}

#[test]
fn a_save_to_an_idle_project_starts_a_run_at_once() {
    let mut sim = Sim::new(OnChange::Cancel, 20_000, 20_000);
    sim.play(&[100], 200);
    assert_eq!(sim.starts, [100], "no quiet period is sat out first");
}

/// Issue 19, item 9: 31 saves 50 ms apart on a 20-second suite, default debounce.
#[test]
fn a_formatter_burst_on_a_slow_suite_cancels_one_run_and_runs_once_after_it() {
    let mut sim = Sim::new(OnChange::Cancel, 20_000, 20_000);
    sim.play(&burst(0, 31, 50), 30_000);
    assert_eq!(
        sim.starts,
        [0, 2050],
        "the leading run, then one after the burst"
    );
    assert_eq!(sim.cancelled, 1);
    assert_eq!(sim.finished, 1);
}

#[test]
fn the_quiet_period_grows_with_the_run_time_and_with_cancels_until_one_is_known() {
    assert_eq!(Timing::new(50, 2000, 300, 0).quiet, 50);
    assert_eq!(Timing::new(50, 2000, 8_000, 0).quiet, 800);
    assert_eq!(Timing::new(50, 2000, 60_000, 0).quiet, 2000, "capped");
    assert_eq!(Timing::new(50, 0, 60_000, 0).quiet, 6000);
    assert_eq!(Timing::new(50, 2000, 0, 1).quiet, 100);
    assert_eq!(Timing::new(50, 2000, 0, 3).quiet, 400);
    assert_eq!(Timing::new(400, 2000, 0, 0).quiet, 400);
}

/// The same burst on a suite never run before: the run time is unknown, and the doubled
/// quiet period after the first cancel holds the burst together.
#[test]
fn a_burst_on_a_suite_of_unknown_run_time_cancels_one_run() {
    let mut sim = Sim::new(OnChange::Cancel, 0, 20_000);
    sim.play(&burst(0, 31, 50), 30_000);
    assert_eq!(sim.cancelled, 1);
    assert_eq!(sim.starts.len(), 2, "{:?}", sim.starts);
}

/// However the saves fall (here gaps that keep crossing the quiet period), a burst never
/// cancels more than one run.
#[test]
fn a_ragged_burst_cancels_at_most_one_run_per_burst() {
    let saves: Vec<u64> = (0..40u64).map(|i| i * 45 + (i % 3) * 20).collect();
    let mut sim = Sim::new(OnChange::Cancel, 1000, 1000);
    sim.play(&saves, 20_000);
    assert!(
        sim.cancelled <= 1,
        "{} cancelled, starts {:?}",
        sim.cancelled,
        sim.starts
    );
    assert!(sim.starts.len() <= 3, "{:?}", sim.starts);
}

/// A burst that outlasts the maximum wait gets a run at that wait; the burst does not
/// cancel it, and one more run follows for the changes after it started.
#[test]
fn a_burst_longer_than_the_maximum_wait_runs_then_queues_one_more() {
    let mut sim = Sim::new(OnChange::Cancel, 20_000, 20_000);
    sim.play(&burst(0, 200, 50), 60_000);
    assert_eq!(sim.starts, [0, 2050, 22_050]);
    assert_eq!(sim.cancelled, 1);
}

#[test]
fn a_save_during_a_run_cancels_it_and_the_next_starts_after_the_quiet_period() {
    let mut sim = Sim::new(OnChange::Cancel, 5000, 5000);
    sim.play(&[0, 2000], 12_000);
    assert_eq!(
        sim.starts,
        [0, 2500],
        "quiet: a tenth of 5 s after the save"
    );
    assert_eq!((sim.cancelled, sim.finished), (1, 1));
}

#[test]
fn queue_and_ignore_never_cancel() {
    let mut queue = Sim::new(OnChange::Queue, 1000, 1000);
    queue.play(&[0, 300, 600], 5000);
    assert_eq!(queue.starts, [0, 1000]);
    assert_eq!(queue.cancelled, 0);
    let mut ignore = Sim::new(OnChange::Ignore, 1000, 1000);
    ignore.play(&[0, 300, 600], 5000);
    assert_eq!(ignore.starts, [0]);
}

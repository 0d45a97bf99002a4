//! `timer`: intervals and one-shot delays owned by the host. Each timer is a task tied to
//! the instance's state: when the instance is dropped (unload, reload, rebuild after a
//! trap) every timer it set stops with it.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use wasmtime::component::{HasSelf, Linker};

use super::registry::{Capability, InstanceEnv, counted};
use crate::abort_on_drop::AbortOnDrop;
use crate::config::Config;
use crate::runtime::bindings::roost::plugin::timer;
use crate::runtime::bindings::{Event, GuestError};
use crate::runtime::state::PluginState;

/// Most live timers per instance: each is a task and a mailbox producer.
pub const MAX_TIMERS: usize = 64;
/// Shortest interval or delay; anything faster is a busy loop on the host's side.
pub const MIN_PERIOD_MS: u64 = 10;
/// Longest tag; it comes back in every tick.
pub const MAX_TAG_BYTES: usize = 256;

/// Per-instance context: the live timers and the instance's event mailbox.
pub struct TimerCtx {
    plugin: String,
    events: mpsc::Sender<Event>,
    timers: HashMap<u64, AbortOnDrop>,
    next_id: u64,
}

impl TimerCtx {
    /// Context whose ticks go to `events` (the instance's own event queue).
    pub fn new(plugin: &str, events: mpsc::Sender<Event>) -> Self {
        Self {
            plugin: plugin.to_string(),
            events,
            timers: HashMap::new(),
            next_id: 1,
        }
    }

    /// Number of timers still running.
    pub fn live(&mut self) -> usize {
        self.timers.retain(|_, t| !t.0.is_finished());
        self.timers.len()
    }

    fn start(&mut self, period_ms: u64, tag: String, repeat: bool) -> Result<u64, GuestError> {
        if period_ms < MIN_PERIOD_MS {
            return Err(GuestError::InvalidArgument(format!(
                "period {period_ms} ms is below the minimum of {MIN_PERIOD_MS} ms"
            )));
        }
        if tag.len() > MAX_TAG_BYTES {
            return Err(GuestError::TooLarge(format!(
                "tag of {} bytes (limit {MAX_TAG_BYTES})",
                tag.len()
            )));
        }
        if self.live() >= MAX_TIMERS {
            return Err(GuestError::TooLarge(format!(
                "plugin already has {MAX_TIMERS} timers"
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        let events = self.events.clone();
        let plugin = self.plugin.clone();
        let period = Duration::from_millis(period_ms);
        let task = tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + period;
            loop {
                tokio::time::sleep_until(next).await;
                // A full mailbox means the plugin is behind: drop this tick rather than
                // queue without bound (ticks are level-triggered, the next one comes).
                if let Err(mpsc::error::TrySendError::Closed(_)) =
                    events.try_send(Event::Timer(tag.clone()))
                {
                    break;
                }
                if !repeat {
                    break;
                }
                next += period;
                let now = tokio::time::Instant::now();
                if next < now {
                    tracing::debug!(plugin, "timer `{tag}` skipped ticks");
                    next = now + period;
                }
            }
        });
        self.timers.insert(id, AbortOnDrop(task));
        Ok(id)
    }
}

impl timer::Host for TimerCtx {
    async fn every(
        &mut self,
        interval_ms: u64,
        tag: String,
    ) -> wasmtime::Result<Result<u64, GuestError>> {
        Ok(self.start(interval_ms, tag, true))
    }

    async fn after(
        &mut self,
        delay_ms: u64,
        tag: String,
    ) -> wasmtime::Result<Result<u64, GuestError>> {
        Ok(self.start(delay_ms, tag, false))
    }

    async fn cancel(&mut self, id: u64) -> wasmtime::Result<Result<(), GuestError>> {
        Ok(match self.timers.remove(&id) {
            Some(_) => Ok(()),
            None => Err(GuestError::NotFound(format!("no timer {id}"))),
        })
    }
}

/// The `timer` capability: always granted; fires arrive as events in the instance's queue.
pub struct Timer;

impl Capability for Timer {
    type Grant = ();
    type Ctx = TimerCtx;

    fn grant(_: &Config, _: &str) {}

    fn context(env: &InstanceEnv<'_>, (): &()) -> TimerCtx {
        TimerCtx::new(env.plugin, env.events.clone())
    }

    fn usage(ctx: &mut TimerCtx) -> Option<String> {
        counted(ctx.live(), "timer", "timers")
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        timer::add_to_linker::<PluginState, HasSelf<TimerCtx>>(linker, |s| &mut s.caps.timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timer::Host as _;

    #[tokio::test(start_paused = true)]
    async fn an_interval_ticks_until_cancelled() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut ctx = TimerCtx::new("t", tx);
        let id = ctx.every(100, "tick".into()).await.unwrap().unwrap();
        for _ in 0..3 {
            let ev = rx.recv().await.expect("tick");
            assert!(matches!(ev, Event::Timer(ref t) if t == "tick"));
        }
        ctx.cancel(id).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(rx.try_recv().is_err(), "no tick after cancel");
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_context_stops_every_timer() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut ctx = TimerCtx::new("t", tx);
        ctx.every(50, "a".into()).await.unwrap().unwrap();
        ctx.after(70, "b".into()).await.unwrap().unwrap();
        drop(ctx);
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The sender clones lived in the aborted tasks: the channel is closed and empty.
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn too_fast_and_too_many_timers_are_refused() {
        let (tx, _rx) = mpsc::channel(16);
        let mut ctx = TimerCtx::new("t", tx);
        assert!(matches!(
            ctx.every(1, "x".into()).await.unwrap(),
            Err(GuestError::InvalidArgument(_))
        ));
        for _ in 0..MAX_TIMERS {
            ctx.every(60_000, "x".into()).await.unwrap().unwrap();
        }
        assert!(matches!(
            ctx.every(60_000, "x".into()).await.unwrap(),
            Err(GuestError::TooLarge(_))
        ));
    }
}

//! The host's wasmtime engines: async, epoch interruption, on-disk compile cache. Two of
//! them, because one compiler does not suit every plugin: Cranelift makes fast code but
//! takes seconds on a componentize-py component (18 MB of CPython), so Python plugins are
//! compiled by Winch, wasmtime's baseline compiler, in about a fifth of the time; their code
//! runs slower, which a chat plugin's few milliseconds per call do not notice (figures in
//! BENCHMARKS.md). Both compile on all cores.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Strategy};

use super::RuntimeError;
use super::bindings::PluginPre;
use super::compile_cache::CompileCache;
use super::component_kind::ComponentKind;
use super::embedded;
use super::engine_config::engine_config;
use super::state::PluginState;

/// How often the engine's epoch advances. Every tick a running plugin yields to the tokio
/// scheduler and its wall-clock deadline is checked, so this is also the granularity of the
/// per-call time limit and the longest a plugin that starts computing holds a worker thread
/// before [`BUSY_TICK`] takes over.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How often the epoch advances while some plugin computes (one of its calls ran into a
/// tick at least this long after it began: [`Computing::note`]), so that it yields its
/// worker this often. At [`EPOCH_TICK`] alone, as many computing plugins as there are
/// workers held every other plugin's commands up to 10 ms (`host/benches/busy_neighbour.sh`:
/// `!ping` p99.9 9.6 ms); ticking this fast all the time instead cost every short call (the
/// idle `!ping` p99 +6 µs, the epoch thread waking a thousand times a second through every
/// burst of commands).
pub const BUSY_TICK: Duration = Duration::from_millis(1);
/// How long after the last [`Computing::note`] the epoch goes on at [`BUSY_TICK`]: a few
/// ticks, so a computing plugin (noted every tick) keeps it, and one slow wake-up of the
/// epoch thread does not drop it.
const BUSY_SPELL: Duration = Duration::from_millis(3);
/// Ticks the epoch thread goes on for after the last call ended before it parks: calls
/// that come close together (a chat burst, a plugin's events) then find it awake and do
/// not each pay a wake-up (a futex call, a few microseconds on a virtual machine), while a
/// hub with nothing to do still parks it within a tenth of a second.
const LINGER_TICKS: u32 = 10;

/// Shared handle to the engines, their linkers with every capability, and the epoch
/// ticker. Cheap to clone; the ticker thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct PluginEngine {
    /// Cranelift: native plugins (Rust and the like).
    optimizing: Compiler,
    /// Winch: Python plugins.
    quick: Compiler,
    /// Compiled components on disk; `None` compiles in memory every time (`roost check`,
    /// tests).
    cache: Option<CompileCache>,
    ticker: Arc<EpochTicker>,
}

/// One engine and the linker built for it (a linker serves one engine only).
#[derive(Clone)]
struct Compiler {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
}

impl Compiler {
    fn new(strategy: Strategy) -> Result<Self, RuntimeError> {
        let engine = Engine::new(&engine_config(strategy)).map_err(RuntimeError::engine)?;
        let mut linker = Linker::new(&engine);
        crate::capabilities::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
        })
    }
}

impl PluginEngine {
    /// Builds the engines. With `cache_dir`, compiled components are kept there (see
    /// [`CompileCache`]), so a restart does not recompile.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        let optimizing = Compiler::new(Strategy::Cranelift)?;
        let quick = Compiler::new(Strategy::Winch)?;
        let cache = cache_dir.map(CompileCache::open).transpose()?;
        let ticker = EpochTicker::start(vec![optimizing.engine.clone(), quick.engine.clone()]);
        Ok(Self {
            optimizing,
            quick,
            cache,
            ticker: Arc::new(ticker),
        })
    }

    /// Marks a call into a plugin as running until the guard drops: the epoch advances only
    /// while some call runs (and briefly after), so an idle hub does not wake every tick.
    pub fn call_running(&self) -> CallRunning {
        self.ticker.demand.begin()
    }

    /// What a store's epoch callback tells when its plugin is computing.
    pub fn computing(&self) -> Computing {
        Computing(self.ticker.demand.clone())
    }

    /// Compiles (or loads from the cache) a component and checks it against the world: a
    /// Python one with Winch, any other with Cranelift. Blocking and CPU-heavy: call it
    /// from `spawn_blocking`. Stores for its instances are built on `pre.engine()`.
    pub fn prepare(&self, bytes: &[u8]) -> Result<PluginPre<PluginState>, String> {
        let (compiler, ahead) = match ComponentKind::of(bytes) {
            ComponentKind::Python => (&self.quick, None),
            ComponentKind::Native => (&self.optimizing, embedded::precompiled(bytes)),
        };
        let component = match &self.cache {
            Some(cache) => cache.load(&compiler.engine, bytes, ahead)?,
            None => compile_in_memory(&compiler.engine, bytes, ahead)?,
        };
        let pre = compiler
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("{e:#}"))?;
        PluginPre::new(pre)
            .map_err(|e| format!("not a roost plugin (world roost:plugin/plugin): {e:#}"))
    }
}

/// Compiles `bytes` for `engine` without a cache, or takes `ahead` (the same component
/// compiled at build time) when `engine` accepts it.
fn compile_in_memory(
    engine: &Engine,
    bytes: &[u8],
    ahead: Option<&'static [u8]>,
) -> Result<Component, String> {
    // SAFETY: `ahead` is only ever bytes `build.rs` wrote with `precompile_component` and
    // this binary embeds (`embedded::precompiled`); wasmtime checks its version and
    // settings against `engine` and refuses a mismatch, which falls back to compiling.
    let precompiled = ahead.and_then(|code| unsafe { Component::deserialize(engine, code) }.ok());
    match precompiled {
        Some(component) => Ok(component),
        None => Component::new(engine, bytes).map_err(|e| format!("{e:#}")),
    }
}

/// Advances the engines' epochs every [`EPOCH_TICK`] on its own thread while a call into a
/// plugin runs (and [`LINGER_TICKS`] after), and sleeps (parked) while none does; stops
/// when dropped.
struct EpochTicker {
    demand: Arc<Demand>,
}

/// How many calls into plugins are running, and the ticker thread to wake when one starts
/// while it is parked.
struct Demand {
    calls: AtomicUsize,
    /// Until when the epoch advances every [`BUSY_TICK`], in nanoseconds since `born`.
    busy_until: AtomicU64,
    born: Instant,
    /// The ticker is parked, or about to park.
    parked: AtomicBool,
    stop: AtomicBool,
    ticker: OnceLock<Thread>,
}

impl Demand {
    fn begin(self: &Arc<Self>) -> CallRunning {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
        CallRunning {
            demand: self.clone(),
        }
    }

    /// Parks the ticker (its own thread) unless a call is running. `parked` is published
    /// before `calls` is read and `begin` counts before it reads `parked`, so either this
    /// sees the call or the call unparks this thread, and then `park` returns at once: no
    /// call waits for a tick.
    fn park(&self) {
        self.parked.store(true, Ordering::SeqCst);
        if self.calls.load(Ordering::SeqCst) == 0 {
            std::thread::park();
        }
        self.parked.store(false, Ordering::SeqCst);
    }

    fn wake(&self) {
        if let Some(thread) = self.ticker.get() {
            thread.unpark();
        }
    }

    /// A plugin computes: tick every [`BUSY_TICK`] for the next [`BUSY_SPELL`], starting
    /// now rather than after the [`EPOCH_TICK`] the ticker may be sleeping through.
    fn computing(&self) {
        let now = Instant::now();
        let before = self
            .busy_until
            .swap(self.nanos(now + BUSY_SPELL), Ordering::SeqCst);
        if before <= self.nanos(now) {
            self.wake();
        }
    }

    /// How long the ticker sleeps before the tick after `now`.
    fn tick_at(&self, now: Instant) -> Duration {
        if self.nanos(now) < self.busy_until.load(Ordering::SeqCst) {
            BUSY_TICK
        } else {
            EPOCH_TICK
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.born).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Tells the epoch thread that a plugin is computing (see [`BUSY_TICK`]). Cheap to clone.
#[derive(Clone)]
pub struct Computing(Arc<Demand>);

impl Computing {
    /// Called on each tick a plugin's call runs into, `running` after the call began. A
    /// call that has run for a [`BUSY_TICK`] or more computes; a short one that merely
    /// met a tick (a command of a few microseconds, say, in a burst) does not, or every
    /// burst would keep the ticks short.
    pub fn note(&self, running: Duration) {
        if running >= BUSY_TICK {
            self.0.computing();
        }
    }
}

/// Held for the length of one call into a plugin (see [`PluginEngine::call_running`]).
pub struct CallRunning {
    demand: Arc<Demand>,
}

impl Drop for CallRunning {
    fn drop(&mut self) {
        self.demand.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    fn start(engines: Vec<Engine>) -> Self {
        let demand = Arc::new(Demand {
            calls: AtomicUsize::new(0),
            busy_until: AtomicU64::new(0),
            born: Instant::now(),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ticker: OnceLock::new(),
        });
        let shared = demand.clone();
        let spawned = std::thread::Builder::new()
            .name("roost-epoch".into())
            .spawn(move || {
                let mut idle_ticks = 0;
                while !shared.stop.load(Ordering::SeqCst) {
                    if shared.calls.load(Ordering::SeqCst) > 0 {
                        idle_ticks = 0;
                    } else if idle_ticks >= LINGER_TICKS {
                        shared.park();
                        idle_ticks = 0;
                        continue;
                    } else {
                        idle_ticks += 1;
                    }
                    // Woken early when a plugin starts computing (`Demand::computing`).
                    std::thread::park_timeout(shared.tick_at(Instant::now()));
                    engines.iter().for_each(Engine::increment_epoch);
                }
            });
        match spawned {
            Ok(handle) => {
                let _ = demand.ticker.set(handle.thread().clone());
            }
            Err(e) => {
                tracing::error!("cannot start the epoch thread, plugin time limits are off: {e}")
            }
        }
        Self { demand }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.demand.stop.store(true, Ordering::SeqCst);
        self.demand.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (up to 5 s) until the ticker's `parked` flag reads `want`.
    fn parked_becomes(demand: &Demand, want: bool) -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < until {
            if demand.parked.load(Ordering::SeqCst) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn a_computing_plugin_makes_the_ticks_short_for_a_spell() {
        let ticker = EpochTicker::start(vec![Engine::default()]);
        let demand = &ticker.demand;
        assert_eq!(demand.tick_at(Instant::now()), EPOCH_TICK, "before");
        let computing = Computing(demand.clone());
        computing.note(BUSY_TICK / 10);
        assert_eq!(demand.tick_at(Instant::now()), EPOCH_TICK, "a short call");
        computing.note(BUSY_TICK);
        assert_eq!(
            demand.tick_at(Instant::now()),
            BUSY_TICK,
            "while it computes"
        );
        let after = Instant::now() + BUSY_SPELL + BUSY_TICK;
        assert_eq!(demand.tick_at(after), EPOCH_TICK, "once it stopped");
    }

    #[test]
    fn the_ticker_runs_through_calls_and_parks_once_they_stop() {
        let ticker = EpochTicker::start(vec![Engine::default()]);
        let demand = &ticker.demand;
        assert!(parked_becomes(demand, true), "parks with no call");
        let call = demand.begin();
        assert!(parked_becomes(demand, false), "a call wakes it");
        drop(call);
        assert!(parked_becomes(demand, true), "parks again after the linger");
    }
}

//! The host's wasmtime engines: async, epoch interruption, on-disk compile cache. Two of
//! them, because one compiler does not suit every plugin: Cranelift makes fast code but
//! takes seconds on a componentize-py component (18 MB of CPython), so Python plugins are
//! compiled by Winch, wasmtime's baseline compiler, in about a fifth of the time; their code
//! runs slower, which a chat plugin's few milliseconds per call do not notice (figures in
//! BENCHMARKS.md). Both compile on all cores.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

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
/// per-call time limit and the longest a spinning plugin can hold a worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    /// while some call runs, so an idle hub does not wake every tick.
    pub fn call_running(&self) -> CallRunning {
        self.ticker.demand.begin()
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
/// plugin runs, and sleeps (parked) while none does; stops when dropped.
struct EpochTicker {
    demand: Arc<Demand>,
}

/// How many calls into plugins are running, and the ticker thread to wake when the first
/// one starts.
struct Demand {
    calls: AtomicUsize,
    stop: AtomicBool,
    ticker: OnceLock<Thread>,
}

impl Demand {
    fn begin(self: &Arc<Self>) -> CallRunning {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            self.wake();
        }
        CallRunning {
            demand: self.clone(),
        }
    }

    fn wake(&self) {
        if let Some(thread) = self.ticker.get() {
            thread.unpark();
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
            stop: AtomicBool::new(false),
            ticker: OnceLock::new(),
        });
        let shared = demand.clone();
        let spawned = std::thread::Builder::new()
            .name("roost-epoch".into())
            .spawn(move || {
                while !shared.stop.load(Ordering::SeqCst) {
                    // A call that begins between the check and `park` has already unparked
                    // this thread, so `park` returns at once: no call waits for a tick.
                    if shared.calls.load(Ordering::SeqCst) == 0 {
                        std::thread::park();
                        continue;
                    }
                    std::thread::sleep(EPOCH_TICK);
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

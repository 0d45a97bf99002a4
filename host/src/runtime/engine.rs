//! The one wasmtime [`Engine`] of the host: async, epoch interruption, on-disk compile cache.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine};

use super::RuntimeError;
use super::bindings::PluginPre;
use super::state::PluginState;

/// How often the engine's epoch advances. Every tick a running plugin yields to the tokio
/// scheduler and its wall-clock deadline is checked, so this is also the granularity of the
/// per-call time limit and the longest a spinning plugin can hold a worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Shared handle to the engine, the linker with every capability, and the epoch ticker.
/// Cheap to clone; the ticker thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    ticker: Arc<EpochTicker>,
}

impl PluginEngine {
    /// Builds the engine. With `cache_dir`, compiled components are kept there keyed by a hash
    /// of their bytes and the engine settings, so a restart does not recompile.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, RuntimeError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            // wasmtime wants an absolute cache path.
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            let mut cache_config = CacheConfig::new();
            cache_config.with_directory(dir);
            let cache = Cache::new(cache_config).map_err(RuntimeError::engine)?;
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config).map_err(RuntimeError::engine)?;
        let mut linker = Linker::new(&engine);
        crate::capabilities::add_to_linker(&mut linker).map_err(RuntimeError::engine)?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            ticker: Arc::new(ticker),
        })
    }

    /// The wasmtime engine, for building stores.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Marks a call into a plugin as running until the guard drops: the epoch advances only
    /// while some call runs, so an idle hub does not wake every tick.
    pub fn call_running(&self) -> CallRunning {
        self.ticker.demand.begin()
    }

    /// Compiles (or loads from the cache) a component and checks it against the world.
    /// Blocking and CPU-heavy: call it from `spawn_blocking`.
    pub fn prepare(&self, bytes: &[u8]) -> Result<PluginPre<PluginState>, String> {
        let component = Component::new(&self.engine, bytes).map_err(|e| format!("{e:#}"))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| format!("{e:#}"))?;
        PluginPre::new(pre)
            .map_err(|e| format!("not a roost plugin (world roost:plugin/plugin): {e:#}"))
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own thread while a call into a
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
    fn start(engine: Engine) -> Self {
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
                    engine.increment_epoch();
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

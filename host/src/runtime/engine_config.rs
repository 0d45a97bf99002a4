//! The wasmtime settings of the host's engines, in one place because two builds use them:
//! the daemon's engines (`engine.rs`) and `build.rs`, which compiles the first-party
//! plugins ahead of time with these same settings (included there with `#[path]`). A
//! setting changed here changes both, so an embedded compiled plugin matches the engine
//! that loads it; wasmtime still checks that at load and the host compiles when it does
//! not (another CPU, another wasmtime).

use wasmtime::{Config, Strategy};

/// The settings of an engine that compiles with `strategy`.
pub fn engine_config(strategy: Strategy) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config.strategy(strategy);
    config
}

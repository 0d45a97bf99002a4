//! The wasmtime side of the host: the engine and its cache, the bindings, per-instance state,
//! the per-plugin actor, the supervisor that loads and swaps plugins, and hot reload.

pub mod actor;
pub mod bindings;
pub mod call_stats;
pub mod compile_cache;
pub mod component_kind;
pub mod embedded;
pub mod engine;
pub mod engine_config;
pub mod hot_reload;
pub mod state;
pub mod supervisor;

use std::path::PathBuf;

/// Failures setting up the runtime itself (not a plugin's failures, which are strings shown
/// to the user with the plugin's name).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("wasmtime engine: {0}")]
    Engine(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("watching {path}: {reason}")]
    Watch { path: PathBuf, reason: String },
}

impl RuntimeError {
    fn engine(e: impl std::fmt::Display) -> Self {
        Self::Engine(format!("{e:#}"))
    }
}

//! roost: a personal automation hub. One small daemon gives sandboxed WebAssembly component
//! plugins the things they cannot have on their own (storage, chat, timers, …) and only the
//! parts of them that the user's config grants.
//!
//! # Layout
//!
//! - [`config`]: the `roost.toml` model, validation, and errors with line and column.
//! - [`live_config`]: the config in force, swapped whole on reload.
//! - [`store`]: the host's own SQLite database (plugin KV, outbox, event history).
//! - [`runtime`]: the wasmtime engine and cache, per-plugin actors, the supervisor, hot reload.
//! - [`capabilities`]: one module per WIT interface, each with its grant and host impl.
//! - [`message`]: platform-independent incoming and outgoing chat messages.
//! - [`outbox`]: the persistent queue every outgoing message goes through.
//! - [`router`]: chat message → command → plugin → reply; roles and rate limits.
//! - [`gateways`]: the console socket, Discord, Slack, mirrors, and outbox delivery per target.
//! - [`web`]: the optional HTTP server: status page, `/api/status`, `/metrics`, webhooks.
//! - [`daemon`]: `roost run`, wiring all of the above.
//! - [`daemon_lock`]: one daemon per data dir.
//! - [`daemon_guard`]: what the process does to itself so jobs cannot read or outlive it.
//! - [`private_files`]: the data dir and every file the daemon writes are private.
//! - [`cli`]: the other subcommands (`check`, `chat`, `invoke`, `init`).

pub mod abort_on_drop;
pub mod async_runtime;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod daemon_guard;
pub mod daemon_lock;
pub mod gateways;
pub mod hub_calls;
pub mod leadership;
pub mod live_config;
pub mod message;
pub mod outbox;
pub mod pg_connect;
pub mod private_files;
pub mod router;
pub mod runtime;
pub mod startup_pages;
pub mod store;
pub mod store_config;
pub mod web;

//! The SDK for roost plugins: write a `#[derive(Default)]` type, implement [`Plugin`] for
//! the hooks you need, call [`export_plugin!`], and build for `wasm32-wasip2`.
//!
//! ```text
//! use roost_plugin::prelude::*;
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn init(&mut self, _cfg: Config) -> Result<Manifest, String> {
//!         Ok(Manifest::new("hello", env!("CARGO_PKG_VERSION"))
//!             .command(CommandSpec::new("hello", "!hello [name]", "Say hello")))
//!     }
//!     fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
//!         Ok(Reply::text(format!("hello, {}!", cmd.arg(0).unwrap_or("world"))))
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! A plugin never sees the WIT contract (`wit/`, package `roost:plugin`): this crate
//! generates the bindings once and converts to and from its own plain types.
//!
//! # Layout
//!
//! - [`Plugin`] (`plugin.rs`): the hooks, each but `init` with a default.
//! - [`export_plugin!`] (`export.rs`): the component exports, the state cell, panic logging.
//! - [`Manifest`], [`CommandSpec`], [`Role`] (`manifest.rs`): what `init` returns.
//! - [`Config`] (`config.rs`): the plugin's `[plugins.NAME.config]` table.
//! - [`Command`] (`command.rs`) in, [`Reply`] (`reply.rs`) out.
//! - [`Error`] (`error.rs`): why a capability call was refused.
//! - One module per host capability, one function per call: [`log`], [`kv`], [`chat`],
//!   [`timer`], [`admin`], [`sqlite`], [`dns`], [`watch`], [`process`], [`secrets`],
//!   [`http`]; [`clock`] for status-line times.
//! - [`webhook`]: the request [`Plugin::on_webhook`] gets, its response, and signature
//!   checks (GitHub, Slack, generic HMAC).
//! - [`prelude`]: one glob import for all of the above.
//!
//! # Panics
//!
//! Plugins are built with `panic = "abort"` (wasm32-wasip2's standard library cannot
//! unwind), so a panic cannot become an `Err`: it is written to the plugin's log through
//! [`log::error`] and then the call traps. The host reports the failed call and rebuilds
//! the instance, losing in-memory state; [`kv`] keeps what must survive. Built with
//! `panic = "unwind"` on a target that supports it, the panic becomes an `Err` instead.

#![warn(missing_docs)]

pub mod admin;
pub mod chat;
pub mod clock;
mod command;
mod config;
pub mod dns;
mod error;
mod export;
pub mod http;
pub mod kv;
pub mod log;
mod manifest;
mod plugin;
pub mod prelude;
pub mod process;
mod reply;
pub mod secrets;
pub mod sqlite;
pub mod timer;
pub mod watch;
pub mod webhook;

pub use command::Command;
pub use config::{Config, ConfigValue};
pub use error::Error;
pub use manifest::{CommandSpec, Manifest, Role};
pub use plugin::Plugin;
pub use reply::Reply;

/// The generated `roost:plugin` bindings. Public only because [`export_plugin!`] expands
/// in the plugin's crate and must name them; not part of the API.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod __bindings {
    wit_bindgen::generate!({
        // Relative to this crate's manifest: the one contract the host also reads.
        path: "../../wit",
        world: "plugin",
        // `export_plugin!` lives here but expands in plugin crates, so the generated export
        // macro must be reachable from them...
        pub_export_macro: true,
        // ...under a name nobody calls by hand...
        export_macro_name: "__export_plugin_world",
        // ...and pointing back at this module rather than at the caller's `self`.
        default_bindings_module: "::roost_plugin::__bindings",
        // The WASI interfaces `wasi:http/outgoing-handler` uses (http, io, clocks) are
        // generated here too, for the `http` module.
        generate_all,
    });
}

/// What [`export_plugin!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::Adapter;
}

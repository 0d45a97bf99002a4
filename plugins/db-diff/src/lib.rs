//! `db-diff`: SQL that turns one SQLite database into another, like SQLite's `sqldiff`
//! but exact (REALs bit for bit, full column definitions, views and triggers, keyless
//! tables as multisets). See README.md.
//!
//! - [`engine`]: the diff itself, host-independent, over the small [`engine::Db`] trait.
//! - [`cli`]: the command-line options (`--schema`, `--summary`, …) parsed into
//!   [`engine::Options`].
//! - the plugin (`plugin.rs`): the roost commands, config and timer, over the SDK's
//!   `sqlite` capability.

pub mod cli;
pub mod engine;
mod plugin;

//! test-watcher: runs a project's tests when its files change and tells a chat channel
//! what changed (newly failing tests, fixed ones), pytest-watch done right. See README.md.
//!
//! # Layout
//!
//! - `settings`: the per-project config and its defaults.
//! - `runner`: what each runner family (pytest, cargo, nextest, go, gotestsum) needs.
//! - `report`: results from a JUnit XML report, or from the runner's summary lines.
//! - `verdict`: whether a run changed the project's state, and the message if it did.
//! - `plugin`: the hooks: subscriptions, one run per project, `!tests`.

pub mod plugin;
pub mod report;
pub mod runner;
pub mod settings;
pub mod verdict;

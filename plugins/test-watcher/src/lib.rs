//! test-watcher: runs a project's tests when its files change and tells a chat channel
//! what changed (newly failing tests, fixed ones), pytest-watch done right. See README.md.
//!
//! # Layout
//!
//! - `settings`: the per-project config and its defaults.
//! - `pace`: when a change starts a run, so a save starts one at once and a burst of
//!   saves does not start and cancel run after run.
//! - `runner`: what each runner family (pytest, cargo, nextest, go, gotestsum) needs.
//! - `report`: results from a JUnit XML report, or from the runner's summary lines, and
//!   the collection errors that stop a pytest run before any test.
//! - `verdict`: whether a run changed the project's state, and the message if it did.
//! - `plugin`: the hooks: subscriptions, one run per project, `!tests`.

pub mod pace;
pub mod plugin;
pub mod report;
pub mod runner;
pub mod settings;
pub mod verdict;

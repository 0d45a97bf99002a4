//! End-to-end tests: each starts a real `roost` daemon in a temporary directory and drives
//! it the way a user does, through `roost chat -c`, the config file, the plugins folder and
//! signals. One binary, shared fixture in `roost_tests` (wasmtime's `tests/all` shape).

mod alias_monitor;
mod chat;
mod cli;
mod db_diff;
mod discord;
mod durability;
mod failover;
mod faults;
mod hardening;
mod hot_reload;
mod http_out;
mod idle_memory;
mod isolation;
mod postgres_store;
mod python;
mod quotas;
mod rough_edges;
mod run_on;
mod secrets;
mod slack;
mod sqlite_limits;
mod store_copy;
mod test_watcher;
mod web;
mod webhooks;

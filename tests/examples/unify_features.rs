//! Nothing to run. Named next to the `roost` binary when the end-to-end tests build it
//! (`roost_tests::roost_bin`, `make test`): an example brings in the workspace's
//! dev-dependencies as `cargo test --workspace` does, so cargo resolves the binary's
//! dependencies with the tests' features, and the binary and the tests share every
//! compiled crate. Built alone, the binary's tokio, hyper, serenity and wasmtime differ
//! from the tests' by a feature or two and are compiled twice (eight minutes of a clean CI
//! run).

fn main() {}

//! Shared by `host/build.rs` and `tests/build.rs` (included with `#[path]`): builds wasm
//! plugin workspaces with a nested cargo, as wasmtime's test-programs artifacts do.

use std::env;
use std::path::Path;
use std::process::Command;

/// `cargo build --release` of the given packages in a wasm workspace.
pub fn build_wasm_workspace(workspace: &Path, target_dir: &Path, packages: &[&str]) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's settings are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo for the plugins");
    assert!(
        status.success(),
        "building the plugins in {} failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)",
        workspace.display()
    );
}

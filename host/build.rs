//! Builds the first-party plugins (`../plugins`, a separate cargo workspace for
//! wasm32-wasip2) and writes `embedded_plugins.rs`, which `runtime::embedded` includes.
//! Like wasmtime's test-programs artifacts: a nested cargo build with its own target dir.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first-party plugins, in the order users read about them.
const FIRST_PARTY: &[&str] = &["bot", "db-diff"];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the repo root")
        .to_path_buf();
    let plugins = root.join("plugins");
    for watched in [
        "wit",
        "plugins/sdk",
        "plugins/bot",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = root.join("target").join("wasm-plugins");
    build_wasm_workspace(&plugins, &target_dir, FIRST_PARTY);

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this"));
    let mut code = String::from("/// The first-party plugin names, in order.\n");
    code += &format!("pub const FIRST_PARTY: &[&str] = &{FIRST_PARTY:?};\n");
    code += "/// Built-in plugins: (name, component bytes).\n";
    code += "pub static PLUGINS: &[(&str, &[u8])] = &[\n";
    for name in FIRST_PARTY {
        let wasm = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        code += &format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            wasm.display().to_string()
        );
    }
    code += "];\n";
    fs::write(out.join("embedded_plugins.rs"), code).expect("write embedded_plugins.rs");
}

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

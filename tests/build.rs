//! Builds the wasm plugins the end-to-end tests drop into daemons: the fault fixture
//! (`tests/plugins`) and the example plugin (`plugins/examples/hello`), and tells the tests
//! where they are through `FAULTY_WASM` and `HELLO_WASM`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest_dir
        .parent()
        .expect("tests/ sits in the repo root")
        .to_path_buf();
    for watched in [
        "wit",
        "plugins/sdk",
        "plugins/examples",
        "plugins/Cargo.lock",
        "tests/plugins/faulty",
        "tests/plugins/Cargo.toml",
        "tests/plugins/Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = root.join("target").join("wasm-plugins");
    build(&root.join("tests/plugins"), &target_dir, &["faulty"]);
    build(&root.join("plugins"), &target_dir, &["hello"]);
    let release = target_dir.join("wasm32-wasip2/release");
    println!(
        "cargo:rustc-env=FAULTY_WASM={}",
        release.join("faulty.wasm").display()
    );
    println!(
        "cargo:rustc-env=HELLO_WASM={}",
        release.join("hello.wasm").display()
    );
}

fn build(workspace: &Path, target_dir: &Path, packages: &[&str]) {
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
    let status = cmd.status().expect("run cargo for the test plugins");
    assert!(
        status.success(),
        "building plugins in {} failed",
        workspace.display()
    );
}

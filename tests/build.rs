//! Builds the wasm plugins the end-to-end tests drop into daemons: the fault fixture
//! (`tests/plugins`) and the example plugins (`plugins/examples/hello`, `match-feed`,
//! `git-hooks`), and tells the tests where they are through `FAULTY_WASM`, `HELLO_WASM`,
//! `MATCH_FEED_WASM` and `GIT_HOOKS_WASM`.

use std::env;
use std::path::PathBuf;

#[path = "../host/wasm_build.rs"]
mod wasm_build;
use wasm_build::build_wasm_workspace;

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
        "host/wasm_build.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = root.join("target").join("wasm-plugins");
    build_wasm_workspace(&root.join("tests/plugins"), &target_dir, &["faulty"]);
    build_wasm_workspace(
        &root.join("plugins"),
        &target_dir,
        &["hello", "match-feed", "git-hooks"],
    );
    let release = target_dir.join("wasm32-wasip2/release");
    println!(
        "cargo:rustc-env=FAULTY_WASM={}",
        release.join("faulty.wasm").display()
    );
    println!(
        "cargo:rustc-env=HELLO_WASM={}",
        release.join("hello.wasm").display()
    );
    println!(
        "cargo:rustc-env=MATCH_FEED_WASM={}",
        release.join("match_feed.wasm").display()
    );
    println!(
        "cargo:rustc-env=GIT_HOOKS_WASM={}",
        release.join("git_hooks.wasm").display()
    );
}

//! Builds the first-party plugins (`../plugins`, a separate cargo workspace for
//! wasm32-wasip2) and writes `embedded_plugins.rs`, which `runtime::embedded` includes.
//! Like wasmtime's test-programs artifacts: a nested cargo build with its own target dir.

use std::env;
use std::fs;

#[path = "src/runtime/engine_config.rs"]
mod engine_config;
#[path = "wasm_build.rs"]
mod wasm_build;
use std::path::PathBuf;
use wasm_build::build_wasm_workspace;

/// The first-party plugins, in the order users read about them.
const FIRST_PARTY: &[&str] = &["bot", "test-watcher", "db-diff", "alias-monitor"];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the repo root")
        .to_path_buf();
    let plugins = root.join("plugins");
    // Every first-party plugin's sources, from the same list that is embedded, so no
    // plugin can be edited without the binary picking it up.
    let shared = [
        "wit",
        "plugins/sdk",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "host/wasm_build.rs",
    ];
    let own = FIRST_PARTY.iter().map(|name| format!("plugins/{name}"));
    for watched in shared.into_iter().map(String::from).chain(own) {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    commit_id(&root);
    let target_dir = root.join("target").join("wasm-plugins");
    build_wasm_workspace(&plugins, &target_dir, FIRST_PARTY);

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this"));
    let mut code = String::from("/// The first-party plugin names, in order.\n");
    code += &format!("pub const FIRST_PARTY: &[&str] = &{FIRST_PARTY:?};\n");
    code += "/// Built-in plugins: (name, component bytes, the same compiled ahead of time).\n";
    code += "pub static PLUGINS: &[(&str, &[u8], &[u8])] = &[\n";
    let engine =
        wasmtime::Engine::new(&engine_config::engine_config(wasmtime::Strategy::Cranelift))
            .expect("the host's engine settings");
    for name in FIRST_PARTY {
        let wasm = target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let compiled = out.join(format!("{name}.cwasm"));
        precompile(&engine, &wasm, &compiled);
        code += &format!(
            "    ({name:?}, include_bytes!({:?}), include_bytes!({:?})),\n",
            wasm.display().to_string(),
            compiled.display().to_string()
        );
    }
    code += "];\n";
    fs::write(out.join("embedded_plugins.rs"), code).expect("write embedded_plugins.rs");
}

/// Compiles the component in `wasm` with the daemon's Cranelift settings into `compiled`,
/// so a first start loads it in a millisecond instead of compiling it (`runtime::engine`).
fn precompile(engine: &wasmtime::Engine, wasm: &std::path::Path, compiled: &std::path::Path) {
    let bytes = fs::read(wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()));
    let code = engine
        .precompile_component(&bytes)
        .unwrap_or_else(|e| panic!("compile {}: {e:#}", wasm.display()));
    fs::write(compiled, code).unwrap_or_else(|e| panic!("write {}: {e}", compiled.display()));
}

/// Sets `ROOST_COMMIT` (what `roost --version` shows after the version) to the checkout's
/// commit, or "unknown commit" outside a git checkout.
fn commit_id(root: &std::path::Path) {
    for watched in [".git/HEAD", ".git/logs/HEAD"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .map(|c| format!("commit {c}"))
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=ROOST_COMMIT={commit}");
}

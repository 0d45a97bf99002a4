//! Compiled plugins on disk, `<data_dir>/cache/<key>.cwasm`, so a restart or reload does not
//! compile again, loaded straight from the file. wasmtime's own cache reads an entry into
//! anonymous memory, which makes every byte of the compiled code resident (45 MB for a
//! Python plugin); a file mapped with `Component::deserialize_file` is paged in as it runs,
//! its pages are shared through the page cache, and the memory image of a component's
//! initial heap (CPython's snapshot) maps copy-on-write from it.
//!
//! The key is the SHA-256 of the component's bytes and the engine's settings (compiler and
//! wasmtime version included): a collision would run one plugin's code in place of
//! another's, so a hash a hostile plugin could aim at will not do. Entries not used for
//! [`UNUSED_DAYS`] are removed when the daemon starts.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;

/// Entries unused this long are removed at start.
pub const UNUSED_DAYS: u64 = 30;
/// The entries' file extension.
const EXTENSION: &str = "cwasm";

/// The directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// Opens (creating) the cache in `dir` and removes what is stale.
    pub fn open(dir: &Path) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let cache = Self {
            dir: dir.to_path_buf(),
        };
        cache.prune();
        Ok(cache)
    }

    /// The component for `bytes`, compiled by `engine`: from its file when there is one,
    /// else from `ahead` (the same component compiled at build time) when `engine` accepts
    /// it, else compiled now; a new entry is written first. Blocking and CPU-heavy.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        ahead: Option<&[u8]>,
    ) -> Result<Component, String> {
        let path = self.dir.join(format!("{}.{EXTENSION}", key(engine, bytes)));
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => {
                    touch(&path);
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(
                        "compile cache: {} is unusable, compiling again: {e}",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        if let Some(compiled) = ahead {
            match self.store(engine, &path, compiled) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::info!(
                        "the plugin compiled at build time does not suit this engine, compiling: {e}"
                    );
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| format!("{e:#}"))?;
        self.store(engine, &path, &compiled)
    }

    /// Writes `compiled` as the entry `path` and maps it.
    fn store(&self, engine: &Engine, path: &Path, compiled: &[u8]) -> Result<Component, String> {
        self.write(path, compiled)
            .map_err(|e| format!("compile cache: cannot write {}: {e}", path.display()))?;
        deserialize(engine, path)
    }

    /// Writes an entry whole under a temporary name, then renames it into place, so a
    /// reader never maps half a file (two loads of one component may race; both win).
    fn write(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(compiled)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Removes entries unused for [`UNUSED_DAYS`], temporary files a crash left, and what
    /// wasmtime's own cache kept here before (`modules/`).
    fn prune(&self) {
        let _ = std::fs::remove_dir_all(self.dir.join("modules"));
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let cutoff = SystemTime::now() - Duration::from_secs(UNUSED_DAYS * 86_400);
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let leftover = name.to_string_lossy().ends_with(".tmp");
            let stale = path.extension().is_some_and(|e| e == EXTENSION)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m < cutoff);
            if leftover || stale {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Maps the compiled component in `path`.
fn deserialize(engine: &Engine, path: &Path) -> Result<Component, String> {
    // SAFETY: the file was written by `CompileCache::write` from `precompile_component` of
    // this engine (the key includes its settings), or of build.rs for an embedded plugin
    // (wasmtime checks its settings against this engine's), into the daemon's private data
    // dir, and entries are only ever replaced by rename, never changed in place while mapped.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| format!("{e:#}"))
}

/// Marks an entry used now, so pruning keeps it.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// The entry's name: SHA-256 over the engine's settings and the component's bytes, in hex.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let mut sha = Sha256::new();
    sha.update(settings.finish().to_le_bytes());
    sha.update(bytes);
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::engine_config::engine_config;
    use wasmtime::Strategy;

    /// `(component)`: the preamble of an empty component.
    const EMPTY: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    /// The same with a custom section `abc`: other bytes, still a component.
    const WITH_SECTION: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x04, 0x03, b'a', b'b', b'c',
    ];

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    }

    #[test]
    fn a_component_is_compiled_once_then_mapped_from_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::open(dir.path()).expect("open");
        let engine = engine();
        let bytes = EMPTY;
        cache.load(&engine, bytes, None).expect("first load");
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let written = files[0]
            .metadata()
            .expect("meta")
            .modified()
            .expect("mtime");
        cache.load(&engine, bytes, None).expect("second load");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &files[0].metadata().expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            files[0]
                .metadata()
                .expect("meta")
                .modified()
                .expect("mtime")
                >= written
        );
    }

    #[test]
    fn a_corrupt_entry_is_compiled_again_and_stale_ones_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine();
        let bytes = EMPTY;
        let path = dir
            .path()
            .join(format!("{}.{EXTENSION}", key(&engine, bytes)));
        std::fs::write(&path, b"not a compiled component").expect("write");
        let old = dir.path().join("old.cwasm");
        std::fs::write(&old, b"x").expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(&old)
            .expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs((UNUSED_DAYS + 1) * 86_400))
            .expect("age it");
        std::fs::write(dir.path().join(".1.2.tmp"), b"half").expect("write");
        let cache = CompileCache::open(dir.path()).expect("open");
        assert!(!old.exists() && !dir.path().join(".1.2.tmp").exists());
        cache.load(&engine, bytes, None).expect("compiled again");
        assert!(
            Engine::detect_precompiled_file(&path)
                .expect("read")
                .is_some()
        );
    }

    #[test]
    fn keys_differ_by_engine_settings_and_by_bytes() {
        let a = engine();
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let b = Engine::new(&config).expect("engine");
        let bytes = EMPTY;
        assert_ne!(key(&a, bytes), key(&b, bytes));
        assert_ne!(key(&a, bytes), key(&a, WITH_SECTION));
    }

    /// The only file in the cache `dir`, read.
    fn the_entry(dir: &Path) -> Vec<u8> {
        let files: Vec<_> = std::fs::read_dir(dir).expect("dir").flatten().collect();
        assert_eq!(files.len(), 1, "{files:?}");
        std::fs::read(files[0].path()).expect("read entry")
    }

    #[test]
    fn an_embedded_plugin_is_taken_as_compiled_at_build_time_not_compiled_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::open(dir.path()).expect("open");
        let engine = Engine::new(&engine_config(Strategy::Cranelift)).expect("engine");
        let bot = crate::runtime::embedded::get("bot").expect("embedded bot");
        let ahead = crate::runtime::embedded::precompiled(bot).expect("compiled at build");
        cache.load(&engine, bot, Some(ahead)).expect("load");
        assert!(
            the_entry(dir.path()) == ahead,
            "the entry is not the build's code"
        );
    }

    #[test]
    fn code_compiled_at_build_time_for_other_settings_is_compiled_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::open(dir.path()).expect("open");
        let mut other = engine_config(Strategy::Cranelift);
        other.epoch_interruption(false);
        let engine = Engine::new(&other).expect("engine");
        let bot = crate::runtime::embedded::get("bot").expect("embedded bot");
        let ahead = crate::runtime::embedded::precompiled(bot).expect("compiled at build");
        cache
            .load(&engine, bot, Some(ahead))
            .expect("compiled instead");
        let entry = the_entry(dir.path());
        assert!(entry != ahead, "code for other settings was kept");
        // SAFETY: the entry was just written by `precompile_component` of this engine.
        unsafe { Component::deserialize(&engine, &entry) }.expect("the entry suits the engine");
    }
}

//! `secrets`: values a plugin's grant names (`secrets = ["riot_api_key"]`), kept out of
//! `roost.toml`. Each comes from the variable `ROOST_SECRET_<NAME>` or else from the file
//! `<data_dir>/secrets/<name>`:
//!
//! - The variables are taken out of the daemon's environment before any thread starts
//!   ([`take_from_environment`], called by `daemon_guard::harden`) and their text in the
//!   exec-time environment block is zeroed, so neither `/proc/<pid>/environ` nor a job the
//!   daemon starts can see them. All `ROOST_SECRET_*` variables are taken, granted or not,
//!   so a grant added by a later config edit still finds its value.
//! - A file is read on each call (so a rotated key is picked up without a restart) and must
//!   belong to the daemon's user and be readable by nobody else (mode 0600 or 0400); any
//!   other file is refused with an error naming it and the `chmod` to run.
//!
//! The host never writes a value anywhere itself: values have no `Debug`, the grant holds
//! only names, nothing is logged but names, nothing is stored in the database, `!status`
//! shows nothing of this capability, and `config/validate.rs` refuses `ROOST_SECRET_*`
//! in a plugin's `env` grant, so no job inherits one. What the plugin does with a value it
//! was given is the plugin's business.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use wasmtime::component::{HasSelf, Linker};

use super::registry::{Capability, InstanceEnv};
use super::{denied, host_failure};
use crate::config::Config;
use crate::runtime::bindings::GuestError;
use crate::runtime::bindings::roost::plugin::secrets;
use crate::runtime::state::PluginState;

/// The prefix of the variables holding plugin secrets: `ROOST_SECRET_RIOT_API_KEY` holds
/// the secret `riot_api_key`.
pub const ENV_PREFIX: &str = "ROOST_SECRET_";
/// Longest secret name: names are file names and variable names.
pub const MAX_NAME_BYTES: usize = 64;
/// Largest secret file read: a key or a password, not data. The value is copied into the
/// guest's memory.
pub const MAX_VALUE_BYTES: u64 = 64 * 1024;

/// Whether `name` may name a secret: `[a-z][a-z0-9_]*`, at most [`MAX_NAME_BYTES`], so it
/// is a safe file name and upper-cases to a variable name with no twin.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= MAX_NAME_BYTES
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The variable holding secret `name`.
pub fn env_var(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

/// A secret's value. Deliberately not `Debug` or `Display`, so no `{:?}` of a map or a
/// context can print it; zeroed when dropped.
struct Value(String);

impl Drop for Value {
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8, and the string is not read again.
        unsafe { self.0.as_bytes_mut().fill(0) };
    }
}

/// Values taken out of the environment at start, by secret name.
static TAKEN: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();

/// Moves every `ROOST_SECRET_*` variable out of the process environment into memory only
/// this module reads (zeroing its text in the environment block). Returns the variables
/// taken.
///
/// # Safety
/// Must run while the process has a single thread (before any runtime starts): it
/// changes the environment.
pub unsafe fn take_from_environment() -> Vec<String> {
    let mut taken = TAKEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut names = Vec::new();
    for (var, value) in std::env::vars_os() {
        let Some(var) = var.to_str().map(str::to_string) else {
            continue;
        };
        let Some(suffix) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if let Some(value) = value.to_str() {
            taken.insert(suffix.to_ascii_lowercase(), Value(value.to_string()));
        }
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe {
            crate::gateways::secrets::scrub_value(&var);
            std::env::remove_var(&var);
        }
        names.push(var);
    }
    names
}

/// What config grants one plugin: the secrets' names (never their values) and where their
/// files are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretsGrant {
    /// Names the plugin may read.
    pub names: Vec<String>,
    /// `<data_dir>/secrets`, where a secret not in the environment is looked for.
    pub dir: PathBuf,
}

/// Per-instance context: the plugin's name and its grant.
pub struct SecretsCtx {
    plugin: String,
    grant: SecretsGrant,
}

/// Why a secret file was not used. The messages name the file, never its contents.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read secret file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "secret file {} is readable by others (mode {mode:03o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Mode { path: PathBuf, mode: u32 },
    #[error("secret file {} belongs to another user; the daemon's user must own it", path.display())]
    Owner { path: PathBuf },
    #[error("secret file {} is larger than {MAX_VALUE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("secret file {} is not UTF-8 text", path.display())]
    NotText { path: PathBuf },
}

/// Reads a private file of the host's own (the store's `password_file`) with the same
/// checks as a plugin's secret file: the daemon's user owns it, nobody else can read it.
/// `None` when it does not exist; the error names the file, never its contents.
pub(crate) fn read_private_file(path: &Path) -> Result<Option<String>, String> {
    match read_file(path) {
        Ok(value) => Ok(value.map(|v| v.0.clone())),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads a secret file: `None` when it does not exist. Symlinks are not followed, so the
/// mode checked is the file's own.
fn read_file(path: &Path) -> Result<Option<Value>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::Mode {
            path: path.to_path_buf(),
            mode,
        });
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(FileError::Owner {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > MAX_VALUE_BYTES {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Vec::new();
    file.by_ref()
        .take(MAX_VALUE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.fill(0);
        FileError::NotText {
            path: path.to_path_buf(),
        }
    })?;
    // An editor's final newline is not part of the key.
    let kept = text.trim_end_matches(['\n', '\r']).len();
    // SAFETY: zeroing the tail keeps the string valid UTF-8 (it was cut at a char boundary).
    unsafe { text.as_bytes_mut()[kept..].fill(0) };
    text.truncate(kept);
    Ok(Some(Value(text)))
}

impl SecretsCtx {
    /// Context for one instance of `plugin`.
    pub fn new(plugin: &str, grant: SecretsGrant) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
        }
    }

    /// The value of `name`: the grant first, then the variable taken at start (or, in a
    /// one-shot command that took none, still in the environment), then the file.
    async fn lookup(&self, name: String) -> Result<String, GuestError> {
        if !self.grant.names.contains(&name) {
            return Err(denied(
                &self.plugin,
                format!(
                    "secret `{name}` is not granted to plugin `{plugin}` (add \"{name}\" to secrets in [plugins.{plugin}.grants])",
                    plugin = self.plugin
                ),
            ));
        }
        let taken = TAKEN.get().and_then(|t| {
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&name)
                .map(|v| v.0.clone())
        });
        if let Some(value) = taken.or_else(|| std::env::var(env_var(&name)).ok()) {
            return Ok(value);
        }
        let path = self.grant.dir.join(&name);
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_file(&path)).await
        };
        match read {
            Ok(Ok(Some(mut value))) => Ok(std::mem::take(&mut value.0)),
            Ok(Ok(None)) => Err(GuestError::NotFound(format!(
                "secret `{name}` is not set: set {} in the daemon's environment or write it to {} (mode 0600)",
                env_var(&name),
                path.display()
            ))),
            Ok(Err(e)) => {
                tracing::warn!(plugin = %self.plugin, blame = "host", "secret `{name}`: {e}");
                Err(GuestError::Other(e.to_string()))
            }
            Err(e) => Err(host_failure(&self.plugin, "reading a secret file", e)),
        }
    }
}

impl secrets::Host for SecretsCtx {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, GuestError>> {
        Ok(self.lookup(name).await)
    }
}

/// The `secrets` capability: `secrets = ["name", …]` in the plugin's grants; nothing by
/// default.
pub struct Secrets;

impl Capability for Secrets {
    type Grant = SecretsGrant;
    type Ctx = SecretsCtx;

    fn grant(config: &Config, plugin: &str) -> SecretsGrant {
        SecretsGrant {
            names: config
                .plugin(plugin)
                .map(|p| p.grants.secrets.clone())
                .unwrap_or_default(),
            dir: config.data_dir().join("secrets"),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &SecretsGrant) -> SecretsCtx {
        SecretsCtx::new(env.plugin, grant.clone())
    }

    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        secrets::add_to_linker::<PluginState, HasSelf<SecretsCtx>>(linker, |s| &mut s.caps.secrets)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ctx(names: &[&str], dir: &Path) -> SecretsCtx {
        SecretsCtx::new(
            "lol",
            SecretsGrant {
                names: names.iter().map(|n| n.to_string()).collect(),
                dir: dir.to_path_buf(),
            },
        )
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[tokio::test]
    async fn a_name_not_granted_is_denied_naming_plugin_secret_and_grant() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "other_key", "hunter2", 0o600);
        let err = ctx(&["riot_api_key"], dir.path())
            .lookup("other_key".into())
            .await
            .unwrap_err();
        let GuestError::AccessDenied(why) = err else {
            panic!("{err:?}")
        };
        assert!(why.contains("plugin `lol`"), "{why}");
        assert!(why.contains("secret `other_key`"), "{why}");
        assert!(why.contains("[plugins.lol.grants]"), "{why}");
        assert!(!why.contains("hunter2"), "{why}");
    }

    #[tokio::test]
    async fn a_0600_file_is_read_without_its_final_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "riot_api_key_t1", "RGAPI-123\n", 0o600);
        let value = ctx(&["riot_api_key_t1"], dir.path())
            .lookup("riot_api_key_t1".into())
            .await
            .expect("value");
        assert_eq!(value, "RGAPI-123");
    }

    #[tokio::test]
    async fn a_file_others_can_read_is_refused_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "riot_api_key_t2", "RGAPI-123", 0o644);
        let err = ctx(&["riot_api_key_t2"], dir.path())
            .lookup("riot_api_key_t2".into())
            .await
            .unwrap_err();
        let GuestError::Other(why) = err else {
            panic!("{err:?}")
        };
        assert!(why.contains("chmod 600"), "{why}");
        assert!(why.contains("mode 644"), "{why}");
        assert!(!why.contains("RGAPI"), "{why}");
    }

    #[tokio::test]
    async fn a_missing_secret_says_which_variable_or_file_to_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = ctx(&["surely_unset_t3"], dir.path())
            .lookup("surely_unset_t3".into())
            .await
            .unwrap_err();
        let GuestError::NotFound(why) = err else {
            panic!("{err:?}")
        };
        assert!(why.contains("ROOST_SECRET_SURELY_UNSET_T3"), "{why}");
        assert!(why.contains("surely_unset_t3 (mode 0600)"), "{why}");
    }

    #[test]
    fn names_are_lowercase_file_and_variable_safe() {
        assert!(is_name("riot_api_key"));
        assert!(is_name("k2"));
        for bad in ["", "Riot", "../x", "a-b", "a/b", "2fa", &"a".repeat(65)] {
            assert!(!is_name(bad), "{bad}");
        }
        assert_eq!(env_var("riot_api_key"), "ROOST_SECRET_RIOT_API_KEY");
    }
}

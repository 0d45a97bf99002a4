//! Gateway tokens: read from a secrets file named in `roost.toml` or from the environment,
//! never from `roost.toml` itself. They live only in the gateway that uses them: no plugin
//! gets them through its config, its environment or any capability.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::config::{ChatGateway, Config};

/// Tokens taken out of the process environment at start (see [`take_from_environment`]).
static TAKEN: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();

/// Whether a variable of this name is a secret the daemon must not keep in its
/// environment: every gateway's token variables, and any `ROOST_*` variable that names a
/// token, secret, password or key.
fn is_secret_name(name: &str, named: &[String]) -> bool {
    let upper = name.to_ascii_uppercase();
    named.iter().any(|n| n == name)
        || (upper.starts_with("ROOST_")
            && ["TOKEN", "SECRET", "PASSWORD", "KEY"]
                .iter()
                .any(|w| upper.contains(w)))
}

/// Moves every secret variable out of the process environment into memory only this
/// module reads, so `/proc/<pid>/environ` and every child process are free of them.
/// Returns the names taken.
///
/// # Safety
/// Must run while the process has a single thread (before any runtime starts): it
/// removes environment variables, which races with any other thread reading them.
pub unsafe fn take_from_environment(config: &Config) -> Vec<String> {
    let named: Vec<String> = config
        .gateways
        .instances
        .iter()
        .flat_map(|(name, g)| [g.token_env_for(name), g.app_token_env_for(name)])
        .collect();
    let mut taken = TAKEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut names = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().map(str::to_string) else {
            continue;
        };
        if !is_secret_name(&name, &named) {
            continue;
        }
        // SAFETY: the caller guarantees no other thread exists yet.
        unsafe {
            scrub_value(&name);
            std::env::remove_var(&name);
        }
        if let Some(value) = value.to_str() {
            taken.insert(name.clone(), value.to_string());
        }
        names.push(name);
    }
    names
}

/// Overwrites the value of variable `name` with zeros where it lies. Removing a variable
/// only unlinks it: `/proc/<pid>/environ` reads the block the kernel laid out at exec,
/// which still holds the text.
///
/// # Safety
/// Single-threaded only, like any change to the environment.
pub(crate) unsafe fn scrub_value(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: getenv returns null or a NUL-terminated string inside the environment,
    // which is writable and which no other thread is reading (the caller's promise).
    unsafe {
        let value = libc::getenv(name.as_ptr());
        if !value.is_null() {
            std::ptr::write_bytes(value, 0, libc::strlen(value));
        }
    }
}

/// A secret variable's value: taken at start, else (for one-shot commands that did not
/// take them) still in the environment.
pub(crate) fn secret_var(name: &str) -> Option<String> {
    let taken = TAKEN
        .get()
        .and_then(|t| t.lock().ok().and_then(|t| t.get(name).cloned()));
    taken.or_else(|| std::env::var(name).ok())
}

/// Why a token could not be had. Every message names the gateway and what to set.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Neither the file nor the variable gave a token.
    #[error(
        "gateway {gateway}: no {what}: set the environment variable {env} or {file_key} in [gateways.{gateway}]"
    )]
    Missing {
        gateway: String,
        what: &'static str,
        env: String,
        file_key: &'static str,
    },
    /// The secrets file could not be read.
    #[error("gateway {gateway}: cannot read {what} file {}: {source}", path.display())]
    File {
        gateway: String,
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where to look for one token.
pub struct TokenSource<'a> {
    /// The gateway instance, for messages.
    pub gateway: &'a str,
    /// What the token is, e.g. "bot token".
    pub what: &'static str,
    /// A file holding it, from config (wins when set).
    pub file: Option<&'a Path>,
    /// The config key naming the file, for messages.
    pub file_key: &'static str,
    /// The environment variable holding it otherwise.
    pub env: &'a str,
}

/// The token, trimmed. A file readable by other users is used but warned about.
pub fn read_token(source: &TokenSource<'_>) -> Result<String, SecretError> {
    let missing = || SecretError::Missing {
        gateway: source.gateway.to_string(),
        what: source.what,
        env: source.env.to_string(),
        file_key: source.file_key,
    };
    if let Some(path) = source.file {
        let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
            gateway: source.gateway.to_string(),
            what: source.what,
            path: path.to_path_buf(),
            source: e,
        })?;
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "gateway {}: {} is readable by other users; chmod 600 it",
                source.gateway,
                path.display()
            );
        }
        let token = text.trim().to_string();
        return if token.is_empty() {
            Err(missing())
        } else {
            Ok(token)
        };
    }
    match secret_var(source.env) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(missing()),
    }
}

/// The bot token of gateway `name`: its `token_file`, or else its token variable. Every
/// platform's gateway needs one.
pub fn bot_token(name: &str, config: &ChatGateway) -> Result<String, SecretError> {
    read_token(&TokenSource {
        gateway: name,
        what: "bot token",
        file: config.token_file.as_deref(),
        file_key: "token_file",
        env: &config.token_env_for(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_wins_and_a_missing_token_names_the_gateway_and_what_to_set() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("discord.token");
        std::fs::write(&file, "  abc\n").expect("write");
        let source = TokenSource {
            gateway: "discord",
            what: "bot token",
            file: Some(&file),
            file_key: "token_file",
            env: "ROOST_TEST_SURELY_UNSET_VAR",
        };
        assert_eq!(read_token(&source).expect("token"), "abc");
        let source = TokenSource {
            file: None,
            ..source
        };
        let e = read_token(&source).expect_err("missing");
        let shown = e.to_string();
        assert!(shown.contains("gateway discord"), "{shown}");
        assert!(shown.contains("ROOST_TEST_SURELY_UNSET_VAR"), "{shown}");
        assert!(shown.contains("token_file"), "{shown}");
    }

    #[test]
    fn gateway_variables_and_roost_secrets_are_secret_names() {
        let named = vec!["MY_BOT".to_string()];
        assert!(is_secret_name("MY_BOT", &named));
        assert!(is_secret_name("ROOST_DISCORD_TOKEN", &named));
        assert!(is_secret_name("ROOST_STORE_PASSWORD", &named));
        assert!(!is_secret_name("ROOST_CONFIG", &named));
        assert!(!is_secret_name("PATH", &named));
    }
}

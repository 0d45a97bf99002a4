//! Gateway tokens: read from a secrets file named in `roost.toml` or from the environment,
//! never from `roost.toml` itself. They live only in the gateway that uses them: no plugin
//! gets them through its config, its environment or any capability.

use std::path::{Path, PathBuf};

use crate::config::ChatGateway;

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
    match std::env::var(source.env) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
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
}

//! Opens the store the config names: SQLite at `<data_dir>/roost.db` without `[store]`, or
//! the Postgres database of `[store] url` with its password from `ROOST_STORE_PASSWORD` or
//! `password_file`. The password goes from here to the client and nowhere else: it is not
//! logged, not in any error, and not in the config.

use crate::config::{Config, STORE_PASSWORD_ENV};
use crate::store::{Store, StoreError};

/// The daemon's (and one-shot commands') store for `config`.
pub fn open(config: &Config) -> Result<Store, StoreError> {
    let Some(url) = &config.store.url else {
        return Store::open(&config.data_dir().join("roost.db"));
    };
    let password = password(config)?;
    let store = Store::open_postgres(url, password.as_deref())?;
    tracing::info!(store = %store.location(), "store on postgres");
    Ok(store)
}

/// The password: `password_file` when set (it must exist, belong to the daemon's user and
/// be readable by nobody else), else the variable (taken out of the environment at start),
/// else none (a server that trusts the connection).
pub(crate) fn password(config: &Config) -> Result<Option<String>, StoreError> {
    if let Some(path) = &config.store.password_file {
        return match crate::capabilities::secrets::read_private_file(path) {
            Ok(Some(password)) => Ok(Some(password)),
            Ok(None) => Err(StoreError::Password {
                reason: format!(
                    "password_file {} does not exist; write the password there (mode 0600) or set {STORE_PASSWORD_ENV}",
                    path.display()
                ),
            }),
            Err(reason) => Err(StoreError::Password { reason }),
        };
    }
    Ok(env_password())
}

/// The password from `ROOST_STORE_PASSWORD` (taken out of the environment at a daemon's
/// start), `None` when unset or empty: for the daemon and for `roost store copy`.
pub fn env_password() -> Option<String> {
    crate::gateways::secrets::secret_var(STORE_PASSWORD_ENV).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn config_with_file(dir: &std::path::Path, mode: u32) -> Config {
        let file = dir.join("pg.pw");
        std::fs::write(&file, "s3cret-pw\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let text =
            "[store]\nurl = \"postgres://roost@127.0.0.1:1/roost\"\npassword_file = \"pg.pw\"\n";
        Config::parse(&dir.join("roost.toml"), text).expect("config")
    }

    #[test]
    fn a_0600_password_file_is_read_without_its_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_with_file(dir.path(), 0o600);
        assert_eq!(
            password(&config).expect("password").as_deref(),
            Some("s3cret-pw")
        );
    }

    #[test]
    fn a_password_file_others_can_read_is_refused_without_its_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_with_file(dir.path(), 0o644);
        let e = password(&config).expect_err("refused").to_string();
        assert!(
            e.contains("readable by others") && e.contains("chmod 600"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn an_unreachable_server_is_a_connect_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config_with_file(dir.path(), 0o600);
        let e = open(&config).err().expect("port 1 refuses").to_string();
        assert!(
            e.starts_with(
                "cannot connect to the store database postgres://roost@127.0.0.1:1/roost"
            ),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }
}

//! The subcommands other than `run`: each returns the process exit code so `main.rs` stays
//! a thin clap front end. Exit codes: 0 ok, 1 a command failed, 2 bad config or plugins.

pub mod backup;
pub mod build;
pub mod chat;
pub mod check;
mod embedded;
pub mod invoke;
pub mod locate;
pub mod new;
pub mod store_copy;
pub mod terminal;

use std::path::{Path, PathBuf};

/// Exit code for "the config or a plugin is bad".
pub const EXIT_BAD_CONFIG: u8 = 2;
/// Exit code for "the command ran and failed".
pub const EXIT_FAILED: u8 = 1;

/// Writes the commented starter config to `path`; refuses to overwrite unless `force`.
pub fn init(path: &Path, force: bool) -> Result<PathBuf, std::io::Error> {
    if path.exists() && !force {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists; use --force to overwrite it", path.display()),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, crate::config::Config::starter_for(path))?;
    Ok(path.to_path_buf())
}

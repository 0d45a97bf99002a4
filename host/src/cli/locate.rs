//! Where the config is, the way users expect: `--config` or `ROOST_CONFIG` when given,
//! else `./config/roost.toml`, `./roost.toml`, then the user's config dir
//! (`$XDG_CONFIG_HOME/roost/roost.toml`, by default `~/.config/roost/roost.toml`).

use std::path::{Path, PathBuf};

/// No config in any of the places looked.
#[derive(Debug, thiserror::Error)]
#[error("no config found; looked for {}; write one with `roost init`", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
pub struct NotFound {
    /// Every place looked, in order.
    pub tried: Vec<PathBuf>,
}

/// The user's config dir for roost: `$XDG_CONFIG_HOME/roost` or `~/.config/roost`.
pub fn user_config_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config")
}

/// The user's data dir for roost: `$XDG_DATA_HOME/roost` or `~/.local/share/roost`.
pub fn user_data_dir() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share")
}

/// The user's cache dir for roost: `$XDG_CACHE_HOME/roost` or `~/.cache/roost`; what
/// `roost build` installs (componentize-py's venv) and can be deleted at any time.
pub fn user_cache_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CACHE_HOME", ".cache")
}

fn xdg_dir(var: &str, under_home: &str) -> Option<PathBuf> {
    let base = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(under_home)))?;
    Some(base.join("roost"))
}

/// The places looked, in order, when no config is named.
fn candidates() -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from(crate::config::DEFAULT_CONFIG_PATH),
        PathBuf::from("roost.toml"),
    ];
    out.extend(user_config_dir().map(|d| d.join("roost.toml")));
    out
}

/// The config to use: `explicit` when given (even if missing: loading it says so), else
/// the first candidate that exists.
pub fn config_path(explicit: Option<&Path>) -> Result<PathBuf, NotFound> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let tried = candidates();
    tried
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(NotFound { tried })
}

/// Where `roost init` writes when no config is named: `./config/roost.toml` in a project
/// folder, the user's config dir when run from the home directory.
pub fn init_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    let at_home = match (std::env::current_dir(), std::env::var_os("HOME")) {
        (Ok(cwd), Some(home)) => std::fs::canonicalize(home).is_ok_and(|h| h == cwd),
        _ => false,
    };
    match user_config_dir() {
        Some(dir) if at_home => dir.join("roost.toml"),
        _ => PathBuf::from(crate::config::DEFAULT_CONFIG_PATH),
    }
}

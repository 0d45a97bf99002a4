//! `[plugins.test-watcher.config]`: one table per watched project, with pytest-watch's
//! options under names that say what they do (README.md maps each to its `ptw` flag).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::runner::Kind;

/// The whole config table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[plugins.test-watcher.config.projects.NAME]`.
    pub projects: BTreeMap<String, ProjectConfig>,
}

/// What to do with a change that arrives while the project's tests are running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Stop the run and start a new one (ptw's default).
    #[default]
    Cancel,
    /// Let the run finish, then run once more (ptw `--wait`).
    Queue,
    /// Let the run finish and forget the change.
    Ignore,
}

/// One project as written in the config; [`Project::from_config`] fills in the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectConfig {
    pub root: Option<String>,
    pub watch: Option<Vec<String>>,
    pub runner: Option<String>,
    pub kind: Option<Kind>,
    pub args: Option<Vec<String>>,
    pub extra_args: Vec<String>,
    pub extensions: Option<Vec<String>>,
    pub ignore: Vec<String>,
    pub debounce_ms: Option<u32>,
    pub max_wait_ms: Option<u32>,
    pub clear: bool,
    pub on_change: OnChange,
    pub failed_first: bool,
    pub run_on_start: Option<bool>,
    pub onpass: Option<String>,
    pub onfail: Option<String>,
    pub onexit: Option<String>,
    pub shell: bool,
    pub channel: Option<String>,
    pub report: Option<String>,
    pub env: BTreeMap<String, String>,
    pub timeout_ms: Option<u64>,
}

/// A project with every default applied: what the plugin works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Where the runner runs (and the default directory to watch).
    pub root: String,
    /// Directories to watch.
    pub watch: Vec<String>,
    pub runner: String,
    pub kind: Kind,
    pub args: Vec<String>,
    pub extra_args: Vec<String>,
    /// Extensions (with the dot) whose changes start a run; empty means any file.
    pub extensions: Vec<String>,
    /// Gitignore-style globs the host drops, the runner's own output included.
    pub ignore: Vec<String>,
    pub debounce_ms: u32,
    pub max_wait_ms: u32,
    pub clear: bool,
    pub on_change: OnChange,
    pub failed_first: bool,
    pub run_on_start: bool,
    pub onpass: Option<String>,
    pub onfail: Option<String>,
    pub onexit: Option<String>,
    pub shell: bool,
    pub channel: Option<String>,
    /// The JUnit XML report to read back, relative to `root`; `None` parses the output.
    pub report: Option<String>,
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
}

/// Default quiet time before a run: one editor save is over by then.
pub const DEFAULT_DEBOUNCE_MS: u32 = 50;
/// Default longest wait for quiet while files keep changing.
pub const DEFAULT_MAX_WAIT_MS: u32 = 2000;

impl Project {
    /// Applies the defaults to `config`; the error names the project and the problem.
    pub fn from_config(name: &str, config: &ProjectConfig) -> Result<Project, String> {
        let root = config
            .root
            .clone()
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| format!("project `{name}`: set `root`, the directory of the project"))?;
        let runner = config
            .runner
            .clone()
            .unwrap_or_else(|| "pytest".to_string());
        if runner.trim().is_empty() {
            return Err(format!("project `{name}`: `runner` is empty"));
        }
        let args = config.args.clone();
        let kind = config
            .kind
            .unwrap_or_else(|| Kind::infer(&runner, args.as_deref().unwrap_or(&[])));
        let args = args.unwrap_or_else(|| kind.default_args());
        let report = match config.report.as_deref() {
            Some("none") | Some("") => None,
            Some(path) => Some(path.to_string()),
            None => kind.default_report(name),
        };
        let mut ignore: Vec<String> = kind
            .default_ignore()
            .iter()
            .map(|s| s.to_string())
            .collect();
        ignore.push(".roost/".to_string());
        if let Some(report) = &report {
            ignore.push(format!("/{}", report.trim_start_matches("./")));
        }
        ignore.extend(config.ignore.iter().cloned());
        let extensions = match &config.extensions {
            Some(list) if list.iter().any(|e| e == "*") => Vec::new(),
            Some(list) => list
                .iter()
                .map(|e| {
                    if e.starts_with('.') {
                        e.clone()
                    } else {
                        format!(".{e}")
                    }
                })
                .collect(),
            None => kind
                .default_extensions()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Ok(Project {
            name: name.to_string(),
            watch: config.watch.clone().unwrap_or_else(|| vec![root.clone()]),
            root,
            runner,
            kind,
            args,
            extra_args: config.extra_args.clone(),
            extensions,
            ignore,
            debounce_ms: config.debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS),
            max_wait_ms: config.max_wait_ms.unwrap_or(DEFAULT_MAX_WAIT_MS),
            clear: config.clear,
            on_change: config.on_change,
            failed_first: config.failed_first,
            run_on_start: config.run_on_start.unwrap_or(true),
            onpass: config.onpass.clone(),
            onfail: config.onfail.clone(),
            onexit: config.onexit.clone(),
            shell: config.shell,
            channel: config.channel.clone(),
            report,
            env: config.env.clone().into_iter().collect(),
            timeout_ms: config.timeout_ms.unwrap_or(0),
        })
    }

    /// Whether a change to `path` (relative to a watched directory) should start a run.
    pub fn triggers(&self, path: &str) -> bool {
        self.extensions.is_empty() || self.extensions.iter().any(|e| path.ends_with(e.as_str()))
    }
}

/// Every project in `settings`, defaults applied, or the first mistake.
pub fn projects(settings: &Settings) -> Result<Vec<Project>, String> {
    settings
        .projects
        .iter()
        .map(|(name, config)| Project::from_config(name, config))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Vec<Project>, String> {
        let settings: Settings = serde_json::from_str(json).map_err(|e| e.to_string())?;
        projects(&settings)
    }

    #[test]
    fn a_pytest_project_needs_only_a_root() {
        let p = parse(r#"{"projects": {"api": {"root": "../api"}}}"#).expect("valid");
        let p = &p[0];
        assert_eq!(p.runner, "pytest");
        assert_eq!(p.kind, Kind::Pytest);
        assert_eq!(p.watch, vec!["../api".to_string()]);
        assert_eq!(p.extensions, vec![".py".to_string()]);
        assert_eq!(p.debounce_ms, 50);
        assert!(p.run_on_start);
        assert_eq!(p.on_change, OnChange::Cancel);
        assert_eq!(p.report.as_deref(), Some(".roost/junit-api.xml"));
        assert!(p.ignore.contains(&"__pycache__/".to_string()));
        assert!(p.triggers("src/app.py"));
        assert!(!p.triggers("src/app.pyc"));
        assert!(!p.triggers("README.md"));
    }

    #[test]
    fn cargo_projects_watch_rust_sources_and_ignore_target() {
        let p =
            parse(r#"{"projects": {"core": {"root": ".", "runner": "cargo"}}}"#).expect("valid");
        assert_eq!(p[0].kind, Kind::Cargo);
        assert_eq!(p[0].args, vec!["test".to_string()]);
        assert!(p[0].ignore.contains(&"target/".to_string()));
        assert!(p[0].triggers("src/lib.rs") && p[0].triggers("Cargo.toml"));
        assert_eq!(p[0].report, None, "cargo test has no stable JUnit output");
    }

    #[test]
    fn extensions_are_normalised_and_star_means_any_file() {
        let p = parse(r#"{"projects": {"a": {"root": "a", "extensions": ["py", ".pyi"]}, "b": {"root": "b", "extensions": ["*"]}}}"#)
            .expect("valid");
        assert_eq!(p[0].extensions, vec![".py".to_string(), ".pyi".to_string()]);
        assert!(p[1].triggers("anything.txt"));
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse(r#"{"projects": {"api": {}}}"#).expect_err("no root");
        assert!(e.contains("api") && e.contains("root"), "{e}");
        let e = parse(r#"{"projects": {"api": {"root": "a", "on_change": "restart"}}}"#)
            .expect_err("bad policy");
        assert!(e.contains("restart"), "{e}");
        let e = parse(r#"{"projects": {"api": {"root": "a", "rnner": "x"}}}"#).expect_err("typo");
        assert!(e.contains("rnner"), "{e}");
    }
}

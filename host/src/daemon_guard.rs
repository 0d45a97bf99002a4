//! What a process that hosts plugins does to itself before any thread starts, so that the
//! jobs its plugins run can neither read it nor outlive it: it is not dumpable (a job running as the same user cannot read its `/proc/<pid>/environ`
//! or memory), it adopts the orphans of its jobs (so a job that escapes its process group
//! with `setsid` is still found and ended), and gateway tokens leave its environment.

use crate::config::Config;

/// Programs that run whatever they are told: granting one grants arbitrary commands.
pub const LAUNCHERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "fish", "csh", "tcsh", "busybox", "env", "xargs", "nice",
    "nohup", "timeout", "setsid", "stdbuf", "sudo", "su", "doas", "python", "python3", "perl",
    "ruby", "node", "nodejs", "deno", "bun", "php", "lua", "tclsh", "awk", "gawk", "mawk", "find",
    "make", "cargo", "go", "npm", "npx",
];

/// Hardens the current process; returns the names of the secret variables it took out of
/// the environment.
///
/// # Safety
/// Must run while the process has a single thread: it changes the environment.
pub unsafe fn harden(config: &Config) -> Vec<String> {
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!("cannot mark the process not dumpable: {e}");
    }
    if let Err(e) = crate::capabilities::process::reaper::adopt_orphans() {
        tracing::warn!("cannot become the reaper of job orphans: {e}");
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        let mut taken = crate::capabilities::secrets::take_from_environment();
        taken.extend(crate::gateways::secrets::take_from_environment(config));
        taken
    }
}

/// What `roost run` and `roost check` warn about in the grants: programs that are
/// launchers or interpreters, and jobs that would run as root.
pub fn grant_warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (name, plugin) in &config.plugins {
        for program in &plugin.grants.programs {
            let base = program.rsplit('/').next().unwrap_or(program);
            if LAUNCHERS.contains(&base) {
                out.push(format!(
                    "plugin {name}: programs grants `{program}`, which runs any command it is given: the plugin can do anything your user can"
                ));
            }
        }
        if plugin.grants.shell {
            out.push(format!(
                "plugin {name}: shell = true lets it run any command line: the plugin can do anything your user can"
            ));
        }
    }
    let runs_jobs = config
        .plugins
        .values()
        .any(|p| !p.grants.programs.is_empty() || p.grants.shell);
    if runs_jobs && rustix::process::geteuid().is_root() && config.host.job_user.is_none() {
        out.push(
            "roost runs as root and [host] job_user is not set: jobs run as root and can read everything root can; set job_user to an unprivileged user".into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_grant_is_warned_about_by_program_and_path() {
        let text = "[plugins.a.grants]\nprograms = [\"pytest\", \"/usr/bin/env\"]\n[plugins.b.grants]\nprograms = [\"bash\"]\n";
        let config = Config::parse(std::path::Path::new("/tmp/r.toml"), text).expect("config");
        let warnings = grant_warnings(&config).join("\n");
        assert!(
            warnings.contains("plugin a: programs grants `/usr/bin/env`"),
            "{warnings}"
        );
        assert!(
            warnings.contains("plugin b: programs grants `bash`"),
            "{warnings}"
        );
        assert!(!warnings.contains("`pytest`"), "{warnings}");
    }
}

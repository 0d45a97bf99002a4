//! The `bot` plugin: the commands every roost install has. `!help`, `!ping`, `!status` and
//! `!plugins` for everyone; `!reload`, `!enable` and `!disable` for admins. Everything it
//! says about other plugins comes from the host through the `admin` capability, so its
//! grant needs `admin = true` — it has no other privilege.

use roost_plugin::admin::{self, PluginInfo, PluginState};
use roost_plugin::prelude::*;

/// The bot's state.
#[derive(Default)]
struct Bot {
    /// How many commands the manifest declares, for `status`.
    commands: usize,
}

impl Plugin for Bot {
    fn init(&mut self, _cfg: Config) -> Result<Manifest, String> {
        // Usage lines are written with `!`; whoever shows them swaps in the host's prefix.
        let cmd = |name: &str, args: &str, summary: &str| {
            CommandSpec::new(name, format!("!{name}{args}"), summary)
        };
        let admin = |spec: CommandSpec| spec.role(Role::Admin).min_args(1);
        let manifest = Manifest::new("bot", env!("CARGO_PKG_VERSION")).commands([
            cmd("help", " [command]", "List every command, or explain one"),
            cmd("ping", "", "Check the bot answers"),
            cmd("status", "", "Host and plugin health"),
            cmd("plugins", "", "Every plugin with its version and state"),
            admin(cmd("reload", " <plugin>", "Reload a plugin from disk")),
            admin(cmd("enable", " <plugin>", "Start a plugin")),
            admin(cmd("disable", " <plugin>", "Stop a plugin")),
        ]);
        self.commands = manifest.command_specs().len();
        Ok(manifest)
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        let p = cmd.prefix();
        let text = match cmd.name() {
            "help" => match cmd.arg(0) {
                None => help_all(p, &plugins()?),
                Some(wanted) => help_one(p, &plugins()?, wanted)?,
            },
            "ping" => "pong".to_string(),
            "status" => {
                let host =
                    admin::host_status().map_err(|e| format!("cannot read host status: {e}"))?;
                status(&host, &plugins()?)
            }
            "plugins" => plugin_lines(&plugins()?),
            "reload" => control(p, &cmd, "reload", admin::reload)?,
            "enable" => control(p, &cmd, "enable", admin::enable)?,
            "disable" => control(p, &cmd, "disable", admin::disable)?,
            other => return Err(format!("bot does not serve `{other}`")),
        };
        Ok(Reply::text(text))
    }

    fn status(&self) -> String {
        format!("serving {} commands", self.commands)
    }
}

export_plugin!(Bot);

/// Every plugin the host knows, sorted by name.
fn plugins() -> Result<Vec<PluginInfo>, String> {
    let mut list = admin::list_plugins().map_err(|e| format!("cannot list plugins: {e}"))?;
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

/// `usage` as the user must type it: plugins write usage lines with `!`, the host may be
/// configured with another prefix.
fn with_prefix(prefix: &str, usage: &str) -> String {
    match usage.strip_prefix('!') {
        Some(rest) => format!("{prefix}{rest}"),
        None => usage.to_string(),
    }
}

/// `!help`: the running plugins' commands, grouped by plugin, both sorted by name.
fn help_all(prefix: &str, plugins: &[PluginInfo]) -> String {
    let mut out = Vec::new();
    for plugin in plugins.iter().filter(|p| p.state == PluginState::Running) {
        if plugin.commands.is_empty() {
            continue;
        }
        let mut commands: Vec<_> = plugin.commands.iter().collect();
        commands.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(format!("{}:", plugin.name));
        for c in commands {
            out.push(format!("  {prefix}{} — {}", c.name, c.summary));
        }
    }
    if out.is_empty() {
        return "no commands are being served".into();
    }
    out.push(format!("{prefix}help <command> explains one"));
    out.join("\n")
}

/// `!help <command>`: usage, summary and required role of one command of a running plugin.
fn help_one(prefix: &str, plugins: &[PluginInfo], wanted: &str) -> Result<String, String> {
    let name = wanted
        .strip_prefix(prefix)
        .or_else(|| wanted.strip_prefix('!'))
        .unwrap_or(wanted);
    let name = name.to_lowercase();
    plugins
        .iter()
        .filter(|p| p.state == PluginState::Running)
        .flat_map(|p| p.commands.iter().map(move |c| (p, c)))
        .find(|(_, c)| c.name == name)
        .map(|(plugin, c)| {
            format!(
                "{}\n{}\nrole: {} · plugin: {}",
                with_prefix(prefix, &c.usage),
                c.summary,
                c.role,
                plugin.name
            )
        })
        .ok_or_else(|| format!("no command `{wanted}`; try {prefix}help"))
}

/// `!status`: the host's lines, then one line per plugin.
fn status(host: &[String], plugins: &[PluginInfo]) -> String {
    let mut out: Vec<String> = host.to_vec();
    for p in plugins {
        let mut line = format!("{} {} {}", p.name, version(p), p.state);
        if !p.status.is_empty() {
            line += &format!(" · {}", p.status);
        }
        line += &format!(" · failures {}", p.failures);
        if !p.last_error.is_empty() {
            line += &format!(" · last error: {}", p.last_error);
        }
        out.push(line);
    }
    out.join("\n")
}

/// `!plugins`: one line per plugin.
fn plugin_lines(plugins: &[PluginInfo]) -> String {
    if plugins.is_empty() {
        return "no plugins".into();
    }
    let lines: Vec<String> = plugins
        .iter()
        .map(|p| {
            let n = p.commands.len();
            format!(
                "{} {} {} · {} · {n} command{}",
                p.name,
                version(p),
                p.state,
                if p.enabled { "enabled" } else { "disabled" },
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    lines.join("\n")
}

/// The version, or "-" when nothing is serving.
fn version(p: &PluginInfo) -> &str {
    if p.version.is_empty() {
        "-"
    } else {
        &p.version
    }
}

/// `!reload`, `!enable`, `!disable`: one admin call on the plugin named by the first
/// argument; the host's reason comes back as the error.
fn control(
    prefix: &str,
    cmd: &Command,
    verb: &str,
    call: fn(&str) -> Result<String, roost_plugin::Error>,
) -> Result<String, String> {
    let name = cmd
        .arg(0)
        .ok_or_else(|| format!("usage: {}", cmd.usage()))?;
    let version = call(name).map_err(|e| format!("cannot {verb} {name}: {e}"))?;
    let done = match verb {
        "reload" => "reloaded",
        "enable" => "enabled",
        _ => "disabled",
    };
    Ok(match (verb, version.is_empty()) {
        ("disable", _) => format!("{done} {name}"),
        // Enabled, but the load or init failed; the reason is in the plugin's status line.
        (_, true) => format!("{done} {name}, but nothing is serving; see {prefix}status"),
        (_, false) => format!("{done} {name}: now serving {version}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, state: PluginState, commands: &[(&str, Role)]) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "1.2.3".into(),
            state,
            enabled: true,
            commands: commands
                .iter()
                .map(|(c, role)| {
                    CommandSpec::new(*c, format!("!{c} <x>"), format!("does {c}")).role(*role)
                })
                .collect(),
            status: String::new(),
            last_error: String::new(),
            failures: 0,
        }
    }

    fn sample() -> Vec<PluginInfo> {
        vec![
            plugin(
                "bot",
                PluginState::Running,
                &[("ping", Role::Anyone), ("help", Role::Anyone)],
            ),
            plugin("dead", PluginState::Failed, &[("gone", Role::Anyone)]),
            plugin("hello", PluginState::Running, &[("hello", Role::Anyone)]),
        ]
    }

    #[test]
    fn help_groups_running_plugins_commands_sorted() {
        assert_eq!(
            help_all("!", &sample()),
            "bot:\n  !help — does help\n  !ping — does ping\nhello:\n  !hello — does hello\n!help <command> explains one"
        );
    }

    #[test]
    fn help_on_one_command_takes_it_with_or_without_the_prefix() {
        let with = help_one("?", &sample(), "?ping").unwrap();
        assert_eq!(with, "?ping <x>\ndoes ping\nrole: anyone · plugin: bot");
        assert_eq!(help_one("?", &sample(), "ping").unwrap(), with);
        assert_eq!(help_one("?", &sample(), "!ping").unwrap(), with);
        assert_eq!(
            help_one("!", &sample(), "nope").unwrap_err(),
            "no command `nope`; try !help"
        );
        assert!(
            help_one("!", &sample(), "gone").is_err(),
            "failed plugins' commands are hidden"
        );
    }

    #[test]
    fn status_shows_host_lines_then_each_plugin() {
        let mut plugins = sample();
        plugins[1].version.clear();
        plugins[1].failures = 3;
        plugins[1].last_error = "trap".into();
        plugins[0].status = "serving 7 commands".into();
        let out = status(&["uptime 5s".to_string()], &plugins);
        assert_eq!(
            out,
            "uptime 5s\nbot 1.2.3 running · serving 7 commands · failures 0\n\
             dead - failed · failures 3 · last error: trap\nhello 1.2.3 running · failures 0"
        );
    }

    #[test]
    fn plugins_lists_one_line_each() {
        let mut plugins = sample();
        plugins[1].enabled = false;
        assert_eq!(
            plugin_lines(&plugins),
            "bot 1.2.3 running · enabled · 2 commands\ndead 1.2.3 failed · disabled · 1 command\n\
             hello 1.2.3 running · enabled · 1 command"
        );
    }

    #[test]
    fn control_reports_the_new_version_or_the_hosts_reason() {
        let cmd = Command::new("reload", ["hello"]);
        assert_eq!(
            control("!", &cmd, "reload", |_| Ok("0.2.0".into())).unwrap(),
            "reloaded hello: now serving 0.2.0"
        );
        assert_eq!(
            control("!", &cmd, "disable", |_| Ok(String::new())).unwrap(),
            "disabled hello"
        );
        assert_eq!(
            control("!", &cmd, "enable", |_| Ok(String::new())).unwrap(),
            "enabled hello, but nothing is serving; see !status"
        );
        let err = control("!", &cmd, "enable", |n| {
            Err(roost_plugin::Error::NotFound(format!("no plugin `{n}`")))
        });
        assert_eq!(
            err.unwrap_err(),
            "cannot enable hello: not found: no plugin `hello`"
        );
    }
}

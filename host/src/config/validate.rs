//! Validation of a parsed config: every value that fits the schema but cannot be used,
//! each with the key path it came from, one function per section.

use std::path::Path;

use super::span::{Problem, Seg};
use super::*;
use crate::capabilities::secrets::{ENV_PREFIX as SECRET_ENV_PREFIX, is_name as is_secret_name};

impl Config {
    /// Every problem in the config, in section order. Empty when it is valid.
    pub(super) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        self.host_problems(&mut out);
        self.limits_problems(&mut out);
        self.rate_limit_problems(&mut out);
        self.roles_problems(&mut out);
        self.commands_problems(&mut out);
        self.channels_problems(&mut out);
        self.gateways_problems(&mut out);
        self.plugins_problems(&mut out);
        self.http_problems(&mut out);
        self.store_problems(&mut out);
        out
    }

    /// `[plugins.NAME] run_on`: a hub name, and hubs to choose from (a shared store).
    fn run_on_problems(&self, name: &str, plugin: &PluginConfig, out: &mut Vec<Problem>) {
        let Some(hub) = &plugin.run_on else {
            return;
        };
        let why = if !super::valid_hub_name(hub) {
            format!(
                "{hub:?} is not a hub name; use what that hub's [host] name says (letters, digits, '-', '_', '.')"
            )
        } else if self.store.url.is_none() {
            "pins the plugin to one of several hubs sharing a Postgres store; without [store] url this is the only hub: remove run_on".to_string()
        } else {
            return;
        };
        out.push(Problem::value(&["plugins", name, "run_on"], why));
    }

    /// `[store]`: a Postgres URL the client understands, with no password in it, and a
    /// password file only beside a URL.
    fn store_problems(&self, out: &mut Vec<Problem>) {
        let Some(url) = &self.store.url else {
            if self.store.password_file.is_some() {
                out.push(Problem::value(
                    &["store", "password_file"],
                    "is only used with url (a Postgres database); without url the store is SQLite in the data dir".to_string(),
                ));
            }
            return;
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            out.push(Problem::value(
                &["store", "url"],
                "must be a Postgres URL, e.g. \"postgres://roost@db.example/roost\"; leave [store] out for SQLite in the data dir".to_string(),
            ));
            return;
        }
        match url.parse::<postgres::Config>() {
            Err(e) => out.push(Problem::value(
                &["store", "url"],
                format!("not a valid Postgres URL ({e}); write e.g. \"postgres://roost@db.example:5432/roost\""),
            )),
            Ok(parsed) if parsed.get_password().is_some() => out.push(Problem::value(
                &["store", "url"],
                format!(
                    "must not hold the password; set {STORE_PASSWORD_ENV} or password_file (mode 0600) instead"
                ),
            )),
            Ok(_) => {}
        }
    }

    /// `[http]`: an address to listen on, and a token for anything beyond loopback.
    fn http_problems(&self, out: &mut Vec<Problem>) {
        let Some(listen) = &self.http.listen else {
            return;
        };
        match listen.parse::<std::net::SocketAddr>() {
            Err(_) => out.push(Problem::value(
                &["http", "listen"],
                format!("{listen:?} is not an address to listen on; write e.g. \"127.0.0.1:8750\""),
            )),
            Ok(addr) if !addr.ip().is_loopback() && self.http.token_file.is_none() => {
                out.push(Problem::value(
                    &["http", "listen"],
                    format!(
                        "{listen} is reachable from other machines; set token_file (a file holding the token requests must carry) or listen on 127.0.0.1"
                    ),
                ))
            }
            Ok(_) => {}
        }
    }

    /// `[host]`: the prefix, the job user, the log filter.
    fn host_problems(&self, out: &mut Vec<Problem>) {
        let prefix = &self.host.prefix;
        if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
            out.push(Problem::value(
                &["host", "prefix"],
                format!("{prefix:?} cannot be a command prefix; it must be non-empty with no spaces, e.g. \"!\""),
            ));
        }
        if let Some(user) = &self.host.job_user
            && !matches!(nix::unistd::User::from_name(user), Ok(Some(_)))
        {
            out.push(Problem::value(
                &["host", "job_user"],
                format!("no user {user:?} on this machine; jobs would have no one to run as"),
            ));
        }
        if let Some(name) = &self.host.name
            && !super::valid_hub_name(name)
        {
            out.push(Problem::value(
                &["host", "name"],
                format!("{name:?} cannot name a hub; use 1 to 63 letters, digits, '.', '_' or '-', e.g. \"pi\""),
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.host.log) {
            out.push(Problem::value(
                &["host", "log"],
                format!("not a log filter ({e}); try \"info\" or \"info,roost=debug\""),
            ));
        }
    }

    /// `[limits]` and `[outbox]`: every value in its range.
    fn limits_problems(&self, out: &mut Vec<Problem>) {
        let global = PluginLimits {
            memory_mb: Some(self.limits.memory_mb),
            call_timeout_ms: Some(self.limits.call_timeout_ms),
            mailbox: Some(self.limits.mailbox),
            job_timeout_ms: Some(self.limits.job_timeout_ms),
            job_output_kb: Some(self.limits.job_output_kb),
            kv_mb: Some(self.limits.kv_mb),
            kv_value_kb: Some(self.limits.kv_value_kb),
            sqlite_cursors: Some(self.limits.sqlite_cursors),
            sqlite_cursor_idle_ms: Some(self.limits.sqlite_cursor_idle_ms),
            max_component_mb: Some(self.limits.max_component_mb),
        };
        check_limits(out, &["limits"], &global);
        if !MEMORY_MB_RANGE.contains(&self.limits.python_memory_mb) {
            out.push(Problem::value(
                &["limits", "python_memory_mb"],
                format!(
                    "{} is out of range; expected {} to {} MiB",
                    self.limits.python_memory_mb,
                    MEMORY_MB_RANGE.start(),
                    MEMORY_MB_RANGE.end()
                ),
            ));
        }
        for (field, value, range, unit) in [
            (
                "max_messages",
                self.outbox.max_messages,
                &OUTBOX_MESSAGES_RANGE,
                "",
            ),
            ("max_mb", self.outbox.max_mb, &OUTBOX_MB_RANGE, " MiB"),
        ] {
            if !range.contains(&value) {
                out.push(Problem::value(
                    &["outbox", field],
                    format!(
                        "{value} is out of range; expected {} to {}{unit}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
    }

    /// `[rate_limit]`: a burst that can admit a command.
    fn rate_limit_problems(&self, out: &mut Vec<Problem>) {
        if self.rate_limit.per_minute > 0 && self.rate_limit.burst == 0 {
            out.push(Problem::value(
                &["rate_limit", "burst"],
                "must be at least 1 when per_minute is set (0 would refuse every command)"
                    .to_string(),
            ));
        }
    }

    /// `[roles]`: identities that can be matched.
    fn roles_problems(&self, out: &mut Vec<Problem>) {
        for (list, ids) in [
            ("admin", &self.roles.admin),
            ("trusted", &self.roles.trusted),
        ] {
            for (i, id) in ids.iter().enumerate() {
                if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
                    out.push(Problem {
                        at: vec![Seg::key("roles"), Seg::key(list), Seg::Index(i)],
                        on_key: false,
                        message: format!(
                            "{id:?} is not an identity; write \"console\" or \"<gateway>:<user id>\""
                        ),
                    });
                }
            }
        }
    }

    /// `[commands.NAME]`: names without the prefix.
    fn commands_problems(&self, out: &mut Vec<Problem>) {
        let prefix = &self.host.prefix;
        for name in self.commands.keys() {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                out.push(Problem::key(
                    &["commands", name],
                    format!("{name:?} is not a command name"),
                ));
            } else if !prefix.is_empty() && name.starts_with(prefix.as_str()) {
                out.push(Problem::key(
                    &["commands", name],
                    format!(
                        "write the command without the prefix: [commands.{}]",
                        &name[prefix.len()..]
                    ),
                ));
            }
        }
    }

    /// `[channels.ALIAS]`: names and targets.
    fn channels_problems(&self, out: &mut Vec<Problem>) {
        for (alias, channel) in &self.channels {
            if alias.is_empty() || alias.contains(':') || alias.chars().any(char::is_whitespace) {
                out.push(Problem::key(
                    &["channels", alias],
                    format!("{alias:?} cannot be a channel alias; use a name without ':' or spaces, e.g. \"announce\""),
                ));
            }
            if channel.targets.is_empty() {
                out.push(Problem::value(
                    &["channels", alias, "targets"],
                    "needs at least one target, e.g. targets = [\"console\"]".to_string(),
                ));
            }
            for (i, target) in channel.targets.iter().enumerate() {
                if !is_target(target) {
                    out.push(Problem {
                        at: vec![
                            Seg::key("channels"),
                            Seg::key(alias),
                            Seg::key("targets"),
                            Seg::Index(i),
                        ],
                        on_key: false,
                        message: format!(
                            "{target:?} is not a target; write \"console\" or \"<gateway>:<channel id>\", e.g. \"discord:123456789\""
                        ),
                    });
                }
            }
        }
    }

    /// `[gateways.NAME]`: each platform table.
    fn gateways_problems(&self, out: &mut Vec<Problem>) {
        for (name, gateway) in &self.gateways.instances {
            gateway_problems(out, name, gateway);
        }
    }

    /// `[plugins.NAME]`: names, paths, grants and limits.
    fn plugins_problems(&self, out: &mut Vec<Problem>) {
        for (name, plugin) in &self.plugins {
            self.plugin_problems(name, plugin, out);
        }
    }

    /// One `[plugins.NAME]` table.
    fn plugin_problems(&self, name: &str, plugin: &PluginConfig, out: &mut Vec<Problem>) {
        if !is_plugin_name(name) {
            out.push(Problem::key(
                &["plugins", name],
                format!(
                    "{name:?} is not a plugin name; use lowercase letters, digits, '-' and '_' (starting with a letter or digit, at most {MAX_PLUGIN_NAME})"
                ),
            ));
        }
        if plugin
            .path
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            out.push(Problem::value(
                &["plugins", name, "path"],
                "is empty; remove it to use the default".to_string(),
            ));
        }
        self.run_on_problems(name, plugin, out);
        for (i, alias) in plugin.grants.channels.iter().enumerate() {
            if !self.channels.contains_key(alias) {
                let known: Vec<&str> = self.channels.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    format!("none; define it with [channels.{alias}]")
                } else {
                    known.join(", ")
                };
                out.push(Problem {
                    at: vec![
                        Seg::key("plugins"),
                        Seg::key(name),
                        Seg::key("grants"),
                        Seg::key("channels"),
                        Seg::Index(i),
                    ],
                    on_key: false,
                    message: format!("no channel alias `{alias}` (known: {known})"),
                });
            }
        }
        for (i, server) in plugin.grants.dns_servers.iter().enumerate() {
            if parse_dns_server(server).is_none() {
                out.push(Problem {
                    at: vec![
                        Seg::key("plugins"),
                        Seg::key(name),
                        Seg::key("grants"),
                        Seg::key("dns_servers"),
                        Seg::Index(i),
                    ],
                    on_key: false,
                    message: format!(
                        "`{server}` is not a server address; write ip:port, e.g. \"127.0.0.1:53\""
                    ),
                });
            }
        }
        let grants = &plugin.grants;
        let at = |key: &str, i: usize| {
            vec![
                Seg::key("plugins"),
                Seg::key(name),
                Seg::key("grants"),
                Seg::key(key),
                Seg::Index(i),
            ]
        };
        for (key, paths) in [
            ("watch_roots", &grants.watch_roots),
            ("process_dirs", &grants.process_dirs),
            ("read_files", &grants.read_files),
        ] {
            for (i, path) in paths.iter().enumerate() {
                if path.as_os_str().is_empty() {
                    out.push(Problem {
                        at: at(key, i),
                        on_key: false,
                        message: "is empty; name a directory, e.g. \"../my-project\"".to_string(),
                    });
                }
            }
        }
        for (i, program) in grants.programs.iter().enumerate() {
            let path = Path::new(program);
            if program.trim().is_empty()
                || program.contains('\0')
                || (program.contains('/') && !path.is_absolute())
            {
                out.push(Problem {
                    at: at("programs", i),
                    on_key: false,
                    message: format!(
                        "`{program}` is not a program; write a name found on PATH (\"pytest\") or an absolute path"
                    ),
                });
            }
        }
        for (i, var) in grants.env.iter().enumerate() {
            let mut chars = var.chars();
            let ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                out.push(Problem {
                    at: at("env", i),
                    on_key: false,
                    message: format!(
                        "`{var}` is not an environment variable name (letters, digits, '_')"
                    ),
                });
            }
        }
        for (i, var) in grants.env.iter().enumerate() {
            if var.to_ascii_uppercase().starts_with(SECRET_ENV_PREFIX) {
                out.push(Problem {
                    at: at("env", i),
                    on_key: false,
                    message: format!(
                        "`{var}` holds a plugin secret and never passes to a job; grant the plugin the secret (secrets = [\"...\"]) and let it hand the value on itself"
                    ),
                });
            }
        }
        for (i, secret) in grants.secrets.iter().enumerate() {
            if !is_secret_name(secret) {
                out.push(Problem {
                    at: at("secrets", i),
                    on_key: false,
                    message: format!(
                        "`{secret}` is not a secret name; use lowercase letters, digits and '_', e.g. \"riot_api_key\""
                    ),
                });
            }
        }
        for (i, host) in grants.http_hosts.iter().enumerate() {
            if let Err(why) = HostPattern::parse(host) {
                out.push(Problem {
                    at: at("http_hosts", i),
                    on_key: false,
                    message: why,
                });
            }
        }
        for (key, value, range) in [
            ("http_timeout_ms", grants.http_timeout_ms, 100..=600_000),
            ("http_response_kb", grants.http_response_kb, 1..=1_048_576),
            ("webhook_kb", grants.webhook_kb, 1..=65_536),
            (
                "http_requests_per_minute",
                grants.http_requests_per_minute.map(u64::from),
                1..=100_000,
            ),
            (
                "http_concurrent",
                grants.http_concurrent.map(u64::from),
                1..=256,
            ),
        ] {
            if let Some(v) = value.filter(|v| !range.contains(v)) {
                out.push(Problem {
                    at: vec![
                        Seg::key("plugins"),
                        Seg::key(name),
                        Seg::key("grants"),
                        Seg::key(key),
                    ],
                    on_key: false,
                    message: format!(
                        "{v} is out of range; expected {} to {}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        }
        check_limits(out, &["plugins", name, "limits"], &plugin.limits);
    }
}

/// What can be wrong with one `[gateways.NAME]` table.
fn gateway_problems(out: &mut Vec<Problem>, name: &str, gateway: &ChatGateway) {
    if !is_plugin_name(name) {
        out.push(Problem::key(
            &["gateways", name],
            format!("{name:?} is not a gateway name; use lowercase letters, digits, '-' and '_', e.g. \"slack-work\""),
        ));
    }
    if gateway.kind_for(name).is_none() {
        out.push(Problem::key(
            &["gateways", name],
            format!("which platform is gateway `{name}`? set kind = \"discord\" or kind = \"slack\" (or name it discord-… or slack-…)"),
        ));
    }
    if let Some(base) = &gateway.api_base
        && !(base.starts_with("http://") || base.starts_with("https://"))
    {
        out.push(Problem::value(
            &["gateways", name, "api_base"],
            format!("{base:?} is not a base URL; write e.g. \"http://127.0.0.1:8080\""),
        ));
    }
    if gateway.health_probe_secs == 0 {
        out.push(Problem::value(
            &["gateways", name, "health_probe_secs"],
            "must be at least 1".to_string(),
        ));
    }
    for (i, rule) in gateway.mirror.iter().enumerate() {
        let at = |field: &str| {
            vec![
                Seg::key("gateways"),
                Seg::key(name),
                Seg::key("mirror"),
                Seg::Index(i),
                Seg::key(field),
            ]
        };
        if rule.from.is_empty() || rule.from.chars().any(char::is_whitespace) {
            out.push(Problem {
                at: at("from"),
                on_key: false,
                message: "needs the channel id to copy from".to_string(),
            });
        }
        if rule.to.is_empty() || rule.to.iter().any(|t| !is_target(t)) {
            out.push(Problem {
                at: at("to"),
                on_key: false,
                message: "needs targets like \"discord:123456789\" or \"console\"".to_string(),
            });
        }
    }
}

/// Range checks shared by `[limits]` and `[plugins.NAME.limits]` (unset fields pass).
fn check_limits(out: &mut Vec<Problem>, table: &[&str], limits: &PluginLimits) {
    fn check<T: PartialOrd + std::fmt::Display>(
        out: &mut Vec<Problem>,
        table: &[&str],
        field: &str,
        value: Option<T>,
        range: &RangeInclusive<T>,
        unit: &str,
    ) {
        if let Some(v) = value
            && !range.contains(&v)
        {
            let mut at: Vec<&str> = table.to_vec();
            at.push(field);
            out.push(Problem::value(
                &at,
                format!(
                    "{v} is out of range; expected {} to {}{unit}",
                    range.start(),
                    range.end()
                ),
            ));
        }
    }
    check(
        out,
        table,
        "memory_mb",
        limits.memory_mb,
        &MEMORY_MB_RANGE,
        " MiB",
    );
    check(
        out,
        table,
        "call_timeout_ms",
        limits.call_timeout_ms,
        &CALL_TIMEOUT_MS_RANGE,
        " ms",
    );
    check(out, table, "mailbox", limits.mailbox, &MAILBOX_RANGE, "");
    check(
        out,
        table,
        "job_timeout_ms",
        limits.job_timeout_ms,
        &JOB_TIMEOUT_MS_RANGE,
        " ms",
    );
    check(
        out,
        table,
        "job_output_kb",
        limits.job_output_kb,
        &JOB_OUTPUT_KB_RANGE,
        " KiB",
    );
    check(out, table, "kv_mb", limits.kv_mb, &KV_MB_RANGE, " MiB");
    check(
        out,
        table,
        "kv_value_kb",
        limits.kv_value_kb,
        &KV_VALUE_KB_RANGE,
        " KiB",
    );
    check(
        out,
        table,
        "sqlite_cursors",
        limits.sqlite_cursors,
        &SQLITE_CURSORS_RANGE,
        "",
    );
    check(
        out,
        table,
        "sqlite_cursor_idle_ms",
        limits.sqlite_cursor_idle_ms,
        &SQLITE_CURSOR_IDLE_MS_RANGE,
        " ms",
    );
    check(
        out,
        table,
        "max_component_mb",
        limits.max_component_mb,
        &MAX_COMPONENT_MB_RANGE,
        " MiB",
    );
}

/// `[a-z0-9][a-z0-9_-]{0,63}`: plugin names are KV namespaces, log tags and file names.
fn is_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && name.len() <= MAX_PLUGIN_NAME
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `console`, or `<gateway>:<id>` with a gateway name like a plugin name and a non-empty
/// id without spaces.
fn is_target(target: &str) -> bool {
    if target == "console" {
        return true;
    }
    match target.split_once(':') {
        Some((gateway, id)) => {
            is_plugin_name(gateway) && !id.is_empty() && !id.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

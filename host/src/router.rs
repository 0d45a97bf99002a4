//! Chat message → command → plugin → reply. The router parses the prefix and arguments,
//! resolves the command to the plugin serving it, enforces the command's role and the
//! sender's rate limit (in the host, never trusting a plugin to do it), and turns every
//! failure into a reply a user can act on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::{Config, Role};
use crate::hub_calls::{CallResult, HubCalls, RemoteCall};
use crate::leadership::Leadership;
use crate::live_config::LiveConfig;
use crate::message::{ChatMessage, Outgoing};
use crate::runtime::actor::CallError;
use crate::runtime::actor::PluginHandle;
use crate::runtime::bindings::{CommandContext, CommandSpec};
use crate::runtime::supervisor::Supervisor;

/// A chat line, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No prefix: ordinary chat, not for the bot.
    NotACommand,
    /// The prefix and nothing else, or quotes that do not close.
    Malformed(String),
    /// `!name arg…`.
    Invoke { name: String, args: Vec<String> },
}

/// Splits `text` into a command name and shell-style arguments (quotes group words).
pub fn parse(prefix: &str, text: &str) -> Parsed {
    let Some(rest) = text.trim_start().strip_prefix(prefix) else {
        return Parsed::NotACommand;
    };
    let Some(words) = shlex::split(rest) else {
        return Parsed::Malformed("unbalanced quotes".into());
    };
    let mut words = words.into_iter();
    match words.next() {
        Some(name) if !name.is_empty() && !rest.starts_with(char::is_whitespace) => {
            Parsed::Invoke {
                name: name.to_lowercase(),
                args: words.collect(),
            }
        }
        _ => Parsed::Malformed("no command name".into()),
    }
}

/// The reply to a command, and whether the command succeeded (scripts driving `roost chat`
/// exit non-zero on a failure: unknown command, not allowed, bad usage, plugin error).
#[derive(Debug, Clone)]
pub struct Answer {
    /// What the user sees.
    pub reply: Outgoing,
    /// Whether the plugin ran the command and returned a reply.
    pub ok: bool,
}

impl Answer {
    fn failed(text: String) -> Self {
        Self {
            reply: Outgoing::text(text),
            ok: false,
        }
    }
}

/// Routes chat messages to plugins. Cheap to share (`Arc`).
pub struct Router {
    supervisor: Arc<Supervisor>,
    config: LiveConfig,
    limiter: Mutex<RateLimiter>,
    /// The other hubs on a shared store, once known: where commands of plugins pinned to
    /// them go.
    other_hubs: OnceLock<OtherHubs>,
}

/// What the router needs to reach plugins pinned to other hubs.
pub struct OtherHubs {
    /// Which hub serves which command.
    pub leadership: Leadership,
    /// The calls to them.
    pub calls: HubCalls,
}

/// Where the plugin serving a command runs.
enum Target {
    Here(PluginHandle),
    /// On hub `hub`, as plugin `plugin`.
    Hub {
        hub: String,
        plugin: String,
    },
}

impl Router {
    /// A router over the supervisor's plugins.
    pub fn new(supervisor: Arc<Supervisor>) -> Self {
        let config = supervisor.services().config.clone();
        Self {
            supervisor,
            config,
            limiter: Mutex::new(RateLimiter::default()),
            other_hubs: OnceLock::new(),
        }
    }

    /// Lets commands of plugins pinned to other hubs through (a hub on a shared store).
    pub fn reach_other_hubs(&self, other_hubs: OtherHubs) {
        let _ = self.other_hubs.set(other_hubs);
    }

    /// Runs a command another hub handed to this one for its plugin `plugin` (that hub's
    /// router checked the sender's role and the arguments).
    pub async fn serve_remote(&self, plugin: &str, call: RemoteCall) -> CallResult {
        let hub = self.config.get().hub_name();
        let Some(handle) = self.supervisor.handle(plugin) else {
            return Err(format!("plugin {plugin} does not run on hub {hub} now"));
        };
        let (prefix, name) = (call.prefix.clone(), call.command.clone());
        let (ctx, args) = call.into_parts();
        handle
            .command(ctx, args)
            .await
            .map_err(|e| call_failure(&prefix, &name, e))
    }

    /// The plugin serving `name` (here or on another hub; `plugin:command` names the
    /// plugin too) and the command's spec, with the config's role for it applied. An
    /// unqualified name several plugins here offer goes to the supervisor's choice.
    fn resolve(&self, config: &Config, name: &str) -> Option<(Target, CommandSpec)> {
        let (only, command) = match name.split_once(':') {
            Some((plugin, command)) => (Some(plugin), command),
            None => (None, name),
        };
        let (target, mut spec) = match self.supervisor.resolve(only, command) {
            Some((plugin, spec)) => (Target::Here(plugin), spec),
            None => {
                let other_hubs = self.other_hubs.get()?;
                let (hub, remote) = other_hubs.leadership.remote_command(only, command)?;
                let spec = remote.spec();
                let plugin = remote.plugin;
                (Target::Hub { hub, plugin }, spec)
            }
        };
        if let Some(role) = config.command_role(command) {
            spec.role = role.into();
        }
        Some((target, spec))
    }

    /// Calls the command on its plugin, wherever it runs.
    async fn call(
        &self,
        config: &Config,
        target: Target,
        name: &str,
        ctx: CommandContext,
        args: Vec<String>,
    ) -> Result<Outgoing, String> {
        let prefix = ctx.prefix.clone();
        match (target, self.other_hubs.get()) {
            (Target::Here(plugin), _) => plugin
                .command(ctx, args)
                .await
                .map_err(|e| call_failure(&prefix, name, e)),
            (Target::Hub { hub, plugin }, Some(other_hubs)) => {
                let limit = config.limits_for(&plugin).call_timeout_ms;
                let wait = Duration::from_millis(limit) + REMOTE_SLACK;
                let call = RemoteCall::new(&ctx, &args);
                other_hubs.calls.call(&hub, &plugin, &call, wait).await
            }
            (Target::Hub { hub, .. }, None) => Err(format!("cannot reach hub {hub}")),
        }
    }

    /// Handles one message; `None` when it is not a command.
    pub async fn handle(&self, msg: &ChatMessage) -> Option<Outgoing> {
        self.answer(msg).await.map(|a| a.reply)
    }

    /// Handles one message and says whether the command succeeded; `None` when it is not
    /// a command.
    pub async fn answer(&self, msg: &ChatMessage) -> Option<Answer> {
        let config = self.config.get();
        let prefix = config.host.prefix.as_str();
        let (name, args) = match parse(prefix, &msg.text) {
            Parsed::NotACommand => return None,
            Parsed::Malformed(why) => {
                return Some(Answer::failed(format!(
                    "{why}; usage: {prefix}<command> [args…] — {prefix}help lists commands"
                )));
            }
            Parsed::Invoke { name, args } => (name, args),
        };
        if let Err(wait) = self.admit(&config, &msg.identity) {
            return Some(Answer::failed(format!(
                "slow down: too many commands from {}; try again in {wait} s",
                msg.identity
            )));
        }
        let Some((target, spec)) = self.resolve(&config, &name) else {
            if name == "status" {
                // No plugin serves it (a standby hub runs none): the host answers, so
                // `roost status` works on every hub.
                let lines = self.supervisor.status_lines().await;
                return Some(Answer {
                    reply: Outgoing::text(lines.join("\n")),
                    ok: true,
                });
            }
            return Some(Answer::failed(self.unknown(prefix, &name)));
        };
        let role = config.role_of(&msg.identity);
        let needed = Role::from(spec.role);
        if role < needed {
            return Some(Answer::failed(format!(
                "not allowed: {prefix}{name} needs role {} and {} has role {}",
                role_name(needed),
                msg.identity,
                role_name(role)
            )));
        }
        if (args.len() as u64) < u64::from(spec.min_args) {
            return Some(Answer::failed(format!(
                "usage: {}",
                with_prefix(prefix, &spec.usage)
            )));
        }
        let ctx = CommandContext {
            identity: msg.identity.clone(),
            role: role.into(),
            gateway: msg.gateway.clone(),
            channel: msg.channel.clone(),
            command: spec.name.clone(),
            prefix: prefix.to_string(),
            text: msg.text.clone(),
        };
        Some(match self.call(&config, target, &name, ctx, args).await {
            Ok(reply) => Answer { reply, ok: true },
            Err(text) => Answer::failed(text),
        })
    }

    /// The command prefix in force, for gateways that build command text themselves (slash
    /// commands).
    pub fn prefix(&self) -> String {
        self.config.get().host.prefix.clone()
    }

    /// Every command the running plugins serve (role overrides applied), for gateways that
    /// register commands with their platform.
    pub fn command_specs(&self) -> Vec<crate::runtime::bindings::CommandSpec> {
        use crate::capabilities::admin::PluginControl;
        self.supervisor
            .list_plugins()
            .into_iter()
            .filter(|p| p.state == "running")
            .flat_map(|p| p.commands)
            .collect()
    }

    fn admit(&self, config: &Config, identity: &str) -> Result<(), u64> {
        let owner = identity == "console" || config.role_of(identity) == Role::Admin;
        if owner && !config.rate_limit.limit_admins {
            return Ok(());
        }
        let mut limiter = match self.limiter.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        limiter.admit(
            identity,
            config.rate_limit.per_minute,
            config.rate_limit.burst,
            Instant::now(),
        )
    }

    fn unknown(&self, prefix: &str, name: &str) -> String {
        let nearest = self
            .supervisor
            .command_names()
            .into_iter()
            .map(|c| (strsim::jaro_winkler(name, &c), c))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match nearest {
            Some((_, c)) => format!(
                "unknown command {prefix}{name}; did you mean {prefix}{c}? ({prefix}help lists commands)"
            ),
            None => format!("unknown command {prefix}{name}; {prefix}help lists commands"),
        }
    }
}

/// How much longer than a pinned plugin's own time limit the leader waits for its hub:
/// the trips through the store.
const REMOTE_SLACK: Duration = Duration::from_secs(2);

/// What the user sees when a plugin's command call failed.
fn call_failure(prefix: &str, name: &str, e: CallError) -> String {
    match e {
        CallError::Refused(reason) => format!("{prefix}{name}: {reason}"),
        e => e.to_string(),
    }
}

/// Usage lines are declared with `!`; users see the configured prefix.
pub fn with_prefix(prefix: &str, usage: &str) -> String {
    match usage.strip_prefix('!') {
        Some(rest) => format!("{prefix}{rest}"),
        None => usage.to_string(),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Anyone => "anyone",
        Role::Trusted => "trusted",
        Role::Admin => "admin",
    }
}

/// Token bucket per identity, so one flooding user cannot starve the others.
#[derive(Default)]
struct RateLimiter {
    buckets: HashMap<String, (f64, Instant)>,
}

/// Identities remembered at most; the oldest buckets are forgotten past this.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    /// `Ok` when `identity` may run a command now, else the seconds to wait.
    fn admit(
        &mut self,
        identity: &str,
        per_minute: u32,
        burst: u32,
        now: Instant,
    ) -> Result<(), u64> {
        if per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(per_minute) / 60.0;
        let cap = f64::from(burst.max(1));
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(identity) {
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < cap
            });
        }
        let (tokens, at) = self
            .buckets
            .entry(identity.to_string())
            .or_insert((cap, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parse_splits_name_and_quoted_arguments() {
        assert_eq!(
            parse("!", "!Echo a 'b c' \"d\""),
            Parsed::Invoke {
                name: "echo".into(),
                args: vec!["a".into(), "b c".into(), "d".into()]
            }
        );
        assert_eq!(parse("!", "hello !ping"), Parsed::NotACommand);
        assert!(matches!(parse("!", "!"), Parsed::Malformed(_)));
        assert!(matches!(parse("!", "! ping"), Parsed::Malformed(_)));
        assert!(matches!(parse("!", "!echo 'open"), Parsed::Malformed(_)));
        assert_eq!(
            parse("roost:", "roost:ping"),
            Parsed::Invoke {
                name: "ping".into(),
                args: vec![]
            }
        );
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_refills() {
        let mut limiter = RateLimiter::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit("u", 60, 3, t0).is_ok());
        }
        assert_eq!(limiter.admit("u", 60, 3, t0), Err(1));
        assert!(
            limiter.admit("other", 60, 3, t0).is_ok(),
            "others are not starved"
        );
        assert!(
            limiter
                .admit("u", 60, 3, t0 + Duration::from_secs(1))
                .is_ok()
        );
        assert!(limiter.admit("u", 0, 0, t0).is_ok(), "0 means unlimited");
    }
}

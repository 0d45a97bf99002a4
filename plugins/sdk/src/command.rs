//! [`Command`]: one chat command addressed to the plugin.

use crate::__bindings::roost::plugin::types as wit;
use crate::{CommandSpec, Role};

/// The gateway `roost invoke` sends commands through: the local shell.
const SHELL: &str = "cli";

/// One chat command addressed to the plugin, given to
/// [`Plugin::on_command`](crate::Plugin::on_command): which command, its arguments, and
/// who sent it from where.
///
/// Arguments are already split the way a shell would (`!echo "a b" c` gives `a b` and `c`)
/// and do not include the command name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    name: String,
    usage: String,
    args: Vec<String>,
    identity: String,
    role: Role,
    gateway: String,
    channel: String,
    prefix: String,
    text: String,
}

impl Command {
    /// A command built by hand, for unit tests of a plugin's `on_command`: sent by
    /// identity "test" with role [`Role::Anyone`] on gateway and channel "test".
    pub fn new(name: &str, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut text = format!("!{name}");
        for a in &args {
            text.push(' ');
            text.push_str(a);
        }
        Self {
            name: name.to_string(),
            usage: format!("!{name}"),
            args,
            identity: "test".into(),
            role: Role::Anyone,
            gateway: "test".into(),
            channel: "test".into(),
            prefix: "!".into(),
            text,
        }
    }

    /// The same command sent through `gateway` (e.g. "cli", the shell), for unit tests.
    pub fn via(mut self, gateway: &str) -> Self {
        if gateway == SHELL {
            self.usage = self.usage.trim_start_matches('!').to_string();
        }
        self.gateway = gateway.to_string();
        self
    }

    /// The same command sent by someone with `role`, for unit tests.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Builds the command from what the host passes; `commands` gives its usage line.
    pub(crate) fn from_host(
        ctx: wit::CommandContext,
        args: Vec<String>,
        commands: &[CommandSpec],
    ) -> Self {
        let declared = commands
            .iter()
            .find(|spec| spec.name == ctx.command)
            .map(|spec| spec.usage.clone())
            .unwrap_or_else(|| format!("!{}", ctx.command));
        let prefix = if ctx.gateway == SHELL {
            ""
        } else {
            &ctx.prefix
        };
        let usage = match declared.strip_prefix('!') {
            Some(rest) => format!("{prefix}{rest}"),
            None => declared,
        };
        Self {
            usage,
            name: ctx.command,
            args,
            identity: ctx.identity,
            role: ctx.role.into(),
            gateway: ctx.gateway,
            channel: ctx.channel,
            prefix: ctx.prefix,
            text: ctx.text,
        }
    }

    /// The command's name as declared in the manifest, without the prefix ("ping"), so a
    /// plugin can `match cmd.name()` whatever prefix the host is configured with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments after the command name.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Argument `i` (from 0), or `None` when there are fewer.
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }

    /// The arguments from `i` on, joined by single spaces: the "rest of the line" for
    /// commands like `!send <channel> <text…>`. Empty when there are none.
    pub fn rest(&self, i: usize) -> String {
        self.args.get(i..).unwrap_or_default().join(" ")
    }

    /// The usage line this command was declared with, for `Err(format!("usage: {}", ..))`:
    /// with the host's prefix in chat (`!diff <A> <B>`), without one from the shell
    /// (`diff <A> <B>`, what follows `roost invoke PLUGIN`), so users see what they type.
    pub fn usage(&self) -> &str {
        &self.usage
    }

    /// Whether the command was typed in the shell (`roost invoke`, gateway "cli") rather
    /// than in a chat: shell replies are bare text, and commands are named without prefix.
    pub fn from_shell(&self) -> bool {
        self.gateway == SHELL
    }

    /// `line` (a command and its arguments, no prefix) the way the user types it here:
    /// behind the host's prefix in chat, bare in the shell.
    pub fn typed(&self, line: &str) -> String {
        if self.from_shell() {
            line.to_string()
        } else {
            format!("{}{line}", self.prefix)
        }
    }

    /// Who sent it: a stable identity such as "console" or "discord:123".
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The role the host resolved for the sender; at least the command's required role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The gateway it came through, e.g. "console" or "discord".
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The channel within the gateway, where the reply goes.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The host's command prefix ("!" by default), for usage lines written back to users.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The raw message text, prefix and all.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(text: &str) -> wit::CommandContext {
        let command = text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_start_matches('!')
            .to_string();
        wit::CommandContext {
            identity: "console".into(),
            role: wit::Role::Admin,
            gateway: "console".into(),
            channel: "local".into(),
            command,
            prefix: "!".into(),
            text: text.into(),
        }
    }

    fn specs() -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("help", "!help [command]", "Help"),
            CommandSpec::new("ping", "!ping", "Ping"),
            CommandSpec::new("ing", "!ing", "Ing"),
        ]
    }

    #[test]
    fn the_name_and_usage_come_from_the_host_and_the_manifest() {
        let cmd = Command::from_host(ctx("!ping a b"), vec![], &specs());
        assert_eq!(
            (cmd.name(), cmd.usage(), cmd.prefix()),
            ("ping", "!ping", "!")
        );
        let cmd = Command::from_host(ctx("!other"), vec![], &specs());
        assert_eq!((cmd.name(), cmd.usage()), ("other", "!other"));
    }

    #[test]
    fn usage_lines_carry_the_chat_prefix_in_chat_and_none_in_the_shell() {
        let mut c = ctx("!ping");
        c.prefix = "/".into();
        let cmd = Command::from_host(c.clone(), vec![], &specs());
        assert_eq!(
            (cmd.usage(), cmd.typed("ping x").as_str()),
            ("/ping", "/ping x")
        );
        assert!(!cmd.from_shell());
        c.gateway = "cli".into();
        let cmd = Command::from_host(c, vec![], &specs());
        assert_eq!(
            (cmd.usage(), cmd.typed("ping x").as_str()),
            ("ping", "ping x")
        );
        assert!(cmd.from_shell());
        assert_eq!(Command::new("echo", ["a"]).via("cli").usage(), "echo");
    }

    #[test]
    fn context_fields_and_args_pass_through() {
        let cmd = Command::from_host(ctx("!help a b"), vec!["a b".into(), "c".into()], &specs());
        assert_eq!(cmd.args(), ["a b", "c"]);
        assert_eq!((cmd.arg(0), cmd.arg(2)), (Some("a b"), None));
        assert_eq!(cmd.rest(1), "c");
        assert_eq!(cmd.rest(5), "");
        assert_eq!(cmd.role(), Role::Admin);
        assert_eq!(
            (cmd.identity(), cmd.gateway(), cmd.channel()),
            ("console", "console", "local")
        );
        assert_eq!(cmd.text(), "!help a b");
    }

    #[test]
    fn hand_built_commands_are_for_tests() {
        let cmd = Command::new("echo", ["a", "b"]).with_role(Role::Trusted);
        assert_eq!(
            (cmd.name(), cmd.text(), cmd.role()),
            ("echo", "!echo a b", Role::Trusted)
        );
    }
}

//! [`Command`]: one chat command addressed to the plugin.

use crate::__bindings::roost::plugin::types as wit;
use crate::{CommandSpec, Role};

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
            text,
        }
    }

    /// The same command sent by someone with `role`, for unit tests.
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Builds the command from what the host passes, working out which of the plugin's
    /// `commands` was typed.
    pub(crate) fn from_host(
        ctx: wit::CommandContext,
        args: Vec<String>,
        commands: &[CommandSpec],
    ) -> Self {
        let spec = typed_command(&ctx.text, commands);
        let name = match spec {
            Some(spec) => spec.name.clone(),
            None => fallback_name(&ctx.text),
        };
        Self {
            usage: spec
                .map(|s| s.usage.clone())
                .unwrap_or_else(|| format!("!{name}")),
            name,
            args,
            identity: ctx.identity,
            role: ctx.role.into(),
            gateway: ctx.gateway,
            channel: ctx.channel,
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

    /// The usage line this command was declared with, for `Err(format!("usage: {}", ..))`.
    pub fn usage(&self) -> &str {
        &self.usage
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

    /// The raw message text, prefix and all.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Which of `commands` the message `text` invokes. The host strips a configurable prefix
/// the plugin does not know, so this takes the first word that ends with a declared name
/// (ignoring case; the longest match wins) — "!ping", "?PING" and "bot ping" all give
/// "ping". A plugin with a single command needs no guessing.
fn typed_command<'a>(text: &str, commands: &'a [CommandSpec]) -> Option<&'a CommandSpec> {
    for word in text.split_whitespace().take(2) {
        let word = word.trim_matches(|c| c == '"' || c == '\'').to_lowercase();
        let found = commands
            .iter()
            .filter(|spec| !spec.name.is_empty() && word.ends_with(&spec.name.to_lowercase()))
            .max_by_key(|spec| spec.name.len());
        if found.is_some() {
            return found;
        }
    }
    match commands {
        [only] => Some(only),
        _ => None,
    }
}

/// The name when no declared command matches (which the host never routes): the first
/// word without leading punctuation, lowercased.
fn fallback_name(text: &str) -> String {
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(text: &str) -> wit::CommandContext {
        wit::CommandContext {
            identity: "console".into(),
            role: wit::Role::Admin,
            gateway: "console".into(),
            channel: "local".into(),
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
    fn the_name_is_the_declared_command_whatever_the_prefix() {
        for text in ["!ping", "  !PING a b", "?ping", "roost> ping", "bot ping x"] {
            let cmd = Command::from_host(ctx(text), vec![], &specs());
            assert_eq!(cmd.name(), "ping", "{text}");
            assert_eq!(cmd.usage(), "!ping");
        }
        let cmd = Command::from_host(ctx("!ing"), vec![], &specs());
        assert_eq!(cmd.name(), "ing");
    }

    #[test]
    fn an_undeclared_name_falls_back_to_the_first_word() {
        let cmd = Command::from_host(ctx("!Other x"), vec!["x".into()], &specs());
        assert_eq!(cmd.name(), "other");
        let cmd = Command::from_host(ctx(""), vec![], &specs());
        assert_eq!(cmd.name(), "");
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

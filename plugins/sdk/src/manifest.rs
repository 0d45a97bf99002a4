//! What a plugin tells the host it serves: [`Manifest`], [`CommandSpec`], [`Role`].

use std::fmt;

use crate::__bindings::roost::plugin::types as wit;

/// Who may run a command. Ordered: `Admin > Trusted > Anyone`, and a role may do what
/// every lower one may. Which identity has which role is the host's config, never the
/// plugin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Role {
    /// Anybody who can talk to the bot. The default for a command.
    #[default]
    Anyone,
    /// Identities the config lists as trusted (and admins).
    Trusted,
    /// Identities the config lists as admins.
    Admin,
}

impl Role {
    /// The lowercase name used in config and chat: "anyone", "trusted", "admin".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anyone => "anyone",
            Role::Trusted => "trusted",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit::Role> for Role {
    fn from(role: wit::Role) -> Self {
        match role {
            wit::Role::Anyone => Role::Anyone,
            wit::Role::Trusted => Role::Trusted,
            wit::Role::Admin => Role::Admin,
        }
    }
}

impl From<Role> for wit::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Anyone => wit::Role::Anyone,
            Role::Trusted => wit::Role::Trusted,
            Role::Admin => wit::Role::Admin,
        }
    }
}

/// One command a plugin serves: what `!help` lists and what the host routes to
/// [`Plugin::on_command`](crate::Plugin::on_command).
///
/// Build one with [`CommandSpec::new`] and the chained setters; the fields are public so
/// the bot can read the specs [`admin::list_plugins`](crate::admin::list_plugins) returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name users type after the prefix, e.g. "ping" (no prefix).
    pub name: String,
    /// The usage line shown on a bad call, e.g. "!tests run <project>".
    pub usage: String,
    /// One line for `!help`.
    pub summary: String,
    /// The role the host requires before the call reaches the plugin (config may raise it).
    pub role: Role,
    /// The fewest arguments the command takes; with fewer, the host answers with `usage`
    /// and the plugin is not called.
    pub min_args: u32,
}

impl CommandSpec {
    /// A command anyone may run with any number of arguments. `usage` is the line users
    /// see when they get it wrong, written with the default `!` prefix, e.g.
    /// `"!seen <user>"`; an empty `usage` becomes `"!name"`. Chain [`role`](Self::role) and
    /// [`min_args`](Self::min_args) to restrict it.
    pub fn new(
        name: impl Into<String>,
        usage: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        let name = name.into();
        let mut usage = usage.into();
        if usage.trim().is_empty() {
            usage = format!("!{name}");
        }
        Self {
            name,
            usage,
            summary: summary.into(),
            role: Role::Anyone,
            min_args: 0,
        }
    }

    /// Requires `role` of whoever runs the command.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Requires at least `n` arguments; the host answers fewer with the usage line.
    pub fn min_args(mut self, n: u32) -> Self {
        self.min_args = n;
        self
    }
}

impl From<wit::CommandSpec> for CommandSpec {
    fn from(spec: wit::CommandSpec) -> Self {
        Self {
            name: spec.name,
            usage: spec.usage,
            summary: spec.summary,
            role: spec.role.into(),
            min_args: spec.min_args,
        }
    }
}

impl From<CommandSpec> for wit::CommandSpec {
    fn from(spec: CommandSpec) -> Self {
        Self {
            name: spec.name,
            usage: spec.usage,
            summary: spec.summary,
            role: spec.role.into(),
            min_args: spec.min_args,
        }
    }
}

/// What [`Plugin::init`](crate::Plugin::init) returns: the plugin's name and version (shown
/// by `!plugins` and `!status`) and the commands it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    name: String,
    version: String,
    commands: Vec<CommandSpec>,
}

impl Manifest {
    /// A manifest with no commands yet. `name` should match the `.wasm` file stem;
    /// `version` is usually `env!("CARGO_PKG_VERSION")`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            commands: Vec::new(),
        }
    }

    /// Adds one command.
    pub fn command(mut self, spec: CommandSpec) -> Self {
        self.commands.push(spec);
        self
    }

    /// Adds several commands.
    pub fn commands(mut self, specs: impl IntoIterator<Item = CommandSpec>) -> Self {
        self.commands.extend(specs);
        self
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The commands added so far, in order.
    pub fn command_specs(&self) -> &[CommandSpec] {
        &self.commands
    }

    /// Catches mistakes the host would reject less clearly: an empty name, a command name
    /// that is empty or has spaces, or the same command twice.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("manifest has an empty plugin name".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for spec in &self.commands {
            if spec.name.is_empty() || spec.name.contains(char::is_whitespace) {
                return Err(format!(
                    "command name `{}` must be one word without the prefix",
                    spec.name
                ));
            }
            if !seen.insert(spec.name.as_str()) {
                return Err(format!("command `{}` is declared twice", spec.name));
            }
        }
        Ok(())
    }
}

impl From<Manifest> for wit::Manifest {
    fn from(m: Manifest) -> Self {
        Self {
            name: m.name,
            version: m.version,
            commands: m.commands.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_usage_defaults_to_the_bare_command() {
        assert_eq!(CommandSpec::new("ping", "", "Check").usage, "!ping");
        assert_eq!(CommandSpec::new("ping", "!ping", "Check").usage, "!ping");
    }

    #[test]
    fn commands_default_to_anyone_and_no_arguments() {
        let spec = CommandSpec::new("x", "!x", "X");
        assert_eq!((spec.role, spec.min_args), (Role::Anyone, 0));
        let spec = spec.role(Role::Admin).min_args(2);
        assert_eq!((spec.role, spec.min_args), (Role::Admin, 2));
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Trusted && Role::Trusted > Role::Anyone);
    }

    #[test]
    fn duplicate_and_spaced_command_names_are_rejected() {
        let dup = Manifest::new("p", "1")
            .command(CommandSpec::new("a", "", ""))
            .command(CommandSpec::new("a", "", ""));
        assert!(dup.check().unwrap_err().contains("twice"));
        let spaced = Manifest::new("p", "1").command(CommandSpec::new("a b", "", ""));
        assert!(spaced.check().is_err());
        assert!(Manifest::new("", "1").check().is_err());
        assert!(
            Manifest::new("p", "1")
                .command(CommandSpec::new("a", "", ""))
                .check()
                .is_ok()
        );
    }
}

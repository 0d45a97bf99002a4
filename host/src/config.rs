//! `roost.toml`: the model of the user's config file, its validation, and errors that point
//! at the line and column of the mistake.
//!
//! Every section is optional and every struct rejects unknown keys, so an empty file is a
//! valid config and a misspelt key is an error rather than a silently ignored setting (the
//! Errbot ACL complaint in `USER-ASKS.md`). Errors render as `path:line:column: message`
//! whether the file is not TOML, does not fit the schema, or fits it but says something
//! impossible (a grant naming a channel alias that does not exist).
//!
//! Parsing happens in three steps:
//! 1. [`DeTable::parse`] turns the text into a tree that remembers the byte span of every key
//!    and value (syntax errors come from here);
//! 2. serde turns a copy of that tree into the plain [`Config`] structs (unknown keys, wrong
//!    types and bad enum values come from here, with toml's own spans);
//! 3. [`Config::problems`] checks ranges and cross-references on the plain structs and
//!    names each bad value by its key path; the path is looked up in the tree from step 1 to
//!    find its position. This keeps the public structs free of span wrappers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where `roost` looks for its config when `--config` is not given: the repository layout
/// keeps it in `config/`, and `roost init` writes there by default.
/// File name of the console socket inside the data dir.
pub const SOCKET_FILE: &str = "roost.sock";

/// The config file used when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "config/roost.toml";

/// Allowed `memory_mb`: a plugin needs at least one page, and 4 GiB is the most a 32-bit
/// wasm linear memory can address.
pub const MEMORY_MB_RANGE: RangeInclusive<u64> = 1..=4096;
/// Allowed `call_timeout_ms`: under 10 ms even `init` cannot finish; over 10 minutes a hung
/// plugin would hold its mailbox for longer than anyone waits for a chat reply.
pub const CALL_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 10..=600_000;
/// Allowed `mailbox`: at least one slot so a call can be queued; the upper bound caps how
/// much host memory a stuck plugin's queue can hold.
pub const MAILBOX_RANGE: RangeInclusive<usize> = 1..=10_000;
/// Allowed `job_timeout_ms`: a job shorter than 100 ms cannot start a test runner; a day
/// is longer than any test suite should take.
pub const JOB_TIMEOUT_MS_RANGE: RangeInclusive<u64> = 100..=86_400_000;
/// Allowed `job_output_kb`: the tail of each output stream a plugin gets back after a job
/// (it is copied into the plugin's memory).
pub const JOB_OUTPUT_KB_RANGE: RangeInclusive<u64> = 1..=16_384;
/// Allowed `kv_mb`: the most a plugin may keep in its key-value store (keys and values).
pub const KV_MB_RANGE: RangeInclusive<u64> = 1..=4096;
/// Allowed `kv_value_kb`: the largest single value a plugin may store.
pub const KV_VALUE_KB_RANGE: RangeInclusive<u64> = 1..=65_536;
/// Allowed `sqlite_cursors`: open query cursors one plugin may hold at once.
pub const SQLITE_CURSORS_RANGE: RangeInclusive<u64> = 1..=1024;
/// Allowed `sqlite_cursor_idle_ms`: how long a cursor may sit unread before it is reset
/// (and the read lock it holds on the owner's database released).
pub const SQLITE_CURSOR_IDLE_MS_RANGE: RangeInclusive<u64> = 10..=600_000;
/// Allowed `max_component_mb`: the largest plugin component file loaded.
pub const MAX_COMPONENT_MB_RANGE: RangeInclusive<u64> = 1..=1024;
/// Allowed `[outbox] max_messages`: messages kept for one unreachable target.
pub const OUTBOX_MESSAGES_RANGE: RangeInclusive<u64> = 1..=10_000_000;
/// Allowed `[outbox] max_mb`: bytes kept for one unreachable target.
pub const OUTBOX_MB_RANGE: RangeInclusive<u64> = 1..=65_536;
/// Longest plugin name: names become KV namespaces, log tags and file names.
pub const MAX_PLUGIN_NAME: usize = 64;

/// The whole `roost.toml`, as the daemon, `roost check` and `roost invoke` use it. A reload
/// builds a new one and compares it with the running one section by section (hence
/// `PartialEq` everywhere).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The file this config came from; relative paths inside it are resolved against its
    /// directory, and error messages name it.
    #[serde(skip)]
    pub path: PathBuf,
    /// `[host]`: where data lives, the command prefix, logging.
    pub host: HostConfig,
    /// `[limits]`: the default sandbox limits for every plugin.
    pub limits: Limits,
    /// `[rate_limit]`: how many commands one identity may send.
    pub rate_limit: RateLimit,
    /// `[roles]`: which identities are admins or trusted.
    pub roles: Roles,
    /// `[commands.NAME]`: per-command overrides of the role a command needs.
    pub commands: BTreeMap<String, CommandOverride>,
    /// `[gateways.*]`: which chat gateways run.
    pub gateways: Gateways,
    /// `[channels.ALIAS]`: channel aliases plugins post to, each fanning out to targets.
    pub channels: BTreeMap<String, Channel>,
    /// `[plugins.NAME]`: per-plugin switches, grants, limits and free-form config.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// `[outbox]`: how much is kept for a target that cannot be reached.
    pub outbox: OutboxLimits,
}

/// `[outbox]`: the most kept for one unreachable target. Past either cap the oldest
/// messages of that target are dropped first (and logged), so the newest news survives.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxLimits {
    /// Messages kept per target ([`OUTBOX_MESSAGES_RANGE`]).
    pub max_messages: u64,
    /// MiB kept per target ([`OUTBOX_MB_RANGE`]).
    pub max_mb: u64,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_mb: 64,
        }
    }
}

/// `[host]`: settings of the daemon itself rather than of any plugin.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Where the database and the control socket live; relative to the config file's
    /// directory. Read it through [`Config::data_dir`], which resolves it.
    pub data_dir: PathBuf,
    /// The folder watched for plugin `.wasm` files; `None` means `<data_dir>/plugins`. Read
    /// it through [`Config::plugins_dir`].
    pub plugins_dir: Option<PathBuf>,
    /// What starts a command in a chat message (`!` makes `!help` a command).
    pub prefix: String,
    /// The `tracing` filter directive used when `RUST_LOG` is not set.
    pub log: String,
    /// Whether `.wasm` files found in the plugins folder but not named in `[plugins]` are
    /// loaded (with no grants), so dropping a file in is enough to try a plugin.
    pub autoload: bool,
    /// The user jobs started with the `process` capability run as, when the daemon runs as
    /// root; `None` runs them as the daemon's own user.
    pub job_user: Option<String>,
    /// A file the daemon appends its log to, besides stderr; read it through
    /// [`Config::log_file`], which resolves it.
    pub log_file: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            plugins_dir: None,
            prefix: "!".to_string(),
            log: "info".to_string(),
            autoload: true,
            job_user: None,
            log_file: None,
        }
    }
}

/// The sandbox limits one plugin instance runs under. `[limits]` gives the defaults and
/// [`Config::limits_for`] applies a plugin's own overrides.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most linear memory the instance may grow to, in MiB ([`MEMORY_MB_RANGE`]).
    pub memory_mb: u64,
    /// Longest one call into the plugin may run, in milliseconds ([`CALL_TIMEOUT_MS_RANGE`]).
    pub call_timeout_ms: u64,
    /// How many calls and events may queue for the plugin ([`MAILBOX_RANGE`]).
    pub mailbox: usize,
    /// Longest a job started with the `process` capability may run, in milliseconds
    /// ([`JOB_TIMEOUT_MS_RANGE`]).
    pub job_timeout_ms: u64,
    /// KiB kept of the end of each output stream of a job ([`JOB_OUTPUT_KB_RANGE`]).
    pub job_output_kb: u64,
    /// MiB the plugin may keep in its key-value store, keys and values ([`KV_MB_RANGE`]).
    pub kv_mb: u64,
    /// KiB of the largest single value it may store ([`KV_VALUE_KB_RANGE`]).
    pub kv_value_kb: u64,
    /// SQLite cursors it may hold open at once ([`SQLITE_CURSORS_RANGE`]).
    pub sqlite_cursors: u64,
    /// Milliseconds a cursor may sit unread before it is reset, releasing its read lock
    /// ([`SQLITE_CURSOR_IDLE_MS_RANGE`]).
    pub sqlite_cursor_idle_ms: u64,
    /// MiB of the largest component file loaded for it ([`MAX_COMPONENT_MB_RANGE`]).
    pub max_component_mb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: 64,
            call_timeout_ms: 2000,
            mailbox: 64,
            job_timeout_ms: 600_000,
            job_output_kb: 64,
            kv_mb: 16,
            kv_value_kb: 1024,
            sqlite_cursors: 16,
            sqlite_cursor_idle_ms: 1000,
            max_component_mb: 64,
        }
    }
}

/// `[plugins.NAME.limits]`: the limits one plugin overrides; unset fields fall back to the
/// global `[limits]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Overrides [`Limits::memory_mb`].
    pub memory_mb: Option<u64>,
    /// Overrides [`Limits::call_timeout_ms`].
    pub call_timeout_ms: Option<u64>,
    /// Overrides [`Limits::mailbox`].
    pub mailbox: Option<usize>,
    /// Overrides [`Limits::job_timeout_ms`].
    pub job_timeout_ms: Option<u64>,
    /// Overrides [`Limits::job_output_kb`].
    pub job_output_kb: Option<u64>,
    /// Overrides [`Limits::kv_mb`].
    pub kv_mb: Option<u64>,
    /// Overrides [`Limits::kv_value_kb`].
    pub kv_value_kb: Option<u64>,
    /// Overrides [`Limits::sqlite_cursors`].
    pub sqlite_cursors: Option<u64>,
    /// Overrides [`Limits::sqlite_cursor_idle_ms`].
    pub sqlite_cursor_idle_ms: Option<u64>,
    /// Overrides [`Limits::max_component_mb`].
    pub max_component_mb: Option<u64>,
}

impl PluginLimits {
    /// These overrides applied over `base`; the effective limits of one plugin.
    pub fn over(&self, base: &Limits) -> Limits {
        Limits {
            memory_mb: self.memory_mb.unwrap_or(base.memory_mb),
            call_timeout_ms: self.call_timeout_ms.unwrap_or(base.call_timeout_ms),
            mailbox: self.mailbox.unwrap_or(base.mailbox),
            job_timeout_ms: self.job_timeout_ms.unwrap_or(base.job_timeout_ms),
            job_output_kb: self.job_output_kb.unwrap_or(base.job_output_kb),
            kv_mb: self.kv_mb.unwrap_or(base.kv_mb),
            kv_value_kb: self.kv_value_kb.unwrap_or(base.kv_value_kb),
            sqlite_cursors: self.sqlite_cursors.unwrap_or(base.sqlite_cursors),
            sqlite_cursor_idle_ms: self
                .sqlite_cursor_idle_ms
                .unwrap_or(base.sqlite_cursor_idle_ms),
            max_component_mb: self.max_component_mb.unwrap_or(base.max_component_mb),
        }
    }
}

/// `[rate_limit]`: a token bucket per identity, so one user (or a flood of DMs) cannot keep
/// every plugin busy.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Commands per identity per minute, refilled continuously; 0 turns the limit off.
    pub per_minute: u32,
    /// How many commands may arrive at once before the per-minute rate applies.
    pub burst: u32,
    /// Whether admins and the local console are limited too. Off by default: the limit
    /// protects the hub from other people, not its owner from their own scripts.
    pub limit_admins: bool,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_minute: 60,
            burst: 10,
            limit_admins: false,
        }
    }
}

/// `[roles]`: which identities hold which role. An identity is `console` or
/// `<gateway>:<user id>`; anyone not listed has [`Role::Anyone`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Roles {
    /// Identities that may run every command. Default: the local console only.
    pub admin: Vec<String>,
    /// Identities that may run commands that need [`Role::Trusted`].
    pub trusted: Vec<String>,
}

impl Default for Roles {
    fn default() -> Self {
        Self {
            admin: vec!["console".to_string()],
            trusted: Vec::new(),
        }
    }
}

/// What a command needs from its sender, and what a sender has. Ordered, so "may run" is
/// `have >= need`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everyone who can reach a gateway.
    Anyone,
    /// Identities listed in `roles.trusted`.
    Trusted,
    /// Identities listed in `roles.admin`.
    Admin,
}

impl Role {
    /// The name used in `roost.toml` and in chat replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anyone => "anyone",
            Role::Trusted => "trusted",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[commands.NAME]`: lets the user change the role any command needs, built-ins included,
/// so e.g. `!reload` can be delegated to trusted users without changing a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandOverride {
    /// The role the command needs instead of the one its plugin declared.
    pub role: Role,
}

/// `[gateways]`: the local console, and any number of named chat platform instances
/// (`[gateways.discord]`, `[gateways.slack-work]`, …), so two Slack workspaces can run side by
/// side. Channel targets and replies name an instance: `slack-work:C123`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct Gateways {
    /// `[gateways.console]`: the local socket `roost chat` talks to.
    pub console: ConsoleGateway,
    /// Every other `[gateways.NAME]` table: one platform connection each.
    #[serde(flatten)]
    pub instances: BTreeMap<String, ChatGateway>,
}

/// Which platform a `[gateways.NAME]` instance speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    /// Discord, through serenity: bot token, websocket gateway, REST.
    Discord,
    /// Slack: Socket Mode (app-level token) and the Web API (bot token).
    Slack,
}

impl GatewayKind {
    /// The name used in config and in identities (`discord:<user>`, `slack:<team>/<user>`).
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Discord => "discord",
            GatewayKind::Slack => "slack",
        }
    }
}

/// `[gateways.NAME]`: one connection to a chat platform. Tokens are never written here: they
/// come from the environment or from a secrets file this table names, and no plugin sees them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatGateway {
    /// The platform; may be left out when NAME is `discord`, `slack`, or starts with
    /// `discord-` or `slack-`.
    pub kind: Option<GatewayKind>,
    /// Whether the daemon connects; `false` keeps the queue of its targets for later.
    pub enabled: bool,
    /// Environment variable holding the bot token. Default: `ROOST_<NAME>_TOKEN` (NAME upper
    /// case, `-` as `_`), e.g. `ROOST_DISCORD_TOKEN`.
    pub token_env: Option<String>,
    /// A file holding the bot token (wins over the environment). Relative to this config file.
    pub token_file: Option<PathBuf>,
    /// Slack only: environment variable holding the app-level (Socket Mode) token. Default:
    /// `ROOST_<NAME>_APP_TOKEN`.
    pub app_token_env: Option<String>,
    /// Slack only: a file holding the app-level token.
    pub app_token_file: Option<PathBuf>,
    /// Base URL of the platform's API instead of the real one, e.g. `http://127.0.0.1:8080`:
    /// for tests (a fake platform) and API proxies.
    pub api_base: Option<String>,
    /// Seconds a connection may stay not-connected before the health probe restarts it.
    pub health_probe_secs: u64,
    /// Mirror rules: messages seen in one channel of this gateway copied to other targets.
    pub mirror: Vec<MirrorRule>,
}

impl Default for ChatGateway {
    fn default() -> Self {
        Self {
            kind: None,
            enabled: true,
            token_env: None,
            token_file: None,
            app_token_env: None,
            app_token_file: None,
            api_base: None,
            health_probe_secs: 60,
            mirror: Vec::new(),
        }
    }
}

/// `[[gateways.NAME.mirror]]`: copy what people write in `from` (a channel id of this gateway)
/// to `to` (targets), with the author's name; edits and deletes follow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorRule {
    /// Channel id on this gateway whose messages are copied.
    pub from: String,
    /// Targets the copies go to: `<gateway>:<channel id>` or `console`.
    pub to: Vec<String>,
}

impl ChatGateway {
    /// The platform of instance `name`: `kind`, else guessed from the name.
    pub fn kind_for(&self, name: &str) -> Option<GatewayKind> {
        self.kind.or_else(|| {
            let base = name.split('-').next().unwrap_or(name);
            match base {
                "discord" => Some(GatewayKind::Discord),
                "slack" => Some(GatewayKind::Slack),
                _ => None,
            }
        })
    }

    /// The environment variable the bot token is read from.
    pub fn token_env_for(&self, name: &str) -> String {
        self.token_env
            .clone()
            .unwrap_or_else(|| format!("ROOST_{}_TOKEN", env_name(name)))
    }

    /// The environment variable the Slack app-level token is read from.
    pub fn app_token_env_for(&self, name: &str) -> String {
        self.app_token_env
            .clone()
            .unwrap_or_else(|| format!("ROOST_{}_APP_TOKEN", env_name(name)))
    }
}

fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// `[gateways.console]`: the local console gateway, on by default so a fresh install can be
/// talked to without any chat account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleGateway {
    /// Whether the daemon listens on `<data_dir>/roost.sock`.
    pub enabled: bool,
    /// Console messages kept while no interactive `roost chat` is attached, shown to the
    /// next one that attaches.
    pub backlog: usize,
}

impl Default for ConsoleGateway {
    fn default() -> Self {
        Self {
            enabled: true,
            backlog: 100,
        }
    }
}

/// `[channels.ALIAS]`: a name plugins post to, so a plugin never needs to know platform
/// channel ids and one message can fan out to several platforms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channel {
    /// Where messages to this alias go: `console` or `<gateway>:<channel id>`; never empty.
    pub targets: Vec<String>,
}

/// `[plugins.NAME]`: everything the user decides about one plugin.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginConfig {
    /// Whether the plugin runs; `false` keeps its grants and data but does not load it.
    pub enabled: bool,
    /// Where its `.wasm` is. [`Config::parse`] has already resolved it against the config
    /// file's directory. `None`: the build embedded in roost for first-party plugins,
    /// otherwise `<plugins_dir>/<name>.wasm`.
    pub path: Option<PathBuf>,
    /// What the plugin may do beyond computing; nothing by default.
    pub grants: Grants,
    /// Its overrides of the global `[limits]`.
    pub limits: PluginLimits,
    /// `[plugins.NAME.config]`: free-form settings handed to the plugin's `init` as JSON
    /// (see [`PluginConfig::config_json`]); roost does not interpret them.
    pub config: toml::Table,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            grants: Grants::default(),
            limits: PluginLimits::default(),
            config: toml::Table::new(),
        }
    }
}

impl PluginConfig {
    /// The plugin's `[plugins.NAME.config]` table as the JSON text its `init` receives.
    /// Datetimes become RFC 3339 strings and non-finite floats become `null`, since JSON
    /// has neither.
    pub fn config_json(&self) -> String {
        let map = self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// `[plugins.NAME.grants]`: the capabilities a plugin may use. Deny by default: a plugin
/// with no grants can compute, log and use its own KV namespace, nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Channel aliases (keys of `[channels]`) the plugin may post to.
    pub channels: Vec<String>,
    /// Whether the plugin may list, reload, enable and disable plugins (the `admin`
    /// interface); meant for the `bot` plugin only.
    pub admin: bool,
    /// SQLite files, or directories holding them, the plugin may open read-only (the
    /// `sqlite` interface). Resolved against the config file's directory.
    pub sqlite_read: Vec<PathBuf>,
    /// Directories the plugin may write SQLite snapshots into.
    pub sqlite_write: Vec<PathBuf>,
    /// DNS servers ("ip:port", or an ip for port 53) the plugin may query (the `dns`
    /// interface).
    pub dns_servers: Vec<String>,
    /// Whether the plugin may also query the system's resolvers (/etc/resolv.conf).
    pub dns_system: bool,
    /// The plugin's DNS query budget per minute (default 600): raise it for a monitor
    /// watching hundreds of names.
    pub dns_queries_per_minute: Option<u32>,
    /// Directories whose trees the plugin may watch for changes (the `watch` interface).
    /// Resolved against the config file's directory.
    pub watch_roots: Vec<PathBuf>,
    /// Programs the plugin may start (the `process` interface): names looked up on the
    /// daemon's PATH when a job starts, or absolute paths.
    pub programs: Vec<String>,
    /// Directories jobs may run in (and below). Resolved against the config file's
    /// directory.
    pub process_dirs: Vec<PathBuf>,
    /// Environment variables a job may be given (and that pass through from the daemon's
    /// environment); every other variable but PATH, HOME, USER, LOGNAME, LANG, LC_ALL,
    /// LC_CTYPE, TZ and TMPDIR is removed.
    pub env: Vec<String>,
    /// Whether jobs may be `/bin/sh -c` command lines.
    pub shell: bool,
    /// Files, or directories of them, whose contents a job may hand back to the plugin
    /// when it ends (test reports). Resolved against the config file's directory.
    pub read_files: Vec<PathBuf>,
}

/// Why a config could not be used. Every variant but [`ConfigError::Io`] renders as
/// `path:line:column: message`, so editors and terminals can jump to the mistake.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read config: {source}", path.display())]
    Io {
        /// The file roost tried to read.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{}: {message}", location(.path, *.position))]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// 1-based line and column (in characters) of the mistake, when toml knows it.
        position: Option<(usize, usize)>,
        /// What toml expected.
        message: String,
    },
    /// Valid TOML that does not fit roost's schema: an unknown key, a value of the wrong
    /// type, an unknown role.
    #[error("{}: {message}", location(.path, *.position))]
    Schema {
        /// The config file.
        path: PathBuf,
        /// 1-based line and column (in characters) of the offending key or value.
        position: Option<(usize, usize)>,
        /// The key path (when known) and what was expected.
        message: String,
    },
    /// Fits the schema but a value is unusable: out of range, a bad name, a reference to
    /// something that is not defined.
    #[error("{}: {message}", location(.path, *.position))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line and column (in characters) of the offending value.
        position: Option<(usize, usize)>,
        /// The key path and what is wrong with the value.
        message: String,
    },
}

impl ConfigError {
    /// 1-based line and column (counted in characters) of the mistake, for tests and for
    /// tools that want to point at it; `None` for I/O errors or when toml gave no span.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Syntax { position, .. }
            | ConfigError::Schema { position, .. }
            | ConfigError::Invalid { position, .. } => *position,
        }
    }

    /// The config file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Io { path, .. }
            | ConfigError::Syntax { path, .. }
            | ConfigError::Schema { path, .. }
            | ConfigError::Invalid { path, .. } => path,
        }
    }
}

fn location(path: &Path, position: Option<(usize, usize)>) -> String {
    match position {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    }
}

impl Config {
    /// Parses and validates `text`. `path` names the file in error messages and is the
    /// base for relative paths; nothing is read from disk. Used by [`Config::load`] and by
    /// tests and `roost check`, which already hold the text.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let doc = DeTable::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            position: e.span().map(|s| line_col(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let mut config = Config::deserialize(toml::de::Deserializer::from(doc.clone()))
            .map_err(|e| schema_error(path, text, &doc, &e))?;
        config.path = path.to_path_buf();

        let problem = config
            .problems()
            .into_iter()
            .map(|p| {
                let span = span_of(&doc, &p.at, p.on_key);
                (span, p)
            })
            // Report the mistake nearest the top of the file, as a compiler would.
            .min_by_key(|(span, _)| span.as_ref().map_or(usize::MAX, |s| s.start));
        if let Some((span, problem)) = problem {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                position: span.map(|s| line_col(text, s.start)),
                message: format!("{}: {}", dotted(&problem.at), problem.message),
            });
        }

        let dir = config.dir().to_path_buf();
        for gateway in config.gateways.instances.values_mut() {
            for file in [&mut gateway.token_file, &mut gateway.app_token_file] {
                if let Some(p) = file.take() {
                    *file = Some(tidy(&dir.join(p)));
                }
            }
        }
        for plugin in config.plugins.values_mut() {
            if let Some(p) = plugin.path.take() {
                plugin.path = Some(dir.join(p));
            }
            let grants = &mut plugin.grants;
            for p in grants
                .sqlite_read
                .iter_mut()
                .chain(grants.sqlite_write.iter_mut())
                .chain(grants.watch_roots.iter_mut())
                .chain(grants.process_dirs.iter_mut())
                .chain(grants.read_files.iter_mut())
            {
                *p = tidy(&dir.join(&*p));
            }
        }
        tracing::debug!(
            path = %path.display(),
            plugins = config.plugins.len(),
            channels = config.channels.len(),
            "config parsed"
        );
        Ok(config)
    }

    /// Reads and parses the file at `path`: the daemon's start-up and every reload.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// The directory the config file is in, which relative paths are resolved against.
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new(""))
    }

    /// The directory relative paths in this config (and the paths plugins pass to the
    /// `watch` and `process` capabilities) are resolved against: the config file's.
    pub fn base_dir(&self) -> PathBuf {
        match self.dir() {
            d if d.as_os_str().is_empty() => PathBuf::from("."),
            d => d.to_path_buf(),
        }
    }

    /// `host.data_dir` resolved against the config file's directory: where the database
    /// and the socket live.
    pub fn data_dir(&self) -> PathBuf {
        tidy(&self.dir().join(&self.host.data_dir))
    }

    /// The config used when there is no file at all (`roost invoke` from any directory):
    /// every default, the data in `data_dir`.
    pub fn builtin(data_dir: PathBuf) -> Config {
        Config {
            path: data_dir.join("roost.toml"),
            host: HostConfig {
                data_dir: PathBuf::from("."),
                ..HostConfig::default()
            },
            ..Config::default()
        }
    }

    /// `host.log_file` resolved against the config file's directory.
    pub fn log_file(&self) -> Option<PathBuf> {
        self.host
            .log_file
            .as_ref()
            .map(|f| tidy(&self.dir().join(f)))
    }

    /// The folder watched for plugin `.wasm` files: `host.plugins_dir` resolved against the
    /// config file's directory, or `<data_dir>/plugins` when it is not set.
    pub fn plugins_dir(&self) -> PathBuf {
        match &self.host.plugins_dir {
            Some(dir) => tidy(&self.dir().join(dir)),
            None => self.data_dir().join("plugins"),
        }
    }

    /// The console gateway's socket, `<data_dir>/roost.sock`; `roost chat` and
    /// `roost status` connect to it.
    pub fn socket_path(&self) -> PathBuf {
        self.data_dir().join(SOCKET_FILE)
    }

    /// The role `identity` holds: admin if listed in `roles.admin`, else trusted if listed
    /// in `roles.trusted`, else [`Role::Anyone`]. The router calls it for every command.
    pub fn role_of(&self, identity: &str) -> Role {
        if self.roles.admin.iter().any(|i| i == identity) {
            Role::Admin
        } else if self.roles.trusted.iter().any(|i| i == identity) {
            Role::Trusted
        } else {
            Role::Anyone
        }
    }

    /// The role the user set for `command` under `[commands]`, which wins over the role the
    /// plugin declared.
    pub fn command_role(&self, command: &str) -> Option<Role> {
        self.commands.get(command).map(|c| c.role)
    }

    /// The `[plugins.NAME]` section for `name`, if the config mentions it.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.get(name)
    }

    /// The limits plugin `name` runs under: its `[plugins.NAME.limits]` fields over the
    /// global `[limits]` (just the global ones for a plugin the config does not mention).
    pub fn limits_for(&self, name: &str) -> Limits {
        match self.plugins.get(name) {
            Some(p) => p.limits.over(&self.limits),
            None => self.limits.clone(),
        }
    }

    /// The targets of channel alias `alias`, or `None` if there is no such alias; the chat
    /// capability fans a message out to each of them.
    pub fn channel_targets(&self, alias: &str) -> Option<&[String]> {
        self.channels.get(alias).map(|c| c.targets.as_slice())
    }

    /// The commented starter config `roost init` writes: the console gateway, the `bot`
    /// plugin with its admin grant, and an `announce` channel alias. It is also
    /// It is `config/roost.toml` with `data_dir = "data"`, so one file is the source.
    pub fn starter() -> String {
        REPO_CONFIG.replacen(REPO_DATA_DIR, "data_dir = \"data\"", 1)
    }

    /// The starter config as `roost init` should write it to `path`: [`Config::starter`]
    /// with `data_dir` rewritten so the data lands in `./data` of the directory `init` ran
    /// in, wherever under it the config goes. `config/roost.toml` (the default) gets
    /// `data_dir = "../data"`, which is exactly the repository's `config/roost.toml`. An
    /// absolute `path`, or one with `..` in it, keeps `data_dir = "data"` next to the file.
    pub fn starter_for(path: &Path) -> String {
        let depth = path.parent().map_or(Some(0), |dir| {
            dir.components().try_fold(0usize, |n, c| match c {
                std::path::Component::Normal(_) => Some(n + 1),
                std::path::Component::CurDir => Some(n),
                _ => None,
            })
        });
        let data_dir = match depth {
            Some(n) => "../".repeat(n) + "data",
            None => "data".to_string(),
        };
        REPO_CONFIG.replacen(REPO_DATA_DIR, &format!("data_dir = {data_dir:?}"), 1)
    }

    /// Every value that fits the schema but cannot be used, each with the key path it came
    /// from. Empty when the config is valid.
    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();

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
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.host.log) {
            out.push(Problem::value(
                &["host", "log"],
                format!("not a log filter ({e}); try \"info\" or \"info,roost=debug\""),
            ));
        }

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
        check_limits(&mut out, &["limits"], &global);
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

        if self.rate_limit.per_minute > 0 && self.rate_limit.burst == 0 {
            out.push(Problem::value(
                &["rate_limit", "burst"],
                "must be at least 1 when per_minute is set (0 would refuse every command)"
                    .to_string(),
            ));
        }

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

        for (name, gateway) in &self.gateways.instances {
            gateway_problems(&mut out, name, gateway);
        }

        for (name, plugin) in &self.plugins {
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
                if crate::capabilities::dns::parse_server(server).is_none() {
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
                            message: "is empty; name a directory, e.g. \"../my-project\""
                                .to_string(),
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
            check_limits(&mut out, &["plugins", name, "limits"], &plugin.limits);
        }
        out
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

/// One step of a key path into the document.
#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn key(k: &str) -> Self {
        Seg::Key(k.to_string())
    }
}

/// A validation failure and where it is: the key path, and whether to point at the key
/// itself (a bad name) or at its value.
#[derive(Debug)]
struct Problem {
    at: Vec<Seg>,
    on_key: bool,
    message: String,
}

impl Problem {
    fn value(at: &[&str], message: String) -> Self {
        Self {
            at: at.iter().map(|k| Seg::key(k)).collect(),
            on_key: false,
            message,
        }
    }

    fn key(at: &[&str], message: String) -> Self {
        Self {
            at: at.iter().map(|k| Seg::key(k)).collect(),
            on_key: true,
            message,
        }
    }
}

/// `plugins.bot.grants.channels[0]`, quoting keys that are not bare TOML keys.
fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    let _ = write!(out, "{k:?}");
                }
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// The byte span of the key or value at `path`. When the path runs out early (the value is
/// a default, not in the file) the deepest part that exists is used, so the error still
/// points at the right table.
fn span_of(doc: &Spanned<DeTable<'_>>, path: &[Seg], on_key: bool) -> Option<Range<usize>> {
    let mut best = None;
    let mut node: Option<&DeValue<'_>> = None;
    let mut table = Some(doc.get_ref());
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let found = match (seg, table, node) {
            (Seg::Key(k), Some(t), _) => t.get_key_value(k.as_str()).map(|(key, value)| {
                if last && on_key {
                    (key.span(), value)
                } else {
                    (value.span(), value)
                }
            }),
            (Seg::Index(n), _, Some(DeValue::Array(a))) => a.get(*n).map(|v| (v.span(), v)),
            _ => None,
        };
        let Some((span, value)) = found else {
            break;
        };
        best = Some(span);
        node = Some(value.get_ref());
        table = value.get_ref().as_table();
    }
    best
}

/// Turns a serde error into a [`ConfigError::Schema`], prefixing the message with the key
/// path of the table (for an unknown key) or value (for a bad value) it points at.
fn schema_error(
    path: &Path,
    text: &str,
    doc: &Spanned<DeTable<'_>>,
    err: &toml::de::Error,
) -> ConfigError {
    let message = err.message().trim();
    let span = err.span();
    let located = span
        .as_ref()
        .and_then(|s| locate(doc.get_ref(), s, &mut Vec::new()));
    let message = match located {
        Some((mut at, on_key)) => {
            if on_key {
                at.pop();
            }
            if at.is_empty() {
                message.to_string()
            } else {
                format!("{}: {message}", dotted(&at))
            }
        }
        None => message.to_string(),
    };
    ConfigError::Schema {
        path: path.to_path_buf(),
        position: span.map(|s| line_col(text, s.start)),
        message,
    }
}

/// Finds the key or value whose span is exactly `span`: its path, and whether it was the key.
fn locate(table: &DeTable<'_>, span: &Range<usize>, at: &mut Vec<Seg>) -> Option<(Vec<Seg>, bool)> {
    for (key, value) in table.iter() {
        at.push(Seg::Key(key.get_ref().to_string()));
        if key.span() == *span {
            return Some((at.clone(), true));
        }
        if let Some(found) = locate_value(value, span, at) {
            return Some(found);
        }
        at.pop();
    }
    None
}

fn locate_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    at: &mut Vec<Seg>,
) -> Option<(Vec<Seg>, bool)> {
    // Children first: a table declared by a header shares nothing with its keys, but an
    // inline value's span contains its children's.
    match value.get_ref() {
        DeValue::Table(t) => {
            if let Some(found) = locate(t, span, at) {
                return Some(found);
            }
        }
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                at.push(Seg::Index(i));
                if let Some(found) = locate_value(item, span, at) {
                    return Some(found);
                }
                at.pop();
            }
        }
        _ => {}
    }
    (value.span() == *span).then(|| (at.clone(), false))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The repository's `config/roost.toml`: the one source of the starter config.
const REPO_CONFIG: &str = include_str!("../../config/roost.toml");
/// The `data_dir` line of [`REPO_CONFIG`], which `roost init` rewrites.
const REPO_DATA_DIR: &str = "data_dir = \"../data\"";

/// `a/b/../c` → `a/c` without touching the filesystem, so paths in messages read the way a
/// user would write them (`config/../data` → `data`). A `..` that cannot be folded stays.
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config/roost.toml"), text)
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(c) => panic!("expected an error, got {c:#?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn an_empty_file_is_a_valid_config_with_defaults() {
        let c = parse("").expect("empty config");
        assert_eq!(c.host, HostConfig::default());
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.roles.admin, vec!["console".to_string()]);
        assert!(c.gateways.console.enabled);
        assert!(c.host.autoload);
        assert_eq!(c.host.prefix, "!");
        assert!(c.plugins.is_empty());
        assert_eq!(c.path, Path::new("config/roost.toml"));
    }

    #[test]
    fn a_syntax_error_points_at_its_line_and_column() {
        let e = err("[host]\nprefix = \"!\"\nlog = \"info\n");
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
        assert_eq!(e.line_col().map(|(l, _)| l), Some(3), "{e}");
        let e = err("[host]\nprefix = = \"!\"\n");
        assert_eq!(e.line_col(), Some((2, 10)), "{e}");
        assert!(e.to_string().starts_with("config/roost.toml:2:10: "), "{e}");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "é" is two bytes but one column: the stray `x` is the line's 10th byte, column 9.
        let e = err("[host]\nlog=\"é\" x\n");
        assert_eq!(e.line_col(), Some((2, 9)), "{e}");
        assert_eq!(line_col("é=", 2), (1, 2));
        assert_eq!(line_col("aé\nxy", 5), (2, 2));
    }

    #[test]
    fn an_unknown_top_level_key_names_the_expected_sections() {
        let text = "[host]\nprefix = \"!\"\n\n\n\n\n[plugin.bot]\nenabled = true\n";
        let e = err(text);
        assert!(matches!(e, ConfigError::Schema { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("config/roost.toml:7:2: unknown field `plugin`, expected one of"),
            "{shown}"
        );
        assert!(shown.contains("`plugins`"), "{shown}");
        assert!(shown.contains("`host`"), "{shown}");
    }

    #[test]
    fn a_misspelt_nested_key_names_its_table_line_and_the_expected_keys() {
        let text =
            "[channels.announce]\ntargets = [\"console\"]\n\n[plugins.bot.grants]\nchanels = []\n";
        let e = err(text);
        assert_eq!(e.line_col(), Some((5, 1)), "{e}");
        assert_eq!(
            e.to_string(),
            "config/roost.toml:5:1: plugins.bot.grants: unknown field `chanels`, expected one of `channels`, `admin`, `sqlite_read`, `sqlite_write`, `dns_servers`, `dns_system`, `dns_queries_per_minute`, `watch_roots`, `programs`, `process_dirs`, `env`, `shell`, `read_files`"
        );
    }

    #[test]
    fn a_bad_role_value_lists_the_roles() {
        let e = err("[commands.reload]\nrole = \"owner\"\n");
        assert_eq!(e.line_col(), Some((2, 8)), "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("commands.reload.role: unknown variant `owner`"),
            "{shown}"
        );
        assert!(
            shown.contains("`anyone`") && shown.contains("`admin`"),
            "{shown}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_says_what_was_expected() {
        let e = err("[limits]\nmemory_mb = \"lots\"\n");
        assert_eq!(e.line_col(), Some((2, 13)), "{e}");
        assert!(
            e.to_string()
                .contains("limits.memory_mb: invalid type: string \"lots\", expected u64"),
            "{e}"
        );
    }

    #[test]
    fn memory_mb_zero_is_out_of_range_with_its_position() {
        let e = err("[limits]\nmemory_mb = 0\n");
        assert!(matches!(e, ConfigError::Invalid { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "config/roost.toml:2:13: limits.memory_mb: 0 is out of range; expected 1 to 4096 MiB"
        );
        let e = err("[plugins.x.limits]\ncall_timeout_ms = 5\n");
        assert_eq!(e.line_col(), Some((2, 19)), "{e}");
        assert!(
            e.to_string().contains("plugins.x.limits.call_timeout_ms"),
            "{e}"
        );
    }

    #[test]
    fn a_grant_naming_a_missing_channel_alias_points_at_that_value() {
        let text = "[channels.announce]\ntargets = [\"console\"]\n\n[plugins.bot]\nenabled = true\n\n[plugins.bot.grants]\nadmin = true\nchannels = [\"announce\", \"anounce\"]\n";
        let e = err(text);
        assert_eq!(
            e.to_string(),
            "config/roost.toml:9:25: plugins.bot.grants.channels[1]: no channel alias `anounce` (known: announce)"
        );
    }

    #[test]
    fn watch_and_process_grants_are_checked_with_their_positions() {
        let e = err("[plugins.tw.grants]\nprograms = [\"pytest\", \"bin/pytest\"]\n");
        assert_eq!(
            e.to_string(),
            "config/roost.toml:2:23: plugins.tw.grants.programs[1]: `bin/pytest` is not a program; write a name found on PATH (\"pytest\") or an absolute path"
        );
        let e = err("[plugins.tw.grants]\nenv = [\"PYTHONPATH\", \"MY-VAR\"]\n");
        assert_eq!(e.line_col(), Some((2, 22)), "{e}");
        assert!(e.to_string().contains("grants.env[1]"), "{e}");
        let e = err("[plugins.tw.grants]\nwatch_roots = [\"\"]\n");
        assert_eq!(e.line_col(), Some((2, 16)), "{e}");
        let e = err("[plugins.tw.limits]\njob_timeout_ms = 5\n");
        assert!(
            e.to_string()
                .contains("plugins.tw.limits.job_timeout_ms: 5 is out of range"),
            "{e}"
        );
        let c = Config::parse(
            Path::new("/etc/roost/roost.toml"),
            "[plugins.tw.grants]\nwatch_roots = [\"../api\"]\nprocess_dirs = [\"../api\"]\nread_files = [\"../api/.roost\"]\nprograms = [\"pytest\", \"/usr/bin/cargo\"]\nenv = [\"PYTHONPATH\"]\nshell = true\n",
        )
        .expect("valid");
        let g = &c.plugin("tw").expect("tw").grants;
        assert_eq!(g.watch_roots, vec![PathBuf::from("/etc/api")]);
        assert_eq!(g.process_dirs, vec![PathBuf::from("/etc/api")]);
        assert_eq!(g.read_files, vec![PathBuf::from("/etc/api/.roost")]);
        assert_eq!(c.base_dir(), Path::new("/etc/roost"));
        assert!(g.shell);
        assert_eq!(c.limits_for("tw").job_timeout_ms, 600_000);
    }

    #[test]
    fn the_first_mistake_in_the_file_is_reported() {
        let text = "[plugins.bot.grants]\nchannels = [\"nope\"]\n[limits]\nmailbox = 0\n";
        let e = err(text);
        assert_eq!(e.line_col(), Some((2, 13)), "{e}");
    }

    #[test]
    fn bad_names_and_targets_are_rejected() {
        let e = err("[plugins.Bot]\n");
        assert_eq!(e.line_col(), Some((1, 10)), "{e}");
        assert!(e.to_string().contains("not a plugin name"), "{e}");
        let e = err(&format!("[plugins.{}]\n", "a".repeat(65)));
        assert!(e.to_string().contains("not a plugin name"), "{e}");
        assert!(parse(&format!("[plugins.{}]\n", "a".repeat(64))).is_ok());
        assert!(parse("[plugins.db-diff_2]\n").is_ok());

        let e = err("[channels.a]\ntargets = [\"console\", \"discord\"]\n");
        assert_eq!(e.line_col(), Some((2, 23)), "{e}");
        let e = err("[channels.a]\ntargets = []\n");
        assert!(e.to_string().contains("at least one target"), "{e}");
        let e = err("[channels.a]\n");
        assert_eq!(e.line_col(), Some((1, 1)), "{e}");
        assert!(parse("[channels.a]\ntargets = [\"console\", \"discord:123\"]\n").is_ok());

        let e = err("[host]\nprefix = \"\"\n");
        assert_eq!(e.line_col(), Some((2, 10)), "{e}");
        let e = err("[commands.\"!reload\"]\nrole = \"trusted\"\n");
        assert!(e.to_string().contains("without the prefix"), "{e}");
    }

    #[test]
    fn starter_parses_and_enables_the_bot_with_its_grants() {
        let c = parse(&Config::starter()).expect("starter config");
        let bot = c.plugin("bot").expect("bot section");
        assert!(bot.enabled);
        assert!(bot.grants.admin);
        assert_eq!(bot.grants.channels, vec!["announce".to_string()]);
        assert_eq!(
            c.channel_targets("announce"),
            Some(&["console".to_string()][..])
        );
        assert_eq!(c.role_of("console"), Role::Admin);
        assert!(c.gateways.console.enabled);
        assert_eq!(c.host.data_dir, Path::new("data"));
        // Every section is spelt out, so users see what they can set.
        let starter = Config::starter();
        let doc = DeTable::parse(&starter).expect("starter parses");
        for section in [
            "host",
            "limits",
            "rate_limit",
            "roles",
            "commands",
            "gateways",
            "channels",
            "plugins",
        ] {
            assert!(
                doc.get_ref().contains_key(section),
                "starter lacks [{section}]"
            );
        }
    }

    #[test]
    fn the_repository_config_is_the_starter_with_data_at_the_repo_root() {
        let repo = include_str!("../../config/roost.toml");
        let c = Config::parse(Path::new("config/roost.toml"), repo).expect("config/roost.toml");
        assert_eq!(c.data_dir(), Path::new("data"));
        assert_eq!(
            Config::starter().replace("data_dir = \"data\"", "data_dir = \"../data\""),
            repo,
            "config/roost.toml must stay the starter config with data_dir = \"../data\""
        );
    }

    #[test]
    fn starter_for_keeps_data_in_the_directory_init_ran_in() {
        let repo = include_str!("../../config/roost.toml");
        assert_eq!(Config::starter_for(Path::new(DEFAULT_CONFIG_PATH)), repo);
        assert_eq!(
            Config::starter_for(Path::new("roost.toml")),
            Config::starter()
        );
        assert_eq!(
            Config::starter_for(Path::new("./roost.toml")),
            Config::starter()
        );
        assert_eq!(
            Config::starter_for(Path::new("/etc/roost/roost.toml")),
            Config::starter()
        );
        assert_eq!(
            Config::starter_for(Path::new("../x/roost.toml")),
            Config::starter()
        );
        let deep = Config::starter_for(Path::new("a/b/roost.toml"));
        let c = Config::parse(Path::new("a/b/roost.toml"), &deep).expect("parses");
        assert_eq!(c.data_dir(), Path::new("data"));
    }

    #[test]
    fn gateway_instances_are_named_tables_with_their_kind_and_token_sources() {
        let text = "[gateways.console]\nenabled = false\n[gateways.discord]\napi_base = \"http://127.0.0.1:9\"\ntoken_file = \"secrets/d.token\"\n[gateways.slack-work]\n[gateways.team-chat]\nkind = \"slack\"\n";
        let c = Config::parse(Path::new("/etc/roost/roost.toml"), text).expect("config");
        assert!(!c.gateways.console.enabled);
        let d = &c.gateways.instances["discord"];
        assert_eq!(d.kind_for("discord"), Some(GatewayKind::Discord));
        assert_eq!(
            d.token_file.as_deref(),
            Some(Path::new("/etc/roost/secrets/d.token"))
        );
        assert_eq!(d.token_env_for("discord"), "ROOST_DISCORD_TOKEN");
        let s = &c.gateways.instances["slack-work"];
        assert_eq!(s.kind_for("slack-work"), Some(GatewayKind::Slack));
        assert_eq!(
            s.app_token_env_for("slack-work"),
            "ROOST_SLACK_WORK_APP_TOKEN"
        );
        assert_eq!(
            c.gateways.instances["team-chat"].kind_for("team-chat"),
            Some(GatewayKind::Slack)
        );

        let e = err("[gateways.chat]\nenabled = true\n");
        assert_eq!(e.line_col(), Some((1, 11)), "{e}");
        assert!(e.to_string().contains("set kind = \"discord\""), "{e}");
        let e = err("[gateways.discord]\napi_base = \"discord.example\"\n");
        assert_eq!(e.line_col(), Some((2, 12)), "{e}");
        let e = err("[gateways.discord]\ntoken = \"secret\"\n");
        assert!(e.to_string().contains("unknown field `token`"), "{e}");
    }

    #[test]
    fn role_of_prefers_admin_then_trusted_then_anyone() {
        let c = parse("[roles]\nadmin = [\"discord:1\"]\ntrusted = [\"discord:1\", \"slack:2\"]\n")
            .expect("config");
        assert_eq!(c.role_of("discord:1"), Role::Admin);
        assert_eq!(c.role_of("slack:2"), Role::Trusted);
        assert_eq!(c.role_of("console"), Role::Anyone);
        assert!(Role::Admin > Role::Trusted && Role::Trusted > Role::Anyone);
    }

    #[test]
    fn command_overrides_are_looked_up_by_name() {
        let c = parse("[commands.reload]\nrole = \"trusted\"\n").expect("config");
        assert_eq!(c.command_role("reload"), Some(Role::Trusted));
        assert_eq!(c.command_role("ping"), None);
    }

    #[test]
    fn limits_for_merges_plugin_fields_over_the_globals() {
        let text =
            "[limits]\nmemory_mb = 128\nmailbox = 10\n[plugins.big.limits]\nmemory_mb = 512\n";
        let c = parse(text).expect("config");
        assert_eq!(
            c.limits_for("big"),
            Limits {
                memory_mb: 512,
                call_timeout_ms: 2000,
                mailbox: 10,
                ..Limits::default()
            }
        );
        assert_eq!(
            c.limits_for("unknown"),
            Limits {
                memory_mb: 128,
                call_timeout_ms: 2000,
                mailbox: 10,
                ..Limits::default()
            }
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_files_directory() {
        let text = "[host]\ndata_dir = \"../data\"\n[plugins.x]\npath = \"wasm/x.wasm\"\n[plugins.y]\npath = \"/abs/y.wasm\"\n";
        let c = Config::parse(Path::new("/etc/roost/roost.toml"), text).expect("config");
        assert_eq!(c.data_dir(), Path::new("/etc/data"));
        assert_eq!(c.plugins_dir(), Path::new("/etc/data/plugins"));
        assert_eq!(c.socket_path(), Path::new("/etc/data/roost.sock"));
        assert_eq!(
            c.plugin("x").and_then(|p| p.path.as_deref()),
            Some(Path::new("/etc/roost/wasm/x.wasm"))
        );
        assert_eq!(
            c.plugin("y").and_then(|p| p.path.as_deref()),
            Some(Path::new("/abs/y.wasm"))
        );

        let c = Config::parse(
            Path::new("/etc/roost/roost.toml"),
            "[host]\nplugins_dir = \"enabled\"\n",
        )
        .expect("config");
        assert_eq!(c.plugins_dir(), Path::new("/etc/roost/enabled"));
        // A bare file name has no directory: paths stay relative to the working directory.
        let c = Config::parse(Path::new("roost.toml"), "").expect("config");
        assert_eq!(c.data_dir(), Path::new("data"));
        // `..` that has nothing to fold into stays.
        let c = Config::parse(Path::new("roost.toml"), "[host]\ndata_dir = \"../d\"\n")
            .expect("config");
        assert_eq!(c.data_dir(), Path::new("../d"));
    }

    #[test]
    fn plugin_config_becomes_json() {
        let text = "[plugins.w.config]\nroot = \"src\"\nn = 3\nratio = 0.5\nwhen = 1979-05-27T07:32:00Z\nlist = [1, \"a\"]\n[plugins.w.config.nested]\nok = true\n";
        let c = parse(text).expect("config");
        let json: serde_json::Value =
            serde_json::from_str(&c.plugin("w").expect("w").config_json()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "root": "src", "n": 3, "ratio": 0.5, "when": "1979-05-27T07:32:00Z",
                "list": [1, "a"], "nested": {"ok": true}
            })
        );
        assert_eq!(PluginConfig::default().config_json(), "{}");
    }

    #[test]
    fn load_reports_a_missing_file_with_its_path() {
        let e = Config::load(Path::new("/nonexistent/roost.toml")).expect_err("missing file");
        assert!(matches!(e, ConfigError::Io { .. }));
        assert!(
            e.to_string().starts_with("/nonexistent/roost.toml: "),
            "{e}"
        );
        assert_eq!(e.line_col(), None);
    }

    #[test]
    fn a_reload_can_compare_plugin_sections() {
        let a = parse("[plugins.x.config]\nk = 1\n").expect("a");
        let b = parse("[plugins.x.config]\nk = 2\n").expect("b");
        assert_ne!(a.plugin("x"), b.plugin("x"));
        assert_eq!(a.limits_for("x"), b.limits_for("x"));
    }
}

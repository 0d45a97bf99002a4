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
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeTable;

pub mod outbound;
use crate::runtime::component_kind::ComponentKind;

mod span;
mod validate;

use span::{dotted, line_col, location, schema_error, span_of};

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
    /// `[http]`: the status page, `/api/status` and `/metrics`; off unless `listen` is set.
    pub http: HttpConfig,
    /// `[store]`: where the host's own data lives; SQLite in the data dir unless `url` is set.
    pub store: StoreConfig,
}

/// Whether `name` can name a hub: 1 to 63 letters, digits, `.`, `_` or `-`.
pub fn valid_hub_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The variable the Postgres store's password is read from (taken out of the environment
/// at start, like every `ROOST_*PASSWORD*` variable).
pub const STORE_PASSWORD_ENV: &str = "ROOST_STORE_PASSWORD";

/// `[store]`: the host's database. Without `url`, SQLite at `<data_dir>/roost.db`. With
/// `url = "postgres://user@host:port/db"`, that Postgres database; its password comes from
/// [`STORE_PASSWORD_ENV`] or `password_file` (mode 0600), never from this file, so the
/// config can be shared and logged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://…` (no password in it); `None` keeps SQLite.
    pub url: Option<String>,
    /// A file holding the password (mode 0600, owned by the daemon's user); relative to the
    /// config file, resolved at parse time. Wins over the variable when both are set.
    pub password_file: Option<PathBuf>,
}

/// `[http]`: the daemon's own HTTP server (status page, JSON status, Prometheus metrics).
/// Off by default. A loopback address needs nothing else; any other address needs a
/// `token_file`, since the page shows plugin errors and chat targets to whoever reaches
/// it (this build has no TLS: put a TLS proxy in front for anything beyond a LAN).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `"127.0.0.1:8750"`; `None` means no HTTP server. Port 0 picks a free port (the log
    /// says which).
    pub listen: Option<String>,
    /// A file holding the token every request must carry (`Authorization: Bearer …` or
    /// `?token=…`); relative to the config file, resolved at parse time.
    pub token_file: Option<PathBuf>,
}

impl HttpConfig {
    /// The address to listen on, when set and valid (validation guarantees it parses).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }
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
    /// This hub's name among the hubs sharing one Postgres store (`!status` lists them by
    /// it); `None` is the machine's host name. Read it through [`Config::hub_name`].
    pub name: Option<String>,
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
            name: None,
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
    /// `memory_mb` for Python plugins (componentize-py components, see
    /// [`ComponentKind`](crate::runtime::component_kind::ComponentKind)) whose own
    /// `[plugins.NAME.limits]` does not set `memory_mb`; they get the larger of the two.
    /// Separate because CPython and its heap live inside the plugin's memory: about 12 MiB
    /// before the plugin does anything, and several times a Rust plugin's bytes for the same
    /// data after. Only in the global `[limits]` ([`MEMORY_MB_RANGE`]).
    pub python_memory_mb: u64,
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
            python_memory_mb: 128,
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
            python_memory_mb: base.python_memory_mb,
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
    /// The hub (`[host] name`) this plugin runs on, whichever hub leads, when several share
    /// a Postgres store: a test-watcher watching a folder on one machine. Its commands reach
    /// it through the leader's gateways. `None`: it runs on the leader.
    pub run_on: Option<String>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            grants: Grants::default(),
            limits: PluginLimits::default(),
            config: toml::Table::new(),
            run_on: None,
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
    /// Secrets the plugin may read (the `secrets` interface), by name: lowercase letters,
    /// digits and '_'. Each value comes from the variable `ROOST_SECRET_<NAME>` (taken out
    /// of the daemon's environment at start) or else from the file
    /// `<data_dir>/secrets/<name>`, which must be mode 0600; never from this file.
    pub secrets: Vec<String>,
    /// Servers the plugin may send HTTP requests to (the standard
    /// `wasi:http/outgoing-handler`), as `[scheme://]host[:port]` with Spin's
    /// `allowed_outbound_hosts` rules: scheme `http`, `https` (the default) or `*`; host a
    /// name, an IP literal, `*.example.org` (subdomains, not the apex) or `*`; port a
    /// number, `*`, or left out for the scheme's default. Every redirect is checked again.
    pub http_hosts: Vec<String>,
    /// Whether requests may reach loopback, private, link-local and metadata addresses
    /// (127/8, ::1, 10/8, 172.16/12, 192.168/16, 169.254/16, 100.64/10, fc00::/7, fe80::/10,
    /// …). Even then only for hosts an `http_hosts` entry names exactly (no `*`). The check
    /// is on the addresses a name resolves to, at connect time.
    pub http_private: bool,
    /// Longest one HTTP request may take, connect to last body byte, in milliseconds
    /// (default 10000).
    pub http_timeout_ms: Option<u64>,
    /// Largest HTTP response body the plugin may receive, in KiB (default 1024); the body
    /// ends up in the plugin's memory, under its `memory_mb` limit.
    pub http_response_kb: Option<u64>,
    /// HTTP requests the plugin may start per minute (default 120).
    pub http_requests_per_minute: Option<u32>,
    /// HTTP requests the plugin may have in flight at once (default 4).
    pub http_concurrent: Option<u32>,
    /// Whether requests to `/hooks/<plugin>/…` on the daemon's HTTP server (`[http]
    /// listen`) reach the plugin's `on-webhook`. Webhook callers (GitHub, Slack, a device)
    /// cannot send the server's token, so the plugin checks their signature itself.
    pub webhooks: bool,
    /// Largest webhook body taken, in KiB (default 256): a longer one is answered 413
    /// without calling the plugin. The plugin's response body has the same cap.
    pub webhook_kb: Option<u64>,
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
        if let Some(p) = config.http.token_file.take() {
            config.http.token_file = Some(tidy(&dir.join(p)));
        }
        if let Some(p) = config.store.password_file.take() {
            config.store.password_file = Some(tidy(&dir.join(p)));
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

    /// This hub's name: `[host] name`, else the machine's host name, else `roost`.
    pub fn hub_name(&self) -> String {
        self.host.name.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|h| valid_hub_name(h))
                .unwrap_or_else(|| "roost".to_string())
        })
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

    /// The limits plugin `name` runs under when its component is of `kind`: as
    /// [`Config::limits_for`], except that a Python plugin whose own limits do not set
    /// `memory_mb` gets at least `python_memory_mb`.
    pub fn limits_for_component(&self, name: &str, kind: ComponentKind) -> Limits {
        let mut limits = self.limits_for(name);
        let own_memory = self.plugins.get(name).and_then(|p| p.limits.memory_mb);
        if kind == ComponentKind::Python && own_memory.is_none() {
            limits.memory_mb = limits.memory_mb.max(limits.python_memory_mb);
        }
        limits
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
}

/// The repository's `config/roost.toml`: the one source of the starter config.
const REPO_CONFIG: &str = include_str!("../../../config/roost.toml");
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

pub use outbound::HostPattern;

/// Parses a DNS server as grants and arguments name one: "ip:port", "[v6]:port" or a bare
/// ip (port 53).
pub fn parse_dns_server(text: &str) -> Option<std::net::SocketAddr> {
    use std::str::FromStr;
    std::net::SocketAddr::from_str(text).ok().or_else(|| {
        std::net::IpAddr::from_str(text)
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests;

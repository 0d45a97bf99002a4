//! Owns every plugin slot: where each plugin comes from (embedded, plugins folder, config
//! path), whether it should run, the actor serving it, and what went wrong last. Loading
//! is all-or-nothing: a new build replaces the old one only after its `init` succeeded.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use super::actor::{HostServices, PluginHandle, PluginRecipe, PluginSettings};
use super::bindings::{CommandSpec, roost::plugin::admin::PluginInfo};
use super::component_kind::ComponentKind;
use super::embedded;
use crate::capabilities::admin::{BoxFuture, PluginControl};
use crate::config::{Config, Role};
use crate::store::StoreError;

/// Where a plugin's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A first-party plugin built into the binary.
    Embedded(&'static [u8]),
    /// A `.wasm` file (plugins folder or a `path` in config).
    File(PathBuf),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Embedded(_) => "embedded".into(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// The component's bytes; a file over `max_mb` MiB is refused before it is read.
    fn read(&self, max_mb: u64) -> Result<Vec<u8>, String> {
        match self {
            Source::Embedded(b) => Ok(b.to_vec()),
            Source::File(p) => {
                let shown = p.display();
                let len = std::fs::metadata(p)
                    .map_err(|e| format!("{shown}: {e}"))?
                    .len();
                if len > max_mb.saturating_mul(1024 * 1024) {
                    return Err(format!(
                        "{shown}: {len} bytes is larger than max_component_mb = {max_mb}"
                    ));
                }
                std::fs::read(p).map_err(|e| format!("{shown}: {e}"))
            }
        }
    }
}

/// Everything that, when changed, means a plugin must be reloaded.
#[derive(Debug, Clone, PartialEq)]
struct Inputs {
    source: String,
    bytes_hash: u64,
    settings: PluginSettings,
}

#[derive(Default)]
struct Slot {
    handle: Option<PluginHandle>,
    inputs: Option<Inputs>,
    /// The last load failure, shown in `!status` until a load succeeds.
    error: Option<String>,
    /// Inputs whose load failed: not retried until something changes.
    failed_inputs: Option<Inputs>,
    /// `!enable`/`!disable` until the next config change.
    enabled_override: Option<bool>,
    enabled: bool,
    /// Who wins a command-name clash: the lower rank (see [`Rank`]).
    rank: Rank,
    /// A build is being compiled and started now.
    compiling: bool,
}

/// A plugin's standing when two plugins offer the same command: first-party plugins
/// built into the binary, then plugins the config names, then plugins merely dropped in
/// the plugins folder; by name within one rank. A plugin nobody vetted can never take a
/// command from one the user chose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    FirstParty,
    Configured,
    #[default]
    Autoloaded,
}

impl Rank {
    fn of(config: &Config, source: &Source, name: &str) -> Self {
        match (source, config.plugin(name).is_some()) {
            (Source::Embedded(_), _) => Rank::FirstParty,
            (Source::File(_), true) => Rank::Configured,
            (Source::File(_), false) => Rank::Autoloaded,
        }
    }
}

/// Whether a plugin runs now: see [`Supervisor::running`].
pub enum Running {
    /// It does; calls go to this handle.
    Yes(PluginHandle),
    /// Its first build is being compiled and started.
    Loading,
    /// It is not loaded (unknown, disabled, or its load failed).
    No,
}

/// Which of the configured plugins this hub runs: see [`Supervisor::set_role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubRole {
    /// The only hub (SQLite store, one-shot commands): every plugin.
    Sole,
    /// The leader of hubs sharing a store: every plugin not pinned (`run_on`) to another hub.
    Leader,
    /// A standby: only the plugins pinned to this hub.
    Standby,
}

/// Computes status lines on demand; see [`Supervisor::set_status_provider`].
pub type StatusProvider = Arc<dyn Fn() -> BoxFuture<Vec<String>> + Send + Sync>;

/// The plugin supervisor. Shared as `Arc<Supervisor>`; also the admin capability's
/// [`PluginControl`].
pub struct Supervisor {
    services: HostServices,
    slots: Mutex<BTreeMap<String, Slot>>,
    /// Serializes loads, reloads and syncs; reads never wait on it.
    ops: tokio::sync::Mutex<()>,
    started: Instant,
    config_error: Mutex<Option<String>>,
    extra_status: Mutex<Vec<String>>,
    /// Lines computed at `!status` time (gateway connections, outbox per target).
    status_provider: Mutex<Option<StatusProvider>>,
    role: Mutex<HubRole>,
    /// Itself, for futures that must outlive a `&self` borrow.
    me: Weak<Supervisor>,
}

impl Supervisor {
    /// A supervisor with no plugins yet; `services.control` is set to itself.
    pub fn new(mut services: HostServices) -> Arc<Self> {
        Arc::new_cyclic(|me: &Weak<Supervisor>| {
            let control: Weak<dyn PluginControl> = me.clone();
            services.control = Some(control);
            Self {
                services,
                slots: Mutex::new(BTreeMap::new()),
                ops: tokio::sync::Mutex::new(()),
                started: Instant::now(),
                config_error: Mutex::new(None),
                extra_status: Mutex::new(Vec::new()),
                status_provider: Mutex::new(None),
                role: Mutex::new(HubRole::Sole),
                me: me.clone(),
            }
        })
    }

    /// The shared host services.
    pub fn services(&self) -> &HostServices {
        &self.services
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        match self.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Records (or clears) a rejected config edit for `!status`.
    pub fn set_config_error(&self, error: Option<String>) {
        if let Ok(mut e) = self.config_error.lock() {
            *e = error;
        }
    }

    /// Lines other parts of the daemon add to the host status (gateways, outbox).
    pub fn set_extra_status(&self, lines: Vec<String>) {
        if let Ok(mut e) = self.extra_status.lock() {
            *e = lines;
        }
    }

    /// Sets the function asked for live status lines (gateways, outbox) on every `!status`.
    pub fn set_status_provider(&self, provider: StatusProvider) {
        if let Ok(mut p) = self.status_provider.lock() {
            *p = Some(provider);
        }
    }

    /// Sets which plugins this hub runs (its next [`Supervisor::sync`] loads them). A hub
    /// that stops leading stops the plugins it no longer runs at once, before it returns:
    /// the new leader starts them.
    pub fn set_role(&self, role: HubRole) {
        *self.role.lock().unwrap_or_else(|p| p.into_inner()) = role;
        let config = self.services.config.get();
        let mut slots = self.slots();
        let elsewhere: Vec<String> = slots
            .keys()
            .filter(|name| !runs_here(&config, name, role))
            .cloned()
            .collect();
        for name in elsewhere {
            if slots.remove(&name).and_then(|s| s.handle).is_some() {
                tracing::info!(plugin = name, "unloaded: another hub runs it now");
            }
        }
    }

    fn role(&self) -> HubRole {
        *self.role.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the running plugins in line with the config in force and the plugins folder:
    /// loads new or changed ones, unloads removed or disabled ones. Returns the load errors.
    pub async fn sync(&self) -> Vec<String> {
        let _guard = self.ops.lock().await;
        let config = self.services.config.get();
        let mut names = configured_names(&config);
        names.extend(self.slots().keys().cloned());
        // Plugins load side by side: one whose `init` hangs until its time limit delays
        // none of the others.
        let loads = names.iter().map(|name| self.sync_one(&config, name, false));
        futures_util::future::join_all(loads)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect()
    }

    /// Compiles every plugin a sync would load, starting none, so the compiled code is in
    /// the cache: a standby hub does this while it waits, and its loads when it takes over
    /// only map cached code. Errors are left for the load to report.
    pub async fn precompile(&self) {
        let config = self.services.config.get();
        for name in configured_names(&config) {
            if !runs_here(&config, &name, HubRole::Leader) {
                continue;
            }
            let (true, Some(source)) = self.wanted(&config, &name) else {
                continue;
            };
            let engine = self.services.engine.clone();
            let Ok(bytes) = source.read(config.limits_for(&name).max_component_mb) else {
                continue;
            };
            let compiled = tokio::task::spawn_blocking(move || engine.prepare(&bytes).map(drop))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r);
            if let Err(e) = compiled {
                tracing::debug!(plugin = %name, "precompile: {e}");
            }
        }
    }

    /// Drops runtime `!enable`/`!disable` overrides; called when the config file changes.
    pub fn clear_overrides(&self) {
        for slot in self.slots().values_mut() {
            slot.enabled_override = None;
        }
    }

    fn wanted(&self, config: &Config, name: &str) -> (bool, Option<Source>) {
        let over = self.slots().get(name).and_then(|s| s.enabled_override);
        let source = source_for(config, name);
        let enabled = match (over, config.plugin(name)) {
            (Some(o), _) => o,
            (None, Some(p)) => p.enabled,
            (None, None) => config.host.autoload && matches!(source, Some(Source::File(_))),
        };
        (enabled, source)
    }

    /// Loads, reloads or unloads one plugin. `force` reloads even when nothing changed.
    async fn sync_one(&self, config: &Config, name: &str, force: bool) -> Result<(), String> {
        if !runs_here(config, name, self.role()) {
            if self.slots().remove(name).and_then(|s| s.handle).is_some() {
                tracing::info!(plugin = name, "unloaded: another hub runs it");
            }
            return Ok(());
        }
        let (enabled, source) = self.wanted(config, name);
        if !enabled {
            // A plugin the config or a source still names stays listed as disabled; one
            // whose file is gone and that nothing names disappears.
            let known = config.plugin(name).is_some() || source.is_some();
            let mut slots = self.slots();
            let stopped = if !known && slots.get(name).is_none_or(|s| s.enabled_override.is_none())
            {
                slots.remove(name).and_then(|s| s.handle)
            } else {
                let slot = slots.entry(name.to_string()).or_default();
                slot.inputs = None;
                slot.enabled = false;
                slot.error = None;
                slot.handle.take()
            };
            if stopped.is_some() {
                tracing::info!(plugin = name, "unloaded");
            }
            return Ok(());
        }
        let Some(source) = source else {
            let why = format!(
                "plugin `{name}`: no file {}/{name}.wasm and no built-in plugin of that name",
                config.plugins_dir().display()
            );
            return Err(self.fail(name, why, None));
        };
        let max_mb = config.limits_for(name).max_component_mb;
        let bytes = source.read(max_mb).map_err(|e| self.fail(name, e, None))?;
        let inputs = Inputs {
            source: source.describe(),
            bytes_hash: hash_bytes(&bytes),
            settings: PluginSettings::from_config(config, name, ComponentKind::of(&bytes)),
        };
        {
            let mut slots = self.slots();
            let slot = slots.entry(name.to_string()).or_default();
            slot.enabled = true;
            if !force {
                if slot.handle.is_some() && slot.inputs.as_ref() == Some(&inputs) {
                    return Ok(());
                }
                if slot.failed_inputs.as_ref() == Some(&inputs) {
                    return Err(slot.error.clone().unwrap_or_default());
                }
            }
        }
        let bytes = Arc::new(bytes);
        self.set_compiling(name, true);
        let started = self.compile_and_start(name, bytes.clone(), &inputs).await;
        self.set_compiling(name, false);
        match started {
            // The hub stopped leading while the plugin loaded: the new leader runs it.
            Ok(_) if !runs_here(config, name, self.role()) => Ok(()),
            Ok(handle) => {
                let version = handle.health().manifest.version;
                tracing::info!(plugin = name, version, source = %source.describe(), "loaded");
                self.services.record(name, "loaded", &version);
                if let Source::File(_) = source {
                    keep_last_good(&last_good_path(config, name), &bytes);
                }
                let mut slots = self.slots();
                let slot = slots.entry(name.to_string()).or_default();
                slot.handle = Some(handle);
                slot.inputs = Some(inputs);
                slot.error = None;
                slot.failed_inputs = None;
                slot.rank = Rank::of(config, &source, name);
                for clash in clashes(&slots, &config.host.prefix) {
                    tracing::warn!("{clash}");
                }
                Ok(())
            }
            Err(e) => {
                let error = format!("{}: {e}", source.describe());
                let error = self.fail(name, error, Some(inputs.clone()));
                self.serve_last_good(config, name, &source, &inputs).await;
                Err(error)
            }
        }
    }

    /// Compiles `bytes` (off the async workers) and starts an actor on them.
    async fn compile_and_start(
        &self,
        name: &str,
        bytes: Arc<Vec<u8>>,
        inputs: &Inputs,
    ) -> Result<PluginHandle, String> {
        let engine = self.services.engine.clone();
        let pre = tokio::task::spawn_blocking(move || engine.prepare(&bytes))
            .await
            .map_err(|e| format!("compile task: {e}"))
            .and_then(|r| r)?;
        let recipe = PluginRecipe {
            name: name.to_string(),
            pre,
            settings: inputs.settings.clone(),
        };
        PluginHandle::start(recipe, self.services.clone()).await
    }

    /// After a plugin file failed to load and nothing serves the plugin (a restart with a
    /// broken build in the folder), serves the last build that loaded, under the current
    /// grants; the broken file stays reported in `!status`.
    async fn serve_last_good(&self, config: &Config, name: &str, source: &Source, inputs: &Inputs) {
        if !matches!(source, Source::File(_)) || self.handle(name).is_some() {
            return;
        }
        let path = last_good_path(config, name);
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        if hash_bytes(&bytes) == inputs.bytes_hash {
            return;
        }
        match self.compile_and_start(name, Arc::new(bytes), inputs).await {
            Ok(handle) => {
                let version = handle.health().manifest.version;
                tracing::warn!(
                    plugin = name,
                    version,
                    "serving the last good build while the new file is broken"
                );
                let mut slots = self.slots();
                let slot = slots.entry(name.to_string()).or_default();
                slot.handle = Some(handle);
                slot.rank = Rank::of(config, source, name);
                if let Some(error) = &mut slot.error {
                    error.push_str(&format!(" (the last good build, {version}, keeps serving)"));
                }
            }
            Err(e) => tracing::warn!(
                plugin = name,
                "the last good build did not load either: {e}"
            ),
        }
    }

    fn set_compiling(&self, name: &str, compiling: bool) {
        if let Some(slot) = self.slots().get_mut(name) {
            slot.compiling = compiling;
        }
    }

    fn fail(&self, name: &str, error: String, inputs: Option<Inputs>) -> String {
        tracing::error!(plugin = name, "load failed: {error}");
        self.services.record(name, "load-failed", &error);
        let mut slots = self.slots();
        let slot = slots.entry(name.to_string()).or_default();
        slot.error = Some(error.clone());
        slot.failed_inputs = inputs;
        if slot.handle.is_some() {
            format!("{error} (the previous build keeps serving)")
        } else {
            error
        }
    }

    /// The running plugin serving `command` (of plugin `only`, when given), with that
    /// command's spec as the plugin declares it (the router applies the config's role). A
    /// command several plugins offer goes to the best [`Rank`], then the first by name.
    pub fn resolve(
        &self,
        only: Option<&str>,
        command: &str,
    ) -> Option<(PluginHandle, CommandSpec)> {
        let slots = self.slots();
        let (_, handle, spec) = slots
            .iter()
            .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
            .filter_map(|(_, slot)| {
                let handle = slot.handle.as_ref()?;
                let spec = handle.command_spec(command)?;
                Some((slot.rank, handle, spec))
            })
            .min_by_key(|(rank, _, _)| *rank)?;
        Some((handle.clone(), spec))
    }

    /// Every command name served now, for "did you mean".
    pub fn command_names(&self) -> Vec<String> {
        self.slots()
            .values()
            .filter_map(|s| s.handle.as_ref())
            .flat_map(|h| h.health().manifest.commands.into_iter().map(|c| c.name))
            .collect()
    }

    /// Whether plugin `name` runs now, is being loaded, or neither (what a webhook for it
    /// should be answered).
    pub fn running(&self, name: &str) -> Running {
        match self.slots().get(name) {
            Some(Slot {
                handle: Some(h), ..
            }) => Running::Yes(h.clone()),
            Some(slot) if slot.compiling => Running::Loading,
            _ => Running::No,
        }
    }

    /// The handle of a running plugin.
    pub fn handle(&self, name: &str) -> Option<PluginHandle> {
        self.slots().get(name).and_then(|s| s.handle.clone())
    }

    /// Loads one plugin whatever its `enabled` setting (for `roost invoke`).
    pub async fn load_one(&self, name: &str) -> Result<(), String> {
        let _guard = self.ops.lock().await;
        let config = self.services.config.get();
        self.slots()
            .entry(name.to_string())
            .or_default()
            .enabled_override = Some(true);
        self.sync_one(&config, name, false).await
    }

    /// Names of the plugins running now.
    pub fn list_plugins_names(&self) -> Vec<String> {
        self.slots()
            .iter()
            .filter(|(_, s)| s.handle.is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The health (call counts and times, memory) of every plugin running now, by name:
    /// what the status page and `/metrics` add to [`PluginControl::list_plugins`].
    pub fn healths(&self) -> BTreeMap<String, super::actor::Health> {
        self.slots()
            .iter()
            .filter_map(|(n, s)| s.handle.as_ref().map(|h| (n.clone(), h.health())))
            .collect()
    }

    /// How long this supervisor (the daemon) has run.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Unloads everything (daemon shutdown).
    pub fn unload_all(&self) {
        for slot in self.slots().values_mut() {
            slot.handle = None;
        }
    }

    /// `Ok` when plugin `name` exists and this hub runs it; else why a command on it
    /// cannot be done here.
    fn known_here(&self, config: &Config, name: &str) -> Result<(), String> {
        if !self.slots().contains_key(name) && source_for(config, name).is_none() {
            return Err(format!("no plugin `{name}`"));
        }
        if !runs_here(config, name, self.role()) {
            let hub = config.plugin(name).and_then(|p| p.run_on.clone());
            let hub = hub.unwrap_or_else(|| "that leads".to_string());
            return Err(format!(
                "plugin `{name}` runs on the hub {hub}, not on this one"
            ));
        }
        Ok(())
    }

    async fn reload_named(&self, name: String) -> Result<String, String> {
        let _guard = self.ops.lock().await;
        let config = self.services.config.get();
        self.known_here(&config, &name)?;
        self.sync_one(&config, &name, true).await?;
        self.handle(&name)
            .map(|h| h.health().manifest.version)
            .ok_or_else(|| format!("plugin `{name}` is disabled"))
    }

    async fn set_enabled(&self, name: String, enabled: bool) -> Result<String, String> {
        let _guard = self.ops.lock().await;
        let config = self.services.config.get();
        self.known_here(&config, &name)?;
        self.slots()
            .entry(name.clone())
            .or_default()
            .enabled_override = Some(enabled);
        self.sync_one(&config, &name, false).await?;
        Ok(if enabled {
            self.handle(&name)
                .map(|h| h.health().manifest.version)
                .unwrap_or_default()
        } else {
            String::new()
        })
    }
}

impl PluginControl for Supervisor {
    fn host_status(&self) -> BoxFuture<Vec<String>> {
        let me = self.me.upgrade();
        Box::pin(async move {
            match me {
                Some(me) => me.status_lines().await,
                None => vec!["the daemon is shutting down".to_string()],
            }
        })
    }

    fn list_plugins(&self) -> Vec<PluginInfo> {
        let config = self.services.config.get();
        self.slots()
            .iter()
            .map(|(name, slot)| {
                let health = slot.handle.as_ref().map(|h| h.health());
                let state = match (&health, slot.enabled, &slot.error) {
                    (Some(h), _, _) => h.state,
                    (None, false, _) => "disabled",
                    (None, true, _) if slot.compiling => "compiling",
                    (None, true, Some(_)) => "failed",
                    (None, true, None) => "stopped",
                };
                let last_error = slot
                    .error
                    .clone()
                    .or_else(|| health.as_ref().and_then(|h| h.last_error.clone()))
                    .unwrap_or_default();
                let commands = health
                    .as_ref()
                    .map(|h| {
                        h.manifest
                            .commands
                            .iter()
                            .map(|c| {
                                let mut c = c.clone();
                                if let Some(role) = config.command_role(&c.name) {
                                    c.role = role.into();
                                }
                                c
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                PluginInfo {
                    name: name.clone(),
                    version: health
                        .as_ref()
                        .map(|h| h.manifest.version.clone())
                        .unwrap_or_default(),
                    state: state.to_string(),
                    enabled: slot.enabled,
                    commands,
                    status: health.as_ref().map(status_with_usage).unwrap_or_default(),
                    last_error,
                    failures: health.as_ref().map(|h| h.failures).unwrap_or(0),
                }
            })
            .collect()
    }

    fn reload(&self, name: String) -> BoxFuture<Result<String, String>> {
        self.detached(|me| async move { me.reload_named(name).await })
    }

    fn enable(&self, name: String) -> BoxFuture<Result<String, String>> {
        self.detached(|me| async move { me.set_enabled(name, true).await })
    }

    fn disable(&self, name: String) -> BoxFuture<Result<String, String>> {
        self.detached(|me| async move { me.set_enabled(name, false).await })
    }
}

impl Supervisor {
    /// `!status`'s host lines: uptime, gateways and outbox, command clashes, config
    /// problems, recent events.
    pub async fn status_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "roost {} up {}",
            env!("CARGO_PKG_VERSION"),
            human_duration(self.started.elapsed().as_secs())
        )];
        if let Ok(extra) = self.extra_status.lock() {
            lines.extend(extra.iter().cloned());
        }
        let provider = self.status_provider.lock().ok().and_then(|p| p.clone());
        if let Some(provider) = provider {
            lines.extend(provider().await);
        }
        let store = &self.services.store;
        let targets = store.try_run(|s| s.outbox_targets()).await;
        if let Ok(targets) = log_store_error(targets) {
            let pending: u64 = targets.iter().map(|(_, n)| n).sum();
            lines.push(format!("outbox: {pending} pending"));
        }
        lines.extend(clashes(
            &self.slots(),
            &self.services.config.get().host.prefix,
        ));
        if let Ok(Some(e)) = self.config_error.lock().map(|e| e.clone()) {
            lines.push(format!("config: last edit rejected, old config kept: {e}"));
        }
        let recent = store.try_run(|s| s.history_recent(RECENT_EVENTS)).await;
        if let Ok(recent) = log_store_error(recent) {
            let now = unix_ms();
            for event in recent {
                let ago = human_duration(u64::try_from(now - event.at).unwrap_or(0) / 1000);
                let who = event.plugin.as_deref().unwrap_or("host");
                lines.push(format!("{ago} ago: {who} {} {}", event.kind, event.detail));
            }
        }
        lines
    }
}

/// Logs a store error (the status is shown without the lines it would have given).
fn log_store_error<T>(result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(e) = &result {
        tracing::error!("status: cannot read the host store: {e}");
    }
    result
}

impl Supervisor {
    /// Runs `op` on a strong reference to self: the admin futures outlive the `&self` borrow
    /// they are created from.
    fn detached<F, Fut>(&self, op: F) -> BoxFuture<Result<String, String>>
    where
        F: FnOnce(Arc<Supervisor>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<String, String>> + Send + 'static,
    {
        let me = self.me.upgrade();
        Box::pin(async move {
            match me {
                Some(me) => op(me).await,
                None => Err("the daemon is shutting down".into()),
            }
        })
    }
}

/// Where plugin `name` comes from under `config`: an explicit `path`, else
/// `<plugins_dir>/<name>.wasm`, else a built-in plugin.
pub fn source_for(config: &Config, name: &str) -> Option<Source> {
    if let Some(path) = config.plugin(name).and_then(|p| p.path.clone()) {
        return Some(Source::File(path));
    }
    let file = config.plugins_dir().join(format!("{name}.wasm"));
    if file.is_file() {
        return Some(Source::File(file));
    }
    embedded::get(name).map(Source::Embedded)
}

/// Where the last build of `name` that loaded from a file is kept.
fn last_good_path(config: &Config, name: &str) -> PathBuf {
    config
        .data_dir()
        .join("cache/last-good")
        .join(format!("{name}.wasm"))
}

/// Keeps `bytes` as the last good build at `path` (written aside, then renamed); a failure
/// is logged: it costs only the fallback.
fn keep_last_good(path: &std::path::Path, bytes: &[u8]) {
    let keep = || -> std::io::Result<()> {
        if std::fs::read(path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("wasm.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = keep() {
        tracing::warn!("cannot keep the last good build at {}: {e}", path.display());
    }
}

/// Whether a hub in `role` runs plugin `name`: a plugin pinned with `run_on` runs on that
/// hub only (leading or not), any other on the leader.
fn runs_here(config: &Config, name: &str, role: HubRole) -> bool {
    let pinned = config.plugin(name).and_then(|p| p.run_on.as_deref());
    match (role, pinned) {
        (HubRole::Sole, _) => true,
        (_, Some(hub)) => hub == config.hub_name(),
        (HubRole::Leader, None) => true,
        (HubRole::Standby, None) => false,
    }
}

/// The plugins `config` names, and with `autoload` those found in the plugins folder.
fn configured_names(config: &Config) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = config.plugins.keys().cloned().collect();
    if config.host.autoload {
        names.extend(folder_plugins(config));
    }
    names
}

/// Names of the `.wasm` files in the plugins folder.
fn folder_plugins(config: &Config) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(config.plugins_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file())
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect()
}

/// One line per command name that several running plugins offer: who serves it, and how
/// the others' command is still reached.
fn clashes(slots: &BTreeMap<String, Slot>, prefix: &str) -> Vec<String> {
    let mut offered: BTreeMap<String, Vec<(Rank, &str)>> = BTreeMap::new();
    for (name, slot) in slots {
        let Some(handle) = &slot.handle else { continue };
        for command in handle.health().manifest.commands {
            offered
                .entry(command.name)
                .or_default()
                .push((slot.rank, name));
        }
    }
    offered
        .into_iter()
        .filter(|(_, by)| by.len() > 1)
        .map(|(command, mut by)| {
            by.sort();
            let losers: Vec<String> = by[1..]
                .iter()
                .map(|(_, plugin)| format!("{prefix}{plugin}:{command}"))
                .collect();
            format!(
                "command clash: {prefix}{command} is served by {}; also offered as {}",
                by[0].1,
                losers.join(", ")
            )
        })
        .collect()
}

/// Events from the history shown at the end of the host status.
const RECENT_EVENTS: usize = 5;

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

impl From<Role> for super::bindings::WitRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Anyone => Self::Anyone,
            Role::Trusted => Self::Trusted,
            Role::Admin => Self::Admin,
        }
    }
}

impl From<super::bindings::WitRole> for Role {
    fn from(r: super::bindings::WitRole) -> Self {
        use super::bindings::WitRole as W;
        match r {
            W::Anyone => Role::Anyone,
            W::Trusted => Role::Trusted,
            W::Admin => Role::Admin,
        }
    }
}

/// A plugin's own status line followed by what its instance holds.
fn status_with_usage(health: &super::actor::Health) -> String {
    match (health.status_line.as_str(), health.usage.as_str()) {
        (line, "") => line.to_string(),
        ("", usage) => usage.to_string(),
        (line, usage) => format!("{line} · {usage}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A supervisor over an empty config in a temporary data dir.
    fn supervisor(dir: &std::path::Path) -> Arc<Supervisor> {
        let config = Config::builtin(dir.to_path_buf());
        crate::daemon::Host::one_shot(config)
            .expect("host")
            .supervisor
    }

    #[test]
    fn a_plugin_being_compiled_says_so_not_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let supervisor = supervisor(dir.path());
        supervisor.slots().entry("big".into()).or_default().enabled = true;
        let state = || {
            supervisor
                .list_plugins()
                .into_iter()
                .find(|p| p.name == "big")
                .map(|p| p.state)
        };
        assert_eq!(state().as_deref(), Some("stopped"));
        supervisor.set_compiling("big", true);
        assert_eq!(state().as_deref(), Some("compiling"));
        supervisor.set_compiling("big", false);
        assert_eq!(state().as_deref(), Some("stopped"));
    }
}

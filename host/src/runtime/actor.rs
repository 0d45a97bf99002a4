//! One tokio task per plugin instance. Calls into a plugin are serialized through its
//! mailbox; different plugins run in parallel. A call that traps, runs past its deadline or
//! exhausts its memory ends with a [`CallError`], the instance is dropped (with its timers),
//! and a fresh one is built after an exponential backoff. Nothing outside this task notices.
//!
//! Every call (instantiation, `init`, commands, events, `status`) is bounded twice: the
//! epoch deadline stops wasm code that spins, and a wall-clock timeout around the call's
//! future stops one blocked in a host call (a WASI sleep, a poll on a timer). Either way
//! the instance is dropped, never entered again.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{
    CommandContext, Event, Manifest, Plugin, PluginPre, WebhookRequest, WebhookResponse,
};
use super::call_stats::CallStats;
use super::component_kind::ComponentKind;
use super::engine::{CallRunning, PluginEngine};
use super::state::PluginState;
use crate::capabilities::admin::PluginControl;
use crate::capabilities::webhook::WebhookGrant;
use crate::capabilities::{Contexts, Grants, InstanceEnv};
use crate::config::{Config, Limits};
use crate::live_config::LiveConfig;
use crate::message::Outgoing;
use crate::outbox::Outbox;
use crate::store::Store as HostStore;

/// First wait before rebuilding a crashed instance; doubles per consecutive crash.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest wait between rebuild attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Time allowed for the `status()` call made after each command.
const STATUS_CALL_LIMIT: Duration = Duration::from_millis(200);
/// How far past its limit a call's wall-clock bound lies, so code that spins is stopped
/// by the epoch deadline (with its trap) and the wall clock catches only a blocked call.
const WALL_CLOCK_SLACK: Duration = Duration::from_millis(50);
/// Rebuilds that may fail in a row before the plugin is marked failed and left alone
/// until it is reloaded (a plugin whose `init` always hangs must not cost a call timeout
/// every backoff period forever).
const MAX_FAILED_REBUILDS: u32 = 5;

/// A call into a plugin that ran past its wall-clock bound while blocked in a host call.
#[derive(Debug, thiserror::Error)]
#[error("timed out")]
struct WallClockTimeout;

/// Runs one call into a plugin, bounded in wall-clock time as well as by epochs. The
/// call's future is dropped at the bound, which unwinds the guest's stack; the caller
/// must then drop the instance.
async fn bounded<T>(
    limit: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match tokio::time::timeout(limit + WALL_CLOCK_SLACK, call).await {
        Ok(result) => result,
        Err(_) => Err(wasmtime::Error::new(WallClockTimeout)),
    }
}

/// Why a call into a plugin did not produce a reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The plugin ran and returned an error of its own (shown to the user as is).
    #[error("{0}")]
    Refused(String),
    /// The call trapped, timed out or ran out of memory; the instance is being rebuilt.
    #[error("plugin {plugin} failed: {reason}")]
    Crashed { plugin: String, reason: String },
    /// The plugin cannot take the call now (restarting, mailbox full, unloaded).
    #[error("plugin {plugin} is unavailable: {reason}")]
    Unavailable { plugin: String, reason: String },
}

/// The host services every instance of every plugin shares.
#[derive(Clone)]
pub struct HostServices {
    pub engine: PluginEngine,
    pub store: HostStore,
    pub outbox: Outbox,
    pub config: LiveConfig,
    /// The supervisor, for the admin capability; `None` without a daemon.
    pub control: Option<Weak<dyn PluginControl>>,
    /// Whether plugin events (loaded, crashed, …) go into the store's history: only the
    /// daemon's do, so `!status` never shows what a `roost check` did.
    pub history: bool,
}

impl HostServices {
    /// Records a plugin event in the history (daemon only); a store error is logged.
    pub fn record(&self, plugin: &str, kind: &str, detail: &str) {
        if !self.history {
            return;
        }
        let (plugin, kind, detail) = (plugin.to_string(), kind.to_string(), detail.to_string());
        self.store.submit(move |s| {
            if let Err(e) = s.history_push(Some(&plugin), &kind, &detail) {
                tracing::error!(plugin, "cannot record `{kind}` in the history: {e}");
            }
        });
    }
}

/// What the config decides about one plugin: the settings its `init` receives, its limits
/// and its grants. Built once per load; a config edit that changes it reloads the plugin,
/// and every instance of the plugin is built from it.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSettings {
    /// `[plugins.NAME.config]` as JSON.
    pub config_json: String,
    /// The global `[limits]` with the plugin's overrides.
    pub limits: Limits,
    /// What each capability grants it.
    pub grants: Grants,
}

impl PluginSettings {
    /// Reads plugin `name`'s settings from a validated config, for a component of `kind`
    /// (a Python one gets `python_memory_mb`).
    pub fn from_config(config: &Config, name: &str, kind: ComponentKind) -> Self {
        Self {
            config_json: config
                .plugin(name)
                .map(|p| p.config_json())
                .unwrap_or_else(|| "{}".into()),
            limits: config.limits_for_component(name, kind),
            grants: Grants::from_config(config, name),
        }
    }
}

/// Everything needed to build (and rebuild) instances of one plugin.
#[derive(Clone)]
pub struct PluginRecipe {
    pub name: String,
    pub pre: PluginPre<PluginState>,
    pub settings: PluginSettings,
}

/// What `!status` and `!plugins` show about a plugin, updated by its actor.
#[derive(Debug, Clone)]
pub struct Health {
    pub manifest: Manifest,
    /// "running", "restarting" or "failed" (rebuilds kept failing; reload to retry).
    pub state: &'static str,
    pub failures: u64,
    pub last_error: Option<String>,
    pub status_line: String,
    /// What the instance holds ("1 timer, 2 jobs running"), after its last call.
    pub usage: String,
    /// Commands and events served, with their durations (status page, `/metrics`).
    pub calls: CallStats,
    /// The instance's linear memory after its last call, in bytes.
    pub memory_bytes: u64,
}

/// Handle to a running plugin actor. Cloning is cheap; when the last clone is dropped the
/// actor finishes what is in its mailbox and ends, dropping its instance and timers.
#[derive(Clone)]
pub struct PluginHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Request>,
    health: Arc<Mutex<Health>>,
    /// The webhook grant this plugin's instances were built with.
    webhook: WebhookGrant,
}

enum Request {
    Command {
        ctx: CommandContext,
        args: Vec<String>,
        reply: oneshot::Sender<Result<Outgoing, CallError>>,
    },
    Webhook {
        request: WebhookRequest,
        reply: oneshot::Sender<Result<WebhookResponse, CallError>>,
    },
    Event(Event),
}

impl PluginHandle {
    /// Builds the first instance and runs `init`; only if that succeeds does an actor start.
    /// The error is the reason to show (bad component, trap, or `init`'s own error).
    pub async fn start(recipe: PluginRecipe, services: HostServices) -> Result<Self, String> {
        let instance = Instance::build(&recipe, &services).await?;
        let health = Arc::new(Mutex::new(Health {
            manifest: instance.manifest.clone(),
            state: "running",
            failures: 0,
            last_error: None,
            status_line: String::new(),
            usage: String::new(),
            calls: CallStats::default(),
            memory_bytes: 0,
        }));
        let (tx, rx) = mpsc::channel(recipe.settings.limits.mailbox.max(1));
        let name: Arc<str> = recipe.name.as_str().into();
        let webhook = recipe.settings.grants.webhook;
        let mut actor = Actor {
            recipe,
            services,
            instance: Some(instance),
            health: health.clone(),
            consecutive_crashes: 0,
            retry_at: Instant::now(),
            gave_up: false,
            failed_rebuilds: 0,
        };
        actor.refresh_status().await;
        tokio::spawn(actor.run(rx));
        Ok(Self {
            name,
            tx,
            health,
            webhook,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of its health.
    pub fn health(&self) -> Health {
        match self.health.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The spec of `command` if the plugin serves it. The router asks every plugin this for
    /// every command, so it copies one spec, not the whole health (call histograms and all).
    pub fn command_spec(&self, command: &str) -> Option<super::bindings::CommandSpec> {
        let health = match self.health.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        health
            .manifest
            .commands
            .iter()
            .find(|c| c.name == command)
            .cloned()
    }

    /// The webhook grant its instances were built with.
    pub fn webhook_grant(&self) -> WebhookGrant {
        self.webhook
    }

    /// Calls `on-command` and waits for the reply. A full mailbox is refused at once rather
    /// than queued without bound.
    pub async fn command(
        &self,
        ctx: CommandContext,
        args: Vec<String>,
    ) -> Result<Outgoing, CallError> {
        self.call(|reply| Request::Command { ctx, args, reply })
            .await
    }

    /// Calls `on-webhook` and waits for the response. Once queued, the request is answered
    /// even if the plugin is reloaded meanwhile: the old actor serves its mailbox to the end.
    pub async fn webhook(&self, request: WebhookRequest) -> Result<WebhookResponse, CallError> {
        self.call(|reply| Request::Webhook { request, reply }).await
    }

    /// Queues the request `make` builds around a reply channel and waits for the reply.
    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Request,
    ) -> Result<T, CallError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(make(reply)).map_err(|e| {
            self.unavailable(match e {
                mpsc::error::TrySendError::Full(_) => "busy: its mailbox is full".to_string(),
                mpsc::error::TrySendError::Closed(_) => "unloaded".to_string(),
            })
        })?;
        rx.await
            .map_err(|_| self.unavailable("unloaded during the call".into()))?
    }

    /// Queues an event; dropped (and logged) when the mailbox is full.
    pub fn event(&self, event: Event) {
        if self.tx.try_send(Request::Event(event)).is_err() {
            tracing::warn!(plugin = %self.name, "event dropped: mailbox full or plugin unloaded");
        }
    }

    fn unavailable(&self, reason: String) -> CallError {
        CallError::Unavailable {
            plugin: self.name.to_string(),
            reason,
        }
    }
}

/// A live instance: its store, its bindings and the queue its timers feed.
struct Instance {
    store: Store<PluginState>,
    plugin: Plugin,
    events: mpsc::Receiver<Event>,
    manifest: Manifest,
}

impl Instance {
    async fn build(recipe: &PluginRecipe, services: &HostServices) -> Result<Self, String> {
        let settings = &recipe.settings;
        let limits = &settings.limits;
        let (events_tx, events) = mpsc::channel(limits.mailbox.max(1));
        let name = recipe.name.as_str();
        let env = InstanceEnv {
            plugin: name,
            limits,
            services,
            events: &events_tx,
        };
        let caps = Contexts::build(&env, &settings.grants);
        drop(events_tx);
        let memory =
            usize::try_from(limits.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let mut store = Store::new(recipe.pre.engine(), PluginState::new(name, memory, caps));
        store.limiter(|s| &mut s.limiter);
        // Every epoch tick: past the call's deadline, trap; otherwise yield to tokio so a
        // spinning plugin never holds a worker thread for more than one tick, and say it
        // computes, so that the ticks come every `BUSY_TICK` while it does.
        let computing = services.engine.computing();
        store.epoch_deadline_callback(move |ctx| {
            let (now, data) = (Instant::now(), ctx.data());
            if now >= data.deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                computing.note(now.saturating_duration_since(data.call_started));
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        let timeout = Duration::from_millis(limits.call_timeout_ms);
        let running = arm(&mut store, timeout, &services.engine);
        let plugin = match bounded(timeout, recipe.pre.instantiate_async(&mut store)).await {
            Ok(p) => p,
            Err(e) => {
                return Err(format!(
                    "instantiation failed: {}",
                    describe(&e, &store, timeout)
                ));
            }
        };
        drop(running);
        let _running = arm(&mut store, timeout, &services.engine);
        let manifest =
            match bounded(timeout, plugin.call_init(&mut store, &settings.config_json)).await {
                Ok(Ok(m)) => m,
                Ok(Err(reason)) => return Err(format!("init failed: {reason}")),
                Err(e) => return Err(format!("init failed: {}", describe(&e, &store, timeout))),
            };
        Ok(Self {
            store,
            plugin,
            events,
            manifest,
        })
    }
}

/// Starts the deadline for one call; the epoch advances while the returned guard lives.
#[must_use = "the epoch stops advancing when the guard drops"]
fn arm(store: &mut Store<PluginState>, timeout: Duration, engine: &PluginEngine) -> CallRunning {
    let data = store.data_mut();
    data.call_started = Instant::now();
    data.deadline = data.call_started + timeout;
    data.limiter.refused = false;
    data.stderr.clear();
    data.caps.log.last_error = None;
    store.set_epoch_deadline(1);
    engine.call_running()
}

/// Says in words why a call into the guest failed.
fn describe(err: &wasmtime::Error, store: &Store<PluginState>, timeout: Duration) -> String {
    let data = store.data();
    if data.limiter.refused {
        return format!(
            "exceeded its memory limit of {} MiB",
            data.limiter.max_bytes() / (1024 * 1024)
        );
    }
    if err.downcast_ref::<WallClockTimeout>().is_some() {
        return format!(
            "timed out after {} ms (blocked in a host call)",
            timeout.as_millis()
        );
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => format!("timed out after {} ms", timeout.as_millis()),
        Some(trap) => match data
            .caps
            .log
            .last_error
            .clone()
            .or_else(|| data.stderr.last_line())
        {
            Some(line) => format!("crashed: {line} ({trap})"),
            None => format!("crashed: {trap}"),
        },
        None => format!("{err:#}"),
    }
}

struct Actor {
    recipe: PluginRecipe,
    services: HostServices,
    instance: Option<Instance>,
    health: Arc<Mutex<Health>>,
    consecutive_crashes: u32,
    retry_at: Instant,
    /// Rebuilds failed [`MAX_FAILED_REBUILDS`] times in a row: no more are tried.
    gave_up: bool,
    failed_rebuilds: u32,
}

impl Actor {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            let rebuild_at = tokio::time::Instant::from_std(self.retry_at);
            tokio::select! {
                request = rx.recv() => match request {
                    Some(Request::Command { ctx, args, reply }) => {
                        let result = self.command(ctx, args).await;
                        let _ = reply.send(result);
                    }
                    Some(Request::Webhook { request, reply }) => {
                        let result = self.webhook(request).await;
                        let _ = reply.send(result);
                    }
                    Some(Request::Event(event)) => self.event(event).await,
                    None => break,
                },
                event = next_event(&mut self.instance) => {
                    if let Some(event) = event {
                        self.event(event).await;
                    }
                }
                _ = tokio::time::sleep_until(rebuild_at), if self.instance.is_none() && !self.gave_up => {
                    self.rebuild().await;
                }
            }
        }
        tracing::debug!(plugin = %self.recipe.name, "actor finished");
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.recipe.settings.limits.call_timeout_ms)
    }

    async fn command(
        &mut self,
        ctx: CommandContext,
        args: Vec<String>,
    ) -> Result<Outgoing, CallError> {
        let Some((inst, running, timeout)) = self.armed() else {
            return Err(self.no_instance());
        };
        let started = Instant::now();
        let result = bounded(
            timeout,
            inst.plugin.call_on_command(&mut inst.store, &ctx, &args),
        )
        .await;
        drop(running);
        match self.finish(started, timeout, result).await? {
            Ok(parts) => Ok(Outgoing::from(parts)),
            Err(reason) => Err(CallError::Refused(reason)),
        }
    }

    /// The live instance armed for a call (deadline set, epoch ticking while the guard
    /// lives), with the call's time limit; `None` while there is no instance.
    fn armed(&mut self) -> Option<(&mut Instance, CallRunning, Duration)> {
        let timeout = self.timeout();
        let engine = &self.services.engine;
        let inst = self.instance.as_mut()?;
        let running = arm(&mut inst.store, timeout, engine);
        Some((inst, running, timeout))
    }

    /// Ends a call begun with [`Actor::armed`]: records its time; a call that ran asks for
    /// the status line again, one that trapped or timed out drops the instance (rebuilt
    /// after a backoff) and says why.
    async fn finish<T>(
        &mut self,
        started: Instant,
        timeout: Duration,
        result: wasmtime::Result<T>,
    ) -> Result<T, CallError> {
        update_health(&self.health, |h| {
            h.calls.record(started.elapsed(), result.is_err())
        });
        match result {
            Ok(value) => {
                self.consecutive_crashes = 0;
                self.refresh_status().await;
                Ok(value)
            }
            Err(e) => {
                let reason = match &self.instance {
                    Some(inst) => describe(&e, &inst.store, timeout),
                    None => format!("{e:#}"),
                };
                self.crashed(&reason);
                Err(CallError::Crashed {
                    plugin: self.recipe.name.clone(),
                    reason,
                })
            }
        }
    }

    /// Why a call finds no instance to run in: restarting (and when the next try is), or
    /// given up.
    fn no_instance(&self) -> CallError {
        let wait = self.retry_at.saturating_duration_since(Instant::now());
        let reason = if self.gave_up {
            format!("failed {MAX_FAILED_REBUILDS} restarts in a row; `!reload` it to try again")
        } else {
            format!(
                "restarting after a failure (next try in {} ms)",
                wait.as_millis()
            )
        };
        CallError::Unavailable {
            plugin: self.recipe.name.clone(),
            reason,
        }
    }

    async fn webhook(&mut self, request: WebhookRequest) -> Result<WebhookResponse, CallError> {
        let Some((inst, running, timeout)) = self.armed() else {
            return Err(self.no_instance());
        };
        let started = Instant::now();
        let result = bounded(
            timeout,
            inst.plugin.call_on_webhook(&mut inst.store, &request),
        )
        .await;
        drop(running);
        self.finish(started, timeout, result).await
    }

    /// Delivers an event; nobody waits for it. A call that ran asks for the status line
    /// again: an event changes what the plugin would say in `!status` as much as a command
    /// does (a test run ended, a check ran).
    async fn event(&mut self, event: Event) {
        let Some((inst, running, timeout)) = self.armed() else {
            return;
        };
        let started = Instant::now();
        let result = bounded(timeout, inst.plugin.call_on_event(&mut inst.store, &event)).await;
        drop(running);
        // A failure is recorded and logged by `finish`; there is no one to tell.
        let _ = self.finish(started, timeout, result).await;
    }

    async fn refresh_status(&mut self) {
        let limit = STATUS_CALL_LIMIT.min(self.timeout());
        let Some(inst) = self.instance.as_mut() else {
            return;
        };
        let running = arm(&mut inst.store, limit, &self.services.engine);
        let result = bounded(limit, inst.plugin.call_status(&mut inst.store)).await;
        drop(running);
        let usage = inst.store.data_mut().caps.usage().join(", ");
        let memory_bytes = inst.store.data().limiter.in_use() as u64;
        match result {
            Ok(line) => self.update(|h| {
                h.status_line = line;
                h.usage = usage;
                h.memory_bytes = memory_bytes;
            }),
            Err(e) => {
                let reason = describe(&e, &inst.store, limit);
                self.crashed(&format!("status: {reason}"));
            }
        }
    }

    /// Drops the instance (it can never be entered again after a trap) and schedules a
    /// rebuild.
    fn crashed(&mut self, reason: &str) {
        self.instance = None;
        self.consecutive_crashes = self.consecutive_crashes.saturating_add(1);
        let wait = backoff(self.consecutive_crashes);
        self.retry_at = Instant::now() + wait;
        tracing::warn!(plugin = %self.recipe.name, "call failed: {reason}; rebuilding in {} ms", wait.as_millis());
        self.services.record(&self.recipe.name, "crash", reason);
        self.update(|h| {
            h.state = "restarting";
            h.failures += 1;
            h.last_error = Some(reason.to_string());
        });
    }

    async fn rebuild(&mut self) {
        match Instance::build(&self.recipe, &self.services).await {
            Ok(instance) => {
                tracing::info!(plugin = %self.recipe.name, "instance rebuilt");
                self.failed_rebuilds = 0;
                let manifest = instance.manifest.clone();
                self.instance = Some(instance);
                self.update(|h| {
                    h.state = "running";
                    h.manifest = manifest;
                });
                self.refresh_status().await;
            }
            Err(reason) => {
                self.crashed(&format!("rebuild: {reason}"));
                self.failed_rebuilds += 1;
                if self.failed_rebuilds >= MAX_FAILED_REBUILDS {
                    self.gave_up = true;
                    tracing::error!(plugin = %self.recipe.name, "{MAX_FAILED_REBUILDS} rebuilds failed in a row; not retrying until reloaded");
                    self.update(|h| h.state = "failed");
                }
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut Health)) {
        update_health(&self.health, f);
    }
}

/// Applies `f` to a plugin's shared health (a field borrow, usable while the instance is
/// borrowed).
fn update_health(health: &Mutex<Health>, f: impl FnOnce(&mut Health)) {
    match health.lock() {
        Ok(mut h) => f(&mut h),
        Err(p) => f(&mut p.into_inner()),
    }
}

/// The next timer event of the live instance; pending forever when there is none.
async fn next_event(instance: &mut Option<Instance>) -> Option<Event> {
    match instance {
        Some(inst) => inst.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Wait before rebuild attempt `n` (1-based): 50 ms, 100 ms, 200 ms, … up to 30 s.
fn backoff(n: u32) -> Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(4), Duration::from_millis(400));
        assert_eq!(backoff(40), BACKOFF_MAX);
    }
}

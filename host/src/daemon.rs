//! `roost run`: wires the store, engine, supervisor, router, console gateway, outbox
//! delivery and hot reload together, and runs until `shutdown` resolves.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::abort_on_drop::AbortOnDrop;
use crate::config::{Config, ConfigError};
use crate::gateways::{self, console};
use crate::hub_calls::{HubCalls, RemoteCommand};
use crate::leadership::Leadership;
use crate::live_config::LiveConfig;
use crate::outbox::Outbox;
use crate::router::{OtherHubs, Router};
use crate::runtime::RuntimeError;
use crate::runtime::actor::HostServices;
use crate::runtime::engine::PluginEngine;
use crate::runtime::hot_reload::{Change, HotReload};
use crate::runtime::supervisor::{HubRole, Supervisor};
use crate::store::StoreError;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    Lock(#[from] crate::daemon_lock::LockError),
    #[error(transparent)]
    Web(#[from] crate::web::WebError),
    #[error(transparent)]
    StoreUrl(#[from] crate::pg_connect::UrlError),
}

/// Why serving stopped.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The shutdown signal came (or the reload channel closed).
    Shutdown,
    /// Another hub took the lead, or the lease could not be renewed in time.
    LostLead,
}

/// The services a daemon (or a one-shot `roost invoke`) builds from a config.
#[derive(Clone)]
pub struct Host {
    pub supervisor: Arc<Supervisor>,
    pub config: LiveConfig,
    /// The daemon's hold on its data dir (`None` for one-shot commands).
    _lock: Option<Arc<crate::daemon_lock::DaemonLock>>,
}

impl Host {
    /// The daemon's host: takes the data dir's lock, then opens the store and the engine
    /// (with its on-disk cache) for `config`. No plugin is loaded yet. A second daemon on
    /// the same data dir stops at the lock, before it opens or loads anything.
    pub fn build(config: Config) -> Result<Self, DaemonError> {
        Self::build_with(config, true)
    }

    /// A host for one-shot commands (`roost check`, `roost invoke`): the same, but it takes
    /// no lock (it runs beside a daemon) and what its plugins do is not written into the
    /// daemon's history.
    pub fn one_shot(config: Config) -> Result<Self, DaemonError> {
        Self::build_with(config, false)
    }

    fn build_with(config: Config, daemon: bool) -> Result<Self, DaemonError> {
        let data_dir = config.data_dir();
        crate::private_files::prepare_data_dir(&data_dir).map_err(|source| RuntimeError::Io {
            path: data_dir.clone(),
            source,
        })?;
        let lock = match daemon {
            true => Some(Arc::new(crate::daemon_lock::acquire(&data_dir)?)),
            false => None,
        };
        let store = crate::store_config::open(&config)?;
        let engine = PluginEngine::new(Some(&data_dir.join("cache")))?;
        let config = LiveConfig::new(config);
        let services = HostServices {
            engine,
            store: store.clone(),
            outbox: Outbox::new(store, config.clone()),
            config: config.clone(),
            control: None,
            history: daemon,
        };
        Ok(Self {
            supervisor: Supervisor::new(services),
            config,
            _lock: lock,
        })
    }
}

/// Runs the daemon on the config at `config_path` until `shutdown` resolves. SIGHUP and edits
/// of the config file reload it; a bad edit is logged and the running config stays.
pub async fn run(
    config_path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let config = Config::load(config_path)?;
    let socket = config.socket_path();
    let plugins_dir = config.plugins_dir();
    let console_enabled = config.gateways.console.enabled;
    let host = Host::build(config)?;
    let supervisor = host.supervisor.clone();
    // The socket is bound before any plugin loads: no plugin can keep the console (and
    // with it `roost chat`, `!status` and `!disable`) from starting.
    let listener = if console_enabled {
        Some(console::bind(&socket).await?)
    } else {
        None
    };
    let router = Arc::new(Router::new(supervisor.clone()));
    let hub = console::ConsoleHub::new(host.config.get().gateways.console.backlog);
    let console_task = listener.map(|listener| {
        supervisor.set_extra_status(vec![format!(
            "gateway console: listening on {}",
            socket.display()
        )]);
        tokio::spawn(console::serve(listener, router.clone(), hub.clone()))
    });
    if !console_enabled {
        supervisor.set_extra_status(vec!["gateway console: disabled".into()]);
    }
    let mut leadership = start_leadership(&host).await?;
    let _calls = serve_other_hubs(&host, &router, &leadership)?;
    // A standby compiles its plugins while it waits, so taking over only loads them.
    let _precompile = leadership.leading().is_none().then(|| {
        let supervisor = supervisor.clone();
        AbortOnDrop(tokio::spawn(async move {
            supervisor.precompile().await;
            crate::startup_pages::hand_back_soon();
        }))
    });
    let mut reloads = Reloads::start(config_path, &plugins_dir, &host)?;
    // The gateways a lead starts are listed here, and the status page shows them; it
    // serves on a standby too (its pinned plugins, the store, the gateways it last ran).
    let registry = gateways::Registry::new();
    let _web = start_web(&host, &registry).await?;
    tokio::pin!(shutdown);
    // Plugins pinned to this hub (`run_on`) run whichever hub leads.
    let synced = tokio::select! {
        errors = supervisor.sync() => { log_errors(errors); true }
        _ = &mut shutdown => false,
    };
    if synced {
        let serving = Serving {
            host: &host,
            router: &router,
            hub: &hub,
            socket: &socket,
            registry: &registry,
        };
        lead_or_stand_by(serving, &mut shutdown, &mut leadership, &mut reloads).await?;
    }
    stop(&host, &leadership, console_task, &socket).await
}

/// Leads whenever this hub may (loads the leader's plugins, serves until the lead is
/// lost) and stands by otherwise, reloading in either role, until `shutdown`.
async fn lead_or_stand_by(
    serving: Serving<'_>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    leadership: &mut Leadership,
    reloads: &mut Reloads,
) -> Result<(), DaemonError> {
    let supervisor = &serving.host.supervisor;
    loop {
        show_hubs(supervisor, leadership, None);
        let epoch = tokio::select! {
            epoch = leadership.until_leader() => epoch,
            _ = &mut *shutdown => return Ok(()),
            more = reloads.next() => if more { continue } else { return Ok(()) },
        };
        if leadership.shared() {
            supervisor.set_role(HubRole::Leader);
        }
        // Loads are bounded by each plugin's time limit, but a signal ends the wait at once.
        tokio::select! {
            errors = supervisor.sync() => log_errors(errors),
            _ = &mut *shutdown => return Ok(()),
        }
        if serve(serving, shutdown, leadership, reloads, epoch).await? == Ended::Shutdown {
            return Ok(());
        }
        // Only a hub on a shared store can stop leading.
        supervisor.set_role(HubRole::Standby);
        tracing::warn!(
            hub = leadership.name(),
            "this hub no longer leads: its plugins for the leader unloaded, gateways closed; standing by"
        );
    }
}

/// Shutdown: gives up the lease, closes the console and unloads every plugin.
async fn stop(
    host: &Host,
    leadership: &Leadership,
    console_task: Option<tokio::task::JoinHandle<()>>,
    socket: &Path,
) -> Result<(), DaemonError> {
    tracing::info!("shutting down");
    leadership.release().await;
    if let Some(task) = console_task {
        task.abort();
        let _ = std::fs::remove_file(socket);
    }
    host.supervisor.unload_all();
    Ok(())
}

/// On a shared store: lets this hub's router reach plugins pinned to other hubs, serves
/// the calls other hubs make on the plugins pinned to this one, and keeps the outbox
/// deliveries of the hubs awake to each other's messages.
fn serve_other_hubs(
    host: &Host,
    router: &Arc<Router>,
    leadership: &Leadership,
) -> Result<Option<[AbortOnDrop; 2]>, DaemonError> {
    let config = host.config.get();
    let Some(url) = &config.store.url else {
        return Ok(None);
    };
    let password = crate::store_config::password(&config)?;
    let calls = HubCalls::new(url, password.as_deref(), &config.hub_name())?;
    router.reach_other_hubs(OtherHubs {
        leadership: leadership.clone(),
        calls: calls.clone(),
    });
    let router = Arc::downgrade(router);
    let handler: crate::hub_calls::Handler = Arc::new(move |plugin, call| {
        let router = router.upgrade();
        Box::pin(async move {
            match router {
                Some(router) => router.serve_remote(&plugin, call).await,
                None => Err("the hub is shutting down".to_string()),
            }
        })
    });
    let fence = leadership.clone();
    let leading = Arc::new(move || fence.leading().is_some());
    let outbox = host.supervisor.services().outbox.clone();
    Ok(Some([
        calls.serve(handler),
        calls.relay_outbox(outbox, leading),
    ]))
}

/// Logs the load errors of a sync.
fn log_errors(errors: Vec<String>) {
    for error in errors {
        tracing::error!("{error}");
    }
}

/// After a reload: logs its load errors and hands back the pages loading used.
fn reloaded(errors: Vec<String>) {
    log_errors(errors);
    crate::startup_pages::hand_back_soon();
}

/// This hub's leadership: sole leader on SQLite, a contender for the lease on Postgres.
async fn start_leadership(host: &Host) -> Result<Leadership, DaemonError> {
    let config = host.config.get();
    let name = config.hub_name();
    let Some(url) = &config.store.url else {
        return Ok(Leadership::sole(&name));
    };
    let password = crate::store_config::password(&config)?;
    host.supervisor.set_role(HubRole::Standby);
    let supervisor = Arc::downgrade(&host.supervisor);
    // Only a pinned plugin's commands are offered to the other hubs: the rest run on the
    // leader, and a standby answers its own `!status`.
    let plugins: crate::leadership::PluginsHere = Arc::new(move || {
        let Some(supervisor) = supervisor.upgrade() else {
            return Default::default();
        };
        let config = supervisor.services().config.get();
        let pinned = |name: &str| config.plugin(name).is_some_and(|p| p.run_on.is_some());
        supervisor
            .healths()
            .into_iter()
            .map(|(name, health)| {
                let offered = health.manifest.commands.iter().filter(|_| pinned(&name));
                let commands = offered.map(|c| RemoteCommand::of(&name, c)).collect();
                (name, commands)
            })
            .collect()
    });
    Ok(Leadership::start(url, password.as_deref(), &name, plugins).await?)
}

/// Sets `!status`'s live lines: the hubs on the store, then (while leading) the gateways
/// and the outbox.
fn show_hubs(
    supervisor: &Supervisor,
    leadership: &Leadership,
    serving: Option<(gateways::Registry, Arc<gateways::delivery::Delivery>)>,
) {
    let leadership = leadership.clone();
    supervisor.set_status_provider(Arc::new(move || {
        let (leadership, serving) = (leadership.clone(), serving.clone());
        Box::pin(async move {
            let mut lines = leadership.status_lines();
            if let Some((registry, deliveries)) = serving {
                lines.extend(registry.status_lines());
                lines.retain(|l| !l.starts_with("gateway console "));
                lines.extend(deliveries.status_lines().await);
            }
            lines
        })
    }));
}

/// What serving a lead needs from the daemon.
#[derive(Clone, Copy)]
struct Serving<'a> {
    host: &'a Host,
    router: &'a Arc<Router>,
    hub: &'a console::ConsoleHub,
    socket: &'a Path,
    registry: &'a gateways::Registry,
}

/// Starts the chat gateways and outbox delivery, then serves reloads until `shutdown`, or
/// until this hub no longer leads under `epoch` (then its gateways are closed and delivery
/// stops before its next post).
async fn serve(
    serving: Serving<'_>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    leadership: &mut Leadership,
    reloads: &mut Reloads,
    epoch: i64,
) -> Result<Ended, DaemonError> {
    let Serving {
        host,
        router,
        hub,
        socket,
        registry,
    } = serving;
    let supervisor = host.supervisor.clone();
    let outbox = supervisor.services().outbox.clone();
    let console_status = gateways::GatewayStatus::new("console", "console");
    console_status.connected();
    registry.insert("console", console_status, Some(Arc::new(hub.clone())));
    gateways::start_platforms(&host.config.get(), router.clone(), outbox.clone(), registry);
    let fence = leadership.clone();
    let deliveries = gateways::delivery::Delivery::new(
        outbox,
        registry.clone(),
        Arc::new(move || fence.may_act(epoch)),
    );
    let delivery = AbortOnDrop(tokio::spawn(deliveries.clone().run()));
    show_hubs(
        &supervisor,
        leadership,
        Some((registry.clone(), deliveries.clone())),
    );
    let running = supervisor.list_plugins_names();
    tracing::info!(
        plugins = %running.join(","),
        socket = %socket.display(),
        "roost ready"
    );
    crate::startup_pages::hand_back_soon();
    let ended = loop {
        tokio::select! {
            _ = &mut *shutdown => break Ended::Shutdown,
            () = leadership.lost(epoch) => break Ended::LostLead,
            more = reloads.next() => if !more { break Ended::Shutdown },
        }
    };
    drop(delivery);
    if ended == Ended::LostLead {
        registry.close_all("this hub stopped leading; another hub's gateways take over");
    }
    Ok(ended)
}

/// Edits of the config file and the plugins folder, and SIGHUP: served whether this hub
/// leads or stands by, so the plugins pinned to a standby reload too.
struct Reloads {
    changes: mpsc::UnboundedReceiver<Change>,
    /// Kept so that `changes` only ends with the daemon.
    _sender: mpsc::UnboundedSender<Change>,
    _watch: HotReload,
    hangup: Option<tokio::signal::unix::Signal>,
    config_path: Arc<Path>,
    host: Arc<Host>,
}

impl Reloads {
    fn start(config_path: &Path, plugins_dir: &Path, host: &Host) -> Result<Self, DaemonError> {
        let (sender, changes) = mpsc::unbounded_channel();
        let watch = HotReload::start(config_path, plugins_dir, sender.clone())?;
        Ok(Self {
            changes,
            _sender: sender,
            _watch: watch,
            hangup: signal_stream(tokio::signal::unix::SignalKind::hangup()),
            config_path: config_path.into(),
            host: Arc::new(host.clone()),
        })
    }

    /// Waits for the next change and starts applying it in a task of its own (one at a
    /// time, the supervisor serializes them), so a plugin slow to load never delays
    /// shutdown. `false` once no change can come any more.
    async fn next(&mut self) -> bool {
        tokio::select! {
            change = self.changes.recv() => match change {
                Some(Change::Config) => spawn_reload(&self.config_path, &self.host),
                Some(Change::Plugins) => {
                    let supervisor = self.host.supervisor.clone();
                    tokio::spawn(async move { reloaded(supervisor.sync().await) });
                }
                None => return false,
            },
            _ = recv_signal(&mut self.hangup) => {
                tracing::info!("SIGHUP: reloading config");
                spawn_reload(&self.config_path, &self.host);
            }
        }
        true
    }
}

/// Starts the HTTP server when `[http] listen` is set; it stops when the handle drops.
/// Changes to `[http]` take effect after a restart.
async fn start_web(
    host: &Host,
    registry: &gateways::Registry,
) -> Result<Option<AbortOnDrop>, DaemonError> {
    let Some((listener, token)) = crate::web::bind(&host.config.get().http).await? else {
        return Ok(None);
    };
    let addr = listener
        .local_addr()
        .map_or_else(|e| format!("? ({e})"), |a| a.to_string());
    tracing::info!("http: status page on http://{addr}/");
    let state = crate::web::WebState::new(host.supervisor.clone(), registry.clone(), token);
    let task = tokio::spawn(crate::web::serve(listener, Arc::new(state)));
    Ok(Some(AbortOnDrop(task)))
}

/// Reloads the config in a task of its own.
fn spawn_reload(path: &Arc<Path>, host: &Arc<Host>) {
    let (path, host) = (path.clone(), host.clone());
    tokio::spawn(async move { reload_config(&path, &host).await });
}

/// Re-reads the config; applies it only if it is valid.
async fn reload_config(path: &Path, host: &Host) {
    match Config::load(path) {
        Ok(new) => {
            let old = host.config.get();
            if new.data_dir() != old.data_dir() || new.plugins_dir() != old.plugins_dir() {
                tracing::warn!("data_dir and plugins_dir changes take effect after a restart");
            }
            if new.http != old.http {
                tracing::warn!("[http] changes take effect after a restart");
            }
            if new.store != old.store {
                tracing::warn!("[store] changes take effect after a restart");
            }
            host.config.replace(new);
            host.supervisor.set_config_error(None);
            host.supervisor.clear_overrides();
            tracing::info!("config reloaded from {}", path.display());
            reloaded(host.supervisor.sync().await);
        }
        Err(e) => {
            tracing::error!("config edit rejected, keeping the running config: {e}");
            host.supervisor.set_config_error(Some(e.to_string()));
        }
    }
}

fn signal_stream(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for a signal: {e}");
            None
        }
    }
}

async fn recv_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT or SIGTERM: the daemon's default shutdown signal.
pub async fn terminate_signal() {
    let mut term = signal_stream(tokio::signal::unix::SignalKind::terminate());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = recv_signal(&mut term) => {}
    }
}

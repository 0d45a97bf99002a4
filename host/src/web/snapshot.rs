//! What the status page, `/api/status` and `/metrics` show, gathered once per request from
//! the supervisor (plugins), the gateway registry and the host store (outbox, KV sizes,
//! history). The store is asked through [`Store::run`](crate::store::Store::run), on its
//! own thread, never on a tokio worker.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capabilities::admin::PluginControl;
use crate::gateways::{self, status};
use crate::runtime::call_stats::CallStats;
use crate::runtime::supervisor::Supervisor;
use crate::store::{HistoryItem, StoreError, TargetUsage};

/// Recent events shown on the page and in `/api/status`.
const RECENT_EVENTS: usize = 20;

/// The whole status at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The roost version.
    pub version: &'static str,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// Every gateway, with the outbox queue of each of its targets.
    pub gateways: Vec<Gateway>,
    /// Every plugin the supervisor knows (running, failed, disabled…).
    pub plugins: Vec<Plugin>,
    /// Newest first.
    pub events: Vec<Event>,
    /// Set when the host store could not be read: the lists it feeds are empty.
    pub store_error: Option<String>,
}

/// One gateway: its connection and its queues.
#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
    /// Its connection state, flattened into the gateway's JSON object.
    #[serde(flatten)]
    pub status: status::Snapshot,
    /// The outbox queue of each of its targets that has messages waiting.
    pub queues: Vec<Queue>,
}

/// Messages waiting for one target.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    /// The chat target (`discord:123`), as the outbox keys it.
    pub target: String,
    /// Messages waiting for it.
    pub messages: u64,
    /// Their size, in bytes: what counts against the outbox caps.
    pub bytes: u64,
}

/// One plugin.
#[derive(Debug, Clone, Serialize)]
pub struct Plugin {
    /// The plugin's name (its file stem and config section).
    pub name: String,
    /// The version its manifest declares (empty before it loaded).
    pub version: String,
    /// `running`, `restarting`, `failed`, `disabled`, `compiling` or `stopped`.
    pub state: String,
    /// The plugin's own status line (test-watcher's projects, alias-monitor's findings)
    /// and what it holds.
    pub status: String,
    /// The last load failure or crash; empty when none.
    pub last_error: String,
    /// Crashes since it was loaded.
    pub failures: u64,
    /// Linear memory of the running instance, in bytes.
    pub memory_bytes: u64,
    /// Keys plus values in its KV store, in bytes.
    pub kv_bytes: u64,
    /// Commands and events served.
    pub calls: u64,
    /// Call time under which half the calls ended, in ms (a histogram bucket bound).
    pub p50_ms: Option<f64>,
    /// The same for 99% of calls.
    pub p99_ms: Option<f64>,
    /// The histogram itself, for `/metrics`.
    #[serde(skip)]
    pub stats: CallStats,
}

impl Plugin {
    /// Whether the page should show this plugin as in trouble.
    pub fn is_bad(&self) -> bool {
        !matches!(self.state.as_str(), "running" | "disabled") || !self.last_error.is_empty()
    }
}

/// One history entry.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// `None` for host-wide events.
    pub plugin: Option<String>,
    /// What happened (`loaded`, `load-failed`, `crash`, …), as the store records it.
    pub kind: String,
    /// The event's text, for a person.
    pub detail: String,
}

/// What the store contributes, read in one trip to its thread.
struct Stored {
    usage: Vec<TargetUsage>,
    kv_bytes: BTreeMap<String, u64>,
    events: Vec<HistoryItem>,
}

impl Snapshot {
    /// Gathers the status now.
    pub async fn collect(supervisor: &Supervisor, registry: &gateways::Registry) -> Self {
        let infos = supervisor.list_plugins();
        let healths = supervisor.healths();
        let names: Vec<String> = infos.iter().map(|p| p.name.clone()).collect();
        let stored = supervisor
            .services()
            .store
            .try_run(move |s| -> Result<Stored, StoreError> {
                let mut kv_bytes = BTreeMap::new();
                for name in names {
                    let n = s.kv_bytes(&name)?;
                    kv_bytes.insert(name, n);
                }
                Ok(Stored {
                    usage: s.outbox_usage()?,
                    kv_bytes,
                    events: s.history_recent(RECENT_EVENTS)?,
                })
            })
            .await;
        let (stored, store_error) = match stored {
            Ok(s) => (s, None),
            Err(e) => {
                tracing::error!("status page: cannot read the host store: {e}");
                let empty = Stored {
                    usage: Vec::new(),
                    kv_bytes: BTreeMap::new(),
                    events: Vec::new(),
                };
                (empty, Some(e.to_string()))
            }
        };
        let gateways = registry
            .snapshots()
            .into_iter()
            .map(|status| {
                let queues = stored
                    .usage
                    .iter()
                    .filter(|u| gateways::split_target(&u.target).0 == status.name)
                    .map(|u| Queue {
                        target: u.target.clone(),
                        messages: u.messages,
                        bytes: u.bytes,
                    })
                    .collect();
                Gateway { status, queues }
            })
            .collect();
        let plugins = infos
            .into_iter()
            .map(|info| {
                let health = healths.get(&info.name);
                let stats = health.map(|h| h.calls.clone()).unwrap_or_default();
                let ms = |q| stats.quantile(q).map(|s| s * 1000.0);
                Plugin {
                    kv_bytes: stored.kv_bytes.get(&info.name).copied().unwrap_or(0),
                    memory_bytes: health.map_or(0, |h| h.memory_bytes),
                    calls: stats.calls,
                    p50_ms: ms(0.5),
                    p99_ms: ms(0.99),
                    name: info.name,
                    version: info.version,
                    state: info.state,
                    status: info.status,
                    last_error: info.last_error,
                    failures: info.failures,
                    stats,
                }
            })
            .collect();
        let events = stored
            .events
            .into_iter()
            .map(|e| Event {
                at_ms: e.at,
                plugin: e.plugin,
                kind: e.kind,
                detail: e.detail,
            })
            .collect();
        Self {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: supervisor.uptime().as_secs(),
            gateways,
            plugins,
            events,
            store_error,
        }
    }
}

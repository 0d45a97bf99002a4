//! Which hub leads when several share one Postgres store: exactly one holds the lease row
//! (`hub_lease`) and runs the chat gateways, outbox delivery and plugins; the others keep
//! their console and wait to take over.
//!
//! - The lease lives in the database and its expiry is the database's clock, so hubs on
//!   machines whose clocks disagree still agree on who holds it. A holder renews every
//!   [`RENEW_EVERY`]; a lease not renewed for [`LEASE`] may be taken by any hub, and taking it
//!   raises its `epoch`.
//! - Fencing: a leader counts its lease from the moment it *sent* the renewal, on its own
//!   monotonic clock, and trusts it [`MARGIN`] less than the database grants. A leader that
//!   was paused (SIGSTOP, a swapped-out laptop) or cut off from the database finds on
//!   waking that its lease ran out before any other hub could take it, and stops before its
//!   next delivery ([`Leadership::may_act`]). What it was posting when it stopped carries a
//!   nonce, so the next leader's retry never posts twice.
//! - The connection is this module's own (`tokio-postgres`), not the store's: a slow store
//!   call never delays a renewal, and each query is bounded by [`QUERY_TIMEOUT`].
//! - On SQLite there is one hub per data dir (its lock sees to that): it always leads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::abort_on_drop::AbortOnDrop;
use crate::hub_calls::RemoteCommand;
use crate::pg_connect::{self, UrlError};

/// How long a lease the database grants lasts without renewal: a dead leader's hub is
/// taken over this long after its last renewal, plus one [`RENEW_EVERY`].
pub const LEASE: Duration = Duration::from_millis(3000);
/// How often the leader renews and standbys try to take over.
pub const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How much sooner than the database a leader stops trusting its own lease.
const MARGIN: Duration = Duration::from_millis(1000);
/// Longest a lease query may take; a slower one counts as failed.
const QUERY_TIMEOUT: Duration = Duration::from_millis(1000);
/// Hubs not heard from for this long are dropped from the list.
const FORGET_AFTER: &str = "1 day";

/// What this hub may do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// It holds lease `epoch`, trusted until `until` on this hub's clock.
    Leader { epoch: i64, until: Instant },
    /// Another hub leads, or none can be reached.
    Standby,
}

/// One hub sharing the store, as the last heartbeat showed it.
#[derive(Clone, Debug, PartialEq)]
pub struct HubSeen {
    pub name: String,
    /// Whether it holds the lease now.
    pub leads: bool,
    pub version: String,
    /// Seconds since its last heartbeat.
    pub quiet_secs: f64,
    /// The plugins it runs, comma-separated.
    pub plugins: String,
    /// The commands those plugins serve.
    pub commands: Vec<RemoteCommand>,
    /// Whether this is the hub asking.
    pub me: bool,
}

/// This hub's leadership: a handle to its role, shared by the daemon and delivery.
#[derive(Clone)]
pub struct Leadership {
    role: watch::Receiver<Role>,
    hubs: Arc<Mutex<Vec<HubSeen>>>,
    name: String,
    /// Asks the lease task to give the lease up; `None` on SQLite.
    release: Option<tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>>,
    /// Stops the lease task when the last handle goes.
    _task: Option<Arc<AbortOnDrop>>,
}

/// The plugins this hub runs now, each with the commands it serves, for its heartbeat.
pub type PluginsHere = Arc<dyn Fn() -> BTreeMap<String, Vec<RemoteCommand>> + Send + Sync>;

impl Leadership {
    /// The only hub there is (SQLite): leader for good.
    pub fn sole(name: &str) -> Self {
        let forever = Instant::now() + Duration::from_secs(100 * 365 * 86_400);
        let (_, role) = watch::channel(Role::Leader {
            epoch: 1,
            until: forever,
        });
        Self {
            role,
            hubs: Arc::default(),
            name: name.to_string(),
            release: None,
            _task: None,
        }
    }

    /// Starts competing for the lease on the Postgres database at `url` as hub `name`.
    /// The first attempt runs before this returns, so a hub that can lead leads at once.
    pub async fn start(
        url: &str,
        password: Option<&str>,
        name: &str,
        plugins: PluginsHere,
    ) -> Result<Self, UrlError> {
        let config = pg_connect::config(url, password, "roost-lease", QUERY_TIMEOUT)?;
        let (tx, role) = watch::channel(Role::Standby);
        let (release, releases) = tokio::sync::mpsc::channel(1);
        let hubs = Arc::new(Mutex::new(Vec::new()));
        let mut lease = LeaseTask {
            config,
            client: None,
            instance: instance_id(),
            name: name.to_string(),
            role: tx,
            hubs: hubs.clone(),
            plugins,
        };
        lease.tick().await;
        let task = tokio::spawn(lease.run(releases));
        Ok(Self {
            role,
            hubs,
            name: name.to_string(),
            release: Some(release),
            _task: Some(Arc::new(AbortOnDrop(task))),
        })
    }

    /// At shutdown: gives the lease up and leaves the list of hubs, so a standby takes over
    /// at its next round instead of after the lease runs out. Bounded by [`QUERY_TIMEOUT`].
    pub async fn release(&self) {
        let Some(release) = &self.release else {
            return;
        };
        let (done, released) = tokio::sync::oneshot::channel();
        if release.send(done).await.is_ok() {
            let _ = tokio::time::timeout(QUERY_TIMEOUT * 2, released).await;
        }
    }

    /// Whether other hubs may share the store (Postgres): then this hub may stand by.
    pub fn shared(&self) -> bool {
        self.release.is_some()
    }

    /// This hub's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lease epoch this hub leads under now, if it may act as leader.
    pub fn leading(&self) -> Option<i64> {
        match *self.role.borrow() {
            Role::Leader { epoch, until } if Instant::now() < until => Some(epoch),
            _ => None,
        }
    }

    /// Whether this hub may still act for lease `epoch`: checked before every delivery.
    pub fn may_act(&self, epoch: i64) -> bool {
        self.leading() == Some(epoch)
    }

    /// Waits until this hub leads; the epoch it leads under.
    pub async fn until_leader(&mut self) -> i64 {
        loop {
            if let Some(epoch) = self.leading() {
                return epoch;
            }
            if self.role.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves once this hub may no longer act for `epoch`: the lease went to another
    /// hub, or was not renewed in time.
    pub async fn lost(&mut self, epoch: i64) {
        loop {
            let until = match *self.role.borrow_and_update() {
                Role::Leader { epoch: e, until } if e == epoch => until,
                _ => return,
            };
            if Instant::now() >= until {
                return;
            }
            let deadline = tokio::time::Instant::from_std(until);
            tokio::select! {
                changed = self.role.changed() => if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                    return;
                },
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Another hub that serves `command` (of plugin `only`, when given) and has been heard
    /// from within a lease: where the router sends a command for a plugin pinned to that
    /// hub. The hub's name and the command.
    pub fn remote_command(
        &self,
        only: Option<&str>,
        command: &str,
    ) -> Option<(String, RemoteCommand)> {
        let hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.iter()
            .filter(|h| !h.me && h.quiet_secs < LEASE.as_secs_f64())
            .flat_map(|h| h.commands.iter().map(move |c| (h, c)))
            .find(|(_, c)| c.name == command && only.is_none_or(|p| p == c.plugin))
            .map(|(h, c)| (h.name.clone(), c.clone()))
    }

    /// `!status` lines: one per hub on the store (none on SQLite).
    pub fn status_lines(&self) -> Vec<String> {
        let hubs = self.hubs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        hubs.iter()
            .map(|h| {
                let role = match (h.leads, h.quiet_secs > LEASE.as_secs_f64()) {
                    (true, _) => "leader",
                    (false, false) => "standby",
                    (false, true) => "not heard from",
                };
                let me = if h.me { ", this hub" } else { "" };
                let plugins = if h.plugins.is_empty() {
                    "no plugins".to_string()
                } else {
                    format!("plugins {}", h.plugins)
                };
                format!(
                    "hub {}: {role}{me}, roost {}, heartbeat {:.1} s ago, {plugins}",
                    h.name, h.version, h.quiet_secs
                )
            })
            .collect()
    }
}

/// The task that renews or tries to take the lease, and beats this hub's heart.
struct LeaseTask {
    config: tokio_postgres::Config,
    client: Option<tokio_postgres::Client>,
    /// Unique to this run of this hub: two hubs given the same name still never share a
    /// lease.
    instance: String,
    name: String,
    role: watch::Sender<Role>,
    hubs: Arc<Mutex<Vec<HubSeen>>>,
    plugins: PluginsHere,
}

impl LeaseTask {
    async fn run(
        mut self,
        mut releases: tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
    ) {
        let mut every = tokio::time::interval(RENEW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick().await,
                Some(done) = releases.recv() => {
                    self.set(Role::Standby);
                    if let Ok(Err(e)) = tokio::time::timeout(QUERY_TIMEOUT, self.give_up()).await {
                        tracing::warn!(hub = %self.name, "lease: could not give it up: {e}");
                    }
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    /// Ends this hub's lease now and removes it from the list of hubs.
    async fn give_up(&mut self) -> Result<(), tokio_postgres::Error> {
        let instance = self.instance.clone();
        let client = self.client().await?;
        client
            .execute(
                "UPDATE hub_lease SET expires = now() WHERE holder = $1",
                &[&instance],
            )
            .await?;
        client
            .execute("DELETE FROM hubs WHERE instance = $1", &[&instance])
            .await?;
        Ok(())
    }

    /// One round: claim or renew, then heartbeat and read the hubs.
    async fn tick(&mut self) {
        let sent = Instant::now();
        match tokio::time::timeout(QUERY_TIMEOUT, self.claim()).await {
            Ok(Ok(Some(epoch))) => self.set(Role::Leader {
                epoch,
                until: sent + LEASE - MARGIN,
            }),
            Ok(Ok(None)) => self.set(Role::Standby),
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(_) => self.failed("the database did not answer in time"),
        }
    }

    /// Publishes `role`, logging changes.
    fn set(&self, role: Role) {
        let was = self.role.borrow().clone();
        match (&was, &role) {
            (Role::Leader { epoch: a, .. }, Role::Leader { epoch: b, .. }) if a == b => {}
            (_, Role::Leader { epoch, .. }) => {
                tracing::info!(hub = %self.name, epoch, "this hub leads")
            }
            (Role::Leader { .. }, Role::Standby) => {
                tracing::warn!(hub = %self.name, "another hub leads; this hub stands by")
            }
            (Role::Standby, Role::Standby) => {}
        }
        self.role.send_replace(role);
    }

    /// A round that failed: the connection is dropped (the next round reconnects) and a
    /// leader's lease is left to run out on its own clock.
    fn failed(&mut self, why: &str) {
        if self.client.take().is_some() || matches!(*self.role.borrow(), Role::Leader { .. }) {
            tracing::warn!(hub = %self.name, "lease: {why}; retrying");
        }
        let lapsed =
            matches!(*self.role.borrow(), Role::Leader { until, .. } if Instant::now() >= until);
        if lapsed {
            self.set(Role::Standby);
        }
    }

    async fn client(&mut self) -> Result<&tokio_postgres::Client, tokio_postgres::Error> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, connection) = pg_connect::connect(&self.config).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("lease connection closed: {e}");
                }
            });
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("connected above"))
    }

    /// Renews the lease if this hub holds it, takes it if it ran out; the epoch held, or
    /// `None` when another hub holds it. Then the heartbeat.
    async fn claim(&mut self) -> Result<Option<i64>, tokio_postgres::Error> {
        let (instance, name) = (self.instance.clone(), self.name.clone());
        let lease = LEASE.as_secs_f64();
        let client = self.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO hub_lease AS l (id, holder, holder_name, epoch, expires) \
                 VALUES (1, $1, $2, 1, now() + make_interval(secs => $3)) \
                 ON CONFLICT (id) DO UPDATE SET \
                   holder = EXCLUDED.holder, holder_name = EXCLUDED.holder_name, \
                   epoch = CASE WHEN l.holder = EXCLUDED.holder AND l.expires > now() \
                                THEN l.epoch ELSE l.epoch + 1 END, \
                   expires = EXCLUDED.expires \
                 WHERE l.holder = EXCLUDED.holder OR l.expires <= now() \
                 RETURNING epoch",
                &[&instance, &name, &lease],
            )
            .await?;
        let epoch = row.map(|r| r.try_get::<_, i64>(0)).transpose()?;
        self.heartbeat(epoch.is_some()).await?;
        Ok(epoch)
    }

    /// Records this hub's heartbeat and reads every hub's.
    async fn heartbeat(&mut self, leads: bool) -> Result<(), tokio_postgres::Error> {
        let here = (self.plugins)();
        let plugins = here.keys().cloned().collect::<Vec<_>>().join(",");
        let commands = serde_json::to_string(&here.into_values().flatten().collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".to_string());
        let role = if leads { "leader" } else { "standby" };
        let (instance, name) = (self.instance.clone(), self.name.clone());
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO hubs (name, instance, version, role, plugins, commands, started, \
                   heartbeat) VALUES ($1, $2, $3, $4, $5, $6, now(), now()) \
                 ON CONFLICT (name) DO UPDATE SET instance = $2, version = $3, role = $4, \
                   plugins = $5, commands = $6, heartbeat = now(), \
                   started = CASE WHEN hubs.instance = $2 THEN hubs.started ELSE now() END",
                &[
                    &name,
                    &instance,
                    &env!("CARGO_PKG_VERSION"),
                    &role,
                    &plugins,
                    &commands,
                ],
            )
            .await?;
        let rows = client
            .query(
                "SELECT h.name, h.instance = l.holder AND l.expires > now(), h.version, \
                   EXTRACT(EPOCH FROM now() - h.heartbeat)::float8, h.plugins, h.instance = $1, \
                   h.commands \
                 FROM hubs h LEFT JOIN hub_lease l ON l.id = 1 \
                 WHERE h.heartbeat > now() - $2::text::interval ORDER BY h.name",
                &[&instance, &FORGET_AFTER],
            )
            .await?;
        let hubs = rows
            .iter()
            .map(|r| {
                Ok(HubSeen {
                    name: r.try_get(0)?,
                    leads: r.try_get::<_, Option<bool>>(1)?.unwrap_or(false),
                    version: r.try_get(2)?,
                    quiet_secs: r.try_get(3)?,
                    plugins: r.try_get(4)?,
                    me: r.try_get(5)?,
                    commands: serde_json::from_str(r.try_get(6)?).unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        *self.hubs.lock().unwrap_or_else(|p| p.into_inner()) = hubs;
        Ok(())
    }
}

/// A value unique to this run of this hub: pid, start time and a counter's worth of
/// randomness from the clock.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", std::process::id(), nanos)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::{Store, test_pg};

    /// A fresh schema on the test server, migrated as a hub's store would leave it.
    pub(crate) async fn fresh_store() -> String {
        let url = test_pg::fresh_url();
        let migrate = url.clone();
        tokio::task::spawn_blocking(move || {
            Store::open_postgres(&migrate, test_pg::server().password.as_deref()).map(drop)
        })
        .await
        .expect("join")
        .expect("store");
        url
    }

    /// Hub `name` on the store at `url`, running `plugins` with their commands.
    async fn hub_running(
        url: &str,
        name: &str,
        plugins: BTreeMap<String, Vec<RemoteCommand>>,
    ) -> Leadership {
        let plugins: PluginsHere = Arc::new(move || plugins.clone());
        Leadership::start(url, test_pg::server().password.as_deref(), name, plugins)
            .await
            .expect("start")
    }

    /// Hub `name`, running the bot (without offering commands to other hubs).
    async fn hub(url: &str, name: &str) -> Leadership {
        hub_running(url, name, BTreeMap::from([("bot".to_string(), Vec::new())])).await
    }

    fn command(plugin: &str, name: &str) -> RemoteCommand {
        RemoteCommand {
            plugin: plugin.to_string(),
            name: name.to_string(),
            usage: format!("!{name}"),
            summary: String::new(),
            role: crate::config::Role::Trusted,
            min_args: 0,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn commands_another_hub_offers_are_found_by_name_or_plugin_and_name() {
        let url = fresh_store().await;
        let a = hub(&url, "a").await;
        let tests = command("tw", "tests");
        let offered = BTreeMap::from([("tw".to_string(), vec![tests.clone()])]);
        let b = hub_running(&url, "b", offered).await;
        // a reads b's heartbeat at its next round.
        let deadline = Instant::now() + LEASE;
        while a.remote_command(None, "tests").is_none() {
            assert!(Instant::now() < deadline, "{:?}", a.status_lines());
            tokio::time::sleep(RENEW_EVERY / 2).await;
        }
        assert_eq!(
            a.remote_command(None, "tests"),
            Some(("b".to_string(), tests.clone()))
        );
        assert_eq!(
            a.remote_command(Some("tw"), "tests"),
            Some(("b".to_string(), tests))
        );
        assert_eq!(a.remote_command(Some("other"), "tests"), None);
        assert_eq!(a.remote_command(None, "ping"), None);
        assert_eq!(
            b.remote_command(None, "tests"),
            None,
            "a hub's own are not remote"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_hub_leads_and_on_release_another_takes_over_under_a_new_epoch() {
        let url = fresh_store().await;
        let a = hub(&url, "a").await;
        let mut b = hub(&url, "b").await;
        let epoch = a.leading().expect("the first hub leads at once");
        assert_eq!(b.leading(), None, "the second stands by");
        a.release().await;
        let taken = tokio::time::timeout(LEASE * 3, b.until_leader())
            .await
            .expect("b took over");
        assert!(taken > epoch, "a new epoch: {taken} after {epoch}");
        assert!(!a.may_act(epoch), "the old leader may no longer act");
        assert!(b.may_act(taken));
        // a left the list when it gave the lease up; b's next rounds show it leading.
        let deadline = Instant::now() + LEASE * 3;
        loop {
            let lines = b.status_lines();
            let b_leads = lines
                .iter()
                .any(|l| l.starts_with("hub b: leader, this hub") && l.ends_with("plugins bot"));
            if b_leads && !lines.iter().any(|l| l.starts_with("hub a:")) {
                break;
            }
            assert!(Instant::now() < deadline, "{lines:?}");
            tokio::time::sleep(RENEW_EVERY).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_standby_waits_while_the_leader_renews() {
        let url = fresh_store().await;
        let a = hub(&url, "a").await;
        let b = hub_running(&url, "b", BTreeMap::new()).await;
        let epoch = a.leading().expect("a leads");
        // Two leases later the leader still trusts its lease (it would have run out
        // unless renewed) under the same epoch, and the standby never led.
        tokio::time::sleep(LEASE * 2).await;
        assert_eq!(a.leading(), Some(epoch));
        assert_eq!(b.leading(), None);
        let lines = b.status_lines();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("hub a: leader,") && l.ends_with("plugins bot")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("hub b: standby, this hub") && l.ends_with("no plugins")),
            "{lines:?}"
        );
    }
}

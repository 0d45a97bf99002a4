//! Commands for plugins pinned to another hub (`[plugins.NAME] run_on`): the leader's
//! router hands the call to that hub through the shared Postgres store and waits for its
//! answer, so a test-watcher watching a folder on the laptop answers `!tests` in Discord
//! whichever hub holds the Discord connection.
//!
//! - A call is a row of `hub_calls`: the hub it is for, the plugin, the command's context
//!   and arguments as JSON, and a deadline; the answer is written into the same row.
//!   `NOTIFY roost_calls '<hub>'` wakes the hub it is for and `NOTIFY roost_answers` the
//!   caller; both also look on their own every so often, so a notification lost to a
//!   reconnect only slows a call down.
//! - A call runs at most once and never late: the hub takes it (`taken`) before running
//!   it, only while its deadline has not passed, and the caller deletes it when it gives up.
//! - The caller checked the sender's role and the arguments before the call left (the
//!   leader's router, as for its own plugins); the hub running the plugin trusts that, as
//!   every hub sharing the database trusts the others.
//! - Which commands another hub serves comes from its heartbeat (`leadership.rs`).
//! - The connection is this module's own (`tokio-postgres`, LISTENing), not the store's.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Client};

use crate::abort_on_drop::AbortOnDrop;
use crate::capabilities::admin::BoxFuture;
use crate::config::Role;
use crate::message::Outgoing;
use crate::outbox::Outbox;
use crate::pg_connect::{self, UrlError};
use crate::runtime::bindings::{CommandContext, CommandSpec};

/// How often a hub looks for calls without being woken.
const SERVE_POLL: Duration = Duration::from_secs(2);
/// How often a caller looks for its answer without being woken.
const ANSWER_POLL: Duration = Duration::from_millis(250);
/// Longest one query may take; a slower one fails the call (or this round of serving).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Answered or abandoned calls older than this are deleted.
const KEEP_FOR: &str = "1 minute";

/// A command another hub serves, as its heartbeat lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCommand {
    pub plugin: String,
    pub name: String,
    pub usage: String,
    pub summary: String,
    pub role: Role,
    pub min_args: u32,
}

impl RemoteCommand {
    /// What plugin `plugin` declares for one command.
    pub fn of(plugin: &str, spec: &CommandSpec) -> Self {
        Self {
            plugin: plugin.to_string(),
            name: spec.name.clone(),
            usage: spec.usage.clone(),
            summary: spec.summary.clone(),
            role: spec.role.into(),
            min_args: spec.min_args,
        }
    }

    /// The command as the router checks it.
    pub fn spec(&self) -> CommandSpec {
        CommandSpec {
            name: self.name.clone(),
            usage: self.usage.clone(),
            summary: self.summary.clone(),
            role: self.role.into(),
            min_args: self.min_args,
        }
    }
}

/// One command call as it travels to the hub that runs the plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteCall {
    pub identity: String,
    pub role: Role,
    pub gateway: String,
    pub channel: String,
    pub command: String,
    pub prefix: String,
    pub text: String,
    pub args: Vec<String>,
}

impl RemoteCall {
    /// The call the router would make on a plugin of its own hub.
    pub fn new(ctx: &CommandContext, args: &[String]) -> Self {
        Self {
            identity: ctx.identity.clone(),
            role: ctx.role.into(),
            gateway: ctx.gateway.clone(),
            channel: ctx.channel.clone(),
            command: ctx.command.clone(),
            prefix: ctx.prefix.clone(),
            text: ctx.text.clone(),
            args: args.to_vec(),
        }
    }

    /// The context and arguments the plugin is called with.
    pub fn into_parts(self) -> (CommandContext, Vec<String>) {
        let ctx = CommandContext {
            identity: self.identity,
            role: self.role.into(),
            gateway: self.gateway,
            channel: self.channel,
            command: self.command,
            prefix: self.prefix,
            text: self.text,
        };
        (ctx, self.args)
    }
}

/// What a call comes back with: the plugin's reply, or the text the user sees instead.
pub type CallResult = Result<Outgoing, String>;

/// Runs one call for plugin (first argument) on this hub.
pub type Handler = Arc<dyn Fn(String, RemoteCall) -> BoxFuture<CallResult> + Send + Sync>;

/// This hub's end of the calls between hubs. Cheap to clone.
#[derive(Clone)]
pub struct HubCalls {
    inner: Arc<Inner>,
}

struct Inner {
    config: tokio_postgres::Config,
    /// This hub's name: the calls it serves are addressed to it.
    hub: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// A call for this hub was made.
    calls_here: Notify,
    /// Some call was answered.
    answered: Notify,
    /// Another hub queued messages in the shared outbox.
    queued_elsewhere: Notify,
}

impl HubCalls {
    /// Calls between the hubs on the Postgres database at `url`, for hub `hub`.
    pub fn new(url: &str, password: Option<&str>, hub: &str) -> Result<Self, UrlError> {
        let config = pg_connect::config(url, password, "roost-calls", QUERY_TIMEOUT)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                hub: hub.to_string(),
                client: tokio::sync::Mutex::new(None),
                calls_here: Notify::new(),
                answered: Notify::new(),
                queued_elsewhere: Notify::new(),
            }),
        })
    }

    /// Calls `plugin` on hub `hub` and waits for its answer, at most `wait`.
    pub async fn call(
        &self,
        hub: &str,
        plugin: &str,
        call: &RemoteCall,
        wait: Duration,
    ) -> CallResult {
        let request = serde_json::to_string(call).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + wait;
        let client = bounded(self.client())
            .await
            .map_err(|e| unreachable(hub, &e))?;
        let id = bounded(self.place(&client, hub, plugin, &request, wait))
            .await
            .map_err(|e| unreachable(hub, &e))?;
        let answer = tokio::time::timeout_at(deadline, self.answer(&client, id)).await;
        let forget = "DELETE FROM hub_calls WHERE id = $1";
        if let Err(e) = bounded(client.execute(forget, &[&id])).await {
            tracing::debug!(hub, "calls: could not delete call {id}: {e}");
        }
        match answer {
            Ok(Ok(text)) => serde_json::from_str(&text)
                .unwrap_or_else(|e| Err(format!("hub {hub} answered something unreadable: {e}"))),
            Ok(Err(e)) => Err(unreachable(hub, &e)),
            Err(_) => Err(format!(
                "hub {hub} did not answer within {:.1} s; its plugin {plugin} may be busy or the hub gone",
                wait.as_secs_f64()
            )),
        }
    }

    /// Writes the call and wakes the hub it is for; the call's id.
    async fn place(
        &self,
        client: &Client,
        hub: &str,
        plugin: &str,
        request: &str,
        wait: Duration,
    ) -> Result<i64, QueryError> {
        let row = client
            .query_one(
                "INSERT INTO hub_calls (hub, plugin, request, deadline) \
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING id",
                &[&hub, &plugin, &request, &wait.as_secs_f64()],
            )
            .await?;
        client
            .execute("SELECT pg_notify('roost_calls', $1)", &[&hub])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Waits until call `id` has an answer.
    async fn answer(&self, client: &Client, id: i64) -> Result<String, QueryError> {
        loop {
            let answered = self.inner.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let row = bounded(client.query_opt(
                "SELECT answer FROM hub_calls WHERE id = $1 AND answer IS NOT NULL",
                &[&id],
            ))
            .await?;
            if let Some(row) = row {
                return Ok(row.try_get(0)?);
            }
            tokio::select! {
                () = answered => {}
                () = tokio::time::sleep(ANSWER_POLL) => {}
            }
        }
    }

    /// Serves the calls made for this hub with `handler` until the returned task is dropped.
    pub fn serve(&self, handler: Handler) -> AbortOnDrop {
        let calls = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                if let Err(e) = calls.serve_waiting(&handler).await {
                    tracing::warn!(hub = %calls.inner.hub, "calls: {e}; retrying");
                    calls.inner.client.lock().await.take();
                }
                tokio::select! {
                    () = calls.inner.calls_here.notified() => {}
                    () = tokio::time::sleep(SERVE_POLL) => {}
                }
            }
        }))
    }

    /// Takes the calls waiting for this hub and runs each in a task of its own.
    async fn serve_waiting(&self, handler: &Handler) -> Result<(), QueryError> {
        let client = bounded(self.client()).await?;
        let rows = bounded(client.query(
            "UPDATE hub_calls SET taken = true \
             WHERE hub = $1 AND NOT taken AND deadline > now() \
             RETURNING id, plugin, request",
            &[&self.inner.hub],
        ))
        .await?;
        for row in rows {
            let (id, plugin, request): (i64, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let (client, handler) = (client.clone(), handler.clone());
            tokio::spawn(async move {
                let result = match serde_json::from_str::<RemoteCall>(&request) {
                    Ok(call) => handler(plugin, call).await,
                    Err(e) => Err(format!("a call this hub cannot read: {e}")),
                };
                if let Err(e) = bounded(reply(&client, id, &result)).await {
                    tracing::warn!("calls: could not answer call {id}: {e}");
                }
            });
        }
        let stale = "DELETE FROM hub_calls WHERE deadline < now() - $1::text::interval";
        bounded(client.execute(stale, &[&KEEP_FOR])).await?;
        Ok(())
    }

    /// Keeps the hubs' outbox deliveries awake: what this hub queues while another leads
    /// is announced (`NOTIFY roost_outbox`), and what another hub announces wakes this
    /// hub's delivery, so a pinned plugin's post goes out at once rather than at the
    /// leader's next look. Runs until the returned task is dropped.
    pub fn relay_outbox(
        &self,
        outbox: Outbox,
        leading: Arc<dyn Fn() -> bool + Send + Sync>,
    ) -> AbortOnDrop {
        let calls = self.clone();
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = outbox.pushed() => if !leading() {
                        calls.announce_queued().await;
                    },
                    () = calls.inner.queued_elsewhere.notified() => outbox.queued_elsewhere(),
                }
            }
        }))
    }

    /// Tells the other hubs that this one queued messages.
    async fn announce_queued(&self) {
        let announced = async {
            let client = self.client().await?;
            client.execute("NOTIFY roost_outbox", &[]).await
        };
        if let Err(e) = bounded(announced).await {
            tracing::debug!("calls: could not announce queued messages: {e}");
        }
    }

    /// The connection, made (and LISTENing) if there is none.
    async fn client(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let mut client = self.inner.client.lock().await;
        if let Some(c) = client.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let connected = Arc::new(connect(&self.inner).await?);
        *client = Some(connected.clone());
        Ok(connected)
    }
}

/// Writes the answer to call `id` and wakes its caller.
async fn reply(client: &Client, id: i64, result: &CallResult) -> Result<(), tokio_postgres::Error> {
    let answer = serde_json::to_string(result).unwrap_or_else(|e| {
        serde_json::to_string(&CallResult::Err(format!("unsendable reply: {e}")))
            .unwrap_or_default()
    });
    client
        .execute(
            "UPDATE hub_calls SET answer = $2 WHERE id = $1",
            &[&id, &answer],
        )
        .await?;
    client
        .execute("SELECT pg_notify('roost_answers', $1)", &[&id.to_string()])
        .await?;
    Ok(())
}

/// Connects, hands the connection's notifications to `inner`'s waiters, and LISTENs.
async fn connect(inner: &Arc<Inner>) -> Result<Client, tokio_postgres::Error> {
    let (client, mut connection) = pg_connect::connect(&inner.config).await?;
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let notification = match message {
                Ok(AsyncMessage::Notification(n)) => n,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!("calls connection closed: {e}");
                    break;
                }
            };
            let Some(inner) = weak.upgrade() else { break };
            match notification.channel() {
                "roost_calls" if notification.payload() == inner.hub => {
                    inner.calls_here.notify_one()
                }
                "roost_answers" => inner.answered.notify_waiters(),
                "roost_outbox" => inner.queued_elsewhere.notify_one(),
                _ => {}
            }
        }
    });
    client
        .batch_execute("LISTEN roost_calls; LISTEN roost_answers; LISTEN roost_outbox")
        .await?;
    Ok(client)
}

/// Why a query on the calls connection failed.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("the database did not answer within {} s", QUERY_TIMEOUT.as_secs())]
    Timeout,
}

/// `what`, failed as [`QueryError::Timeout`] when it takes over [`QUERY_TIMEOUT`].
async fn bounded<T, E: Into<QueryError>>(
    what: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, QueryError> {
    match tokio::time::timeout(QUERY_TIMEOUT, what).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(QueryError::Timeout),
    }
}

/// What the user sees when the call could not be made.
fn unreachable(hub: &str, e: &QueryError) -> String {
    format!("cannot reach hub {hub} through the store: {e}")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::leadership::tests::fresh_store;
    use crate::store::test_pg;

    fn calls(url: &str, hub: &str) -> HubCalls {
        HubCalls::new(url, test_pg::server().password.as_deref(), hub).expect("calls")
    }

    fn call(text: &str) -> RemoteCall {
        RemoteCall {
            identity: "discord:1".into(),
            role: Role::Trusted,
            gateway: "discord".into(),
            channel: "55".into(),
            command: "tests".into(),
            prefix: "!".into(),
            text: text.into(),
            args: vec!["a b".into()],
        }
    }

    /// The calls a handler ran: plugin and call.
    type Seen = Arc<Mutex<Vec<(String, RemoteCall)>>>;

    /// A handler that records what it ran and answers with the call's text, or an error
    /// when the text says "fail".
    fn recording() -> (Handler, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler: Handler = Arc::new(move |plugin, call: RemoteCall| {
            log.lock().expect("log").push((plugin, call.clone()));
            Box::pin(async move {
                match call.text.as_str() {
                    "fail" => Err("it failed".to_string()),
                    text => Ok(Outgoing::text(format!("ran {text} with {:?}", call.args))),
                }
            })
        });
        (handler, seen)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_call_reaches_the_hub_it_is_for_and_its_answer_or_error_comes_back() {
        let url = fresh_store().await;
        let (handler, seen) = recording();
        let _serving = calls(&url, "laptop").serve(handler);
        let pi = calls(&url, "pi");
        let wait = Duration::from_secs(10);
        let answer = pi.call("laptop", "tw", &call("!tests"), wait).await;
        assert_eq!(answer, Ok(Outgoing::text("ran !tests with [\"a b\"]")));
        let failed = pi.call("laptop", "tw", &call("fail"), wait).await;
        assert_eq!(failed, Err("it failed".to_string()));
        let seen = seen.lock().expect("seen").clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], ("tw".to_string(), call("!tests")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_call_nobody_takes_in_time_fails_and_never_runs_later() {
        let url = fresh_store().await;
        let pi = calls(&url, "pi");
        let late = pi
            .call("laptop", "tw", &call("late"), Duration::from_millis(300))
            .await;
        let why = late.expect_err("nobody serves the laptop");
        assert!(
            why.starts_with("hub laptop did not answer within 0.3 s"),
            "{why}"
        );
        // The laptop comes up: it runs the next call, and never the one given up on
        // (it takes every waiting call at once, so it would have run it first).
        let (handler, seen) = recording();
        let _serving = calls(&url, "laptop").serve(handler);
        let answer = pi
            .call("laptop", "tw", &call("on time"), Duration::from_secs(10))
            .await;
        assert!(answer.is_ok(), "{answer:?}");
        let texts: Vec<String> = seen
            .lock()
            .expect("seen")
            .iter()
            .map(|(_, c)| c.text.clone())
            .collect();
        assert_eq!(texts, ["on time"]);
    }
}

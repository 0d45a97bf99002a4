//! What `!status` says about one gateway: connected since when, reconnecting since when and
//! why, disabled, or failed with the reason. Gateways update it as their connection changes;
//! delivery workers wait on it to retry as soon as the gateway is back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The state of one gateway's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Started, no connection yet.
    Starting,
    /// Receiving events.
    Connected,
    /// Lost its connection and is getting it back.
    Reconnecting(String),
    /// Switched off in config.
    Disabled(String),
    /// Cannot run until something changes (no token, bad token).
    Failed(String),
}

struct Inner {
    state: State,
    since: Instant,
    reconnects: u64,
    last_reconnect: Option<String>,
    /// Something the user should know while the gateway runs (another app connection).
    warning: Option<String>,
}

/// Shared, cheap-to-clone status of one gateway instance.
#[derive(Clone)]
pub struct GatewayStatus {
    name: String,
    kind: &'static str,
    inner: Arc<Mutex<Inner>>,
    back: Arc<Notify>,
    failed: Arc<Notify>,
}

impl GatewayStatus {
    /// A gateway called `name` of platform `kind`, starting.
    pub fn new(name: &str, kind: &'static str) -> Self {
        Self {
            name: name.to_string(),
            kind,
            inner: Arc::new(Mutex::new(Inner {
                state: State::Starting,
                since: Instant::now(),
                reconnects: 0,
                last_reconnect: None,
                warning: None,
            })),
            back: Arc::new(Notify::new()),
            failed: Arc::new(Notify::new()),
        }
    }

    fn set(&self, state: State) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Failed is final for this run: a connection event arriving after the token was
        // refused must not make the gateway look usable again.
        if inner.state == state || matches!(inner.state, State::Failed(_)) {
            return;
        }
        tracing::info!(gateway = %self.name, "gateway {}: {state:?}", self.name);
        inner.state = state;
        inner.since = Instant::now();
    }

    /// The connection is up: wakes delivery workers waiting for this gateway.
    pub fn connected(&self) {
        self.set(State::Connected);
        self.back.notify_waiters();
    }

    /// The connection is up again after a loss (a resumed session or a new one); counted and
    /// shown in `!status` with `how`.
    pub fn reconnected(&self, how: &str) {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.reconnects += 1;
            inner.last_reconnect = Some(how.to_string());
        }
        self.connected();
    }

    /// The connection was lost; `why` is shown in `!status`.
    pub fn reconnecting(&self, why: &str) {
        self.set(State::Reconnecting(why.to_string()));
    }

    /// Switched off in config.
    pub fn disabled(&self, why: &str) {
        self.set(State::Disabled(why.to_string()));
    }

    /// Cannot run: `why` names what to fix. Final: the gateway's connection stops (see
    /// [`GatewayStatus::until_failed`]) and no later state replaces this one.
    pub fn failed(&self, why: &str) {
        self.set(State::Failed(why.to_string()));
        self.failed.notify_waiters();
    }

    /// Resolves once the gateway has failed, whoever noticed (its connection, or a delivery
    /// worker whose request was refused), so the connection can stop.
    pub async fn until_failed(&self) {
        loop {
            let notified = self.failed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if matches!(self.state(), State::Failed(_)) {
                return;
            }
            notified.await;
        }
    }

    /// Sets (or with `None` clears) the warning `!status` shows on this gateway's line.
    pub fn warn(&self, warning: Option<&str>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.warning.as_deref() != warning {
            if let Some(w) = warning {
                tracing::warn!(gateway = %self.name, "{w}");
            }
            inner.warning = warning.map(str::to_string);
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state
            .clone()
    }

    /// Resolves the next time the gateway becomes connected.
    pub async fn back(&self) {
        self.back.notified().await;
    }

    /// `gateway discord (discord): connected for 3m (2 reconnects)`.
    pub fn line(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let ago = human(inner.since.elapsed());
        let state = match &inner.state {
            State::Starting => format!("starting for {ago}"),
            State::Connected => format!("connected for {ago}"),
            State::Reconnecting(why) => format!("reconnecting for {ago}: {why}"),
            State::Disabled(why) => format!("disabled: {why}"),
            State::Failed(why) => format!("failed {ago} ago: {why}"),
        };
        let last = inner
            .last_reconnect
            .as_ref()
            .map_or_else(String::new, |how| format!(", last: {how}"));
        let warning = inner
            .warning
            .as_ref()
            .map_or_else(String::new, |w| format!("; warning: {w}"));
        format!(
            "gateway {} ({}): {state} ({} reconnects{last}){warning}",
            self.name, self.kind, inner.reconnects
        )
    }
}

/// One gateway's status as data, for the status page and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// The instance name (`discord`, `slack-work`, `console`).
    pub name: String,
    /// The platform.
    pub kind: &'static str,
    /// `starting`, `connected`, `reconnecting`, `disabled` or `failed`.
    pub state: &'static str,
    /// Why it is in that state (empty when starting or connected).
    pub reason: String,
    /// Seconds in that state.
    pub since_secs: u64,
    /// Reconnects since the daemon started.
    pub reconnects: u64,
    /// What the user should know while it runs (empty when nothing).
    pub warning: String,
}

impl GatewayStatus {
    /// The status as data.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (state, reason) = match &inner.state {
            State::Starting => ("starting", String::new()),
            State::Connected => ("connected", String::new()),
            State::Reconnecting(why) => ("reconnecting", why.clone()),
            State::Disabled(why) => ("disabled", why.clone()),
            State::Failed(why) => ("failed", why.clone()),
        };
        Snapshot {
            name: self.name.clone(),
            kind: self.kind,
            state,
            reason,
            since_secs: inner.since.elapsed().as_secs(),
            reconnects: inner.reconnects,
            warning: inner.warning.clone().unwrap_or_default(),
        }
    }
}

/// `42s`, `3m`, `2h` — coarse on purpose, for a status line.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_state_reason_and_reconnect_count() {
        let s = GatewayStatus::new("discord", "discord");
        assert!(s.line().contains("starting"));
        s.connected();
        s.reconnecting("heartbeat not acknowledged");
        let line = s.line();
        assert!(
            line.contains("reconnecting for 0s: heartbeat not acknowledged"),
            "{line}"
        );
        s.reconnected("resumed");
        assert!(
            s.line()
                .contains("connected for 0s (1 reconnects, last: resumed)"),
            "{}",
            s.line()
        );
        s.failed("no token");
        assert!(s.line().contains("failed 0s ago: no token"));
        s.connected();
        s.reconnecting("late event");
        assert!(
            s.line().contains("failed 0s ago: no token"),
            "failed is final"
        );
        s.warn(Some("two connections"));
        assert!(
            s.line().ends_with("; warning: two connections"),
            "{}",
            s.line()
        );
        s.warn(None);
        assert!(!s.line().contains("warning"), "{}", s.line());
    }
}

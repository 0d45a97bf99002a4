//! The daemon's HTTP server, on when `[http] listen` is set: a status page a person can
//! read, the same as JSON, Prometheus metrics, and webhooks for the plugins granted them.
//! The status routes are read-only: nothing there changes the daemon, so the only
//! protection they need is who may read them (loopback, or a token).
//!
//! - [`snapshot`]: gathers the status from the supervisor, the gateways and the store.
//! - [`page`]: `GET /`, server-rendered HTML (assets built into the binary).
//! - [`metrics`]: `GET /metrics`, Prometheus text format.
//! - [`hooks`]: `POST /hooks/<plugin>/<path>`, handed to the plugin (no token: the plugin
//!   checks the caller's signature).
//!
//! `GET /api/status` is the snapshot as JSON. Every request is counted by route and status
//! (`roost_http_requests_total`), webhooks also by plugin. A bad request gets a 4xx with a
//! reason.

pub mod hooks;
pub mod metrics;
pub mod page;
pub mod snapshot;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;

use crate::config::HttpConfig;
use crate::gateways::Registry;
use crate::runtime::supervisor::Supervisor;
use snapshot::Snapshot;

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("http: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http: cannot read token_file {}: {source}", path.display())]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("http: token_file {} is empty", path.display())]
    EmptyToken { path: PathBuf },
}

/// What the handlers share.
pub struct WebState {
    supervisor: Arc<Supervisor>,
    registry: Registry,
    /// The token every request must carry; `None` on loopback without a `token_file`.
    token: Option<String>,
    /// Requests answered, by route and status, and webhooks by plugin and status.
    counts: Mutex<Counts>,
}

/// What the server counts for `/metrics`. Webhooks are counted only for plugins granted
/// them, so strangers' requests cannot grow the label set.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Requests answered, by route and status.
    pub routes: BTreeMap<(&'static str, u16), u64>,
    /// Webhooks answered, by plugin and status.
    pub webhooks: BTreeMap<(String, u16), u64>,
}

impl WebState {
    /// The state for a server showing `supervisor` and `registry`.
    pub fn new(supervisor: Arc<Supervisor>, registry: Registry, token: Option<String>) -> Self {
        Self {
            supervisor,
            registry,
            token,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, route: &'static str, status: StatusCode) {
        *self
            .counts()
            .routes
            .entry((route, status.as_u16()))
            .or_default() += 1;
    }

    fn count_webhook(&self, plugin: &str, status: StatusCode) {
        *self
            .counts()
            .webhooks
            .entry((plugin.to_string(), status.as_u16()))
            .or_default() += 1;
    }

    /// Whether `req` carries the token (or none is needed). The token may come as
    /// `Authorization: Bearer …` (scrapers, curl) or `?token=…` (a browser's address bar;
    /// the page's refresh keeps it).
    fn allows(&self, req: &Request) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let query = req.uri().query().into_iter().flat_map(|q| q.split('&'));
        let queried = query.filter_map(|kv| kv.strip_prefix("token="));
        bearer
            .into_iter()
            .chain(queried)
            .any(|given| same(given.as_bytes(), token.as_bytes()))
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Binds the server's socket as `config` says, and reads its token. `Ok(None)` when the
/// server is off. Called before the server starts, so a port in use stops the daemon at
/// start-up with the reason rather than leaving it without the page.
pub async fn bind(config: &HttpConfig) -> Result<Option<(TcpListener, Option<String>)>, WebError> {
    let Some(addr) = config.listen_addr() else {
        return Ok(None);
    };
    let token = config.token_file.as_deref().map(read_token).transpose()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    Ok(Some((listener, token)))
}

fn read_token(path: &Path) -> Result<String, WebError> {
    let text = std::fs::read_to_string(path).map_err(|source| WebError::Token {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(WebError::EmptyToken {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

/// Serves on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<WebState>) {
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!("http: the server stopped: {e}");
    }
}

/// Every route, behind the token check and the request counter.
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/api/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .route("/hooks/{plugin}", any(hooks::without_path))
        .route("/hooks/{plugin}/{*path}", any(hooks::with_path))
        .route("/assets/page.css", get(|| asset("text/css", page::CSS)))
        .route(
            "/assets/live.js",
            get(|| asset("text/javascript", page::SCRIPT)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The token check and the request count around every handler. The assets need no
/// token: they are the same in every build and say nothing about this daemon. Webhooks
/// need none either: their callers cannot send it, and the plugin checks their signature.
async fn guard(State(state): State<Arc<WebState>>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let response = if matches!(route, "assets" | "hooks") || state.allows(&req) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "401 unauthorized: this server needs its token, as `Authorization: Bearer TOKEN` or `?token=TOKEN`\n",
        )
            .into_response()
    };
    state.count(route, response.status());
    response
}

/// The route label of a path: a fixed set, so strangers' paths cannot grow `/metrics`.
fn route_of(path: &str) -> &'static str {
    match path {
        "/" => "page",
        "/api/status" => "api",
        "/metrics" => "metrics",
        p if p.starts_with("/assets/") => "assets",
        p if p.starts_with("/hooks/") => "hooks",
        _ => "other",
    }
}

async fn status_page(State(state): State<Arc<WebState>>) -> Response {
    let snap = Snapshot::collect(&state.supervisor, &state.registry).await;
    let html = page::render(&snap, unix_ms());
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    response
}

async fn status_json(State(state): State<Arc<WebState>>) -> Response {
    let snap = Snapshot::collect(&state.supervisor, &state.registry).await;
    match serde_json::to_string_pretty(&snap) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("500: {e}\n")).into_response(),
    }
}

async fn metrics_text(State(state): State<Arc<WebState>>) -> Response {
    let snap = Snapshot::collect(&state.supervisor, &state.registry).await;
    let counts = state.counts().clone();
    let text = metrics::render(&snap, &counts);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "404 not found: this server has /, /api/status, /metrics and /hooks/<plugin>/…\n",
    )
        .into_response()
}

async fn not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        "405 method not allowed: this server only answers GET\n",
    )
        .into_response()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"ab", b"abc"));
    }

    #[test]
    fn unknown_paths_share_one_route_label() {
        assert_eq!(route_of("/"), "page");
        assert_eq!(route_of("/x/../../etc/passwd"), "other");
        assert_eq!(route_of("/assets/page.css"), "assets");
    }
}

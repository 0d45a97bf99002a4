//! A fake Slack on 127.0.0.1 for roost's Slack gateway: the Web API methods roost calls
//! (recording what they got) and Socket Mode (`apps.connections.open` → websocket, hello,
//! envelopes that must be acknowledged, disconnect on demand).
//!
//! Like the fake Discord it runs on its own runtime, so [`FakeSlack::stop`] is a real outage
//! and [`FakeSlack::start_again`] brings it back on the same port with its state.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The bot token (`xoxb-…`) the fake accepts for Web API calls.
pub const BOT_TOKEN: &str = "xoxb-fake-bot";
/// The app-level token (`xapp-…`) the fake accepts for `apps.connections.open`.
pub const APP_TOKEN: &str = "xapp-fake-app";
/// The bot's own user id.
pub const BOT_USER: &str = "UBOT";

const PATIENCE: Duration = Duration::from_secs(60);

/// A message roost posted with `chat.postMessage`.
#[derive(Clone, Debug)]
pub struct Posted {
    /// Its timestamp id.
    pub ts: String,
    /// The channel.
    pub channel: String,
    /// Its text.
    pub text: String,
    /// The request body.
    pub body: Value,
}

/// One Web API call, as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The method, e.g. `chat.postMessage`.
    pub method: String,
    /// The body as JSON.
    pub body: Value,
}

/// What the next `chat.postMessage` should suffer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status (429 gets `Retry-After: retry_after`).
    Status { code: u16, retry_after: u64 },
    /// Post the message, then answer 500: an ambiguous failure.
    CreateThenFail,
    /// Post the message, then answer only after a long time (a test kills roost meanwhile).
    CreateThenStall,
    /// Answer `{"ok": false, "error": …}` with HTTP 200, as Slack does: `not_in_channel`,
    /// `channel_not_found`, `is_archived`, `invalid_auth`…
    Error(&'static str),
}

#[derive(Default)]
struct Inner {
    team: String,
    next_ts: u64,
    posted: Vec<Posted>,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    acks: Vec<String>,
    next_envelope: u64,
    conns: Vec<mpsc::UnboundedSender<Value>>,
    opens: u32,
    /// Each live message by ts: its `text` and `blocks`, as `chat.update` left them.
    messages: std::collections::HashMap<String, (String, Value)>,
    /// The workspace's people: display name by user id, for `users.info`.
    users: std::collections::HashMap<String, String>,
    users_info_calls: u32,
    /// What people said, for the history: (channel, ts, text).
    said: Vec<(String, String, String)>,
}

struct Shared {
    inner: Mutex<Inner>,
    port: u16,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake Slack workspace. Dropping it shuts it down.
pub struct FakeSlack {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl FakeSlack {
    /// Starts a fake workspace `team` (e.g. "T1") on a free port.
    pub fn start(team: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let fake = Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    team: team.to_string(),
                    next_ts: 1_700_000_000_000_100,
                    ..Inner::default()
                }),
                port,
            }),
            runtime: Mutex::new(None),
        };
        fake.start_again();
        fake
    }

    /// The base URL roost's `api_base` takes (the Web API is under `/api/`).
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// Serves again on the same port after [`FakeSlack::stop`].
    pub fn start_again(&self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake slack runtime");
        let addr = SocketAddr::from(([127, 0, 0, 1], self.shared.port));
        let listener = runtime.block_on(async move {
            let start = Instant::now();
            loop {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.set_reuseaddr(true).expect("reuseaddr");
                match socket.bind(addr).and_then(|()| socket.listen(1024)) {
                    Ok(l) => break l,
                    Err(e) if start.elapsed() < PATIENCE => {
                        eprintln!("fake slack: rebinding {addr}: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("fake slack cannot bind {addr}: {e}"),
                }
            }
        });
        let app = Router::new()
            .route("/socket", get(ws_upgrade))
            .route("/api/{method}", post(web_api).get(web_api_get))
            .with_state(self.shared.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(runtime);
    }

    /// Takes the fake off the network: connections cut, new ones refused.
    pub fn stop(&self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
        self.shared.lock().conns.clear();
    }

    /// Queues a fault for the next `chat.postMessage`.
    pub fn fail_next_post(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Sends `{"type": "disconnect"}` on every socket, as Slack does before rotating one.
    pub fn send_disconnect(&self) {
        let inner = self.shared.lock();
        for tx in &inner.conns {
            let _ = tx.send(json!({"type": "disconnect", "reason": "refresh_requested"}));
        }
    }

    fn envelope(&self, event: Value) {
        envelope(&mut self.shared.lock(), event);
    }

    /// A message ts: the current time in microseconds, as Slack's, strictly increasing.
    fn next_ts(inner: &mut Inner) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        inner.next_ts = (inner.next_ts + 1).max(now);
        format!(
            "{}.{:06}",
            inner.next_ts / 1_000_000,
            inner.next_ts % 1_000_000
        )
    }

    /// User `user` (display name `name`, which `users.info` serves) writes `text` in
    /// `channel`, in Slack's wire form; returns the message ts. Like the real message event
    /// it carries the user id only, no profile.
    pub fn user_says(&self, channel: &str, user: &str, name: &str, text: &str) -> String {
        let ts = {
            let mut inner = self.shared.lock();
            inner.users.insert(user.to_string(), name.to_string());
            let ts = Self::next_ts(&mut inner);
            inner
                .said
                .push((channel.to_string(), ts.clone(), text.to_string()));
            ts
        };
        self.envelope(json!({
            "type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
            "channel_type": "channel", "team": "T", "event_ts": ts,
        }));
        ts
    }

    /// A message event of `subtype` from `user` (display name `name`) with `extra` fields
    /// (`files`, `thread_ts`…), as Slack sends it; returns its ts.
    pub fn user_event(
        &self,
        channel: &str,
        user: &str,
        name: &str,
        subtype: &str,
        text: &str,
        extra: Value,
    ) -> String {
        let ts = {
            let mut inner = self.shared.lock();
            inner.users.insert(user.to_string(), name.to_string());
            Self::next_ts(&mut inner)
        };
        let mut event = json!({
            "type": "message", "subtype": subtype, "channel": channel, "user": user,
            "text": text, "ts": ts, "channel_type": "channel", "event_ts": ts,
        });
        if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
            event.extend(extra.clone());
        }
        self.envelope(event);
        ts
    }

    /// Another app's integration posts `text` (subtype `bot_message`, no user).
    pub fn other_bot_says(&self, channel: &str, text: &str) {
        let ts = Self::next_ts(&mut self.shared.lock());
        self.envelope(json!({
            "type": "message", "subtype": "bot_message", "channel": channel, "text": text,
            "ts": ts, "bot_id": "BOTHER", "username": "other-bot",
        }));
    }

    /// A message from this app's own bot user without `bot_id` (as when it posts as a user).
    pub fn own_user_says(&self, channel: &str, text: &str) {
        let ts = Self::next_ts(&mut self.shared.lock());
        self.envelope(json!({
            "type": "message", "channel": channel, "user": BOT_USER, "text": text, "ts": ts,
        }));
    }

    /// User edits message `ts` to `text`.
    pub fn user_edits(&self, channel: &str, user: &str, name: &str, ts: &str, text: &str) {
        self.shared
            .lock()
            .users
            .insert(user.to_string(), name.to_string());
        self.envelope(json!({
            "type": "message", "subtype": "message_changed", "channel": channel,
            "message": {
                "type": "message", "user": user, "text": text, "ts": ts,
                "edited": {"user": user, "ts": format!("{ts}9")},
            },
            "ts": format!("{ts}9"),
        }));
    }

    /// User deletes message `ts`.
    pub fn user_deletes(&self, channel: &str, ts: &str) {
        self.envelope(json!({
            "type": "message", "subtype": "message_deleted", "channel": channel,
            "deleted_ts": ts, "ts": format!("{ts}8"),
        }));
    }

    /// Every message posted, in order.
    pub fn posted(&self) -> Vec<Posted> {
        self.shared.lock().posted.clone()
    }

    /// Messages posted in `channel`, in order.
    pub fn posted_in(&self, channel: &str) -> Vec<Posted> {
        self.posted()
            .into_iter()
            .filter(|p| p.channel == channel)
            .collect()
    }

    /// Waits until `channel` has at least `n` messages.
    pub fn wait_posted(&self, channel: &str, n: usize) -> Vec<Posted> {
        self.wait_for(&format!("{n} messages in {channel}"), || {
            let p = self.posted_in(channel);
            (p.len() >= n).then_some(p)
        })
    }

    /// What a Slack client shows for message `ts`: its blocks' text when it has blocks (the
    /// `text` is then only the notification fallback), else its text; `None` once deleted.
    pub fn shown(&self, ts: &str) -> Option<String> {
        let inner = self.shared.lock();
        let (text, blocks) = inner.messages.get(ts)?;
        let from_blocks: Vec<&str> = blocks
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"]["text"].as_str())
            .collect();
        Some(if from_blocks.is_empty() {
            text.clone()
        } else {
            from_blocks.join("\n")
        })
    }

    /// How many `users.info` calls found their user.
    pub fn users_info_calls(&self) -> u32 {
        self.shared.lock().users_info_calls
    }

    /// Every Web API call so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// Envelope ids acknowledged so far.
    pub fn acks(&self) -> Vec<String> {
        self.shared.lock().acks.clone()
    }

    /// Waits until a Socket Mode connection is open (and said hello).
    pub fn wait_connected(&self) {
        self.wait_for("a socket mode connection", || {
            let inner = self.shared.lock();
            inner.conns.iter().any(|tx| !tx.is_closed()).then_some(())
        });
    }

    /// How many times `apps.connections.open` was called.
    pub fn opens(&self) -> u32 {
        self.shared.lock().opens
    }

    /// Polls `check` until it gives a value; panics after a minute naming `what`.
    pub fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "fake slack never saw {what}; requests: {:#?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends an Events API envelope carrying `event` to one open socket, taking turns, as
/// Slack spreads events over an app's connections.
fn envelope(inner: &mut Inner, event: Value) {
    inner.next_envelope += 1;
    let envelope = json!({
        "envelope_id": format!("env-{}", inner.next_envelope),
        "type": "events_api",
        "accepts_response_payload": false,
        "payload": {"team_id": inner.team, "type": "event_callback", "event": event},
    });
    inner.conns.retain(|tx| !tx.is_closed());
    if inner.conns.is_empty() {
        return;
    }
    let turn = inner.next_envelope as usize % inner.conns.len();
    let _ = inner.conns[turn].send(envelope);
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

fn ok(mut v: Value) -> Response {
    v["ok"] = json!(true);
    axum::Json(v).into_response()
}

fn slack_error(error: &str) -> Response {
    axum::Json(json!({"ok": false, "error": error})).into_response()
}

/// Methods that read: Slack takes their arguments as query or form parameters, never as a
/// JSON body (one sent that way is as good as no arguments).
const READ_METHODS: &[&str] = &["conversations.history", "users.info"];

/// A read method called with GET and query parameters, as the official SDKs call them.
async fn web_api_get(
    State(s): State<Arc<Shared>>,
    Path(method): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let args: serde_json::Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    dispatch_method(s, method, headers, Value::Object(args)).await
}

async fn web_api(
    State(s): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if READ_METHODS.contains(&method.as_str()) {
        // A JSON body on a read method: Slack sees no arguments at all.
        s.lock().requests.push(Recorded { method, body });
        return slack_error("invalid_arguments");
    }
    dispatch_method(s, method, headers, body).await
}

async fn dispatch_method(
    s: Arc<Shared>,
    method: String,
    headers: HeaderMap,
    body: Value,
) -> Response {
    let (response, stall) = answer_method(&s, &method, &headers, &body);
    if stall {
        tokio::time::sleep(PATIENCE).await;
    }
    response
}

/// Answers one Web API call; `true` when the answer should be held back a long time.
fn answer_method(s: &Shared, method: &str, headers: &HeaderMap, body: &Value) -> (Response, bool) {
    let stall = method == "chat.postMessage"
        && matches!(s.lock().faults.front(), Some(Fault::CreateThenStall));
    (
        answer_now(s, method.to_string(), headers, body.clone()),
        stall,
    )
}

fn answer_now(s: &Shared, method: String, headers: &HeaderMap, body: Value) -> Response {
    s.lock().requests.push(Recorded {
        method: method.clone(),
        body: body.clone(),
    });
    let token = bearer(headers);
    if method == "apps.connections.open" {
        if token != APP_TOKEN {
            return slack_error("invalid_auth");
        }
        let mut inner = s.lock();
        inner.opens += 1;
        return ok(
            json!({"url": format!("ws://127.0.0.1:{}/socket?ticket={}", s.port, inner.opens)}),
        );
    }
    if token != BOT_TOKEN {
        return slack_error("invalid_auth");
    }
    let mut inner = s.lock();
    match method.as_str() {
        "auth.test" => {
            let team = inner.team.clone();
            ok(json!({"team_id": team, "user_id": BOT_USER, "bot_id": "BBOT"}))
        }
        "chat.postMessage" => {
            let fault = inner.faults.pop_front();
            if let Some(Fault::Error(error)) = fault {
                return slack_error(error);
            }
            if let Some(Fault::Status { code, retry_after }) = fault {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut resp = (
                    status,
                    axum::Json(json!({"ok": false, "error": "ratelimited"})),
                )
                    .into_response();
                resp.headers_mut().insert(
                    "retry-after",
                    retry_after.to_string().parse().expect("header value"),
                );
                return resp;
            }
            let ts = FakeSlack::next_ts(&mut inner);
            let channel = body["channel"].as_str().unwrap_or_default().to_string();
            let text = body["text"].as_str().unwrap_or_default().to_string();
            inner
                .messages
                .insert(ts.clone(), (text.clone(), body["blocks"].clone()));
            inner.posted.push(Posted {
                ts: ts.clone(),
                channel: channel.clone(),
                text: text.clone(),
                body: body.clone(),
            });
            // Slack delivers the bot's own posts to its socket too; a bot must ignore them.
            envelope(
                &mut inner,
                json!({"type": "message", "channel": channel, "text": text, "ts": ts, "bot_id": "BBOT", "user": BOT_USER}),
            );
            drop(inner);
            if matches!(fault, Some(Fault::CreateThenFail)) {
                return (StatusCode::INTERNAL_SERVER_ERROR, "created, then failed").into_response();
            }

            ok(
                json!({"channel": channel, "ts": ts, "message": {"text": text, "ts": ts, "bot_id": "BBOT"}}),
            )
        }
        "conversations.history" => {
            let channel = body["channel"].as_str().unwrap_or_default();
            if channel.is_empty() {
                return slack_error("channel_not_found");
            }
            history(&inner, channel, &body)
        }
        "chat.update" => {
            let ts = body["ts"].as_str().unwrap_or_default();
            let Some((text, blocks)) = inner.messages.get_mut(ts) else {
                return slack_error("message_not_found");
            };
            // Slack keeps what an update does not replace: `text` alone leaves the blocks,
            // and so what people see, as they were.
            if let Some(t) = body["text"].as_str() {
                *text = t.to_string();
            }
            if body.get("blocks").is_some() {
                *blocks = body["blocks"].clone();
            }
            ok(json!({"channel": body["channel"], "ts": ts}))
        }
        "chat.delete" => {
            let ts = body["ts"].as_str().unwrap_or_default();
            if inner.messages.remove(ts).is_none() {
                return slack_error("message_not_found");
            }
            ok(json!({"channel": body["channel"], "ts": ts}))
        }
        "users.info" => {
            let user = body["user"].as_str().unwrap_or_default();
            let Some(name) = inner.users.get(user).cloned() else {
                return slack_error("user_not_found");
            };
            inner.users_info_calls += 1;
            ok(json!({"user": {
                "id": user, "name": format!("{}-handle", name.to_lowercase()), "real_name": name,
                "profile": {"display_name": name, "real_name": name},
            }}))
        }
        _ => slack_error("unknown_method"),
    }
}

/// Most messages one `conversations.history` page holds: Slack's limit for apps not in
/// the Marketplace (since 2025), whatever `limit` asks.
const HISTORY_PAGE: usize = 15;

/// `conversations.history`: newest first, only after `oldest`, at most [`HISTORY_PAGE`] a
/// page, `cursor` for the next.
fn history(inner: &Inner, channel: &str, args: &Value) -> Response {
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    let oldest = number(&args["oldest"]).unwrap_or(0.0);
    let limit =
        number(&args["limit"]).map_or(HISTORY_PAGE, |l| (l as usize).clamp(1, HISTORY_PAGE));
    let skip = args["cursor"]
        .as_str()
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let include_metadata = args["include_all_metadata"].as_str() == Some("true")
        || args["include_all_metadata"] == true;
    let bots = inner
        .posted
        .iter()
        .filter(|p| p.channel == channel && inner.messages.contains_key(&p.ts))
        .map(|p| {
            let mut m = json!({"type": "message", "text": p.text, "ts": p.ts, "bot_id": "BBOT"});
            if include_metadata && !p.body["metadata"].is_null() {
                m["metadata"] = p.body["metadata"].clone();
            }
            m
        });
    let people = inner
        .said
        .iter()
        .filter(|(c, _, _)| c == channel)
        .map(|(_, ts, text)| json!({"type": "message", "text": text, "ts": ts, "user": "U"}));
    let ts = |m: &Value| {
        m["ts"]
            .as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut all: Vec<Value> = bots.chain(people).filter(|m| ts(m) > oldest).collect();
    all.sort_by(|a, b| ts(b).total_cmp(&ts(a)));
    let messages: Vec<Value> = all.iter().skip(skip).take(limit).cloned().collect();
    let more = all.len() > skip + limit;
    let next = if more {
        (skip + limit).to_string()
    } else {
        String::new()
    };
    ok(json!({"messages": messages, "has_more": more, "response_metadata": {"next_cursor": next}}))
}

async fn ws_upgrade(State(s): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| socket_mode(s, socket))
}

async fn socket_mode(shared: Arc<Shared>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let open = {
        let mut inner = shared.lock();
        inner.conns.retain(|tx| !tx.is_closed());
        inner.conns.len() + 1
    };
    let hello =
        json!({"type": "hello", "num_connections": open, "connection_info": {"app_id": "A1"}});
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    shared.lock().conns.push(tx);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(v) = serde_json::from_str::<Value>(text.as_str())
                        && let Some(id) = v["envelope_id"].as_str()
                    {
                        shared.lock().acks.push(id.to_string());
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(v) => {
                    let disconnect = v["type"] == "disconnect";
                    if sink.send(Message::Text(v.to_string().into())).await.is_err() || disconnect {
                        break;
                    }
                }
                None => break,
            }
        }
    }
}

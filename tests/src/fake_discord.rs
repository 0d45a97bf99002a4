//! A fake Discord on 127.0.0.1 that the real serenity client inside `roost` logs into: the
//! REST routes roost uses (recording what they got) and a websocket gateway (HELLO,
//! IDENTIFY → READY, heartbeats, dispatches, RESUME with replay, RECONNECT, closes).
//!
//! The server runs on its own tokio runtime, so [`FakeDiscord::stop`] can make it vanish
//! the way a real outage does (every socket closed, new connections refused) and
//! [`FakeDiscord::start_again`] brings it back on the same port with its state intact.
//! Tests drive it from plain threads: every control method is synchronous.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The bot token the fake accepts (tests put it in the daemon's environment).
pub const TOKEN: &str = "fake-discord-token";
/// The bot's own user id.
pub const BOT_ID: u64 = 900_000_000_000_000_001;
/// The application id READY announces.
pub const APP_ID: u64 = 900_000_000_000_000_002;
/// The guild every fake channel belongs to.
pub const GUILD_ID: u64 = 900_000_000_000_000_003;

/// The privileged Message Content intent bit of IDENTIFY's `intents`.
const MESSAGE_CONTENT_INTENT: u64 = 1 << 15;

/// How long a test waits for something the fake should see.
const PATIENCE: Duration = Duration::from_secs(60);

/// A message roost created through `POST /channels/{id}/messages`.
#[derive(Clone, Debug)]
pub struct Posted {
    /// The id the fake gave it.
    pub id: String,
    /// Where it went.
    pub channel_id: String,
    /// Its text.
    pub content: String,
    /// The nonce roost sent, if any.
    pub nonce: Option<String>,
    /// Whether roost asked for nonce enforcement.
    pub enforce_nonce: bool,
    /// The whole request body.
    pub body: Value,
    /// When the fake received it (for latency benchmarks).
    pub received_at: Instant,
}

/// One REST request, as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// When the fake received it.
    pub at: Instant,
}

/// What the next `POST /channels/{id}/messages` should suffer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (429 gets a `retry-after` header of `retry_after` seconds).
    Status { code: u16, retry_after: f64 },
    /// Create the message, then answer 500 anyway: an ambiguous failure.
    CreateThenFail,
    /// Answer with Discord's JSON error: HTTP `status`, error `code` and `message`, e.g. 403
    /// 50013 Missing Permissions, 404 10003 Unknown Channel, 401 0 Unauthorized.
    Error {
        status: u16,
        code: u64,
        message: &'static str,
    },
    /// A 429 of the bot-wide limit (`X-RateLimit-Global: true`, scope `global`).
    GlobalRateLimit { retry_after: f64 },
    /// Create the message, then answer only after a long time (a test kills roost meanwhile).
    CreateThenStall,
    /// Answer only after a long time, without creating the message: a post cut off before
    /// Discord took it (a test kills roost meanwhile).
    Stall,
}

/// Messages one channel's bucket takes per [`BUCKET_WINDOW`]; past it a 429 (scope `user`).
/// Discord's is 5 per 5 s; the window is shorter so tests stay fast.
const BUCKET_LIMIT: u32 = 5;
const BUCKET_WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Session {
    /// Every dispatch sent in this session: (seq, event name, data).
    events: Vec<(u64, String, Value)>,
    /// The connection serving it now: its id and sender.
    conn: Option<(u64, mpsc::UnboundedSender<Out>)>,
}

/// An interaction as Discord tracks it: the callback must come within 3 s, once; the
/// token then works for 15 minutes of edits and follow-ups.
struct Interaction {
    token: String,
    channel: String,
    created: Instant,
    acknowledged: bool,
}

/// How long Discord waits for an interaction callback.
const CALLBACK_DEADLINE: Duration = Duration::from_secs(3);
/// How long an interaction token takes edits and follow-ups.
const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

enum Out {
    Json(Value),
    Close(u16),
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    posted: Vec<Posted>,
    by_nonce: HashMap<String, usize>,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    commands: Vec<Value>,
    interaction_responses: Vec<(String, Value)>,
    identifies: u32,
    resumes: u32,
    sessions: HashMap<String, Session>,
    /// The session READY created last: where dispatches go.
    current: Option<String>,
    silent: bool,
    replay_all_on_resume: bool,
    heartbeat_ms: u64,
    next_conn: u64,
    /// How long a nonce is remembered for `enforce_nonce` ("a few minutes" at Discord).
    nonce_window: Duration,
    /// When each remembered nonce was first used.
    nonce_at: HashMap<String, Instant>,
    /// Per-channel rate-limit buckets: when the window began and how many it took.
    buckets: HashMap<String, (Instant, u32)>,
    /// Interactions dispatched, by id: their token, when, and whether a callback took them.
    interactions: HashMap<String, Interaction>,
    /// Edits of an interaction's original response: (interaction token, body).
    original_edits: Vec<(String, Value)>,
    /// Follow-up messages: (interaction token, body).
    followups: Vec<(String, Value)>,
    /// The Message Content intent is off in the Developer Portal: IDENTIFY asking for it is
    /// closed with 4014, as Discord does for a privileged intent not enabled.
    message_content_off: bool,
    /// Per-channel buckets switched off: benches measure roost, not Discord's 5-a-second.
    buckets_off: bool,
    /// How long each message creation takes before it is made.
    post_delay: Duration,
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

/// A running fake Discord. Dropping it shuts it down.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl FakeDiscord {
    /// Starts a fake on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                next_id: 1_000_000_000_000_000_000,
                heartbeat_ms: 1000,
                nonce_window: Duration::from_secs(300),
                ..Inner::default()
            }),
            port,
        });
        let fake = Self {
            shared,
            runtime: Mutex::new(None),
        };
        fake.start_again();
        fake
    }

    /// The base URL roost's `api_base` option takes.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    /// Serves again on the same port after [`FakeDiscord::stop`].
    pub fn start_again(&self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("fake discord runtime");
        let shared = self.shared.clone();
        let addr = SocketAddr::from(([127, 0, 0, 1], shared.port));
        let listener = runtime.block_on(async move {
            let start = Instant::now();
            loop {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.set_reuseaddr(true).expect("reuseaddr");
                match socket.bind(addr).and_then(|()| socket.listen(1024)) {
                    Ok(l) => break l,
                    Err(e) if start.elapsed() < PATIENCE => {
                        eprintln!("fake discord: rebinding {addr}: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("fake discord cannot bind {addr}: {e}"),
                }
            }
        });
        let app = routes(shared);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(runtime);
    }

    /// Takes the fake off the network: every connection is cut and new ones are refused.
    pub fn stop(&self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
        let mut inner = self.shared.lock();
        for session in inner.sessions.values_mut() {
            session.conn = None;
        }
    }

    /// Sets the heartbeat interval HELLO announces to connections made from now on.
    pub fn set_heartbeat_ms(&self, ms: u64) {
        self.shared.lock().heartbeat_ms = ms;
    }

    /// Stops answering heartbeats and sending dispatches while keeping sockets open: a gateway
    /// that looks connected but is dead.
    pub fn go_silent(&self, silent: bool) {
        self.shared.lock().silent = silent;
    }

    /// Makes RESUME replay every event of the session, not just the missed ones: Discord's
    /// at-least-once delivery at its worst.
    pub fn replay_all_on_resume(&self, all: bool) {
        self.shared.lock().replay_all_on_resume = all;
    }

    /// Turns the Message Content intent off (or on) in the fake's Developer Portal: from now
    /// on an IDENTIFY asking for it is closed with 4014 (disallowed intents).
    pub fn set_message_content_intent_enabled(&self, enabled: bool) {
        self.shared.lock().message_content_off = !enabled;
    }

    /// Sets how long `enforce_nonce` remembers a nonce (Discord: a few minutes); zero makes
    /// every retry look like one that came after Discord forgot.
    pub fn set_nonce_window(&self, window: Duration) {
        self.shared.lock().nonce_window = window;
    }

    /// Switches the per-channel rate-limit buckets off (or on): for benches, which measure
    /// how fast roost can go, not how fast Discord lets a channel go.
    pub fn set_rate_limits(&self, on: bool) {
        self.shared.lock().buckets_off = !on;
    }

    /// Makes each message creation take `delay` before it is made: a burst then lasts long
    /// enough at any speed of roost's for a test to stop a hub in the middle of it.
    pub fn set_post_delay(&self, delay: Duration) {
        self.shared.lock().post_delay = delay;
    }

    /// Queues a fault for the next message creation.
    pub fn fail_next_post(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Sends op 7 RECONNECT on the live connection.
    pub fn send_reconnect(&self) {
        self.to_current(Out::Json(json!({"op": 7, "d": null})));
    }

    /// Closes the live connection with `code` (4000 is resumable).
    pub fn close_connection(&self, code: u16) {
        self.to_current(Out::Close(code));
    }

    fn to_current(&self, out: Out) {
        let inner = self.shared.lock();
        let conn = inner
            .current
            .as_ref()
            .and_then(|s| inner.sessions.get(s))
            .and_then(|s| s.conn.as_ref());
        if let Some((_, tx)) = conn {
            let _ = tx.send(out);
        }
    }

    /// Dispatches MESSAGE_CREATE from user `author` in `channel`; returns the message id.
    pub fn user_says(&self, channel: u64, author: u64, content: &str) -> String {
        let mut inner = self.shared.lock();
        let id = next_id(&mut inner);
        let data = message_json(&id, &channel.to_string(), author, "someone", false, content);
        dispatch(&mut inner, "MESSAGE_CREATE", data);
        id
    }

    /// Dispatches MESSAGE_UPDATE for message `id` with new `content`.
    pub fn user_edits(&self, channel: u64, author: u64, id: &str, content: &str) {
        let mut inner = self.shared.lock();
        let mut data = message_json(id, &channel.to_string(), author, "someone", false, content);
        data["edited_timestamp"] = json!("2024-01-01T00:01:00.000000+00:00");
        dispatch(&mut inner, "MESSAGE_UPDATE", data);
    }

    /// Dispatches MESSAGE_DELETE for message `id`.
    pub fn user_deletes(&self, channel: u64, id: &str) {
        let mut inner = self.shared.lock();
        let data =
            json!({"id": id, "channel_id": channel.to_string(), "guild_id": GUILD_ID.to_string()});
        dispatch(&mut inner, "MESSAGE_DELETE", data);
    }

    /// Dispatches INTERACTION_CREATE for slash command `/name` with an optional `args`
    /// string option; returns the interaction id.
    pub fn user_runs_slash(
        &self,
        channel: u64,
        user: u64,
        name: &str,
        args: Option<&str>,
    ) -> String {
        let mut inner = self.shared.lock();
        let id = next_id(&mut inner);
        let options: Vec<Value> = args
            .map(|a| vec![json!({"name": "args", "type": 3, "value": a})])
            .unwrap_or_default();
        let data = json!({
            "id": id,
            "application_id": APP_ID.to_string(),
            "type": 2,
            "token": format!("itoken-{id}"),
            "version": 1,
            "channel_id": channel.to_string(),
            "user": user_json(user, "someone", false),
            "data": {"id": "1", "name": name, "type": 1, "options": options},
            "locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 1,
            "attachment_size_limit": 8_388_608
        });
        inner.interactions.insert(
            id.clone(),
            Interaction {
                token: format!("itoken-{id}"),
                channel: channel.to_string(),
                created: Instant::now(),
                acknowledged: false,
            },
        );
        dispatch(&mut inner, "INTERACTION_CREATE", data);
        id
    }

    /// Edits of the original response of interaction `id` (`PATCH …/messages/@original`).
    pub fn original_edits(&self, id: &str) -> Vec<Value> {
        let token = format!("itoken-{id}");
        let inner = self.shared.lock();
        inner
            .original_edits
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Follow-up messages of interaction `id` (`POST /webhooks/{app}/{token}`).
    pub fn followups(&self, id: &str) -> Vec<Value> {
        let token = format!("itoken-{id}");
        let inner = self.shared.lock();
        inner
            .followups
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Every message created, in creation order.
    pub fn posted(&self) -> Vec<Posted> {
        self.shared.lock().posted.clone()
    }

    /// Messages created in `channel`, in order.
    pub fn posted_in(&self, channel: u64) -> Vec<Posted> {
        let channel = channel.to_string();
        self.posted()
            .into_iter()
            .filter(|p| p.channel_id == channel)
            .collect()
    }

    /// How many messages were created in `channel` (cheaper than [`FakeDiscord::posted_in`]).
    pub fn count_in(&self, channel: u64) -> usize {
        let channel = channel.to_string();
        self.shared
            .lock()
            .posted
            .iter()
            .filter(|p| p.channel_id == channel)
            .count()
    }

    /// Waits until `channel` has at least `n` messages; returns them.
    pub fn wait_posted(&self, channel: u64, n: usize) -> Vec<Posted> {
        self.wait_for(&format!("{n} messages in channel {channel}"), || {
            let p = self.posted_in(channel);
            (p.len() >= n).then_some(p)
        })
    }

    /// Every REST request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// The slash commands registered last (the body of the last bulk overwrite).
    pub fn commands(&self) -> Vec<Value> {
        self.shared.lock().commands.clone()
    }

    /// Interaction callbacks received: (interaction id, body).
    pub fn interaction_responses(&self) -> Vec<(String, Value)> {
        self.shared.lock().interaction_responses.clone()
    }

    /// How many IDENTIFYs and RESUMEs the gateway has received.
    pub fn handshakes(&self) -> (u32, u32) {
        let inner = self.shared.lock();
        (inner.identifies, inner.resumes)
    }

    /// Waits until a client has a live, identified connection.
    pub fn wait_connected(&self) {
        self.wait_for("a gateway connection", || self.is_connected().then_some(()));
    }

    /// Whether a client has a live, identified connection now.
    pub fn is_connected(&self) -> bool {
        let inner = self.shared.lock();
        inner
            .current
            .as_ref()
            .and_then(|s| inner.sessions.get(s))
            .is_some_and(|s| s.conn.is_some())
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
                "fake discord never saw {what}; requests: {:#?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A snowflake as Discord makes them: milliseconds since 2015 in the high bits, so ids
/// sort by time and `after=` queries work; strictly increasing.
fn next_id(inner: &mut Inner) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let at = ms.saturating_sub(1_420_070_400_000) << 22;
    inner.next_id = (inner.next_id + 1).max(at);
    inner.next_id.to_string()
}

fn user_json(id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(), "username": name, "discriminator": "0",
        "global_name": name, "avatar": null, "bot": bot
    })
}

fn message_json(
    id: &str,
    channel: &str,
    author: u64,
    name: &str,
    bot: bool,
    content: &str,
) -> Value {
    json!({
        "id": id,
        "channel_id": channel,
        "guild_id": GUILD_ID.to_string(),
        "author": user_json(author, name, bot),
        "content": content,
        "timestamp": "2024-01-01T00:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0
    })
}

fn ready_json(session_id: &str, port: u16) -> Value {
    json!({
        "v": 10,
        "user": {
            "id": BOT_ID.to_string(), "username": "roost-bot", "discriminator": "0",
            "global_name": null, "avatar": null, "bot": true, "verified": true,
            "mfa_enabled": false, "flags": 0
        },
        "guilds": [],
        "session_id": session_id,
        "resume_gateway_url": format!("ws://127.0.0.1:{port}/gateway"),
        "shard": [0, 1],
        "application": {"id": APP_ID.to_string(), "flags": 0}
    })
}

/// Logs a dispatch in the current session and sends it if a connection is live.
fn dispatch(inner: &mut Inner, event: &str, data: Value) {
    let silent = inner.silent;
    let Some(session) = inner
        .current
        .clone()
        .and_then(|s| inner.sessions.get_mut(&s))
    else {
        eprintln!("fake discord: {event} dropped, no session yet");
        return;
    };
    let seq = session.events.last().map_or(1, |(s, _, _)| s + 1);
    session.events.push((seq, event.to_string(), data.clone()));
    if let (Some((_, tx)), false) = (&session.conn, silent) {
        let _ = tx.send(Out::Json(json!({"op": 0, "t": event, "s": seq, "d": data})));
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/gateway", get(ws_upgrade))
        .route("/api/v10/gateway", get(gateway_url))
        .route("/api/v10/gateway/bot", get(gateway_url))
        .route("/api/v10/users/@me", get(current_user))
        .route(
            "/api/v10/channels/{channel}/messages",
            axum::routing::post(create_message).get(list_messages),
        )
        .route(
            "/api/v10/channels/{channel}/messages/{message}",
            any(edit_message),
        )
        .route("/api/v10/applications/{app}/commands", any(commands))
        .route(
            "/api/v10/interactions/{id}/{token}/callback",
            axum::routing::post(interaction_callback),
        )
        .route(
            "/api/v10/webhooks/{app}/{token}/messages/{message}",
            axum::routing::patch(edit_original),
        )
        .route(
            "/api/v10/webhooks/{app}/{token}",
            axum::routing::post(followup),
        )
        .fallback(fallback)
        .with_state(shared)
}

fn record(shared: &Shared, method: &Method, uri: &Uri, body: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        body: value.clone(),
        at: Instant::now(),
    });
    value
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {TOKEN}"))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"code": 0, "message": "401: Unauthorized"})),
    )
        .into_response()
}

async fn gateway_url(State(s): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    record(&s, &method, &uri, b"");
    axum::Json(json!({
        "url": format!("ws://127.0.0.1:{}/gateway", s.port),
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
    }))
    .into_response()
}

async fn current_user(State(s): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    record(&s, &method, &uri, b"");
    axum::Json(user_json(BOT_ID, "roost-bot", true)).into_response()
}

async fn create_message(
    State(s): State<Arc<Shared>>,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let delay = s.lock().post_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if matches!(s.lock().faults.front(), Some(Fault::Stall)) {
        record(&s, &method, &uri, &body);
        s.lock().faults.pop_front();
        tokio::time::sleep(PATIENCE).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let stall = matches!(s.lock().faults.front(), Some(Fault::CreateThenStall));
    let response = create_message_now(&s, channel, &method, &uri, &headers, &body);
    if stall {
        tokio::time::sleep(PATIENCE).await;
    }
    response
}

/// `GET /channels/{id}/messages?after=&limit=`: as Discord answers it, the `limit` oldest
/// messages after `after` (the newest `limit` when there is no `after`), newest first.
async fn list_messages(
    State(s): State<Arc<Shared>>,
    Path(channel): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&s, &method, &uri, b"");
    if !authorized(&headers) {
        return unauthorized();
    }
    let after: Option<u64> = query.get("after").and_then(|a| a.parse().ok());
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .map_or(50, |l: usize| l.clamp(1, 100));
    let inner = s.lock();
    let in_channel: Vec<&Posted> = inner
        .posted
        .iter()
        .filter(|p| p.channel_id == channel)
        .filter(|p| after.is_none_or(|a| p.id.parse::<u64>().unwrap_or(0) > a))
        .collect();
    let skip = if after.is_some() {
        0
    } else {
        in_channel.len().saturating_sub(limit)
    };
    let out: Vec<Value> = in_channel[skip..]
        .iter()
        .take(limit)
        .rev()
        .map(|p| message_json(&p.id, &p.channel_id, BOT_ID, "roost-bot", true, &p.content))
        .collect();
    axum::Json(Value::Array(out)).into_response()
}

fn create_message_now(
    s: &Shared,
    channel: String,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let body = record(s, method, uri, body);
    if !authorized(headers) {
        return unauthorized();
    }
    let mut inner = s.lock();
    let fault = inner.faults.pop_front();
    if let Some(resp) = fault.as_ref().and_then(fault_response) {
        return resp;
    }
    let bucket = match take_from_bucket(&mut inner, &channel) {
        Ok(headers) => headers,
        Err(limited) => return *limited,
    };
    if let Some(Fault::Status { code, retry_after }) = fault {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (
            status,
            axum::Json(
                json!({"message": "fault", "code": 0, "retry_after": retry_after, "global": false}),
            ),
        )
            .into_response();
        if code == 429 {
            resp.headers_mut().insert(
                "retry-after",
                retry_after.to_string().parse().expect("header value"),
            );
        }
        return resp;
    }
    let nonce = match &body["nonce"] {
        Value::String(n) => Some(n.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let enforce_nonce = body["enforce_nonce"].as_bool().unwrap_or(false);
    let window = inner.nonce_window;
    let existing = nonce
        .as_ref()
        .filter(|_| enforce_nonce)
        .filter(|n| {
            inner
                .nonce_at
                .get(*n)
                .is_some_and(|at| at.elapsed() < window)
        })
        .and_then(|n| inner.by_nonce.get(n))
        .and_then(|i| inner.posted.get(*i))
        .cloned();
    let posted = match existing {
        Some(p) => p,
        None => {
            let id = next_id(&mut inner);
            let posted = Posted {
                id,
                channel_id: channel.clone(),
                content: body["content"].as_str().unwrap_or_default().to_string(),
                nonce: nonce.clone(),
                enforce_nonce,
                body: body.clone(),
                received_at: Instant::now(),
            };
            inner.posted.push(posted.clone());
            if let (Some(n), true) = (nonce, enforce_nonce) {
                let index = inner.posted.len() - 1;
                inner.nonce_at.insert(n.clone(), Instant::now());
                inner.by_nonce.insert(n, index);
            }
            // Discord echoes the bot's own messages on the gateway; a bot must ignore them.
            let echo = message_json(
                &posted.id,
                &channel,
                BOT_ID,
                "roost-bot",
                true,
                &posted.content,
            );
            dispatch(&mut inner, "MESSAGE_CREATE", echo);
            posted
        }
    };
    if matches!(fault, Some(Fault::CreateThenFail)) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"message": "created, then failed", "code": 0})),
        )
            .into_response();
    }
    let mut out = message_json(
        &posted.id,
        &posted.channel_id,
        BOT_ID,
        "roost-bot",
        true,
        &posted.content,
    );
    if let Some(n) = &posted.nonce {
        out["nonce"] = json!(n);
    }
    (bucket, axum::Json(out)).into_response()
}

/// The answer for a fault that is a Discord JSON error or a global 429.
fn fault_response(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::Error {
            status,
            code,
            message,
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN);
            Some(
                (
                    status,
                    axum::Json(json!({"message": message, "code": code})),
                )
                    .into_response(),
            )
        }
        Fault::GlobalRateLimit { retry_after } => {
            let body = json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": true});
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            let h = resp.headers_mut();
            h.insert("retry-after", header(&retry_after.ceil().to_string()));
            h.insert("x-ratelimit-global", header("true"));
            h.insert("x-ratelimit-scope", header("global"));
            Some(resp)
        }
        _ => None,
    }
}

fn header(v: &str) -> axum::http::HeaderValue {
    v.parse().expect("header value")
}

/// Takes one message from `channel`'s bucket: the `X-RateLimit-*` headers of a success, or
/// a 429 when the bucket is empty, as Discord answers.
fn take_from_bucket(inner: &mut Inner, channel: &str) -> Result<HeaderMap, Box<Response>> {
    if inner.buckets_off {
        return Ok(HeaderMap::new());
    }
    let now = Instant::now();
    let (start, used) = inner.buckets.entry(channel.to_string()).or_insert((now, 0));
    if now.duration_since(*start) >= BUCKET_WINDOW {
        (*start, *used) = (now, 0);
    }
    let reset_after = BUCKET_WINDOW.saturating_sub(now.duration_since(*start));
    let reset_after = format!("{:.3}", reset_after.as_secs_f64());
    if *used >= BUCKET_LIMIT {
        let body = json!({"message": "You are being rate limited.", "retry_after": reset_after.parse::<f64>().unwrap_or(1.0), "global": false});
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert("retry-after", header("1"));
        h.insert("x-ratelimit-scope", header("user"));
        h.insert("x-ratelimit-remaining", header("0"));
        h.insert("x-ratelimit-reset-after", header(&reset_after));
        return Err(Box::new(resp));
    }
    *used += 1;
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-limit", header(&BUCKET_LIMIT.to_string()));
    h.insert(
        "x-ratelimit-remaining",
        header(&(BUCKET_LIMIT - *used).to_string()),
    );
    h.insert("x-ratelimit-reset-after", header(&reset_after));
    h.insert("x-ratelimit-bucket", header(&format!("channel-{channel}")));
    Ok(h)
}

async fn edit_message(
    State(s): State<Arc<Shared>>,
    Path((channel, message)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body = record(&s, &method, &uri, &body);
    if !authorized(&headers) {
        return unauthorized();
    }
    if method == Method::DELETE {
        return StatusCode::NO_CONTENT.into_response();
    }
    let content = body["content"].as_str().unwrap_or_default();
    axum::Json(message_json(
        &message,
        &channel,
        BOT_ID,
        "roost-bot",
        true,
        content,
    ))
    .into_response()
}

async fn commands(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body = record(&s, &method, &uri, &body);
    if !authorized(&headers) {
        return unauthorized();
    }
    let mut inner = s.lock();
    if method == Method::PUT {
        inner.commands = body.as_array().cloned().unwrap_or_default();
    }
    let out: Vec<Value> = inner
        .commands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            c["id"] = json!((i + 1).to_string());
            c["application_id"] = json!(APP_ID.to_string());
            c["version"] = json!("1");
            c["type"] = json!(1);
            c["default_member_permissions"] = Value::Null;
            c["dm_permission"] = json!(true);
            c["nsfw"] = json!(false);
            if c.get("options").is_none() {
                c["options"] = json!([]);
            }
            c
        })
        .collect();
    axum::Json(Value::Array(out)).into_response()
}

fn discord_error(status: StatusCode, code: u64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// The interaction callback: within 3 s of the interaction, once, as Discord takes it.
async fn interaction_callback(
    State(s): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let body = record(&s, &method, &uri, &body);
    let mut inner = s.lock();
    let Some(interaction) = inner
        .interactions
        .get_mut(&id)
        .filter(|i| i.token == token && i.created.elapsed() < CALLBACK_DEADLINE)
    else {
        return discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
    };
    if interaction.acknowledged {
        return discord_error(
            StatusCode::BAD_REQUEST,
            40060,
            "Interaction has already been acknowledged.",
        );
    }
    interaction.acknowledged = true;
    inner.interaction_responses.push((id, body));
    StatusCode::NO_CONTENT.into_response()
}

/// The channel of the acknowledged interaction `token` belongs to, while it takes edits.
fn live_token(inner: &Inner, token: &str) -> Option<String> {
    inner
        .interactions
        .values()
        .find(|i| i.token == token && i.acknowledged && i.created.elapsed() < TOKEN_LIFETIME)
        .map(|i| i.channel.clone())
}

/// `PATCH /webhooks/{app}/{token}/messages/@original`: edits the response of an
/// acknowledged interaction (a deferred one shows "thinking…" until then).
async fn edit_original(
    State(s): State<Arc<Shared>>,
    Path((app, token, message)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let body = record(&s, &method, &uri, &body);
    let mut inner = s.lock();
    let channel = live_token(&inner, &token);
    let Some(channel) = channel.filter(|_| app == APP_ID.to_string() && message == "@original")
    else {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    inner.original_edits.push((token, body.clone()));
    bot_message(&mut inner, &channel, &body)
}

/// `POST /webhooks/{app}/{token}`: a follow-up message of an acknowledged interaction.
async fn followup(
    State(s): State<Arc<Shared>>,
    Path((app, token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    let body = record(&s, &method, &uri, &body);
    let mut inner = s.lock();
    let Some(channel) = live_token(&inner, &token).filter(|_| app == APP_ID.to_string()) else {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    };
    inner.followups.push((token, body.clone()));
    bot_message(&mut inner, &channel, &body)
}

/// The message the bot's webhook call made, as Discord returns it.
fn bot_message(inner: &mut Inner, channel: &str, body: &Value) -> Response {
    let id = next_id(inner);
    let content = body["content"].as_str().unwrap_or_default();
    axum::Json(message_json(
        &id,
        channel,
        BOT_ID,
        "roost-bot",
        true,
        content,
    ))
    .into_response()
}

async fn fallback(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: axum::body::Bytes,
) -> Response {
    record(&s, &method, &uri, &body);
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"code": 0, "message": "404: Not Found"})),
    )
        .into_response()
}

async fn ws_upgrade(State(s): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| gateway_connection(s, socket))
}

/// One gateway connection: HELLO, then ops until either side closes.
async fn gateway_connection(shared: Arc<Shared>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let (conn_id, interval) = {
        let mut inner = shared.lock();
        inner.next_conn += 1;
        (inner.next_conn, inner.heartbeat_ms)
    };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}});
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let Ok(payload) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                    gateway_op(&shared, conn_id, &tx, &payload);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(Out::Json(v)) => {
                    if sink.send(Message::Text(v.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code)) => {
                    let frame = CloseFrame { code, reason: "fake close".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
                None => break,
            }
        }
    }
    let mut inner = shared.lock();
    for session in inner.sessions.values_mut() {
        if session.conn.as_ref().is_some_and(|(id, _)| *id == conn_id) {
            session.conn = None;
        }
    }
}

fn gateway_op(shared: &Shared, conn_id: u64, tx: &mpsc::UnboundedSender<Out>, payload: &Value) {
    let mut inner = shared.lock();
    match payload["op"].as_u64() {
        Some(1) if !inner.silent => {
            let _ = tx.send(Out::Json(json!({"op": 11})));
        }
        Some(2) => {
            inner.identifies += 1;
            let token = payload["d"]["token"].as_str().unwrap_or_default();
            if token.trim_start_matches("Bot ") != TOKEN {
                let _ = tx.send(Out::Close(4004));
                return;
            }
            // Intents must be a bit set of known intents (4013), and privileged ones must be
            // enabled in the portal (4014). Neither close may be retried by a client.
            let Some(intents) = payload["d"]["intents"].as_u64().filter(|i| *i < 1 << 26) else {
                let _ = tx.send(Out::Close(4013));
                return;
            };
            if intents & MESSAGE_CONTENT_INTENT != 0 && inner.message_content_off {
                let _ = tx.send(Out::Close(4014));
                return;
            }
            let session_id = format!("fake-session-{}", inner.identifies);
            let ready = ready_json(&session_id, shared.port);
            let mut session = Session {
                conn: Some((conn_id, tx.clone())),
                ..Session::default()
            };
            session.events.push((1, "READY".into(), ready.clone()));
            inner.sessions.insert(session_id.clone(), session);
            inner.current = Some(session_id);
            let _ = tx.send(Out::Json(
                json!({"op": 0, "t": "READY", "s": 1, "d": ready}),
            ));
        }
        Some(6) => {
            inner.resumes += 1;
            let session_id = payload["d"]["session_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let seq = payload["d"]["seq"].as_u64().unwrap_or(0);
            let replay_all = inner.replay_all_on_resume;
            let Some(session) = inner.sessions.get_mut(&session_id) else {
                let _ = tx.send(Out::Json(json!({"op": 9, "d": false})));
                return;
            };
            session.conn = Some((conn_id, tx.clone()));
            let mut last = 0;
            for (s, t, d) in &session.events {
                last = *s;
                if t != "READY" && (replay_all || *s > seq) {
                    let _ = tx.send(Out::Json(json!({"op": 0, "t": t, "s": s, "d": d})));
                }
            }
            let _ = tx.send(Out::Json(
                json!({"op": 0, "t": "RESUMED", "s": last, "d": {}}),
            ));
            inner.current = Some(session_id);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payloads the fake sends must be what serenity's model accepts, or the real client
    /// would silently drop them.
    #[test]
    fn dispatch_payloads_deserialize_as_serenity_models() {
        use serenity::model::prelude::*;
        let m = message_json("5", "6", 7, "n", false, "hi");
        let msg: Message = serde_json::from_value(m).expect("message");
        assert_eq!(msg.content, "hi");
        let fake = FakeDiscord::start();
        let interaction = {
            let mut inner = fake.shared.lock();
            inner.current = Some("s".into());
            inner.sessions.insert("s".into(), Session::default());
            drop(inner);
            fake.user_runs_slash(1, 2, "ping", Some("a b"));
            let inner = fake.shared.lock();
            inner.sessions["s"].events[0].2.clone()
        };
        let i: Interaction = serde_json::from_value(interaction).expect("interaction");
        assert!(matches!(i, Interaction::Command(_)));
        let ready = ready_json("s", 1);
        let _: Ready = serde_json::from_value(ready).expect("ready");
    }
}

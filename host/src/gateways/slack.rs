//! A Slack app: one named instance per `[gateways.NAME]` of kind slack, so two workspaces
//! run side by side (`[gateways.slack-work]`, `[gateways.slack-home]`).
//!
//! - Incoming: Socket Mode. `apps.connections.open` (app-level token) gives a websocket URL;
//!   every envelope is acknowledged at once, then its event handled. Messages from people
//!   (never from bots, this one included) become [`ChatMessage`]s with identity
//!   `slack:<team id>/<user id>` and go through the router; replies are queued for
//!   `<gateway>:<channel id>`. Envelopes Slack sends again are handled once.
//! - Outgoing: `chat.postMessage` (bot token), pieces of at most [`MESSAGE_LIMIT`]
//!   characters in a section block, text escaped so `<!everyone>` and `<@U…>` stay inert.
//!   Each piece carries a stable id in its message metadata; a retry after an ambiguous
//!   failure first looks for that id in the channel's recent history and does not post
//!   twice.
//! - Connection: reconnect with backoff when the socket closes, Slack asks for it
//!   (`disconnect`), or nothing arrives for `health_probe_secs` (pings are sent meanwhile).
//!
//! Written on reqwest and tokio-tungstenite rather than slack-morphism: the two calls and
//! one socket roost needs, pointed at `api_base` for tests, without a second HTTP stack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

use super::queue::Queue;
use super::seen::Seen;
use super::{
    Backoff, BoxFuture, Deliver, DeliveryError, GatewayStatus, StartError, error_chain, secrets,
    text,
};
use crate::config::ChatGateway;
use crate::message::{ChatMessage, Outgoing, RelayAction};
use crate::outbox::Outbox;
use crate::router::Router;
use crate::store::OutboxItem;

/// Characters per posted piece: a section block's text holds at most 3,000.
pub const MESSAGE_LIMIT: usize = 3000;
/// Most characters one message for a Slack target keeps once queued: Slack's own limit on a
/// message's text (posted in [`MESSAGE_LIMIT`] pieces). Longer ones are cut when queued.
pub const QUEUED_LIMIT: usize = 40_000;
/// The real Web API.
const DEFAULT_BASE: &str = "https://slack.com";
/// Event keys remembered to handle redelivered envelopes once.
const SEEN_KEEP: usize = 4096;
/// How long a person's name from `users.info` is used before it is looked up again.
const NAME_KEEP: Duration = Duration::from_secs(3600);
/// Pages of `conversations.history` read to find an earlier attempt's post.
const HISTORY_PAGES: usize = 10;
/// The metadata event type that marks roost's own posts.
const METADATA_TYPE: &str = "roost_outbox";

/// Web API access with the bot token.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    bot_token: String,
}

impl Api {
    /// Calls `method` with a JSON body using `token`; the answer when `ok`, else Slack's
    /// verdict mapped to a [`DeliveryError`].
    async fn call_with(
        &self,
        token: &str,
        method: &str,
        body: Value,
    ) -> Result<Value, DeliveryError> {
        let url = format!("{}/api/{method}", self.base.trim_end_matches('/'));
        let response = self
            .client
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(error_chain(&e)))?;
        answer(method, response).await
    }

    async fn call(&self, method: &str, body: Value) -> Result<Value, DeliveryError> {
        self.call_with(&self.bot_token, method, body).await
    }

    /// Calls read method `method` as the SDKs do: GET with query parameters (Slack does not
    /// read JSON bodies on read methods).
    async fn read(&self, method: &str, query: &[(&str, &str)]) -> Result<Value, DeliveryError> {
        let url = format!("{}/api/{method}", self.base.trim_end_matches('/'));
        let response = self
            .client
            .get(url)
            .bearer_auth(&self.bot_token)
            .query(query)
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(error_chain(&e)))?;
        answer(method, response).await
    }
}

/// Slack's answer to a Web API call: the body when `ok`, else its verdict.
async fn answer(method: &str, response: reqwest::Response) -> Result<Value, DeliveryError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let text = response.text().await.unwrap_or_default();
    if status.as_u16() == 429 {
        let wait = Duration::from_secs_f64(retry_after.unwrap_or(1.0).clamp(0.0, 3600.0));
        return Err(DeliveryError::RetryAfter(
            wait,
            format!("{method}: HTTP 429"),
        ));
    }
    if !status.is_success() {
        return Err(DeliveryError::Transient(format!(
            "{method}: HTTP {status}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| DeliveryError::Transient(format!("{method}: unreadable answer: {e}")))?;
    if answer["ok"].as_bool() == Some(true) {
        return Ok(answer);
    }
    let error = answer["error"].as_str().unwrap_or("unknown error");
    Err(classify(method, error))
}

/// Slack's verdict on a Web API `error`: wait and retry, drop the message, set it aside
/// (the app is not in the channel, the channel is gone or archived: retrying cannot help
/// until a person acts), or stop the gateway (the token is refused).
fn classify(method: &str, error: &str) -> DeliveryError {
    let why = format!("{method}: {error}");
    match error {
        "ratelimited" => DeliveryError::RetryAfter(Duration::from_secs(1), why),
        "msg_too_long" | "invalid_blocks" | "no_text" | "invalid_arguments" => {
            DeliveryError::Rejected(why)
        }
        "not_in_channel" => DeliveryError::Parked(format!(
            "{why}: invite the app to the channel (/invite @app)"
        )),
        "channel_not_found" => DeliveryError::Parked(format!(
            "{why}: no such channel, or a private one the app was not invited to"
        )),
        "is_archived" => DeliveryError::Parked(format!("{why}: the channel is archived")),
        "restricted_action" | "cannot_post_in_channel" => DeliveryError::Parked(format!(
            "{why}: the workspace does not let the app post there"
        )),
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" => {
            DeliveryError::Unauthorized(format!(
                "Slack refused the bot token ({why}); fix it and restart roost"
            ))
        }
        _ => DeliveryError::Transient(why),
    }
}

/// Starts gateway `name`: reads both tokens, spawns its Socket Mode connection, and returns
/// its outgoing half. Must be called inside the daemon's tokio runtime.
pub fn start(
    name: &str,
    config: &ChatGateway,
    router: Arc<Router>,
    outbox: Outbox,
    status: GatewayStatus,
) -> Result<Arc<dyn Deliver>, StartError> {
    let bot_token = secrets::bot_token(name, config)?;
    let app_env = config.app_token_env_for(name);
    let app_token = secrets::read_token(&secrets::TokenSource {
        gateway: name,
        what: "app-level token",
        file: config.app_token_file.as_deref(),
        file_key: "app_token_file",
        env: &app_env,
    })?;
    let client = super::rest_client(name)?;
    let api = Api {
        client,
        base: config
            .api_base
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE.to_string()),
        bot_token,
    };
    let handler = Arc::new(Handler {
        name: name.to_string(),
        router,
        queue: Queue::new(name, outbox.clone(), config.mirror.clone()),
        seen: Seen::new(SEEN_KEEP),
        api: api.clone(),
        names: Mutex::new(HashMap::new()),
        bot_user: std::sync::OnceLock::new(),
    });
    let connection = Connection {
        name: name.to_string(),
        api: api.clone(),
        app_token,
        probe_after: Duration::from_secs(config.health_probe_secs),
        status,
    };
    tokio::spawn(connection.run(handler));
    Ok(Arc::new(SlackSender {
        name: name.to_string(),
        store: outbox.store().clone(),
        api,
    }))
}

/// Slack's escaping of `&`, `<`, `>`: the text shows as typed and no `<!here>` or `<@U…>`
/// in it can mention anyone.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The inverse of [`escape`].
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Incoming Slack text as the person typed it: Slack's `<…>` markup decoded, then
/// `&lt;`, `&gt;`, `&amp;` unescaped. Plugins get `example.org`, not
/// `<http://example.org|example.org>`.
pub fn decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&unescape(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            out.push_str(&unescape(&rest[open..]));
            return out;
        };
        out.push_str(&decode_one(&after[..close]));
        rest = &after[close + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

/// One `<…>` of Slack markup (without the brackets), as shown to people.
fn decode_one(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(unescape(l))),
        None => (inner, None),
    };
    let target = unescape(target);
    if let Some(user) = target.strip_prefix('@') {
        // A user mention stays the id, readable and usable as one.
        return format!("@{user}");
    }
    if let Some(channel) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or_else(|| channel.to_string()));
    }
    if let Some(special) = target.strip_prefix('!') {
        return match label {
            Some(l) => l,
            None => format!("@{}", special.split('^').next().unwrap_or(special)),
        };
    }
    match label {
        // `<http://example.org|example.org>`: Slack linked what was typed; give it back.
        Some(l) if without_scheme(&target) == l => l,
        _ => target,
    }
}

/// `example.org/x` for `https://example.org/x`, `a@b.c` for `mailto:a@b.c`.
fn without_scheme(url: &str) -> &str {
    match url.split_once(':') {
        Some((scheme, rest)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            rest.trim_start_matches("//")
        }
        _ => url,
    }
}

/// What a post or an update of one piece says: one section block (what people see) and
/// the same text as the notification fallback.
fn content(piece: &str) -> Value {
    json!({
        "text": piece,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": piece}}],
    })
}

/// The outgoing half: posts outbox messages with `chat.postMessage`.
pub struct SlackSender {
    name: String,
    store: crate::store::Store,
    api: Api,
}

impl SlackSender {
    /// Whether piece `id` was already posted in `channel` (an earlier attempt that may have
    /// gone through, possibly before a crash); its ts if so. Reads the history since the
    /// message was queued, page by page (Slack may give as few as 15 messages a page).
    async fn already_posted(
        &self,
        channel: &str,
        item: &OutboxItem,
        id: &str,
    ) -> Result<Option<String>, DeliveryError> {
        // A minute of slack for clocks that disagree.
        let oldest = format!("{}.000000", (item.created_at / 1000).saturating_sub(60));
        let mut cursor = String::new();
        for _ in 0..HISTORY_PAGES {
            let mut query = vec![
                ("channel", channel),
                ("oldest", oldest.as_str()),
                ("limit", "15"),
                ("include_all_metadata", "true"),
            ];
            if !cursor.is_empty() {
                query.push(("cursor", cursor.as_str()));
            }
            let history = self.api.read("conversations.history", &query).await?;
            let found = history["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| {
                    m["metadata"]["event_type"] == METADATA_TYPE
                        && m["metadata"]["event_payload"]["id"] == id
                })
                .and_then(|m| m["ts"].as_str().map(str::to_string));
            if found.is_some() {
                return Ok(found);
            }
            match history["response_metadata"]["next_cursor"].as_str() {
                Some(next) if history["has_more"] == true && !next.is_empty() => {
                    cursor = next.to_string();
                }
                _ => return Ok(None),
            }
        }
        tracing::warn!(gateway = %self.name, channel, "more history since the message was queued than roost reads; posting it");
        Ok(None)
    }
}

impl super::relay::Platform for SlackSender {
    type Channel = str;

    /// Posts `message` in pieces, each with its id in the message metadata; the ts of the
    /// messages created.
    async fn post(
        &self,
        channel: &str,
        item: &OutboxItem,
        message: &Outgoing,
    ) -> Result<Vec<String>, DeliveryError> {
        let mut ids = Vec::new();
        let rendered = escape(&message.render_plain());
        for (i, piece) in text::split(&rendered, MESSAGE_LIMIT)
            .into_iter()
            .enumerate()
        {
            let id = format!("{}.{}.{i}", item.id, item.created_at);
            if item.attempts > 0
                && let Some(ts) = self.already_posted(channel, item, &id).await?
            {
                tracing::info!(gateway = %self.name, channel, "piece already posted before a failure; not posting it again");
                ids.push(ts);
                continue;
            }
            let mut body = content(&piece);
            body["channel"] = json!(channel);
            body["unfurl_links"] = json!(false);
            body["metadata"] = json!({"event_type": METADATA_TYPE, "event_payload": {"id": id}});
            let answer = self.api.call("chat.postMessage", body).await?;
            if let Some(ts) = answer["ts"].as_str() {
                ids.push(ts.to_string());
            }
        }
        Ok(ids)
    }

    async fn edit(&self, channel: &str, ts: &str, message: &Outgoing) -> Result<(), DeliveryError> {
        let piece = text::split(&escape(&message.render_plain()), MESSAGE_LIMIT)
            .into_iter()
            .next()
            .unwrap_or_default();
        // The same shape as the post: an update with `text` alone leaves the old blocks,
        // which are what people see.
        let mut body = content(&piece);
        body["channel"] = json!(channel);
        body["ts"] = json!(ts);
        self.api.call("chat.update", body).await.map(|_| ())
    }

    async fn delete(&self, channel: &str, ts: &str) -> Result<(), DeliveryError> {
        let body = json!({"channel": channel, "ts": ts});
        self.api.call("chat.delete", body).await.map(|_| ())
    }

    fn is_gone(error: &DeliveryError) -> bool {
        matches!(error, DeliveryError::Transient(why) if why.ends_with("message_not_found"))
    }
}

impl Deliver for SlackSender {
    fn deliver<'a>(
        &'a self,
        channel: &'a str,
        item: &'a OutboxItem,
    ) -> BoxFuture<'a, Result<super::Posted, DeliveryError>> {
        Box::pin(async move {
            let target = format!("{}:{channel}", self.name);
            super::relay::deliver(self, &self.store, &target, channel, item).await
        })
    }
}

/// Handles the events of one gateway.
struct Handler {
    name: String,
    router: Arc<Router>,
    /// Where replies and mirrored copies go.
    queue: Queue,
    /// The last [`SEEN_KEEP`] message, edit and delete keys, to handle each event once.
    seen: Seen<String>,
    api: Api,
    /// People's names by user id, from `users.info`, and when each was looked up.
    names: Mutex<HashMap<String, (String, Instant)>>,
    /// This app's bot user id (from `auth.test`): its own messages are never handled.
    bot_user: std::sync::OnceLock<String>,
}

impl Handler {
    /// The name people see for Slack user `user`: message events carry only the id, so it
    /// is looked up with `users.info` and kept for [`NAME_KEEP`]. The id when that fails.
    async fn author(&self, user: &str) -> String {
        let cached = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .filter(|(_, at)| at.elapsed() < NAME_KEEP)
            .map(|(name, _)| name.clone());
        if let Some(name) = cached {
            return name;
        }
        let info = match self.api.read("users.info", &[("user", user)]).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(gateway = %self.name, user, "users.info: {e}; showing the id");
                return user.to_string();
            }
        };
        let profile = &info["user"]["profile"];
        let name = [
            &profile["display_name"],
            &profile["real_name"],
            &info["user"]["real_name"],
            &info["user"]["name"],
        ]
        .into_iter()
        .filter_map(|v| v.as_str())
        .find(|n| !n.trim().is_empty())
        .unwrap_or(user)
        .to_string();
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.len() >= SEEN_KEEP {
            names.clear();
        }
        names.insert(user.to_string(), (name.clone(), Instant::now()));
        name
    }

    /// Whether `event` comes from a bot: any app (`bot_id`), or this app's own bot user.
    fn is_from_bot(&self, event: &Value) -> bool {
        event["bot_id"].is_string()
            || event["user"].as_str().is_none()
            || self
                .bot_user
                .get()
                .is_some_and(|me| event["user"] == me.as_str())
    }

    /// Something a person wrote in `channel`: mirrored, and routed as a command.
    async fn said(&self, team: &str, channel: &str, event: &Value) {
        // Bots (this one included) never reach the router or the mirror: no loops.
        if self.is_from_bot(event) {
            return;
        }
        let ts = event["ts"].as_str().unwrap_or_default();
        let key = format!("{}:{channel}:{ts}", self.name);
        if !self.seen.first_time(key.clone()) {
            return;
        }
        let user = event["user"].as_str().unwrap_or_default();
        let text = decode(event["text"].as_str().unwrap_or_default());
        if self.queue.mirrors(channel) {
            let author = self.author(user).await;
            let shown = shown_text(event, &author, &text);
            self.queue
                .mirror(channel, &Outgoing::relay(key, RelayAction::Post, shown));
        }
        let chat = ChatMessage {
            gateway: self.name.clone(),
            channel: channel.to_string(),
            identity: format!("slack:{team}/{user}"),
            text,
        };
        if let Some(reply) = self.router.handle(&chat).await {
            self.queue.reply(channel, &reply);
        }
    }

    /// One Events API payload.
    async fn event(&self, payload: &Value) {
        let team = payload["team_id"].as_str().unwrap_or_default();
        let event = &payload["event"];
        if event["type"] != "message" {
            return;
        }
        let channel = event["channel"].as_str().unwrap_or_default().to_string();
        match event["subtype"].as_str() {
            Some("message_changed") => {
                let msg = &event["message"];
                if self.is_from_bot(msg) {
                    return;
                }
                let ts = msg["ts"].as_str().unwrap_or_default();
                let key = format!("{}:{channel}:{ts}", self.name);
                if !self.seen.first_time(format!("edit:{key}:{}", event["ts"])) {
                    return;
                }
                if !self.queue.mirrors(&channel) {
                    return;
                }
                let author = match msg["user"].as_str() {
                    Some(user) => self.author(user).await,
                    None => "someone".to_string(),
                };
                let text = decode(msg["text"].as_str().unwrap_or_default());
                self.queue.mirror(
                    &channel,
                    &Outgoing::relay(key, RelayAction::Edit, format!("{author}: {text}")),
                );
            }
            Some("message_deleted") => {
                let ts = event["deleted_ts"].as_str().unwrap_or_default();
                let key = format!("{}:{channel}:{ts}", self.name);
                if !self.seen.first_time(format!("delete:{key}")) {
                    return;
                }
                self.queue
                    .mirror(&channel, &Outgoing::relay(key, RelayAction::Delete, ""));
            }
            // What people write: plain, with files, a thread reply also sent to the channel,
            // `/me`. `bot_message` and every other subtype (joins, topics…) are not theirs.
            None | Some("file_share" | "thread_broadcast" | "me_message") => {
                self.said(team, &channel, event).await;
            }
            Some(_) => {}
        }
    }
}

/// A message as a mirror shows it: `ann: text`, `ann waves` for `/me waves`, and the names
/// of shared files.
fn shown_text(event: &Value, author: &str, text: &str) -> String {
    let files: Vec<String> = event["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().or_else(|| f["title"].as_str()))
        .map(|name| format!("[file: {name}]"))
        .collect();
    let body = [text.to_string()]
        .into_iter()
        .chain(files)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if event["subtype"] == "me_message" {
        format!("{author} {body}")
    } else {
        format!("{author}: {body}")
    }
}

/// The `!status` warning when `hello` says this app has more than one Socket Mode
/// connection: Slack gives each event to one of them, so another process (a dev copy on
/// the same app) silently takes a share of the messages.
fn connections_warning(hello: &Value) -> Option<String> {
    let n = hello["num_connections"].as_u64().filter(|n| *n > 1)?;
    Some(format!(
        "{n} Socket Mode connections to this Slack app; each event goes to only one of them, \
         so another process using the same app token takes some messages"
    ))
}

/// The Socket Mode side of one gateway.
struct Connection {
    name: String,
    api: Api,
    app_token: String,
    probe_after: Duration,
    status: GatewayStatus,
}

impl Connection {
    async fn run(self, handler: Arc<Handler>) {
        let Some(me) = self.bot_token_works().await else {
            return;
        };
        if let Some(me) = me {
            // Set once per gateway, by this task only.
            let _ = handler.bot_user.set(me);
        }
        let mut backoff = Backoff::new();
        let mut ever_connected = false;
        loop {
            let session = tokio::select! {
                s = self.session(&handler, &mut ever_connected) => s,
                () = self.status.until_failed() => {
                    // A delivery found the bot token refused: stop, not reconnect.
                    tracing::error!(gateway = %self.name, "gateway failed; socket closed");
                    return;
                }
            };
            let why = match session {
                Ok(why) => {
                    backoff.reset();
                    why
                }
                Err(Fatal(why)) => {
                    tracing::error!("{why}");
                    self.status.failed(&why);
                    return;
                }
                Err(Retry(why)) => why,
            };
            tracing::info!(gateway = %self.name, "slack socket closed: {why}");
            self.status.reconnecting(&why);
            backoff.sleep().await;
        }
    }

    /// `auth.test` with the bot token before anything else, so a wrong or revoked token is
    /// a clear failure at start rather than a queue that never moves. Retries while Slack
    /// cannot be reached. The bot's user id, if Slack said; `None` when the token is refused
    /// (the gateway is failed).
    async fn bot_token_works(&self) -> Option<Option<String>> {
        let mut backoff = Backoff::new();
        loop {
            match self.api.call("auth.test", json!({})).await {
                Ok(me) => return Some(me["user_id"].as_str().map(str::to_string)),
                Err(DeliveryError::Unauthorized(why)) => {
                    let why = format!("gateway {}: {why}", self.name);
                    tracing::error!("{why}");
                    self.status.failed(&why);
                    return None;
                }
                Err(other) => {
                    self.status
                        .reconnecting(&format!("cannot check the bot token: {other}"));
                    backoff.sleep().await;
                }
            }
        }
    }

    /// One websocket session, until it ends; why it ended.
    async fn session(
        &self,
        handler: &Arc<Handler>,
        ever_connected: &mut bool,
    ) -> Result<String, SessionEnd> {
        let opened = self
            .api
            .call_with(&self.app_token, "apps.connections.open", json!({}))
            .await
            .map_err(|e| match e {
                DeliveryError::Unauthorized(_) => Fatal(format!(
                    "gateway {}: Slack refused the app-level token (apps.connections.open); fix it and restart roost",
                    self.name
                )),
                DeliveryError::Transient(why) if why.ends_with("not_allowed_token_type") => Fatal(format!(
                    "gateway {}: Slack refused the app-level token ({why}); it must be an xapp- token with connections:write",
                    self.name
                )),
                other => Retry(format!("cannot open a socket: {other}")),
            })?;
        let url = opened["url"]
            .as_str()
            .ok_or_else(|| Retry("no socket URL".to_string()))?;
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| Retry(format!("cannot connect the socket: {}", error_chain(&e))))?;
        let (mut sink, mut stream) = socket.split();
        let mut last_heard = Instant::now();
        let mut ping =
            tokio::time::interval((self.probe_after / 3).max(Duration::from_millis(200)));
        loop {
            tokio::select! {
                frame = stream.next() => {
                    last_heard = Instant::now();
                    let frame = match frame {
                        Some(Ok(f)) => f,
                        Some(Err(e)) => return Ok(format!("socket error: {e}")),
                        None => return Ok("socket closed".to_string()),
                    };
                    let Ws::Text(text) = frame else {
                        if matches!(frame, Ws::Close(_)) {
                            return Ok("socket closed by Slack".to_string());
                        }
                        continue;
                    };
                    let Ok(envelope) = serde_json::from_str::<Value>(&text) else { continue };
                    match envelope["type"].as_str() {
                        Some("hello") => {
                            self.status.warn(connections_warning(&envelope).as_deref());
                            if *ever_connected {
                                self.status.reconnected("new socket");
                            } else {
                                self.status.connected();
                            }
                            *ever_connected = true;
                        }
                        Some("disconnect") => {
                            return Ok(format!(
                                "Slack asked to reconnect ({})",
                                envelope["reason"].as_str().unwrap_or("no reason")
                            ));
                        }
                        _ => {
                            if let Some(id) = envelope["envelope_id"].as_str() {
                                let ack = json!({"envelope_id": id}).to_string();
                                if let Err(e) = sink.send(Ws::Text(ack)).await {
                                    return Ok(format!("cannot acknowledge: {e}"));
                                }
                            }
                            if envelope["type"] == "events_api" {
                                let handler = handler.clone();
                                let payload = envelope["payload"].clone();
                                tokio::spawn(async move { handler.event(&payload).await });
                            }
                        }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.probe_after {
                        return Ok(format!("health probe: nothing heard for {:?}", self.probe_after));
                    }
                    if let Err(e) = sink.send(Ws::Ping(Vec::new())).await {
                        return Ok(format!("cannot ping: {e}"));
                    }
                }
            }
        }
    }
}

/// How a session ended badly.
enum SessionEnd {
    /// Try again with backoff.
    Retry(String),
    /// Give up until the user fixes something (a refused token).
    Fatal(String),
}
use SessionEnd::{Fatal, Retry};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_mentions_inert_and_round_trips() {
        let typed = "<!everyone> & <@U1> > 1";
        let sent = escape(typed);
        assert!(!sent.contains('<') && !sent.contains('>'), "{sent}");
        assert_eq!(unescape(&sent), typed);
        assert_eq!(decode(&sent), typed, "escaped text has no markup to decode");
    }

    #[test]
    fn slack_markup_is_decoded_to_what_was_typed() {
        assert_eq!(
            decode("!dns check <http://example.org|example.org>"),
            "!dns check example.org"
        );
        assert_eq!(
            decode("<https://a.example/x|click here> <https://b.example/>"),
            "https://a.example/x https://b.example/"
        );
        assert_eq!(decode("<mailto:a@b.example|a@b.example>"), "a@b.example");
        assert_eq!(decode("hi <@U0ABC> and <@U1|ann>"), "hi @U0ABC and @U1");
        assert_eq!(decode("in <#C9|general> or <#C8>"), "in #general or #C8");
        assert_eq!(decode("<!here> <!subteam^S1|@ops>"), "@here @ops");
        assert_eq!(decode("a &lt;b&gt; &amp; <c"), "a <b> & <c");
        assert_eq!(
            decode("<https://x.example/?a=1&amp;b=2|x.example/?a=1&amp;b=2>"),
            "x.example/?a=1&b=2"
        );
    }
}

//! A Discord bot through serenity: one named instance per `[gateways.NAME]` of kind discord.
//!
//! - Incoming: MESSAGE_CREATE from people (never from bots, the bot itself included, so two
//!   bots or a mirror can never loop) becomes a [`ChatMessage`] with identity
//!   `discord:<user id>` and goes through the router like the console's; the reply is queued
//!   in the outbox for `<gateway>:<channel id>`. Slash commands (INTERACTION_CREATE) go the
//!   same way and are answered through the interaction callback.
//! - Outgoing: [`DiscordSender`] posts outbox messages with `POST /channels/{id}/messages`,
//!   split at 2,000 characters, each piece carrying a nonce derived from the outbox row with
//!   `enforce_nonce`, so a retry after an ambiguous failure never posts twice. It answers the
//!   delivery worker with the platform's verdict (429 retry-after, 5xx, refused, 400).
//! - Connection: one serenity client for the life of the gateway, one event handler, so a
//!   reconnect (serenity RESUMEs with session id and sequence) never registers a handler
//!   twice; events seen twice after a resume are handled once (bounded set of recent ids).
//!   If the client itself stops it is dropped before a new one is built, with backoff.
//! - Health: serenity restarts a shard whose heartbeats go unacknowledged; on top of that a
//!   probe restarts a shard that stays not-connected longer than `health_probe_secs`, and
//!   keeps [`GatewayStatus`] (what `!status` shows) in step.
//! - Slash commands: every plugin command is registered (bulk overwrite) with its summary
//!   and usage, again whenever the set of commands changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use serenity::all::{
    ChannelId, Command, CommandDataOptionValue, CommandOptionType, ConnectionStage, Context,
    CreateAllowedMentions, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, EditInteractionResponse,
    EventHandler, GatewayIntents, Interaction, Message, Ready, ResumedEvent, ShardId,
    ShardStageUpdateEvent,
};
use serenity::http::{HttpBuilder, LightMethod, Request, Route};

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
use crate::store::{CheckFrom, OutboxItem};

/// Discord's limit on one message's content, in characters.
pub const MESSAGE_LIMIT: usize = 2000;
/// Most characters one message for a Discord target keeps once queued: four posts' worth.
/// Longer ones are cut when queued, so a plugin cannot make one reply a flood of posts nor
/// park megabytes in the outbox of a channel that is down.
pub const QUEUED_LIMIT: usize = 4 * MESSAGE_LIMIT;
/// Event ids remembered to drop events seen twice (a RESUME may replay some).
const SEEN_KEEP: usize = 4096;
/// How often the health probe looks at the shard, and the command set is compared with the
/// one registered.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const COMMANDS_EVERY: Duration = Duration::from_secs(5);
/// How long a slash command may run before its interaction is deferred: Discord drops an
/// interaction whose callback has not come within 3 s.
const DEFER_AFTER: Duration = Duration::from_secs(1);
/// How long after a first attempt a retry trusts its nonce alone: Discord enforces
/// `enforce_nonce` for "a few minutes"; past this a retry looks for its own earlier post.
const NONCE_TRUSTED: Duration = Duration::from_secs(60);
/// Pages of 100 messages a check for an earlier post reads before it gives up and posts.
const CHECK_PAGES: usize = 10;

/// Starts gateway `name`: reads its token, spawns its connection, and returns its outgoing
/// half for the delivery workers. Must be called inside the daemon's tokio runtime.
pub fn start(
    name: &str,
    config: &ChatGateway,
    router: Arc<Router>,
    outbox: Outbox,
    status: GatewayStatus,
) -> Result<Arc<dyn Deliver>, StartError> {
    let token = secrets::bot_token(name, config)?;
    let client = super::rest_client(name)?;
    let bot_id = Arc::new(OnceLock::new());
    let sender = Arc::new(DiscordSender {
        name: name.to_string(),
        store: outbox.store().clone(),
        client: client.clone(),
        authorization: format!("Bot {token}"),
        proxy: config.api_base.clone(),
        paused_until: Mutex::new(None),
        bot_id: bot_id.clone(),
        first_tried: Mutex::new(HashMap::new()),
        last_known: Mutex::new(HashMap::new()),
    });
    let handler = Arc::new(Handler {
        name: name.to_string(),
        router,
        queue: Queue::new(name, outbox, config.mirror.clone()),
        status: status.clone(),
        seen: Seen::new(SEEN_KEEP),
        registering: AtomicBool::new(false),
        bot_id,
    });
    let connection = Connection {
        name: name.to_string(),
        token,
        api_base: config.api_base.clone(),
        client,
        probe_after: Duration::from_secs(config.health_probe_secs),
        status,
    };
    tokio::spawn(connection.run(handler));
    Ok(sender)
}

/// The outgoing half: posts outbox messages to channels over REST.
pub struct DiscordSender {
    name: String,
    store: crate::store::Store,
    client: reqwest::Client,
    /// `Bot <token>`.
    authorization: String,
    /// The base URL replacing `https://discord.com`, if configured.
    proxy: Option<String>,
    /// Until when a global rate limit holds every request of this bot.
    paused_until: Mutex<Option<Instant>>,
    /// The bot's user id, from READY: its own earlier posts are recognised by it.
    bot_id: Arc<OnceLock<u64>>,
    /// When this run first tried each outbox row not yet delivered.
    first_tried: Mutex<HashMap<i64, SystemTime>>,
    /// The newest post of this bot that this run knows in each channel: one it made or one
    /// a check found. Messages go out in queue order, so one not known to be posted can
    /// only have been posted after it.
    last_known: Mutex<HashMap<ChannelId, u64>>,
}

/// The idempotency key of piece `piece` of outbox row `item`: stable across retries and
/// restarts, unique per row, at most 25 characters as Discord requires.
pub fn nonce(item: &OutboxItem, piece: usize) -> String {
    format!("{:x}.{:x}.{piece}", item.id, item.created_at)
}

/// An outgoing message as Discord text: code fenced, attachments named, mass mentions inert.
pub fn render(message: &Outgoing) -> String {
    text::neutralise_mass_mentions(&message.render_plain())
}

impl DiscordSender {
    /// Sends `request` once the global rate limit allows: its status, headers and body.
    async fn send(
        &self,
        request: Request<'_>,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), DeliveryError> {
        self.wait_global().await;
        let mut response = request
            .build(&self.client, &self.authorization, self.proxy.as_deref())
            .map_err(|e| DeliveryError::Rejected(format!("cannot build the request: {e}")))?
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(error_chain(&e)))?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let body = response.text().await.unwrap_or_default();
        Ok((status, headers, body))
    }

    /// Sends one REST request; the body of a success, or the platform's verdict.
    async fn call(
        &self,
        route: Route<'_>,
        method: LightMethod,
        body: Option<serde_json::Value>,
    ) -> Result<String, DeliveryError> {
        let bytes = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()
            .map_err(|e| DeliveryError::Rejected(e.to_string()))?;
        let (status, headers, body) = self.send(Request::new(route, method).body(bytes)).await?;
        if status.is_success() {
            // Pace bursts: when the bucket is empty, wait for it to refill before the next.
            if header_f64(&headers, "x-ratelimit-remaining") == Some(0.0)
                && let Some(reset) = header_f64(&headers, "x-ratelimit-reset-after")
            {
                tokio::time::sleep(Duration::from_secs_f64(reset.clamp(0.0, 60.0))).await;
            }
            return Ok(body);
        }
        let verdict = classify(status.as_u16(), &headers, &body);
        if let DeliveryError::RetryAfter(wait, _) = &verdict
            && is_global(&headers, &body)
        {
            // The whole bot is limited, not this route: every target of this gateway waits.
            let until = Instant::now() + *wait;
            let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            *paused = Some(paused.map_or(until, |p| p.max(until)));
        }
        Err(verdict)
    }

    /// Waits out a global rate limit another target of this gateway ran into.
    async fn wait_global(&self) {
        let until = *self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    /// Since when (Unix ms) an earlier attempt at `item` may have posted it beyond what its
    /// nonce still covers: Discord enforces a nonce for a few minutes only, and after a
    /// restart roost does not know when the earlier attempt was. `None` when the nonce
    /// suffices (a first attempt, or a retry soon after this run's first).
    fn in_doubt_since(&self, item: &OutboxItem) -> Option<i64> {
        let now = SystemTime::now();
        let mut first = self.first_tried.lock().unwrap_or_else(|p| p.into_inner());
        let known = *first.entry(item.id).or_insert(now);
        if item.attempts == 0 {
            return None;
        }
        let tried_at = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        };
        if known != now {
            let age = now.duration_since(known).unwrap_or_default();
            return (age >= NONCE_TRUSTED).then(|| tried_at(known));
        }
        // Tried in an earlier run: only the queueing time bounds it.
        Some(item.created_at)
    }

    /// The id after which the posts of an earlier attempt at `item` would be: the newest
    /// of the last post to its target whose removal from the outbox is on disk, the last
    /// post this run knows in `channel`, and a second before `since_ms` (clocks disagree).
    /// Every message before `item` in the queue went out before it was tried, so a post
    /// with its text before that point is another message's, however alike the two are.
    /// `None` when `item` is no longer queued: another hub delivered it meanwhile.
    async fn check_from(
        &self,
        item: &OutboxItem,
        channel: ChannelId,
        since_ms: i64,
    ) -> Result<Option<u64>, DeliveryError> {
        let (id, target) = (item.id, item.target.clone());
        let from = self
            .store
            .try_run(move |s| s.outbox_check_from(id, &target))
            .await
            .map_err(|e| DeliveryError::Transient(e.to_string()))?;
        let CheckFrom::After(stored) = from else {
            return Ok(None);
        };
        let known = self.known_in(channel);
        let by_time = snowflake_at(since_ms.saturating_sub(1000));
        Ok(Some(
            [stored.and_then(|p| p.parse().ok()), known]
                .into_iter()
                .flatten()
                .fold(by_time, u64::max),
        ))
    }

    /// The first post of the bot in `channel` after post `after` with exactly `content`, if
    /// any: an earlier attempt that went through. Reads the channel oldest first, a page of
    /// 100 at a time, up to [`CHECK_PAGES`].
    async fn posted_after(
        &self,
        channel: ChannelId,
        mut after: u64,
        content: &str,
    ) -> Result<Option<u64>, DeliveryError> {
        let bot = self.bot_id().await?.to_string();
        for _ in 0..CHECK_PAGES {
            let params = vec![("after", after.to_string()), ("limit", "100".to_string())];
            let route = Route::ChannelMessages {
                channel_id: channel,
            };
            let body = match self.call_with_params(route, params).await {
                Ok(body) => body,
                // No Read Message History here: cannot tell, so post (the nonce may still hold).
                Err(DeliveryError::Parked(why) | DeliveryError::Rejected(why)) => {
                    tracing::warn!(gateway = %self.name, %channel, "cannot read the channel to check for an earlier post: {why}");
                    return Ok(None);
                }
                Err(other) => return Err(other),
            };
            let page = oldest_first(&body);
            let found = page.iter().find(|(_, m)| {
                m["author"]["id"].as_str() == Some(bot.as_str()) && m["content"] == content
            });
            match (found, page.last()) {
                (Some((id, _)), _) => return Ok(Some(*id)),
                (None, Some((newest, _))) if page.len() == 100 => after = *newest,
                _ => return Ok(None),
            }
        }
        tracing::warn!(gateway = %self.name, %channel, "more messages since the last post than roost reads to check for an earlier one; posting");
        Ok(None)
    }

    /// Forgets when this run first tried outbox row `id`: it is settled.
    fn forget_tried(&self, id: i64) {
        let mut first = self.first_tried.lock().unwrap_or_else(|p| p.into_inner());
        first.remove(&id);
    }

    /// The newest post this run knows in `channel`.
    fn known_in(&self, channel: ChannelId) -> Option<u64> {
        let known = self.last_known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(&channel).copied()
    }

    /// Notes post `id` in `channel` as the newest this run knows there, if it is.
    fn note_posted(&self, channel: ChannelId, id: u64) {
        let mut known = self.last_known.lock().unwrap_or_else(|p| p.into_inner());
        let newest = known.entry(channel).or_insert(id);
        *newest = (*newest).max(id);
    }

    /// The bot's user id: from READY, or (when a retry comes before the gateway is ready)
    /// from `GET /users/@me`.
    async fn bot_id(&self) -> Result<u64, DeliveryError> {
        if let Some(id) = self.bot_id.get() {
            return Ok(*id);
        }
        let me = self.call_with_params(Route::UserMe, Vec::new()).await?;
        let id = serde_json::from_str::<serde_json::Value>(&me)
            .ok()
            .and_then(|v| v["id"].as_str().and_then(|id| id.parse::<u64>().ok()))
            .ok_or_else(|| DeliveryError::Transient("GET /users/@me: no id".to_string()))?;
        let _ = self.bot_id.set(id);
        Ok(id)
    }

    /// A GET with query parameters; the body of a success, or the platform's verdict.
    async fn call_with_params(
        &self,
        route: Route<'_>,
        params: Vec<(&'static str, String)>,
    ) -> Result<String, DeliveryError> {
        let request = Request::new(route, LightMethod::Get).params(Some(params));
        let (status, headers, body) = self.send(request).await?;
        if status.is_success() {
            return Ok(body);
        }
        Err(classify(status.as_u16(), &headers, &body))
    }
}

/// The part of a created message the sender keeps.
#[derive(serde::Deserialize)]
struct Created {
    id: String,
}

impl super::relay::Platform for DiscordSender {
    type Channel = ChannelId;

    /// Posts `message` in pieces, each with its nonce; the ids of the messages created.
    async fn post(
        &self,
        channel: &ChannelId,
        item: &OutboxItem,
        message: &Outgoing,
    ) -> Result<Vec<String>, DeliveryError> {
        let channel = *channel;
        let mut ids = Vec::new();
        // Where the next piece of an earlier attempt would be, while it may have posted
        // pieces beyond what their nonces cover. That attempt posted them in order, so
        // once one is missing none after it is there.
        let mut check_after = match self.in_doubt_since(item) {
            Some(since) => match self.check_from(item, channel, since).await? {
                Some(after) => Some(after),
                None => {
                    tracing::info!(gateway = %self.name, %channel, "message no longer queued (delivered by another hub, or dropped by a cap); not posting it");
                    self.forget_tried(item.id);
                    return Ok(Vec::new());
                }
            },
            None => None,
        };
        for (i, piece) in text::split(&render(message), MESSAGE_LIMIT)
            .into_iter()
            .enumerate()
        {
            if let Some(after) = check_after {
                check_after = self.posted_after(channel, after, &piece).await?;
                if let Some(id) = check_after {
                    tracing::info!(gateway = %self.name, %channel, "piece already posted before; not posting it again");
                    ids.push(id.to_string());
                    continue;
                }
            }
            let body = json!({
                "content": piece,
                "nonce": nonce(item, i),
                "enforce_nonce": true,
                "allowed_mentions": {"parse": []},
            });
            let created = self
                .call(
                    Route::ChannelMessages {
                        channel_id: channel,
                    },
                    LightMethod::Post,
                    Some(body),
                )
                .await?;
            if let Ok(Created { id }) = serde_json::from_str(&created) {
                ids.push(id);
            }
        }
        self.forget_tried(item.id);
        if let Some(last) = ids.last().and_then(|id| id.parse().ok()) {
            self.note_posted(channel, last);
        }
        Ok(ids)
    }

    async fn edit(
        &self,
        channel: &ChannelId,
        id: &str,
        message: &Outgoing,
    ) -> Result<(), DeliveryError> {
        let Some(route) = message_route(*channel, id) else {
            return Ok(());
        };
        let text = text::split(&render(message), MESSAGE_LIMIT)
            .into_iter()
            .next()
            .unwrap_or_default();
        let body = json!({"content": text, "allowed_mentions": {"parse": []}});
        self.call(route, LightMethod::Patch, Some(body))
            .await
            .map(|_| ())
    }

    async fn delete(&self, channel: &ChannelId, id: &str) -> Result<(), DeliveryError> {
        let Some(route) = message_route(*channel, id) else {
            return Ok(());
        };
        self.call(route, LightMethod::Delete, None)
            .await
            .map(|_| ())
    }

    fn is_gone(error: &DeliveryError) -> bool {
        matches!(error, DeliveryError::Parked(why) if why.starts_with("HTTP 404"))
    }
}

/// The route of message `id` in `channel`; `None` for an id that is not a Discord one.
fn message_route(channel: ChannelId, id: &str) -> Option<Route<'static>> {
    let message_id = id.parse::<u64>().ok().filter(|m| *m != 0)?;
    Some(Route::ChannelMessage {
        channel_id: channel,
        message_id: serenity::all::MessageId::new(message_id),
    })
}

impl Deliver for DiscordSender {
    fn deliver<'a>(
        &'a self,
        channel: &'a str,
        item: &'a OutboxItem,
    ) -> BoxFuture<'a, Result<super::Posted, DeliveryError>> {
        Box::pin(async move {
            let Some(channel_id) = channel.parse::<u64>().ok().filter(|c| *c != 0) else {
                return Err(DeliveryError::Rejected(format!(
                    "`{channel}` is not a Discord channel id"
                )));
            };
            let target = format!("{}:{channel}", self.name);
            let channel_id = ChannelId::new(channel_id);
            super::relay::deliver(self, &self.store, &target, &channel_id, item).await
        })
    }
}

/// Discord's verdict on a failed request, by HTTP status and JSON error `code`: wait and
/// retry (429, 5xx), drop (400), set aside (no access, unknown channel), or stop the
/// gateway (401: the token is refused). Retrying a 401/403/404 would only wait forever and
/// bring Discord's invalid-request limit (10,000 in 10 minutes) nearer.
fn classify(status: u16, headers: &reqwest::header::HeaderMap, body: &str) -> DeliveryError {
    let json = serde_json::from_str::<serde_json::Value>(body).ok();
    let code = json.as_ref().and_then(|v| v["code"].as_u64()).unwrap_or(0);
    let message = json
        .as_ref()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    let why = format!("HTTP {status}: {message} ({code})");
    match status {
        429 => {
            let wait = header_f64(headers, "retry-after")
                .or_else(|| json.as_ref().and_then(|v| v["retry_after"].as_f64()))
                .unwrap_or(1.0);
            DeliveryError::RetryAfter(Duration::from_secs_f64(wait.clamp(0.0, 3600.0)), why)
        }
        401 => DeliveryError::Unauthorized(format!(
            "Discord refused the bot token ({why}); fix the token and restart roost"
        )),
        403 => DeliveryError::Parked(format!(
            "{why}: give the bot View Channel and Send Messages in that channel"
        )),
        404 => DeliveryError::Parked(format!(
            "{why}: the channel or message does not exist, or the bot cannot see it"
        )),
        400 | 413 => DeliveryError::Rejected(why),
        _ => DeliveryError::Transient(why),
    }
}

/// Whether a 429 is the bot-wide limit rather than one route's (`X-RateLimit-Global`, or
/// `X-RateLimit-Scope: global`, or `"global": true` in the body).
fn is_global(headers: &reqwest::header::HeaderMap, body: &str) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    header("x-ratelimit-global").as_deref() == Some("true")
        || header("x-ratelimit-scope").as_deref() == Some("global")
        || serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["global"].as_bool())
            == Some(true)
}

/// The messages of a `GET /channels/{id}/messages` answer (newest first) with their ids,
/// oldest first.
fn oldest_first(body: &str) -> Vec<(u64, serde_json::Value)> {
    let messages: Vec<serde_json::Value> = serde_json::from_str(body).unwrap_or_default();
    let mut page: Vec<(u64, serde_json::Value)> = messages
        .into_iter()
        .filter_map(|m| Some((m["id"].as_str()?.parse().ok()?, m)))
        .collect();
    page.sort_by_key(|(id, _)| *id);
    page
}

/// The smallest Discord id of a message created at Unix time `ms` (ids are timestamps
/// since 2015 shifted left 22 bits), for `after=` queries.
fn snowflake_at(ms: i64) -> u64 {
    const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;
    (ms.saturating_sub(DISCORD_EPOCH_MS).max(0) as u64) << 22
}

fn header_f64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<f64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The one event handler of a gateway, kept for its whole life.
struct Handler {
    name: String,
    router: Arc<Router>,
    /// Where replies and mirrored copies go.
    queue: Queue,
    status: GatewayStatus,
    /// The last [`SEEN_KEEP`] message and interaction ids, to handle each event once.
    seen: Seen<u64>,
    /// Whether the slash-command registration task runs already.
    registering: AtomicBool,
    /// Shared with the sender, set from READY.
    bot_id: Arc<OnceLock<u64>>,
}

impl Handler {
    /// Copies a message to the targets of the mirror rules for its channel.
    fn mirror(&self, msg: &Message) {
        let channel = msg.channel_id.to_string();
        if !self.queue.mirrors(&channel) {
            return;
        }
        let author = msg
            .author
            .global_name
            .clone()
            .unwrap_or_else(|| msg.author.name.clone());
        let key = format!("{}:{channel}:{}", self.name, msg.id);
        let copy = Outgoing::relay(key, RelayAction::Post, format!("{author}: {}", msg.content));
        self.queue.mirror(&channel, &copy);
    }

    async fn slash(&self, ctx: &Context, interaction: &serenity::all::CommandInteraction) {
        let args = interaction
            .data
            .options
            .iter()
            .find_map(|o| match &o.value {
                CommandDataOptionValue::String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let prefix = self.router.prefix();
        let text = format!("{prefix}{} {args}", interaction.data.name)
            .trim_end()
            .to_string();
        let chat = ChatMessage {
            gateway: self.name.clone(),
            channel: interaction.channel_id.to_string(),
            identity: format!("discord:{}", interaction.user.id),
            text,
        };
        let handling = self.router.handle(&chat);
        tokio::pin!(handling);
        // Discord drops an interaction not answered within 3 s: a command still running
        // after DEFER_AFTER is deferred ("thinking…"), and its answer edits that response.
        let (reply, deferred) = match tokio::time::timeout(DEFER_AFTER, &mut handling).await {
            Ok(reply) => (reply, false),
            Err(_) => {
                if let Err(e) = interaction.defer(ctx).await {
                    tracing::warn!(gateway = %self.name, "deferring an interaction failed: {e}");
                }
                (handling.await, true)
            }
        };
        let reply = reply.unwrap_or_else(|| Outgoing::text("done"));
        let pieces = text::split(&render(&reply), MESSAGE_LIMIT);
        if let Err(e) = answer(ctx, interaction, &pieces, deferred).await {
            tracing::warn!(gateway = %self.name, "interaction response failed, posting the reply instead: {e}");
            self.queue.reply(&chat.channel, &reply);
        }
    }

    /// Keeps the registered slash commands equal to the plugins' commands.
    async fn register_commands(self: Arc<Self>, http: Arc<serenity::http::Http>) {
        let mut registered: Option<Vec<(String, String, String, bool)>> = None;
        loop {
            let mut wanted: Vec<(String, String, String, bool)> = self
                .router
                .command_specs()
                .into_iter()
                .filter(|c| is_slash_name(&c.name))
                .map(|c| {
                    let summary = if c.summary.trim().is_empty() {
                        format!("run {}", c.name)
                    } else {
                        c.summary.clone()
                    };
                    (
                        c.name.clone(),
                        clip(&summary, 100),
                        clip(&crate::router::with_prefix("/", &c.usage), 100),
                        c.min_args > 0,
                    )
                })
                .collect();
            wanted.sort();
            wanted.dedup_by(|a, b| a.0 == b.0);
            wanted.truncate(100);
            if registered.as_ref() != Some(&wanted) {
                let commands = wanted
                    .iter()
                    .map(|(name, summary, usage, required)| {
                        CreateCommand::new(name.as_str())
                            .description(summary.as_str())
                            .add_option(
                                CreateCommandOption::new(
                                    CommandOptionType::String,
                                    "args",
                                    usage.as_str(),
                                )
                                .required(*required),
                            )
                    })
                    .collect();
                match Command::set_global_commands(&http, commands).await {
                    Ok(_) => {
                        tracing::info!(gateway = %self.name, count = wanted.len(), "slash commands registered");
                        registered = Some(wanted);
                    }
                    Err(e) => {
                        tracing::warn!(gateway = %self.name, "registering slash commands: {e}")
                    }
                }
            }
            tokio::time::sleep(COMMANDS_EVERY).await;
        }
    }
}

/// Answers a slash command with `pieces` of its reply: the first as the response (an edit
/// of the deferred one, or a type 4 callback), the rest as follow-up messages.
async fn answer(
    ctx: &Context,
    interaction: &serenity::all::CommandInteraction,
    pieces: &[String],
    deferred: bool,
) -> Result<(), serenity::Error> {
    let first = pieces
        .first()
        .cloned()
        .unwrap_or_else(|| "done".to_string());
    if deferred {
        let edit = EditInteractionResponse::new()
            .content(first)
            .allowed_mentions(CreateAllowedMentions::new());
        interaction.edit_response(ctx, edit).await?;
    } else {
        let response = CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content(first)
                .allowed_mentions(CreateAllowedMentions::new()),
        );
        interaction.create_response(ctx, response).await?;
    }
    for piece in pieces.iter().skip(1) {
        let followup = CreateInteractionResponseFollowup::new()
            .content(piece.as_str())
            .allowed_mentions(CreateAllowedMentions::new());
        interaction.create_followup(ctx, followup).await?;
    }
    Ok(())
}

/// Discord command names: 1–32 of lowercase letters, digits, `-`, `_`.
fn is_slash_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// At most `max` characters, never empty.
fn clip(s: &str, max: usize) -> String {
    let out: String = s.chars().take(max).collect();
    if out.trim().is_empty() {
        "-".to_string()
    } else {
        out
    }
}

/// serenity's handler: the gateway's one [`Handler`], shared.
struct Events(Arc<Handler>);

impl std::ops::Deref for Events {
    type Target = Handler;
    fn deref(&self) -> &Handler {
        &self.0
    }
}

#[serenity::async_trait]
impl EventHandler for Events {
    async fn message(&self, _ctx: Context, msg: Message) {
        // Bots never reach the router or the mirror: no bot-to-bot or mirror loops, and the
        // bot's own messages (which Discord echoes back) are not commands.
        if msg.author.bot || msg.webhook_id.is_some() {
            return;
        }
        if !self.seen.first_time(msg.id.get()) {
            tracing::debug!(gateway = %self.name, id = %msg.id, "event seen twice; handled once");
            return;
        }
        self.mirror(&msg);
        let chat = ChatMessage {
            gateway: self.name.clone(),
            channel: msg.channel_id.to_string(),
            identity: format!("discord:{}", msg.author.id),
            text: msg.content.clone(),
        };
        if let Some(reply) = self.router.handle(&chat).await {
            self.queue.reply(&chat.channel, &reply);
        }
    }

    async fn message_update(
        &self,
        _ctx: Context,
        _old: Option<Message>,
        _new: Option<Message>,
        event: serenity::all::MessageUpdateEvent,
    ) {
        let (Some(content), Some(author)) = (event.content, event.author) else {
            return;
        };
        if author.bot {
            return;
        }
        let channel = event.channel_id.to_string();
        if !self.queue.mirrors(&channel) {
            return;
        }
        let name = author
            .global_name
            .clone()
            .unwrap_or_else(|| author.name.clone());
        let key = format!("{}:{channel}:{}", self.name, event.id);
        let edit = Outgoing::relay(key, RelayAction::Edit, format!("{name}: {content}"));
        self.queue.mirror(&channel, &edit);
    }

    async fn message_delete(
        &self,
        _ctx: Context,
        channel_id: ChannelId,
        deleted: serenity::all::MessageId,
        _guild: Option<serenity::all::GuildId>,
    ) {
        let channel = channel_id.to_string();
        let key = format!("{}:{channel}:{deleted}", self.name);
        let delete = Outgoing::relay(key, RelayAction::Delete, "");
        self.queue.mirror(&channel, &delete);
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let Interaction::Command(command) = interaction else {
            return;
        };
        if !self.seen.first_time(command.id.get()) {
            return;
        }
        self.slash(&ctx, &command).await;
    }

    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(gateway = %self.name, user = %ready.user.name, session = %ready.session_id, "discord ready");
        // The same bot for the life of the token; set once.
        let _ = self.bot_id.set(ready.user.id.get());
        if self.registering.swap(true, Ordering::SeqCst) {
            // Only a resume replays what happened meanwhile; a new session does not.
            self.status.reconnected("new session");
            self.status.warn(Some(&format!(
                "a new session started {}: messages sent while the bot was away were not replayed",
                utc_now()
            )));
        } else {
            self.status.connected();
            tokio::spawn(self.0.clone().register_commands(ctx.http.clone()));
        }
    }

    async fn resume(&self, _ctx: Context, _event: ResumedEvent) {
        tracing::info!(gateway = %self.name, "discord session resumed");
        self.status.reconnected("session resumed");
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        if event.new == ConnectionStage::Connected {
            self.status.connected();
        } else if event.old == ConnectionStage::Connected {
            self.status
                .reconnecting(&format!("connection lost ({})", event.new));
        }
    }
}

/// The connection side of one gateway: builds the serenity client, runs it, probes it, and
/// rebuilds it (with backoff) if it stops.
struct Connection {
    name: String,
    token: String,
    api_base: Option<String>,
    client: reqwest::Client,
    probe_after: Duration,
    status: GatewayStatus,
}

impl Connection {
    async fn run(self, handler: Arc<Handler>) {
        let mut backoff = Backoff::new();
        loop {
            // The gateway URL comes from `GET /gateway`. serenity falls back to the real
            // Discord when that fails; roost asks itself and waits until it has an answer, so
            // a client pointed at `api_base` never wanders off to discord.com.
            let url = match self.gateway_url().await {
                Ok(url) => url,
                Err(why) => {
                    self.status
                        .reconnecting(&format!("cannot get the gateway URL: {why}"));
                    backoff.sleep().await;
                    continue;
                }
            };
            let mut http = HttpBuilder::new(&self.token).client(self.client.clone());
            if let Some(base) = &self.api_base {
                // serenity's rate limiter would send to discord.com, ignoring the proxy; the
                // outbox paces and honours retry-after itself.
                http = http.proxy(base.as_str()).ratelimiter_disabled(true);
            }
            let intents = GatewayIntents::GUILD_MESSAGES
                | GatewayIntents::DIRECT_MESSAGES
                | GatewayIntents::MESSAGE_CONTENT;
            let client = serenity::client::ClientBuilder::new_with_http(http.build(), intents)
                .event_handler(Events(handler.clone()))
                .await;
            let mut client = match client {
                Ok(c) => c,
                Err(e) => {
                    self.status
                        .reconnecting(&format!("cannot build the client: {e}"));
                    backoff.sleep().await;
                    continue;
                }
            };
            *client.ws_url.lock().await = url;
            let manager = client.shard_manager.clone();
            let started = Instant::now();
            let result = tokio::select! {
                r = client.start() => Some(r),
                () = probe(manager.clone(), self.status.clone(), self.probe_after) => None,
                () = self.status.until_failed() => {
                    // A delivery found the token refused: stop, not reconnect.
                    manager.shutdown_all().await;
                    tracing::error!(gateway = %self.name, "gateway failed; connection closed");
                    return;
                }
            };
            if result.is_none() {
                manager.shutdown_all().await;
            }
            // The client and its handler registration go away before any new client exists.
            drop(client);
            if let Some(Err(serenity::Error::Gateway(e))) = &result
                && let Some(why) = fatal_close(&self.name, e)
            {
                // Retrying would only burn IDENTIFYs (1,000 a day, then Discord resets
                // the token): stop until the user fixes it.
                tracing::error!("{why}");
                self.status.failed(&why);
                return;
            }
            match result {
                Some(Err(e)) => {
                    tracing::warn!(gateway = %self.name, "discord client stopped: {e}");
                    self.status.reconnecting(&format!("client stopped: {e}"));
                }
                Some(Ok(())) => self.status.reconnecting("client stopped"),
                None => {
                    tracing::warn!(gateway = %self.name, "health probe: rebuilding the client");
                }
            }
            if started.elapsed() > Backoff::MAX {
                backoff.reset();
            }
            backoff.sleep().await;
        }
    }

    /// `GET /gateway`: where the websocket gateway is.
    async fn gateway_url(&self) -> Result<String, String> {
        let request = Request::new(Route::Gateway, LightMethod::Get)
            .build(
                &self.client,
                &format!("Bot {}", self.token),
                self.api_base.as_deref(),
            )
            .map_err(|e| e.to_string())?;
        let response = request.send().await.map_err(|e| error_chain(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        let body: serde_json::Value = response.json().await.map_err(|e| error_chain(&e))?;
        body["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| "no url in the answer".to_string())
    }
}

/// What to tell the user when the gateway closed for a reason no retry can fix: a refused
/// token (4004), intents Discord does not know (4013), or privileged intents not enabled
/// for the application (4014). `None` for every error worth retrying.
fn fatal_close(gateway: &str, error: &serenity::gateway::GatewayError) -> Option<String> {
    use serenity::gateway::GatewayError;
    Some(match error {
        GatewayError::InvalidAuthentication => format!(
            "gateway {gateway}: Discord refused the bot token (invalid authentication); fix the token and restart roost"
        ),
        GatewayError::DisallowedGatewayIntents => format!(
            "gateway {gateway}: Discord refused the Message Content intent (close 4014, disallowed intents); \
             enable \"Message Content Intent\" under Bot > Privileged Gateway Intents in the Discord \
             Developer Portal, then restart roost"
        ),
        GatewayError::InvalidGatewayIntents => format!(
            "gateway {gateway}: Discord refused the gateway intents as invalid (close 4013); \
             roost asks for Guild Messages, Direct Messages and Message Content — report this as a bug"
        ),
        _ => return None,
    })
}

/// Now as `at HH:MM:SS UTC`, for a status line.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let day = secs % 86_400;
    format!(
        "at {:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// Watches shard 0: keeps the status in step with its stage, restarts the shard when it has
/// not been connected for `after` (a connection stuck in a handshake or a resume that never
/// completes), and returns — so the whole client is rebuilt — when a restart did not help
/// within another `after`.
async fn probe(
    manager: Arc<serenity::gateway::ShardManager>,
    status: GatewayStatus,
    after: Duration,
) {
    let mut not_connected_since: Option<Instant> = None;
    let mut restarted = false;
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let stage = manager
            .runners
            .lock()
            .await
            .get(&ShardId(0))
            .map(|r| r.stage);
        match stage {
            Some(ConnectionStage::Connected) => {
                not_connected_since = None;
                restarted = false;
                status.connected();
            }
            other => {
                let since = *not_connected_since.get_or_insert_with(Instant::now);
                let what = other.map_or_else(|| "no shard running".to_string(), |s| s.to_string());
                if matches!(status.state(), super::status::State::Connected) {
                    status.reconnecting(&format!("gateway {what}"));
                }
                if since.elapsed() >= after {
                    if restarted {
                        status.reconnecting(&format!(
                            "health probe: still {what}; rebuilding the client"
                        ));
                        return;
                    }
                    tracing::warn!(
                        "health probe: shard not connected for {after:?} ({what}); restarting it"
                    );
                    status.reconnecting(&format!("health probe restarted the shard ({what})"));
                    manager.restart(ShardId(0)).await;
                    not_connected_since = None;
                    restarted = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_stable_short_and_distinct_per_piece() {
        let item = OutboxItem {
            id: i64::from(u32::MAX),
            target: "discord:1".into(),
            plugin: "p".into(),
            payload: "{}".into(),
            attempts: 0,
            created_at: 4_102_444_800_000, // 2100-01-01
        };
        let a = nonce(&item, 0);
        assert_eq!(a, nonce(&item, 0));
        assert_ne!(a, nonce(&item, 1));
        assert!(nonce(&item, 99).len() <= 25, "{}", nonce(&item, 99));
    }

    #[test]
    fn a_page_of_messages_is_read_oldest_first_and_unreadable_entries_skipped() {
        let body = r#"[{"id": "30", "content": "c"}, {"id": "x"}, {"id": "10", "content": "a"},
                      {"content": "no id"}, {"id": "20", "content": "b"}]"#;
        let page = oldest_first(body);
        let ids: Vec<u64> = page.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [10, 20, 30]);
        assert_eq!(page[0].1["content"], "a");
        assert!(oldest_first("not json").is_empty());
    }

    #[test]
    fn snowflakes_for_after_queries_start_at_the_given_millisecond() {
        assert_eq!(snowflake_at(1_420_070_400_000), 0);
        assert_eq!(snowflake_at(1_420_070_400_001), 1 << 22);
        assert_eq!(snowflake_at(0), 0, "before Discord's epoch");
    }

    #[test]
    fn slash_names_follow_discords_rules() {
        assert!(is_slash_name("ping"));
        assert!(is_slash_name("db-diff_2"));
        assert!(!is_slash_name("Ping"));
        assert!(!is_slash_name(""));
        assert!(!is_slash_name(&"a".repeat(33)));
    }
}

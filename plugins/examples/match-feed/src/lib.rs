//! Polls a JSON feed over HTTP and posts each new entry to a channel, once.
//!
//! ```toml
//! [plugins.match-feed]
//! path = "match-feed.wasm"
//! [plugins.match-feed.grants]
//! http_hosts = ["api.example.com"]
//! channels = ["sports"]
//! [plugins.match-feed.config]
//! url = "https://api.example.com/matches"
//! channel = "sports"
//! every_secs = 300
//! ```
//!
//! The feed is a JSON array of `{"id": "...", "title": "..."}` (or an object whose
//! `entries` field is one). Entries already posted are remembered in KV (`seen/<id>`), so a
//! restart posts nothing twice. A failing API (a 500, a timeout, invalid JSON, a body over
//! the host's cap) costs one log line and the next poll tries again; nothing crashes.
//! `!feed [url]` polls now and says what happened.

use roost_plugin::prelude::*;
use serde::Deserialize;

/// The plugin's settings, from `[plugins.match-feed.config]`.
#[derive(Default)]
struct MatchFeed {
    /// The feed's URL.
    url: String,
    /// The channel alias new entries go to.
    channel: String,
}

/// One feed entry. Ids may be strings or numbers.
#[derive(Deserialize)]
struct Entry {
    id: serde_json::Value,
    title: String,
}

/// Either shape the feed may have.
#[derive(Deserialize)]
#[serde(untagged)]
enum Feed {
    List(Vec<Entry>),
    Wrapped { entries: Vec<Entry> },
}

impl MatchFeed {
    /// Fetches `url`, posts the entries not seen before, and says how many there were.
    fn poll(&self, url: &str) -> Result<String, String> {
        let response = http::get(url)?;
        if !response.is_success() {
            return Err(format!("{url} answered HTTP {}", response.status()));
        }
        let entries = match response.json::<Feed>()? {
            Feed::List(entries) | Feed::Wrapped { entries } => entries,
        };
        let mut new = 0;
        for entry in entries {
            let id = match &entry.id {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let key = format!("seen/{id}");
            if kv::get(&key)?.is_some() {
                continue;
            }
            chat::send(&self.channel, format!("new: {}", entry.title))?;
            kv::set_string(&key, "1")?;
            new += 1;
        }
        Ok(format!("{new} new entries from {url}"))
    }
}

impl Plugin for MatchFeed {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        self.url = cfg.get_or("url", "");
        self.channel = cfg.get_or("channel", "");
        let every: u64 = cfg.get_or("every_secs", 300);
        if !self.url.is_empty() {
            timer::every(Duration::from_secs(every.max(1)), "poll")?;
        }
        Ok(
            Manifest::new("match-feed", env!("CARGO_PKG_VERSION")).command(CommandSpec::new(
                "feed",
                "!feed [url]",
                "Poll the feed now",
            )),
        )
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        let url = cmd.arg(0).unwrap_or(&self.url).to_string();
        if url.is_empty() {
            return Err("no feed URL: set url in [plugins.match-feed.config]".into());
        }
        match self.poll(&url) {
            Ok(summary) => Ok(Reply::text(summary)),
            Err(e) => Ok(Reply::text(format!("feed failed: {e}"))),
        }
    }

    fn on_timer(&mut self, _tag: &str) {
        if let Err(e) = self.poll(&self.url) {
            log::warn(format!("feed poll failed: {e}"));
        }
    }
}

export_plugin!(MatchFeed);

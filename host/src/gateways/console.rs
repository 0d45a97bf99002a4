//! The local console gateway: a Unix socket in the data dir (mode 0600, so only the user who
//! runs the daemon can talk to it). `roost chat` speaks JSON lines over it; its identity is
//! always `console`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::message::{ChatMessage, Outgoing};
use crate::router::Router;

/// Longest line a client may send; a longer one ends the connection with an
/// [`ServerFrame::Error`] saying so, and is never held whole in memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most bytes one message for the console keeps once queued; longer ones are cut when
/// queued.
pub const QUEUED_LIMIT_BYTES: usize = 64 * 1024;

/// What a client sends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientFrame {
    /// A chat line, as typed.
    Say { id: u64, text: String },
    /// This client shows announcements (an interactive chat): the messages no such client
    /// saw are sent to it first.
    Watch,
}

/// What the daemon sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerFrame {
    /// The reply to `Say { id }`, with its attachments' bytes (`roost chat --save-dir`
    /// saves them).
    Reply {
        id: u64,
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<ReplyFile>,
    },
    /// Everything for `Say { id }` has been sent; `failed` when the command did not run
    /// or the plugin returned an error.
    Done {
        id: u64,
        #[serde(default)]
        failed: bool,
    },
    /// A message a plugin sent to a channel that includes the console.
    Message { plugin: String, text: String },
    /// Why the daemon is closing the connection.
    Error { text: String },
}

/// One attachment of a reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplyFile {
    /// The name the plugin gave it.
    pub filename: String,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl ReplyFile {
    /// The attachments of `reply`.
    fn of(reply: &Outgoing) -> Vec<Self> {
        reply
            .parts
            .iter()
            .filter_map(|p| match p {
                crate::message::Part::Attachment { filename, data } => Some(Self {
                    filename: filename.clone(),
                    data: data.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// Fan-out of outbox messages to every connected console client, keeping the last
/// `backlog` that no watching client saw for the next one that attaches.
#[derive(Clone)]
pub struct ConsoleHub {
    tx: broadcast::Sender<ServerFrame>,
    unseen: Arc<Mutex<VecDeque<ServerFrame>>>,
    watchers: Arc<AtomicUsize>,
    backlog: usize,
}

impl ConsoleHub {
    /// A hub with no clients that keeps up to `backlog` unseen messages.
    pub fn new(backlog: usize) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            unseen: Arc::default(),
            watchers: Arc::default(),
            backlog,
        }
    }

    /// Shows a queued message to every connected client (and in the daemon's log); kept
    /// for later when no client is watching.
    pub fn deliver(&self, plugin: &str, payload: &str) {
        let text = serde_json::from_str::<Outgoing>(payload)
            .map(|o| o.render_plain())
            .unwrap_or_else(|_| payload.to_string());
        tracing::info!(target: "roost::console", plugin, "{text}");
        let frame = ServerFrame::Message {
            plugin: plugin.to_string(),
            text,
        };
        if self.watchers.load(Ordering::SeqCst) == 0 {
            let mut unseen = self.unseen.lock().unwrap_or_else(|p| p.into_inner());
            unseen.push_back(frame.clone());
            while unseen.len() > self.backlog {
                unseen.pop_front();
            }
        }
        let _ = self.tx.send(frame);
    }

    /// Registers a watching client; returns the messages it missed (oldest first) and a
    /// guard that unregisters it when dropped.
    fn watch(&self) -> (Vec<ServerFrame>, WatchGuard) {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        let missed = self
            .unseen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        (missed, WatchGuard(self.watchers.clone()))
    }
}

/// Counts one watching client while it lives.
struct WatchGuard(Arc<AtomicUsize>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Errors starting the console gateway.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("another roost daemon is already listening on {0}")]
    AlreadyRunning(PathBuf),
    #[error("console socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the socket, replacing a stale one left by a daemon that died.
pub async fn bind(path: &Path) -> Result<UnixListener, ConsoleError> {
    let io = |source| ConsoleError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ConsoleError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Accepts clients forever.
pub async fn serve(listener: UnixListener, router: Arc<Router>, hub: ConsoleHub) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let router = router.clone();
                let hub = hub.clone();
                tokio::spawn(async move {
                    if let Err(e) = client(stream, router, hub).await {
                        tracing::debug!("console client: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("console accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn client(stream: UnixStream, router: Arc<Router>, hub: ConsoleHub) -> std::io::Result<()> {
    let mut broadcasts = hub.tx.subscribe();
    let mut _watching = None;
    let (read, mut write) = stream.into_split();
    let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
    loop {
        tokio::select! {
            line = lines.next() => {
                let line = match line {
                    None => return Ok(()),
                    Some(Ok(line)) => line,
                    Some(Err(e)) => {
                        let text = match e {
                            LinesCodecError::MaxLineLengthExceeded => {
                                format!("line longer than {MAX_LINE_BYTES} bytes; closing")
                            }
                            LinesCodecError::Io(e) => format!("unreadable line ({e}); closing"),
                        };
                        return send(&mut write, &ServerFrame::Error { text }).await;
                    }
                };
                let frames = match serde_json::from_str::<ClientFrame>(&line) {
                    Ok(ClientFrame::Say { id, text }) => {
                        let msg = ChatMessage {
                            gateway: "console".into(),
                            channel: "console".into(),
                            identity: "console".into(),
                            text,
                        };
                        let mut frames = Vec::new();
                        let mut failed = false;
                        if let Some(answer) = router.answer(&msg).await {
                            failed = !answer.ok;
                            frames.push(ServerFrame::Reply {
                                id,
                                text: answer.reply.render_plain(),
                                files: ReplyFile::of(&answer.reply),
                            });
                        }
                        frames.push(ServerFrame::Done { id, failed });
                        frames
                    }
                    Ok(ClientFrame::Watch) => {
                        let (missed, guard) = hub.watch();
                        _watching = Some(guard);
                        missed
                    }
                    Err(e) => {
                        tracing::debug!("console: bad frame: {e}");
                        continue;
                    }
                };
                for frame in frames {
                    send(&mut write, &frame).await?;
                }
            }
            frame = broadcasts.recv() => match frame {
                Ok(frame) => send(&mut write, &frame).await?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("console client fell {n} messages behind");
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    frame: &ServerFrame,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(frame).map_err(std::io::Error::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await
}

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
        // Kept and broadcast under the backlog's lock, so a client that starts watching
        // meanwhile gets it once: in its backlog or from the broadcast, never both.
        let mut unseen = self.lock_unseen();
        if self.watchers.load(Ordering::SeqCst) == 0 {
            unseen.push_back(frame.clone());
            while unseen.len() > self.backlog {
                unseen.pop_front();
            }
        }
        let _ = self.tx.send(frame);
    }

    /// Registers a watching client; returns the messages it missed (oldest first), the
    /// messages from now on, and a guard that unregisters it when dropped.
    fn watch(&self) -> Watching {
        let mut unseen = self.lock_unseen();
        self.watchers.fetch_add(1, Ordering::SeqCst);
        Watching {
            missed: unseen.drain(..).collect(),
            broadcasts: self.tx.subscribe(),
            _guard: WatchGuard(self.watchers.clone()),
        }
    }

    fn lock_unseen(&self) -> std::sync::MutexGuard<'_, VecDeque<ServerFrame>> {
        self.unseen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A client's view once it watches: what it missed, then every message after.
struct Watching {
    missed: Vec<ServerFrame>,
    broadcasts: broadcast::Receiver<ServerFrame>,
    _guard: WatchGuard,
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
    // Only a watching client is shown messages; it subscribes as it asks to watch.
    let mut watching: Option<Watching> = None;
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
                        let mut now = hub.watch();
                        let missed = std::mem::take(&mut now.missed);
                        watching = Some(now);
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
            frame = next_message(&mut watching) => match frame {
                Ok(frame) => send(&mut write, &frame).await?,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("console client fell {n} messages behind");
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }
}

/// The next message for a watching client; never, for one that does not watch.
async fn next_message(
    watching: &mut Option<Watching>,
) -> Result<ServerFrame, broadcast::error::RecvError> {
    match watching {
        Some(w) => w.broadcasts.recv().await,
        None => std::future::pending().await,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frame: &ServerFrame) -> String {
        match frame {
            ServerFrame::Message { text, .. } => text.clone(),
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn a_message_reaches_a_client_that_starts_watching_exactly_once_in_order() {
        // Watching starts while the sender is (most likely) still sending; what is sent
        // after fits in the broadcast's buffer, so nothing is dropped for lag.
        const N: usize = 2_000;
        let hub = ConsoleHub::new(N);
        let sender = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                for i in 0..N {
                    hub.deliver("p", &i.to_string());
                    std::thread::yield_now();
                }
            })
        };
        while hub.lock_unseen().len() < N / 2 {
            std::thread::yield_now();
        }
        let mut watching = hub.watch();
        sender.join().expect("sender");
        let mut seen: Vec<String> = watching.missed.iter().map(text).collect();
        while let Ok(frame) = watching.broadcasts.try_recv() {
            seen.push(text(&frame));
        }
        let expected: Vec<String> = (0..N).map(|i| i.to_string()).collect();
        assert_eq!(seen.len(), N, "lost or repeated messages");
        assert_eq!(seen, expected);
    }

    #[test]
    fn messages_are_kept_only_while_no_client_watches_and_the_backlog_is_bounded() {
        let hub = ConsoleHub::new(2);
        for i in 0..3 {
            hub.deliver("p", &i.to_string());
        }
        let watching = hub.watch();
        assert_eq!(
            watching.missed.iter().map(text).collect::<Vec<_>>(),
            ["1", "2"]
        );
        hub.deliver("p", "seen live");
        drop(watching);
        hub.deliver("p", "kept");
        assert_eq!(
            hub.watch().missed.iter().map(text).collect::<Vec<_>>(),
            ["kept"]
        );
    }
}

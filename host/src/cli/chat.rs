//! `roost chat`: talk to a running daemon over its console socket, one-shot (`-c`) or as an
//! interactive prompt that also shows what plugins announce to the console.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;

use super::terminal::print_line;
use crate::gateways::console::{ClientFrame, ReplyFile, ServerFrame};

/// Why `roost chat` could not talk to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no roost daemon is listening on {path} ({source}); start one with `roost run`")]
    NoDaemon {
        path: String,
        source: std::io::Error,
    },
    #[error("console connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("the daemon closed the connection: {0}")]
    Refused(String),
}

impl ChatError {
    /// Whether this is stdout closing under us (`roost chat … | head`): not worth a word.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ChatError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// The daemon's socket for the config at `path`. When the file has an error (the running
/// daemon rejected that edit and kept its old config, and the user wants to ask it), the
/// socket is still found from `host.data_dir` if that much can be read.
pub fn socket_for(path: &Path) -> Result<PathBuf, crate::config::ConfigError> {
    match Config::load(path) {
        Ok(config) => Ok(config.socket_path()),
        Err(e) => {
            let text = std::fs::read_to_string(path).map_err(|_| e)?;
            let data_dir = data_dir_of(&text).unwrap_or_else(|| "data".to_string());
            tracing::warn!(
                "config has an error, reaching the daemon through data_dir {data_dir:?}"
            );
            let base = path.parent().unwrap_or(Path::new("."));
            Ok(base.join(data_dir).join(crate::config::SOCKET_FILE))
        }
    }
}

/// `host.data_dir` from config text that may not parse: from the TOML table if it parses,
/// else from the first `data_dir = "…"` line.
fn data_dir_of(text: &str) -> Option<String> {
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        return table
            .get("host")
            .and_then(|h| h.get("data_dir"))
            .and_then(|d| d.as_str())
            .map(str::to_string);
    }
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "data_dir").then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Sends each line in turn, prints every reply, returns when the last one is answered:
/// `true` when every command succeeded.
pub async fn one_shot(
    socket: &Path,
    lines: &[String],
    save_dir: Option<&Path>,
) -> Result<bool, ChatError> {
    let mut session = Session::connect(socket, save_dir).await?;
    let mut all_ok = true;
    for text in lines {
        all_ok &= session.ask(text).await?;
    }
    Ok(all_ok)
}

/// Standard input that is not a terminal (a pipe, a file): no prompt, each line answered
/// before the next is sent, done at the end of input; `true` when every command succeeded.
pub async fn piped(socket: &Path, save_dir: Option<&Path>) -> Result<bool, ChatError> {
    let mut session = Session::connect(socket, save_dir).await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut all_ok = true;
    while let Some(line) = input.next_line().await? {
        if !line.trim().is_empty() {
            all_ok &= session.ask(&line).await?;
        }
    }
    Ok(all_ok)
}

/// One connection used for question and answer, one line at a time.
struct Session<'a> {
    frames: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: OwnedWriteHalf,
    next_id: u64,
    save_dir: Option<&'a Path>,
}

impl<'a> Session<'a> {
    async fn connect(socket: &Path, save_dir: Option<&'a Path>) -> Result<Self, ChatError> {
        let (read, write) = connect(socket).await?.into_split();
        Ok(Self {
            frames: BufReader::new(read).lines(),
            write,
            next_id: 1,
            save_dir,
        })
    }

    /// Sends `text`, prints its replies; whether the command succeeded.
    async fn ask(&mut self, text: &str) -> Result<bool, ChatError> {
        let id = self.next_id;
        self.next_id += 1;
        say(&mut self.write, id, text).await?;
        loop {
            let line = self.frames.next_line().await?.ok_or(ChatError::Closed)?;
            match serde_json::from_str::<ServerFrame>(&line) {
                Ok(ServerFrame::Reply { id: r, text, files }) if r == id => {
                    show_reply(&text, &files, self.save_dir)?
                }
                Ok(ServerFrame::Done { id: r, failed }) if r == id => return Ok(!failed),
                Ok(ServerFrame::Error { text }) => return Err(ChatError::Refused(text)),
                _ => {}
            }
        }
    }
}

/// How often an interactive chat tries to reach a daemon that went away.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// A prompt: reads lines from stdin, prints replies and console announcements (first those
/// sent while no chat was attached). When the daemon goes away it says so and reconnects.
pub async fn interactive(socket: &Path, save_dir: Option<&Path>) -> Result<(), ChatError> {
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut next_id = 1u64;
    let stream = connect(socket).await?;
    eprintln!(
        "connected to {}; type !help, Ctrl-D to leave",
        socket.display()
    );
    let mut stream = Some(stream);
    loop {
        let connection = match stream.take() {
            Some(s) => s,
            None => reconnect(socket).await,
        };
        match converse(connection, &mut input, &mut next_id, save_dir).await? {
            Ended::Quit => return Ok(()),
            Ended::Lost => eprintln!("\nroost: the daemon went away; reconnecting…"),
        }
    }
}

/// Waits until the daemon at `socket` answers again.
async fn reconnect(socket: &Path) -> UnixStream {
    loop {
        tokio::time::sleep(RECONNECT_EVERY).await;
        if let Ok(stream) = UnixStream::connect(socket).await {
            eprintln!("roost: reconnected to {}", socket.display());
            return stream;
        }
    }
}

/// How one connection of an interactive chat ended.
enum Ended {
    /// The user left (end of input).
    Quit,
    /// The daemon closed the connection.
    Lost,
}

/// Serves one connection: the user's lines out, replies and announcements in.
async fn converse(
    stream: UnixStream,
    input: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>,
    next_id: &mut u64,
    save_dir: Option<&Path>,
) -> Result<Ended, ChatError> {
    let (read, mut write) = stream.into_split();
    let mut frames = BufReader::new(read).lines();
    let mut watch = serde_json::to_string(&ClientFrame::Watch).map_err(std::io::Error::other)?;
    watch.push('\n');
    write.write_all(watch.as_bytes()).await?;
    prompt();
    loop {
        tokio::select! {
            line = input.next_line() => {
                let Some(line) = line? else { return Ok(Ended::Quit) };
                if line.trim().is_empty() {
                    prompt();
                    continue;
                }
                if say(&mut write, *next_id, &line).await.is_err() {
                    return Ok(Ended::Lost);
                }
                *next_id += 1;
            }
            frame = frames.next_line() => {
                let Ok(Some(line)) = frame else { return Ok(Ended::Lost) };
                match serde_json::from_str::<ServerFrame>(&line) {
                    Ok(ServerFrame::Reply { text, files, .. }) => {
                        show_reply(&text, &files, save_dir)?
                    }
                    Ok(ServerFrame::Done { .. }) => prompt(),
                    Ok(ServerFrame::Message { plugin, text }) => {
                        print_line(&format!("[{plugin}] {text}"))?
                    }
                    Ok(ServerFrame::Error { text }) => return Err(ChatError::Refused(text)),
                    Err(_) => {}
                }
            }
        }
    }
}

/// Prints a reply; saves its attachments into `save_dir` (never over an existing file)
/// or says how to.
fn show_reply(text: &str, files: &[ReplyFile], save_dir: Option<&Path>) -> std::io::Result<()> {
    print_line(text)?;
    match save_dir {
        Some(dir) => {
            for file in files {
                let path = save_attachment(dir, file)?;
                print_line(&format!("saved {} to {}", file.filename, path.display()))?;
            }
        }
        None if !files.is_empty() => {
            print_line("(roost chat --save-dir DIR saves attachments)")?;
        }
        None => {}
    }
    Ok(())
}

/// Writes one attachment into `dir` under its own file name (its last path component
/// only), adding `-1`, `-2`, … rather than overwrite anything.
fn save_attachment(dir: &Path, file: &ReplyFile) -> std::io::Result<PathBuf> {
    let name = Path::new(&file.filename)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.starts_with('.'))
        .unwrap_or("attachment");
    std::fs::create_dir_all(dir)?;
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) => (stem, format!(".{ext}")),
        None => (name, String::new()),
    };
    for n in 0u32.. {
        let candidate = match n {
            0 => dir.join(name),
            n => dir.join(format!("{stem}-{n}{ext}")),
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut f) => {
                f.write_all(&file.data)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("u32 names run out only after four billion files")
}

fn prompt() {
    print!("roost> ");
    let _ = std::io::stdout().flush();
}

async fn connect(socket: &Path) -> Result<UnixStream, ChatError> {
    UnixStream::connect(socket)
        .await
        .map_err(|source| ChatError::NoDaemon {
            path: socket.display().to_string(),
            source,
        })
}

async fn say(write: &mut OwnedWriteHalf, id: u64, text: &str) -> Result<(), ChatError> {
    let frame = ClientFrame::Say {
        id,
        text: text.to_string(),
    };
    let mut line = serde_json::to_string(&frame).map_err(std::io::Error::other)?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    Ok(())
}

//! `roost chat`: talk to a running daemon over its console socket, one-shot (`-c`) or as an
//! interactive prompt that also shows what plugins announce to the console.

use std::io::Write;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;

use crate::gateways::console::{ClientFrame, ServerFrame};

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
}

/// Sends each line in turn, prints every reply, returns when the last one is answered.
pub async fn one_shot(socket: &Path, lines: &[String]) -> Result<(), ChatError> {
    let stream = connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut frames = BufReader::new(read).lines();
    for (i, text) in lines.iter().enumerate() {
        let id = i as u64 + 1;
        say(&mut write, id, text).await?;
        loop {
            let line = frames.next_line().await?.ok_or(ChatError::Closed)?;
            match serde_json::from_str::<ServerFrame>(&line) {
                Ok(ServerFrame::Reply { id: r, text }) if r == id => println!("{text}"),
                Ok(ServerFrame::Done { id: r }) if r == id => break,
                _ => {}
            }
        }
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// A prompt: reads lines from stdin, prints replies and console announcements.
pub async fn interactive(socket: &Path) -> Result<(), ChatError> {
    let stream = connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut frames = BufReader::new(read).lines();
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let mut next_id = 1u64;
    eprintln!(
        "connected to {}; type !help, Ctrl-D to leave",
        socket.display()
    );
    prompt();
    loop {
        tokio::select! {
            line = input.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                if line.trim().is_empty() {
                    prompt();
                    continue;
                }
                say(&mut write, next_id, &line).await?;
                next_id += 1;
            }
            frame = frames.next_line() => {
                let line = frame?.ok_or(ChatError::Closed)?;
                match serde_json::from_str::<ServerFrame>(&line) {
                    Ok(ServerFrame::Reply { text, .. }) => println!("{text}"),
                    Ok(ServerFrame::Done { .. }) => prompt(),
                    Ok(ServerFrame::Message { plugin, text }) => println!("[{plugin}] {text}"),
                    Err(_) => {}
                }
            }
        }
    }
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

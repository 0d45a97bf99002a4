//! What plugins post to the console channel, seen the way a user's interactive `roost chat`
//! sees it: a `watch` client on the daemon's socket. Tests assert on these messages, never
//! on the daemon's log text, so rewording a log line cannot break or fake a test.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One message a plugin sent to a channel that includes the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The plugin that sent it.
    pub plugin: String,
    /// The text, as the console shows it.
    pub text: String,
}

/// A watching console client that keeps every message it is shown, across daemon restarts.
#[derive(Default)]
pub struct ConsoleWatch {
    posts: Arc<Mutex<Vec<Post>>>,
    /// The daemon process the current connection belongs to; a new process (a restart)
    /// needs a new connection.
    watching_pid: Mutex<Option<u32>>,
}

impl ConsoleWatch {
    /// Makes sure a watch connection to daemon `pid`'s socket is open. The first connection
    /// also receives what was posted before it (the daemon's console backlog, 100 messages
    /// by default).
    pub fn ensure(&self, pid: u32, socket: &Path) {
        let mut watching = self.watching_pid.lock().unwrap_or_else(|p| p.into_inner());
        if *watching == Some(pid) {
            return;
        }
        let mut stream = UnixStream::connect(socket).expect("connect to the console socket");
        stream
            .write_all(b"{\"type\":\"watch\"}\n")
            .expect("send the watch frame");
        let posts = self.posts.clone();
        std::thread::spawn(move || read_posts(stream, &posts));
        *watching = Some(pid);
    }

    /// Every message seen so far, oldest first.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// Keeps every `message` frame until the daemon closes the connection.
fn read_posts(stream: UnixStream, posts: &Mutex<Vec<Post>>) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        let Ok(frame) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if frame["type"] != "message" {
            continue;
        }
        let post = Post {
            plugin: frame["plugin"].as_str().unwrap_or_default().to_string(),
            text: frame["text"].as_str().unwrap_or_default().to_string(),
        };
        if let Ok(mut p) = posts.lock() {
            p.push(post);
        }
    }
}

//! Shared fixtures for the end-to-end tests: a real `roost` daemon in a temporary directory,
//! driven the way a user drives it (config file, plugins folder, `roost chat -c`).

pub mod console;
pub mod fake_discord;
pub mod fake_slack;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A real authoritative DNS server on loopback serving deliberately broken test zones.
pub mod dns;
/// The Postgres server the store's tests run on: the same file the host's unit tests use.
#[path = "../../host/src/store/test_pg.rs"]
pub mod test_pg;

/// `ROOST_STORE_PASSWORD` for a daemon on the test Postgres server (nothing when the
/// server needs no password).
pub fn store_password_env() -> Vec<(&'static str, &'static str)> {
    test_pg::server()
        .password
        .as_deref()
        .map(|p| ("ROOST_STORE_PASSWORD", p))
        .into_iter()
        .collect()
}

/// The fault-fixture plugin (`tests/plugins/faulty`).
pub const FAULTY_WASM: &str = env!("FAULTY_WASM");
/// The example plugin (`plugins/examples/hello`).
pub const HELLO_WASM: &str = env!("HELLO_WASM");
/// The outgoing-HTTP example plugin (`plugins/examples/match-feed`).
pub const MATCH_FEED_WASM: &str = env!("MATCH_FEED_WASM");
/// The webhook example plugin (`plugins/examples/git-hooks`).
pub const GIT_HOOKS_WASM: &str = env!("GIT_HOOKS_WASM");

/// How long a daemon may take to start or a condition to become true before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The config every test daemon starts from; tests append their own sections.
pub const BASE_CONFIG: &str = r#"
[host]
data_dir = "data"
log = "info,roost=debug"

[rate_limit]
per_minute = 0

[roles]
admin = ["console"]

[channels.announce]
targets = ["console"]

[plugins.bot.grants]
admin = true
channels = ["announce"]
"#;

/// The first line of a multi-line reply that starts with `head` (empty when none does):
/// one project's line of `!tests`, one hub's line of `!status`.
pub fn line_starting(reply: &str, head: &str) -> String {
    reply
        .lines()
        .find(|l| l.starts_with(head))
        .unwrap_or_default()
        .to_string()
}

/// Hub `name`'s line of a `!status` reply (empty when it has none).
pub fn hub_line(status: &str, name: &str) -> String {
    line_starting(status, &format!("hub {name}: "))
}

/// A hub on a shared Postgres store (`config` names it and the store) with the faulty
/// plugin, the store password and the fake Discord's token in its environment. A
/// `standby` is returned once its console listens, without waiting for plugin loads.
pub fn start_hub(config: &str, standby: bool) -> Daemon {
    let password = test_pg::server().password.clone().unwrap_or_default();
    let env = [
        ("ROOST_DISCORD_TOKEN", fake_discord::TOKEN),
        ("ROOST_STORE_PASSWORD", password.as_str()),
    ];
    Daemon::start_with(
        config,
        &[("faulty", FAULTY_WASM)],
        StartOptions {
            env: &env,
            listening_only: standby,
            ..StartOptions::default()
        },
    )
}

/// GitHub's `X-Hub-Signature-256` for `body` under `secret`: what a webhook test or bench
/// signs its deliveries with.
pub fn github_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A response read off a raw HTTP/1.1 connection (see [`http_raw`]).
#[derive(Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    /// The body, lossily decoded.
    pub body: String,
}

impl HttpReply {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` as is to `addr` (it should say `Connection: close`) and reads the
/// response to the end: a client that sends exactly what the test wrote, malformed or not.
pub fn http_raw(addr: &str, request: &[u8]) -> HttpReply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the http server");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    stream.write_all(request).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .map_or((response.as_str(), ""), |(h, b)| (h, b));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    HttpReply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The `roost` binary built next to the test executable. The first call in a test process
/// (re)builds it, so a plain `cargo test` after editing the host never tests a stale binary.
pub fn roost_bin() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    BUILT.call_once(|| build_roost(dir));
    let bin = dir.join("roost");
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin
}

/// Builds the `roost` binary into the profile directory `dir` the tests run from: in
/// release as the bench scripts do (`-p roost`), in debug as `make test` does, with the
/// `unify_features` example so that its dependencies are the tests' own builds.
fn build_roost(dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--bin", "roost"]);
    if dir.file_name().is_some_and(|p| p == "release") {
        command.args(["-p", "roost", "--release"]);
    } else {
        command.args(["--workspace", "--example", "unify_features"]);
    }
    if let Some(target) = dir.parent() {
        command.arg("--target-dir").arg(target);
    }
    let status = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for the roost binary");
    assert!(status.success(), "building the roost binary failed");
}

/// Runs `roost ARGS…` in `dir` with no config named (so `config/roost.toml` there).
pub fn roost_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(roost_bin())
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ROOST_CONFIG")
        .output()
        .expect("run roost")
}

/// A temporary directory holding the starter config `roost init` writes.
pub fn starter_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = roost_in(dir.path(), &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A running daemon in its own temporary directory; killed when dropped.
pub struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// Extra environment for the daemon (gateway tokens), kept across restarts.
    env: Vec<(String, String)>,
    /// The user the daemon runs as, when not the test's own (tests running as root).
    uid: Option<u32>,
    /// Runs a copy of the binary of its own (see [`StartOptions::own_binary`]).
    own_binary: bool,
    /// What "started" means: `roost ready` logged, or only the console socket bound.
    until: Ready,
    /// What plugins posted to the console, once a test asks for it.
    console: console::ConsoleWatch,
}

/// When [`Daemon`]'s start returns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Every plugin loaded and `roost ready` logged.
    AllLoaded,
    /// The console socket accepts connections (plugins may still be loading).
    Listening,
}

/// Options for [`Daemon::start_with`] beyond the config and plugins.
#[derive(Default)]
pub struct StartOptions<'a> {
    /// Extra environment (gateway tokens).
    pub env: &'a [(&'a str, &'a str)],
    /// Run the daemon as this user id (the test must be root); its directory is handed
    /// over to that user.
    pub uid: Option<u32>,
    /// Return once the socket listens, without waiting for every plugin.
    pub listening_only: bool,
    /// Run a copy of the binary in the daemon's directory, so the pages it maps are its
    /// alone (other test daemons share the build tree's binary's pages).
    pub own_binary: bool,
}

impl Daemon {
    /// Starts a daemon on [`BASE_CONFIG`] plus `extra_config`, and waits until it is ready.
    pub fn start(extra_config: &str) -> Self {
        Self::start_with_plugins(extra_config, &[])
    }

    /// Starts a daemon with `plugins` (name, wasm path) already in its plugins folder.
    pub fn start_with_plugins(extra_config: &str, plugins: &[(&str, &str)]) -> Self {
        Self::start_full(&format!("{BASE_CONFIG}\n{extra_config}"), plugins, &[])
    }

    /// Starts a daemon on exactly `config`, with `plugins` in its plugins folder and `env`
    /// added to its environment (e.g. a gateway token).
    pub fn start_full(config: &str, plugins: &[(&str, &str)], env: &[(&str, &str)]) -> Self {
        Self::start_with(
            config,
            plugins,
            StartOptions {
                env,
                ..StartOptions::default()
            },
        )
    }

    /// Starts a daemon on exactly `config` with `plugins`, as `options` say.
    pub fn start_with(config: &str, plugins: &[(&str, &str)], options: StartOptions<'_>) -> Self {
        let env = options.env;
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins_dir = dir.path().join("data/plugins");
        std::fs::create_dir_all(&plugins_dir).expect("plugins dir");
        for (name, wasm) in plugins {
            std::fs::copy(wasm, plugins_dir.join(format!("{name}.wasm"))).expect("copy plugin");
        }
        std::fs::write(dir.path().join("roost.toml"), config).expect("write config");
        let mut daemon = Self {
            dir,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            uid: options.uid,
            own_binary: options.own_binary,
            until: if options.listening_only {
                Ready::Listening
            } else {
                Ready::AllLoaded
            },
            console: console::ConsoleWatch::default(),
        };
        if let Some(uid) = options.uid {
            let status = Command::new("chown")
                .args(["-R", &format!("{uid}:{uid}")])
                .arg(daemon.dir())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the daemon's directory");
        }
        daemon.spawn();
        daemon
    }

    /// The binary to run: as another user, a copy inside the daemon's own directory, since
    /// the build tree may not be open to that user; a copy too when asked for one.
    pub fn binary(&self) -> PathBuf {
        if self.uid.is_none() && !self.own_binary {
            return roost_bin();
        }
        let copy = self.dir().join("roost-bin");
        if !copy.is_file() {
            std::fs::copy(roost_bin(), &copy).expect("copy the roost binary");
            // Written back, so its pages are clean ones the kernel may drop and read again.
            std::fs::File::open(&copy)
                .and_then(|f| f.sync_all())
                .expect("sync the copy");
            if let Some(uid) = self.uid {
                std::os::unix::fs::chown(&copy, Some(uid), Some(uid)).expect("chown the copy");
            }
        }
        copy
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn spawn(&mut self) {
        let mut command = Command::new(self.binary());
        command
            .arg("--config")
            .arg(self.config_path())
            .arg("run")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(uid) = self.uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        let mut child = command.spawn().expect("spawn roost run");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("ROOST_TEST_ECHO").is_some() {
                    eprintln!("[roost] {line}");
                }
                if let Ok(mut l) = log.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        self.child = Some(child);
        let start = Instant::now();
        while !self.started() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "roost exited with {status} before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "roost not ready in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            UnixStream::connect(self.socket()).is_ok(),
            "console socket not accepting"
        );
    }

    fn started(&self) -> bool {
        match self.until {
            Ready::AllLoaded => self.log().contains("roost ready"),
            Ready::Listening => UnixStream::connect(self.socket()).is_ok(),
        }
    }

    /// The daemon's working directory (holds roost.toml and data/).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("roost.toml")
    }

    /// Its plugins folder.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("data/plugins")
    }

    /// Its console socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("data/roost.sock")
    }

    /// Its host database.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data/roost.db")
    }

    /// The address (`127.0.0.1:PORT`) of the daemon's HTTP server, from its log (listen
    /// on port 0 to get a free one).
    pub fn http_addr(&self) -> String {
        const SAID: &str = "status page on http://";
        self.wait_for_log(SAID);
        self.log()
            .split(SAID)
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("the address in the log")
            .to_string()
    }

    /// Everything the daemon has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Overwrites the config with [`BASE_CONFIG`] plus `extra_config`.
    pub fn rewrite_config(&self, extra_config: &str) {
        self.write_config_raw(&format!("{BASE_CONFIG}\n{extra_config}"));
    }

    /// Overwrites the config file with exactly `text`, the way an editor saves (write a
    /// temporary file, rename it over the old one).
    pub fn write_config_raw(&self, text: &str) {
        let tmp = self.dir.path().join(".roost.toml.tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, self.config_path()).expect("rename config");
    }

    /// Runs `roost --config <ours> ARGS…` to completion.
    pub fn roost(&self, args: &[&str]) -> Output {
        Command::new(roost_bin())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run roost")
    }

    /// `roost chat -c LINE`: the reply text, whether the command succeeded (exit 0) or
    /// failed (exit 1: unknown command, not allowed, plugin error); any other exit fails
    /// the test.
    pub fn chat(&self, line: &str) -> String {
        self.chat_outcome(line).1
    }

    /// `roost chat -c LINE`: whether the command succeeded, and the reply text.
    pub fn chat_outcome(&self, line: &str) -> (bool, String) {
        let out = self.roost(&["chat", "-c", line]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "roost chat -c {line:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Repeats `roost chat -c LINE` until the reply satisfies `ok`; returns that reply.
    pub fn chat_until(&self, line: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let reply = self.chat(line);
            if ok(&reply) {
                return reply;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{line:?} never gave the expected reply; last:\n{reply}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < PATIENCE,
                "log never showed {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every message plugins posted to the console so far, oldest first. The first call
    /// attaches a watching client, which is shown the daemon's backlog of earlier posts.
    pub fn posts(&self) -> Vec<console::Post> {
        self.console.ensure(self.pid(), &self.socket());
        self.console.posts()
    }

    /// How many console posts contain `needle`.
    pub fn count_posts(&self, needle: &str) -> usize {
        self.posts()
            .iter()
            .filter(|p| p.text.contains(needle))
            .count()
    }

    /// Waits until at least `n` console posts contain `needle`.
    pub fn wait_for_posts(&self, needle: &str, n: usize) {
        let start = Instant::now();
        while self.count_posts(needle) < n {
            assert!(
                start.elapsed() < PATIENCE,
                "never {n} console posts with {needle:?}; posts:\n{:#?}\nlog:\n{}",
                self.posts(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a console post containing `needle`; returns its text.
    pub fn wait_for_post(&self, needle: &str) -> String {
        self.wait_for_posts(needle, 1);
        self.posts()
            .into_iter()
            .find(|p| p.text.contains(needle))
            .map(|p| p.text)
            .unwrap_or_default()
    }

    /// Copies a plugin build into the plugins folder as `<name>.wasm` (atomically, as a
    /// package manager or `install` would).
    pub fn drop_plugin(&self, name: &str, wasm: &str) {
        let tmp = self.plugins_dir().join(format!(".{name}.tmp"));
        std::fs::copy(wasm, &tmp).expect("copy plugin");
        std::fs::rename(&tmp, self.plugins_dir().join(format!("{name}.wasm"))).expect("rename");
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills the daemon with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the daemon to exit (after a signal); its exit status.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "daemon did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the daemon again on the same directory (after `kill9` or `wait_exit`).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
        self.spawn();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

//! A Postgres server for tests, in one place: the store's unit tests include it as a module
//! and the end-to-end tests (`roost-tests`) include the same file by path. It needs only std,
//! `libc` and the `postgres` client.
//!
//! - `ROOST_TEST_PG` set: that server, e.g. `postgres://roost@127.0.0.1:5432/roost_test`,
//!   with the password (if it needs one) in `ROOST_TEST_PG_PASSWORD`. It must check
//!   passwords for the wrong-password test to mean anything.
//! - Otherwise a throwaway cluster: `initdb` and `pg_ctl start` in a temporary directory,
//!   on a free loopback port, password authentication over TCP, started once per test
//!   process and stopped and removed when the process exits. The binaries are found through
//!   `ROOST_TEST_PG_BIN`, then `initdb` on `PATH`, then the newest
//!   `/usr/lib/postgresql/<version>/bin` (Debian's layout; `make test-deps` installs it).
//!   Postgres refuses to run as root, so under root (CI, containers) the directory is
//!   given to `nobody` and the server runs as that user via `runuser`.
//!
//! When no server can be had, [`server`] panics with the reason: the Postgres cases fail,
//! they are never skipped.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A server to test against: its URL (no password in it) and the password.
#[derive(Clone, Debug)]
pub struct TestPg {
    /// `postgres://user@host:port/db`.
    pub url: String,
    /// The password the server wants, if any.
    pub password: Option<String>,
}

static SERVER: OnceLock<Result<TestPg, String>> = OnceLock::new();
/// The shared throwaway cluster, for the exit hook.
static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The test server, started on first use. Panics (failing the test) with why when there is
/// none.
pub fn server() -> &'static TestPg {
    let found = SERVER.get_or_init(|| match std::env::var("ROOST_TEST_PG") {
        Ok(url) if !url.is_empty() => Ok(TestPg {
            url,
            password: std::env::var("ROOST_TEST_PG_PASSWORD").ok(),
        }),
        _ => start_cluster(),
    });
    match found {
        Ok(pg) => pg,
        Err(why) => panic!(
            "no Postgres to test against: {why}\n(set ROOST_TEST_PG to a server's URL, or install postgresql: `make test-deps`)"
        ),
    }
}

/// A URL (no password) of an empty schema of its own on the test server, so every test
/// starts from nothing and tests can run at once: the schema is created here and put
/// first on the connection's `search_path`.
pub fn fresh_url() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pg = server().clone();
    let schema = format!(
        "roost_t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        nanos() % 1_000_000
    );
    let sql = format!("CREATE SCHEMA {schema}");
    // On a thread of its own: the blocking client cannot run inside a tokio runtime.
    let url = pg.url.clone();
    let created = std::thread::spawn(move || {
        let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        if let Some(p) = &pg.password {
            config.password(p);
        }
        let mut client = config
            .connect(postgres::NoTls)
            .map_err(|e| format!("{e:?}"))?;
        client.batch_execute(&sql).map_err(|e| format!("{e:?}"))
    })
    .join();
    match created {
        Ok(Ok(())) => {}
        Ok(Err(why)) => panic!("cannot create a test schema on {}: {why}", server().url),
        Err(_) => panic!("creating a test schema panicked"),
    }
    let sep = if server().url.contains('?') { '&' } else { '?' };
    format!("{}{sep}options=-csearch_path%3D{schema}", server().url)
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Where `initdb` and `pg_ctl` are.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("ROOST_TEST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()));
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("initdb is not on PATH and /usr/lib/postgresql cannot be read ({e})"))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb on PATH or in /usr/lib/postgresql/*/bin".to_string())
}

/// Runs `program` (from `bin`), as `user` when given; its output in the error.
fn run(bin: &Path, user: Option<&str>, program: &str, args: &[&str]) -> Result<(), String> {
    let exe = bin.join(program);
    let mut cmd = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .args(args)
        .current_dir("/")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Who the cluster runs as: `nobody` when we are root (initdb refuses root), else us.
fn cluster_user() -> Result<Option<(String, u32, u32)>, String> {
    let euid = std::fs::metadata("/proc/self")
        .map_err(|e| format!("cannot read /proc/self: {e}"))?
        .uid();
    if euid != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                "running as root and there is no user nobody to run Postgres as".to_string()
            })
    };
    Ok(Some(("nobody".to_string(), id("-u")?, id("-g")?)))
}

/// A free loopback port (taken and let go; the server binds it a moment later).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn start_cluster() -> Result<TestPg, String> {
    let cluster = Cluster::start(false)?;
    let server = cluster.server();
    if CLUSTER.set(cluster).is_ok() {
        // SAFETY: registers a plain function with no arguments to run at exit.
        unsafe { libc::atexit(stop_cluster) };
    }
    Ok(server)
}

/// At exit: stops the shared throwaway cluster and removes its directory.
extern "C" fn stop_cluster() {
    if let Some(cluster) = CLUSTER.get() {
        cluster.remove();
    }
}

/// A throwaway cluster of its own, in a temporary directory on a free loopback port: the
/// one the tests share, or one a test may stop and start again (a database that goes
/// away) or a bench needs durable. Stopped and removed when dropped.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    /// Who it runs as, when not us (we are root).
    user: Option<String>,
    port: u16,
    password: String,
}

impl Cluster {
    /// Creates and starts a cluster. `durable`: fsync on, as a real server runs (benches);
    /// otherwise off, which tests do not need and which saves their time.
    pub fn start(durable: bool) -> Result<Cluster, String> {
        let cluster = Self::create(durable)?;
        cluster.resume()?;
        Ok(cluster)
    }

    /// Creates and starts a cluster that takes TLS connections only (`hostssl`), with the
    /// certificate `cert_pem` (for 127.0.0.1) and its key. Used by the end-to-end tests
    /// (which include this file), not by the store's own.
    #[allow(dead_code)]
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<Cluster, String> {
        let cluster = Self::create(false)?;
        let (cert, key) = (
            cluster.dir.join("server.crt"),
            cluster.dir.join("server.key"),
        );
        cluster.write_private(&cert, cert_pem)?;
        cluster.write_private(&key, key_pem)?;
        let conf = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            cert.display(),
            key.display()
        );
        append(&cluster.dir.join("data/postgresql.conf"), &conf)?;
        let hba = cluster.dir.join("data/pg_hba.conf");
        let rules =
            std::fs::read_to_string(&hba).map_err(|e| format!("cannot read pg_hba: {e}"))?;
        let tls_only: String = rules
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&hba, tls_only).map_err(|e| format!("cannot write pg_hba: {e}"))?;
        cluster.resume()?;
        Ok(cluster)
    }

    /// Writes `text` to `path`, mode 0600, owned by the cluster's user.
    #[allow(dead_code)]
    fn write_private(&self, path: &Path, text: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text)
            .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        if let Some((_, uid, gid)) = cluster_user()? {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to the cluster: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Creates a cluster, not started yet.
    fn create(durable: bool) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let user = cluster_user()?;
        let dir = std::env::temp_dir().join(format!("roost-pg-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cluster = Cluster {
            bin,
            dir,
            user: user.as_ref().map(|(name, _, _)| name.clone()),
            port: free_port()?,
            password: format!("t{:x}", nanos() ^ u128::from(std::process::id())),
        };
        cluster.init(user.map(|(_, uid, gid)| (uid, gid)), durable)?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn init(&self, owner: Option<(u32, u32)>, durable: bool) -> Result<(), String> {
        let pwfile = self.dir.join("pw");
        std::fs::File::create(&pwfile)
            .and_then(|mut f| f.write_all(self.password.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", pwfile.display()))?;
        if let Some((uid, gid)) = owner {
            for path in [&self.dir, &pwfile] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| format!("cannot give {} to nobody: {e}", path.display()))?;
            }
        }
        let (data, pw) = (self.data(), pwfile.display().to_string());
        #[rustfmt::skip]
        let args = [
            "-D", &data, "-U", "roost", "--pwfile", &pw, "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
        ];
        run(&self.bin, self.user.as_deref(), "initdb", &args)?;
        let sync = if durable {
            ""
        } else {
            "fsync = off\nfull_page_writes = off\n"
        };
        let conf = format!(
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n{sync}",
            self.port
        );
        append(&self.dir.join("data/postgresql.conf"), &conf)
    }

    /// Its URL and password.
    pub fn server(&self) -> TestPg {
        TestPg {
            url: format!("postgres://roost@127.0.0.1:{}/postgres", self.port),
            password: Some(self.password.clone()),
        }
    }

    /// Starts the server (again, after [`Cluster::stop`]) on the same port and data.
    pub fn resume(&self) -> Result<(), String> {
        let log = self.dir.join("log").display().to_string();
        let data = self.data();
        let args = ["-D", data.as_str(), "-l", &log, "-w", "-t", "60", "start"];
        run(&self.bin, self.user.as_deref(), "pg_ctl", &args).map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{tail}")
        })
    }

    /// Stops the server at once, as a crash or a pulled cable would: every connection
    /// drops, nothing is shut down cleanly.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        run(&self.bin, self.user.as_deref(), "pg_ctl", &args)
    }

    fn remove(&self) {
        if self.dir.join("data/postmaster.pid").exists() {
            let _ = self.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Appends `text` to the file at `path`.
fn append(path: &Path, text: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot configure the cluster ({}): {e}", path.display()))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.remove();
    }
}

//! `faulty`: a plugin that exists only so the host's tests can prove isolation and
//! durability. Each command misbehaves (or behaves) in one precise way: hangs, memory
//! bombs, traps, panics, storage writes, grant-checked sends and timers, and SQLite calls
//! that try to hold a granted file locked or pull huge rows into the host; `!secret…`
//! reads a granted secret, or leaks it on purpose (reply, KV, a job's environment).
//!
//! Build two distinct versions with `FAULTY_VERSION=… cargo build --release`.
//! Config: `fail_init = true` makes `init` fail; `sleep_init_ms = N` makes `init` block in
//! a WASI clock sleep for N ms; `shadow = true` declares the bot's built-in command names.

use std::collections::HashMap;
use std::time::Duration;

use roost_plugin::prelude::*;

/// The version `!version` and the manifest report; tests set `FAULTY_VERSION` at build
/// time to tell two builds apart.
const VERSION: &str = match option_env!("FAULTY_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Default size of `!alloc`: far above the host's default 64 MiB limit.
const DEFAULT_ALLOC_MIB: usize = 1024;

/// State kept across calls: a count of timers fired, for `status`, and the SQLite handles
/// the attacks need to keep alive (everything else that must outlive a call is in kv).
#[derive(Default)]
struct Faulty {
    timers_fired: u32,
    /// One connection per database path, reused by every `!sql…` command.
    conns: HashMap<String, sqlite::Connection>,
    /// The cursor `!sqlpark` opened and `!sqlnext` reads on.
    parked: Option<sqlite::Cursor>,
    /// Cursors `!sqlleak` opened and never dropped.
    leaked: Vec<sqlite::Cursor>,
}

impl Plugin for Faulty {
    fn init(&mut self, cfg: Config) -> Result<Manifest, String> {
        if cfg.get_or::<bool>("fail_init", false) {
            return Err("init refused: fail_init is set".into());
        }
        let sleep_init_ms = cfg.get_or::<u64>("sleep_init_ms", 0);
        if sleep_init_ms > 0 {
            std::thread::sleep(Duration::from_millis(sleep_init_ms));
        }
        let cmd = |name, usage, summary| CommandSpec::new(name, usage, summary);
        let shadows = ["ping", "status", "help", "disable"]
            .into_iter()
            .filter(|_| cfg.get_or::<bool>("shadow", false))
            .map(|name| cmd(name, "!<builtin>", "A built-in's name, answered by faulty"));
        Ok(Manifest::new("faulty", VERSION)
            .commands(shadows)
            .commands([
                cmd("spin", "!spin", "Loop forever"),
                cmd(
                    "alloc",
                    "!alloc [mib]",
                    "Allocate and touch MiB of memory (default 1024)",
                ),
                cmd("trap", "!trap", "Execute `unreachable`"),
                cmd("panic", "!panic", "Panic"),
                cmd("kvset", "!kvset <key> <value>", "Store a value").min_args(2),
                cmd("kvget", "!kvget <key>", "Read a value").min_args(1),
                cmd("kvcount", "!kvcount", "Count stored keys"),
                cmd(
                    "kvloop",
                    "!kvloop <n> [prefix]",
                    "Write <prefix>/00000.. (default seq) one by one",
                )
                .min_args(1),
                cmd("version", "!version", "The build's version"),
                cmd("send", "!send <channel> <text>", "Post to a channel alias").min_args(2),
                cmd(
                    "sendmany",
                    "!sendmany <channel> <n> <prefix>",
                    "Post <prefix>-0 .. <prefix>-<n-1>, one message each",
                )
                .min_args(3),
                cmd(
                    "timer",
                    "!timer <ms> <tag>",
                    "One-shot timer that stores fired/<tag>",
                )
                .min_args(2),
                cmd("echo", "!echo <args...>", "The arguments joined with |"),
                cmd("sleep", "!sleep <ms>", "Block in a WASI clock sleep").min_args(1),
                cmd("recurse", "!recurse", "Recurse until the stack runs out"),
                cmd(
                    "attach",
                    "!attach <file> <text>",
                    "Reply with an attachment",
                )
                .min_args(2),
                cmd(
                    "job",
                    "!job <dir> <program> [args...]",
                    "Start a job; its end is stored as job/<id>",
                )
                .min_args(2),
                cmd("cancel", "!cancel <job>", "Cancel a job").min_args(1),
                cmd(
                    "kvbig",
                    "!kvbig <kib> [key]",
                    "Store one value of that size",
                )
                .min_args(1),
                cmd(
                    "kvfill",
                    "!kvfill <kib> <n> [prefix]",
                    "Store n values of that size, stopping at the first refusal",
                )
                .min_args(2),
                cmd(
                    "kvclear",
                    "!kvclear <prefix>",
                    "Delete every key under a prefix",
                )
                .min_args(1),
                cmd(
                    "sendbig",
                    "!sendbig <channel> <chars>",
                    "Post a text of that many characters",
                )
                .min_args(2),
                cmd(
                    "sqlexec",
                    "!sqlexec <db> <sql...>",
                    "Run SQL, read every row",
                )
                .min_args(2),
                cmd(
                    "sqlpark",
                    "!sqlpark <db>",
                    "Open a cursor, read one row, keep it",
                )
                .min_args(1),
                cmd(
                    "sqlnext",
                    "!sqlnext",
                    "Read one more row of the parked cursor",
                ),
                cmd("sqldrop", "!sqldrop", "Drop the parked cursor"),
                cmd(
                    "sqlbig",
                    "!sqlbig <db> <bytes> <columns>",
                    "Select one row of zeroblobs",
                )
                .min_args(3),
                cmd(
                    "sqlleak",
                    "!sqlleak <db> <n>",
                    "Open n cursors and keep them",
                )
                .min_args(2),
                cmd("sqlfree", "!sqlfree", "Drop the cursors !sqlleak kept"),
                cmd(
                    "secret",
                    "!secret <name>",
                    "Read a secret; reply and store (secret/<name>) only its length",
                )
                .min_args(1),
                cmd(
                    "secretleak",
                    "!secretleak <name> [kv]",
                    "Leak a secret on purpose: reply with it, and with `kv` store it too",
                )
                .min_args(1),
                cmd(
                    "secretjob",
                    "!secretjob <dir> <name>",
                    "Start printenv with the secret in ROOST_SECRET_<NAME>",
                )
                .min_args(2),
                cmd(
                    "httppost",
                    "!httppost <url> <bytes>",
                    "POST a body of that many bytes; reply with the status or the error",
                )
                .min_args(2),
                cmd(
                    "httploop",
                    "!httploop <url> <n>",
                    "GET url n times in a row; reply with the median, p99 and rate (benchmarks)",
                )
                .min_args(2),
            ]))
    }

    fn on_command(&mut self, cmd: Command) -> Result<Reply, String> {
        let text = match cmd.name() {
            "spin" => {
                // A marker the test can see in the database: the spin has begun.
                kv::set_string("spinning", "1")?;
                spin()
            }
            "alloc" => alloc(number(&cmd, 0)?.unwrap_or(DEFAULT_ALLOC_MIB))?,
            "trap" => core::arch::wasm32::unreachable(),
            "panic" => panic!("faulty panicked on purpose"),
            "kvset" => {
                kv::set_string(arg(&cmd, 0)?, &cmd.rest(1))?;
                "ok".to_string()
            }
            "kvget" => kv::get_string(arg(&cmd, 0)?)?.unwrap_or_else(|| "(none)".into()),
            "kvcount" => kv::list("")?.len().to_string(),
            "kvloop" => {
                let n: usize = number(&cmd, 0)?.unwrap_or(0);
                let prefix = cmd.arg(1).unwrap_or("seq");
                for i in 0..n {
                    kv::set_string(&format!("{prefix}/{i:07}"), &i.to_string())?;
                }
                n.to_string()
            }
            "version" => VERSION.to_string(),
            "send" => match chat::send(arg(&cmd, 0)?, cmd.rest(1)) {
                Ok(()) => "sent".to_string(),
                Err(e) => e.to_string(),
            },
            "sendmany" => {
                let (channel, prefix) = (arg(&cmd, 0)?, cmd.rest(2));
                let n: usize = number(&cmd, 1)?.unwrap_or(0);
                let failed = (0..n).find_map(|i| {
                    chat::send(channel, format!("{prefix}-{i}"))
                        .err()
                        .map(|e| format!("error after {i}: {e}"))
                });
                failed.unwrap_or_else(|| format!("sent {n}"))
            }
            "timer" => {
                let ms: u64 = number(&cmd, 0)?.unwrap_or(0);
                let id = timer::after(Duration::from_millis(ms), arg(&cmd, 1)?)?;
                format!("timer {id} set")
            }
            "echo" => cmd.args().join("|"),
            "recurse" => recurse(0).to_string(),
            "attach" => {
                return Ok(Reply::text("here it is").attachment(arg(&cmd, 0)?, cmd.rest(1)));
            }
            "sleep" => {
                let ms: u64 = number(&cmd, 0)?.unwrap_or(0);
                std::thread::sleep(Duration::from_millis(ms));
                format!("slept {ms} ms")
            }
            "job" => {
                let job = process::Job::new(arg(&cmd, 1)?)
                    .cwd(arg(&cmd, 0)?)
                    .args(cmd.args().iter().skip(2).cloned());
                format!("job {}", job.start()?.get())
            }
            "cancel" => {
                let id: u64 = number(&cmd, 0)?.unwrap_or(0);
                process::cancel(id.into())?;
                "cancelled".to_string()
            }
            "ping" | "status" | "help" | "disable" => format!("faulty answered {}", cmd.name()),
            "kvbig" => {
                let kib: usize = number(&cmd, 0)?.unwrap_or(0);
                let key = cmd.arg(1).unwrap_or("big");
                match kv::set(key, vec![b'x'; kib * 1024]) {
                    Ok(()) => format!("stored {kib} KiB"),
                    Err(e) => format!("refused: {e}"),
                }
            }
            "kvfill" => kv_fill(
                number(&cmd, 0)?.unwrap_or(0),
                number(&cmd, 1)?.unwrap_or(0),
                cmd.arg(2).unwrap_or("fill"),
            ),
            "kvclear" => {
                let keys = kv::list(arg(&cmd, 0)?)?;
                for key in &keys {
                    kv::delete(key)?;
                }
                format!("deleted {}", keys.len())
            }
            "sendbig" => {
                let chars: usize = number(&cmd, 1)?.unwrap_or(0);
                match chat::send(arg(&cmd, 0)?, "y".repeat(chars)) {
                    Ok(()) => "sent".to_string(),
                    Err(e) => e.to_string(),
                }
            }
            "sqlexec" => outcome(self.sql_exec(arg(&cmd, 0)?, &cmd.rest(1))),
            "sqlpark" => outcome(self.sql_park(arg(&cmd, 0)?)),
            "sqlnext" => outcome(self.sql_next()),
            "sqldrop" => {
                self.parked = None;
                "dropped".to_string()
            }
            "sqlbig" => {
                let bytes: u64 = number(&cmd, 1)?.unwrap_or(0);
                let columns: usize = number(&cmd, 2)?.unwrap_or(1);
                outcome(self.sql_big(arg(&cmd, 0)?, bytes, columns))
            }
            "sqlleak" => outcome(self.sql_leak(arg(&cmd, 0)?, number(&cmd, 1)?.unwrap_or(0))),
            "sqlfree" => {
                let n = self.leaked.len();
                self.leaked.clear();
                format!("freed {n}")
            }
            "httppost" => {
                let body = vec![b'x'; number(&cmd, 1)?.unwrap_or(0)];
                match http::post(arg(&cmd, 0)?, body) {
                    Ok(response) => format!("HTTP {}", response.status()),
                    Err(e) => e.to_string(),
                }
            }
            "httploop" => http_loop(arg(&cmd, 0)?, number(&cmd, 1)?.unwrap_or(1))?,
            "secret" => match secrets::get(arg(&cmd, 0)?) {
                Ok(value) => {
                    let name = arg(&cmd, 0)?;
                    kv::set_string(&format!("secret/{name}"), &value.len().to_string())?;
                    format!("{name}: {} bytes", value.len())
                }
                Err(e) => format!("error: {e}"),
            },
            "secretleak" => {
                let value = secrets::get(arg(&cmd, 0)?)?;
                if cmd.arg(1) == Some("kv") {
                    kv::set_string("leaked", &value)?;
                }
                format!("leaked: {value}")
            }
            "secretjob" => {
                let name = arg(&cmd, 1)?;
                let value = secrets::get(name)?;
                let job = process::Job::new("printenv")
                    .cwd(arg(&cmd, 0)?)
                    .env(format!("ROOST_SECRET_{}", name.to_ascii_uppercase()), value);
                match job.start() {
                    Ok(id) => format!("job {}", id.get()),
                    Err(e) => format!("error: {e}"),
                }
            }
            other => return Err(format!("faulty does not serve `{other}`")),
        };
        Ok(Reply::text(text))
    }

    fn on_timer(&mut self, tag: &str) {
        self.timers_fired += 1;
        if let Err(e) = kv::set_string(&format!("fired/{tag}"), "1") {
            log::error(format!("timer {tag}: {e}"));
        }
    }

    fn on_job_ended(&mut self, ended: process::JobEnded) {
        let what = format!(
            "exit={:?} signal={:?} cancelled={} timed_out={} stdout={}",
            ended.exit_code,
            ended.signal,
            ended.cancelled,
            ended.timed_out,
            ended.stdout.trim()
        );
        if let Err(e) = kv::set_string(&format!("job/{}", ended.job.get()), &what) {
            log::error(format!("job {}: {e}", ended.job.get()));
        }
    }

    fn status(&self) -> String {
        format!(
            "misbehaving on request (version {VERSION}), {} timers fired",
            self.timers_fired
        )
    }
}

export_plugin!(Faulty);

/// SQLite attacks; the reply is the outcome, or "error: …" with the host's error.
impl Faulty {
    /// The kept connection to `db`, opened on first use.
    fn conn(&mut self, db: &str) -> Result<&mut sqlite::Connection, Error> {
        if !self.conns.contains_key(db) {
            let conn = sqlite::Connection::open(db)?;
            self.conns.insert(db.to_string(), conn);
        }
        self.conns
            .get_mut(db)
            .ok_or_else(|| Error::NotFound(db.to_string()))
    }

    /// Runs `sql` on the kept connection (so a transaction it began would stay open) and
    /// reads every row.
    fn sql_exec(&mut self, db: &str, sql: &str) -> Result<String, Error> {
        let mut cursor = self.conn(db)?.query(sql, &[])?;
        let mut n = 0;
        while let Some(batch) = cursor.next_batch(100)? {
            n += batch.len();
        }
        Ok(format!("rows {n}"))
    }

    /// Opens a cursor over table `t`, reads one row and keeps the cursor for later calls.
    fn sql_park(&mut self, db: &str) -> Result<String, Error> {
        let mut cursor = self.conn(db)?.query("SELECT id FROM t ORDER BY id", &[])?;
        let n = cursor.next_batch(1)?.map_or(0, |b| b.len());
        self.parked = Some(cursor);
        Ok(format!("parked after {n} row"))
    }

    /// One more row of the parked cursor: "row" or "done".
    fn sql_next(&mut self) -> Result<String, Error> {
        let Some(cursor) = self.parked.as_mut() else {
            return Ok("nothing parked".to_string());
        };
        Ok(match cursor.next_batch(1)? {
            Some(_) => "row".to_string(),
            None => "done".to_string(),
        })
    }

    /// `SELECT zeroblob(bytes), …` with `columns` columns; reads its one row.
    fn sql_big(&mut self, db: &str, bytes: u64, columns: usize) -> Result<String, Error> {
        let sql = format!(
            "SELECT {}",
            vec![format!("zeroblob({bytes})"); columns.max(1)].join(", ")
        );
        let mut cursor = self.conn(db)?.query(&sql, &[])?;
        let row = cursor.next_batch(1)?.unwrap_or_default();
        let n: usize = row.iter().flatten().map(blob_len).sum();
        Ok(format!("got {n} bytes"))
    }

    /// Opens `n` cursors and keeps every one: "opened N" or "error after N: …".
    fn sql_leak(&mut self, db: &str, n: usize) -> Result<String, Error> {
        for i in 0..n {
            match self.conn(db)?.query("SELECT 1", &[]) {
                Ok(cursor) => self.leaked.push(cursor),
                Err(e) => return Ok(format!("error after {i}: {e}")),
            }
        }
        Ok(format!("opened {n}"))
    }
}

/// The reply for an attack's outcome: its text, or "error: …" with the host's error.
/// GETs `url` `n` times in a row, timing each request from inside the plugin (the host's
/// wasi:http round trip and the SDK's body read), and says `median_us=… p99_us=… rps=…`.
fn http_loop(url: &str, n: usize) -> Result<String, String> {
    let started = std::time::Instant::now();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = std::time::Instant::now();
        let response = http::get(url).map_err(|e| e.to_string())?;
        if !response.is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Ok(format!(
        "n={} median_us={:.1} p99_us={:.1} rps={:.0}",
        samples.len(),
        us(samples[samples.len() / 2]),
        us(samples[samples.len() * 99 / 100]),
        samples.len() as f64 / total.as_secs_f64()
    ))
}

fn outcome(result: Result<String, Error>) -> String {
    result.unwrap_or_else(|e| format!("error: {e}"))
}

/// Bytes of a blob value (0 for anything else).
fn blob_len(v: &sqlite::Value) -> usize {
    match v {
        sqlite::Value::Blob(b) => b.len(),
        _ => 0,
    }
}

/// Argument `i`, or the usage line as the error.
fn arg(cmd: &Command, i: usize) -> Result<&str, String> {
    cmd.arg(i).ok_or_else(|| format!("usage: {}", cmd.usage()))
}

/// Argument `i` as a number, `None` when absent.
fn number<T: std::str::FromStr>(cmd: &Command, i: usize) -> Result<Option<T>, String> {
    match cmd.arg(i) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("`{s}` is not a number")),
    }
}

/// Writes `n` values of `kib` KiB under `<prefix>/<i>`, one call each, stopping at the first
/// the host refuses; says how many were stored and why it stopped.
fn kv_fill(kib: usize, n: usize, prefix: &str) -> String {
    let value = vec![b'x'; kib * 1024];
    for i in 0..n {
        if let Err(e) = kv::set(&format!("{prefix}/{i:05}"), &value) {
            return format!("wrote {i} of {n}: {e}");
        }
    }
    format!("wrote {n} of {n}")
}

/// Burns CPU forever; only the host's call deadline ends it. `black_box` keeps the
/// optimiser from proving the loop useless.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates `mib` MiB and writes to every page, so the memory is really claimed. Past the
/// host's limit the allocation fails and the call traps, as a real memory bomb would.
fn alloc(mib: usize) -> Result<String, String> {
    let bytes = mib
        .checked_mul(1024 * 1024)
        .ok_or_else(|| format!("{mib} MiB does not fit in a 32-bit address space"))?;
    let mut block = vec![0u8; bytes];
    for i in (0..bytes).step_by(4096) {
        block[i] = 1;
    }
    let touched = std::hint::black_box(&block)
        .iter()
        .step_by(4096)
        .filter(|b| **b == 1)
        .count();
    Ok(format!("allocated {mib} MiB ({touched} pages touched)"))
}

/// Recurses without end; `black_box` keeps the optimiser from turning it into a loop.
#[allow(unconditional_recursion)] // The point: only the host's stack limit ends it.
fn recurse(depth: u64) -> u64 {
    let below = recurse(std::hint::black_box(depth + 1));
    std::hint::black_box(below + 1)
}

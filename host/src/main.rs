//! The `roost` command: clap parsing, logging setup, then a call into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use roost::cli::{self, EXIT_BAD_CONFIG, EXIT_FAILED};
use roost::config::Config;

/// roost: a personal automation hub. A small daemon hosts sandboxed WebAssembly plugins
/// and gives each only what its grants in roost.toml name; you talk to them over chat.
#[derive(Parser)]
#[command(
    name = "roost",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ROOST_COMMIT"), ")"),
    propagate_version = true
)]
struct Cli {
    /// The config file. Default: ./config/roost.toml, ./roost.toml, then
    /// ~/.config/roost/roost.toml, the first that exists.
    #[arg(long, short = 'C', global = true, env = "ROOST_CONFIG")]
    config: Option<PathBuf>,
    /// Also write the log to this file (appended; [host] log_file in the config).
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: load plugins, serve the console socket, reload on edits and SIGHUP.
    Run,
    /// Validate the config and load every enabled plugin without starting; exit 0 or 2.
    Check,
    /// Talk to the running daemon: a prompt, or one-shot lines with -c.
    Chat {
        /// Send this line, print the replies and exit (repeatable; e.g. -c '!ping').
        #[arg(short = 'c', long = "command", value_name = "LINE")]
        lines: Vec<String>,
        /// Save the attachments of replies (a long diff, a report) into this directory.
        #[arg(long, value_name = "DIR")]
        save_dir: Option<PathBuf>,
    },
    /// Run one plugin command from the shell, without a daemon; exit 1 on error.
    Invoke {
        /// The plugin's name (its file stem, or a built-in plugin).
        plugin: String,
        /// The command, without the prefix (e.g. `ping`); without it, the plugin's
        /// commands are listed.
        command: Option<String>,
        /// Arguments passed to the command as they are.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Ask the running daemon for its status (the same as `roost chat -c '!status'`).
    Status,
    /// Write a commented starter config to --config (default config/roost.toml).
    Init {
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Start a plugin project in ./NAME: the plugin, a test file, a README and what its
    /// toolchain needs.
    New {
        /// The plugin's name: lowercase letters, digits and `-` (its .wasm file stem).
        name: String,
        /// The language.
        #[arg(long, value_enum, default_value = "python")]
        lang: cli::new::Lang,
    },
    /// Build the plugin project in DIR (default: .) into a component.
    Build {
        /// The project folder.
        dir: Option<PathBuf>,
        /// Also copy the component into the plugins folder, where a running daemon loads it.
        #[arg(long)]
        install: bool,
    },
    /// Print a shell completion script (e.g. `roost completions bash > ~/.local/share/bash-completion/completions/roost`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The hub's store: move it between SQLite and Postgres.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Write a consistent copy of the hub's database to FILE, safe while the daemon runs.
    Backup {
        /// Where the copy goes (mode 0600).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every row (plugins' KV, queued messages, history) into an empty store and
    /// verify each table's row count and sha256; no hub may run on either side. A
    /// Postgres side's password comes from ROOST_STORE_PASSWORD or its URL.
    Copy {
        /// The store to copy: a database file (data/roost.db) or a postgres:// URL.
        #[arg(long, value_name = "FILE|URL")]
        from: String,
        /// Where to: a new database file or an empty Postgres database.
        #[arg(long, value_name = "FILE|URL")]
        to: String,
    },
}

/// The socket of the daemon, or exit 2 when the config cannot even say where it is.
macro_rules! socket_or_exit {
    ($found:expr) => {
        match $found {
            Ok(socket) => socket,
            Err(e) => {
                eprintln!("roost: {e}");
                return Ok(ExitCode::from(EXIT_BAD_CONFIG));
            }
        }
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("roost: {}", describe(&e));
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    // Everything roost writes (database, log, backups, sockets) is private to its user.
    roost::private_files::restrict_umask();
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Cli::command(), "roost", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Init { force } = cli.command {
        let path = cli::init(&cli::locate::init_path(cli.config.as_deref()), force)?;
        println!("wrote {}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::New { name, lang } = &cli.command {
        let dir = cli::new::new(std::path::Path::new("."), name, *lang)?;
        println!("wrote {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Build { dir, install } = &cli.command {
        return build(cli.config.as_deref(), dir.as_deref(), *install);
    }
    if let Command::Store {
        command: StoreCommand::Copy { from, to },
    } = &cli.command
    {
        init_logging("warn", None)?;
        return Ok(store_copy(from, to));
    }
    let config_path = match cli::locate::config_path(cli.config.as_deref()) {
        Ok(path) => path,
        Err(not_found) => return without_config(cli, not_found),
    };
    // Talking to a running daemon works even while the config file has a rejected edit.
    if let Command::Chat { lines, save_dir } = &cli.command {
        let socket = socket_or_exit!(cli::chat::socket_for(&config_path));
        return run_async(async move {
            use std::io::IsTerminal;
            let save = save_dir.as_deref();
            let talked = match lines.is_empty() {
                false => cli::chat::one_shot(&socket, lines, save).await,
                true if std::io::stdin().is_terminal() => {
                    cli::chat::interactive(&socket, save).await.map(|()| true)
                }
                true => cli::chat::piped(&socket, save).await,
            };
            chat_exit(talked)
        });
    }
    if let Command::Status = &cli.command {
        let socket = socket_or_exit!(cli::chat::socket_for(&config_path));
        let prefix = Config::load(&config_path)
            .map(|c| c.host.prefix)
            .unwrap_or_else(|_| "!".into());
        return run_async(async move {
            chat_exit(cli::chat::one_shot(&socket, &[format!("{prefix}status")], None).await)
        });
    }
    // Every other command needs a valid config: a bad one is exit 2 with file:line:column.
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roost: {e}");
            return Ok(ExitCode::from(EXIT_BAD_CONFIG));
        }
    };
    // The daemon logs at the config's level; one-shot commands only say what went wrong.
    let level = match cli.command {
        Command::Run => config.host.log.as_str(),
        _ => "warn",
    };
    let log_file = cli.log_file.clone().or_else(|| config.log_file());
    init_logging(level, log_file.as_deref())?;
    host_command(cli, config_path, config)
}

/// `roost build`: the component, then with `install` a copy in the plugins folder of the
/// config (or of the built-in defaults when there is no config).
fn build(
    config: Option<&std::path::Path>,
    dir: Option<&std::path::Path>,
    install: bool,
) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or(std::path::Path::new("."));
    let built = match cli::build::build(dir) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("roost build: {e}");
            return Ok(ExitCode::from(EXIT_FAILED));
        }
    };
    let size = std::fs::metadata(&built.wasm).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {} ({:.1} MB) in {:.1} s",
        built.wasm.display(),
        size as f64 / 1e6,
        built.elapsed.as_secs_f64()
    );
    if !install {
        return Ok(ExitCode::SUCCESS);
    }
    let config = match cli::locate::config_path(config) {
        Ok(path) => match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("roost: {e}");
                return Ok(ExitCode::from(EXIT_BAD_CONFIG));
            }
        },
        Err(not_found) => match cli::locate::user_data_dir() {
            Some(data) => Config::builtin(data),
            None => {
                eprintln!("roost: {not_found}");
                return Ok(ExitCode::from(EXIT_BAD_CONFIG));
            }
        },
    };
    match cli::build::install(&built, &config.plugins_dir()) {
        Ok(path) => {
            println!("installed {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("roost build: {e}");
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// `roost store copy`: the per-table report, or why not (exit 2 when refused before
/// anything was written, 1 when the copy failed).
fn store_copy(from: &str, to: &str) -> ExitCode {
    use cli::store_copy::{Location, copy, report};
    let password = roost::store_config::env_password();
    match copy(
        &Location::parse(from),
        &Location::parse(to),
        password.as_deref(),
    ) {
        Ok(copied) => {
            print!("{}", report(&copied));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("roost store copy: {e}");
            ExitCode::from(if e.refused() {
                EXIT_BAD_CONFIG
            } else {
                EXIT_FAILED
            })
        }
    }
}

/// No config anywhere: `roost invoke` runs on the built-in defaults (data in the user's
/// data dir); everything else says where it looked and exits 2.
fn without_config(cli: Cli, not_found: cli::locate::NotFound) -> anyhow::Result<ExitCode> {
    match (&cli.command, cli::locate::user_data_dir()) {
        (Command::Invoke { .. }, Some(data)) => {
            init_logging("warn", None)?;
            let config = Config::builtin(data);
            host_command(cli, config.path.clone(), config)
        }
        _ => {
            eprintln!("roost: {not_found}");
            Ok(ExitCode::from(EXIT_BAD_CONFIG))
        }
    }
}

/// The commands that host plugins (`run`, `check`, `invoke`) and `backup`, on a loaded
/// config.
fn host_command(cli: Cli, config_path: PathBuf, config: Config) -> anyhow::Result<ExitCode> {
    if let Command::Backup { file } = &cli.command {
        let pages = cli::backup::backup(&config, file)?;
        println!("{} ({pages} pages)", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    // SAFETY: no thread has started yet: the async runtime is built below.
    let taken = unsafe { roost::daemon_guard::harden(&config) };
    if !taken.is_empty() {
        tracing::debug!("secrets moved out of the environment: {}", taken.join(", "));
    }
    let warnings = roost::daemon_guard::grant_warnings(&config);
    match cli.command {
        Command::Run => warnings.iter().for_each(|w| tracing::warn!("{w}")),
        Command::Check => warnings.iter().for_each(|w| eprintln!("warning: {w}")),
        _ => {}
    }
    run_async(async move {
        match cli.command {
            Command::Run => {
                match roost::daemon::run(&config_path, roost::daemon::terminate_signal()).await {
                    Ok(()) => Ok(ExitCode::SUCCESS),
                    Err(
                        e @ (roost::daemon::DaemonError::Lock(
                            roost::daemon_lock::LockError::Held { .. },
                        )
                        | roost::daemon::DaemonError::Console(
                            roost::gateways::console::ConsoleError::AlreadyRunning(_),
                        )
                        | roost::daemon::DaemonError::Store(
                            roost::store::StoreError::Connect { .. }
                            | roost::store::StoreError::Password { .. }
                            | roost::store::StoreError::Url { .. }
                            | roost::store::StoreError::PostgresTooNew { .. }
                            | roost::store::StoreError::MigratingElsewhere { .. },
                        )),
                    ) => {
                        eprintln!("roost: {e}");
                        Ok(ExitCode::from(EXIT_BAD_CONFIG))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Command::Check => {
                let report = cli::check::check(&config_path).await?;
                for (name, version) in &report.loaded {
                    println!("ok  {name} {version}");
                }
                for e in &report.errors {
                    eprintln!("error: {e}");
                }
                if report.errors.is_empty() {
                    println!("{}: ok", config_path.display());
                    Ok(ExitCode::SUCCESS)
                } else {
                    Ok(ExitCode::from(EXIT_BAD_CONFIG))
                }
            }
            Command::Invoke {
                plugin,
                command,
                args,
            } => match cli::invoke::invoke(config, &plugin, command.as_deref().unwrap_or(""), args)
                .await
            {
                // Nothing to say (equal databases, a changeset written): print nothing.
                Ok(reply) if reply.parts.is_empty() => Ok(ExitCode::SUCCESS),
                Ok(reply) => match cli::terminal::print_reply(&reply) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(ExitCode::SUCCESS),
                },
                Err(cli::invoke::InvokeError::NoCommand { served, .. }) if command.is_none() => {
                    eprintln!(
                        "usage: roost invoke {plugin} COMMAND [ARGS…]; {plugin} serves: {served}"
                    );
                    Ok(ExitCode::from(EXIT_BAD_CONFIG))
                }
                Err(e) => {
                    eprintln!("roost invoke: {e}");
                    Ok(ExitCode::from(EXIT_FAILED))
                }
            },
            Command::Init { .. }
            | Command::Chat { .. }
            | Command::Status
            | Command::Completions { .. }
            | Command::New { .. }
            | Command::Build { .. }
            | Command::Store { .. }
            | Command::Backup { .. } => {
                unreachable!("handled above")
            }
        }
    })
}

/// The exit code of a chat: 0 when every command succeeded, 1 when one failed; a closed
/// stdout (`| head`) is not an error.
fn chat_exit(talked: Result<bool, cli::chat::ChatError>) -> anyhow::Result<ExitCode> {
    match talked {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::from(EXIT_FAILED)),
        Err(e) if e.is_broken_pipe() => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}

/// How long, once the work is done, the runtime waits for blocking tasks (a SQLite query,
/// a file read) before the process exits anyway.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `work` on a fresh runtime ([`roost::async_runtime`]); exits without waiting long
/// for blocking tasks still running.
fn run_async(
    work: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let runtime = roost::async_runtime::build().context("starting the async runtime")?;
    let result = runtime.block_on(work);
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result
}

/// The error and those of its causes its message does not already include (our error
/// types print their cause; anyhow contexts do not).
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// Logs to stderr (colour only on a terminal) and, with `file`, appends plain lines to
/// it too; `RUST_LOG` wins over the config's `host.log`.
fn init_logging(default: &str, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let file_layer = match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_ansi(false),
            )
        }
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init();
    Ok(())
}

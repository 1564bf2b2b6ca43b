//! The command line: `serve`, `migrate`, `pipe`, `key`, `agent`,
//! `ticket`, `outbox`, `migrate-data`, `backup`, `mail`, `config check`,
//! `openapi`, `completions`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::domain::catalog::Catalog;
use crate::storage::Store;
use crate::storage::sqlite::SqliteStore;

/// `println!` that never panics: a standard output that was closed
/// (`oxidesk key list | head -1`, an MTA that stopped reading) is not a
/// reason to die with a panic and exit 101.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` that never panics (see [`outln`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, $($arg)*);
        let _ = stdout.flush();
    }};
}

/// `eprintln!` that never panics: Postfix stops reading a pipe's
/// standard error after a while, and a panic there would bounce the
/// customer's mail (exit 101).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod agent;
mod backup;
mod identity;
mod key;
mod mail;
mod migrate_data;
mod outbox;
mod pipe;
mod serve;
mod ticket;

/// The pipe's exit code for a fault of ours (`EX_TEMPFAIL`).
pub const PIPE_TEMPFAIL: i32 = pipe::exit::TEMPFAIL;

/// `--version`: the package version and the commit it was built from
/// (`build.rs`; "unknown commit" when built outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("OXIDESK_BUILD_COMMIT"),
    ")"
);

/// oxidesk: a helpdesk server speaking osTicket's ticket API.
#[derive(Debug, Parser)]
#[command(name = "oxidesk", version = VERSION, about)]
pub struct Cli {
    /// Configuration file (TOML). Without one, stock defaults are used.
    #[arg(long, global = true, env = "OXIDESK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL (`sqlite://PATH`), overriding the file.
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (creates the database on a first start).
    Serve(serve::ServeArgs),
    /// Create the database or bring its schema up to date, then exit
    /// (what `serve` does first; for upgrades run before the servers).
    Migrate,
    /// File one message read on standard input (for the MTA); exits with
    /// a sysexits.h code.
    Pipe,
    /// Manage API keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Manage agents (staff accounts) and their personal tokens.
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// Look at tickets.
    #[command(subcommand)]
    Ticket(ticket::TicketCommand),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Look at the notification outbox.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Copy all data to another database (SQLite → PostgreSQL) and check it.
    MigrateData(migrate_data::MigrateDataArgs),
    /// Look at mail messages the way intake does.
    #[command(subcommand)]
    Mail(mail::MailCommand),
    /// Print the OpenAPI document of the HTTP API (what
    /// `GET /api/openapi.json` serves); needs no configuration.
    Openapi,
    /// Copy the database, online and consistent, to a new file (SQLite;
    /// for PostgreSQL use `pg_dump`).
    Backup(backup::BackupArgs),
    /// Print a shell completion script (`oxidesk completions bash >
    /// /etc/bash_completion.d/oxidesk`).
    Completions {
        /// bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, then print it.
    Check(CheckArgs),
}

/// `config check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the effective configuration as TOML.
    #[arg(long)]
    pub print: bool,
}

/// Loads the configuration: file, then `OXIDESK__` environment, then flags.
/// An error names the file and the user reading it (an MTA runs the pipe
/// as another user than the admin who wrote the file).
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    load_config_from(cli.config.as_deref(), cli.database.as_deref())
}

/// [`load_config`] from the global options themselves (`serve` reads
/// the file again on SIGHUP).
pub fn load_config_from(
    path: Option<&std::path::Path>,
    database: Option<&str>,
) -> anyhow::Result<Config> {
    let file = match path {
        Some(p) => identity::absolute(p).display().to_string(),
        None => "(no file: defaults)".to_string(),
    };
    let context = || {
        format!(
            "configuration {file}, read as user {}",
            identity::effective_user()
        )
    };
    let mut config = Config::load(path, std::env::vars()).with_context(context)?;
    if let Some(db) = database {
        config.database = db.to_string();
        config = config.validated().with_context(context)?;
    }
    // A relative SQLite path is read against the working directory once,
    // here, so that every message and every later step names the same
    // absolute file (an MTA runs the pipe elsewhere than the admin).
    if !config.is_postgres() && config.sqlite_path().is_relative() {
        let absolute = identity::absolute(&config.sqlite_path());
        config.database = format!("sqlite://{}", absolute.display());
    }
    Ok(config)
}

/// Whether a store may be created where none exists yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `serve`, `migrate` and the target of `migrate-data`: a first start
    /// makes the database.
    Allowed,
    /// Everything else: a missing SQLite file (or a PostgreSQL database
    /// without oxidesk's tables) means a wrong path or URL (a relative
    /// path resolved in the MTA's directory), and filing mail or adding a
    /// key into a brand-new empty database would lose it from view.
    Refused,
}

/// The configured database as messages name it: the SQLite file's
/// absolute path, or the PostgreSQL URL without its password.
pub fn database_name(config: &Config) -> String {
    if config.is_postgres() {
        crate::storage::postgres::redacted_url(&config.database)
    } else {
        identity::absolute(&config.sqlite_path())
            .display()
            .to_string()
    }
}

/// Opens the configured store (SQLite file or PostgreSQL server); an
/// error names the database and the effective user.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with(config, Create::Allowed, config.postgres.connect_retry_secs).await
}

/// The store of every command but `serve` and `migrate`: it must exist
/// already (see [`Create::Refused`]).
pub async fn open_existing_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with(config, Create::Refused, config.postgres.connect_retry_secs).await
}

/// [`open_store`] with the creation rule and how long to keep trying an
/// unreachable PostgreSQL server.
pub async fn open_store_with(
    config: &Config,
    create: Create,
    connect_retry_secs: u64,
) -> anyhow::Result<Arc<dyn Store>> {
    let catalog = Catalog::new(config);
    let user = identity::effective_user();
    if config.is_postgres() {
        let settings = crate::storage::postgres::PgSettings {
            max_connections: config.postgres.max_connections,
            statement_timeout_ms: config.postgres.statement_timeout_ms,
            connect_retry_secs,
            acquire_timeout_ms: config.postgres.acquire_timeout_ms,
            message_domain: catalog.message_domain.clone(),
            create_schema: create == Create::Allowed,
        };
        let store = crate::storage::postgres::PgStore::open(
            &config.database,
            catalog.numbers.clone(),
            &settings,
        )
        .await
        .with_context(|| {
            format!(
                "opening the PostgreSQL database {} as user {user}",
                crate::storage::postgres::redacted_url(&config.database)
            )
        })?;
        return Ok(Arc::new(store));
    }
    let path = identity::absolute(&config.sqlite_path());
    let exists = path
        .try_exists()
        .with_context(|| format!("cannot look for database {} as user {user}", path.display()))?;
    if create == Create::Refused && !exists {
        bail!(
            "database {} does not exist (looked for as user {user}); only `oxidesk serve` creates one: \
             check `database` in the configuration (use an absolute path)",
            path.display()
        );
    }
    let store = SqliteStore::open(&path, catalog.numbers.clone(), &catalog.message_domain)
        .with_context(|| format!("opening database {} as user {user}", path.display()))?;
    Ok(Arc::new(store))
}

/// Logs to standard error: levels from `RUST_LOG` (else `default`), lines
/// as `[log] format` says. With `buffered` (the server), lines go through
/// a buffer that a thread of its own writes out, so a request never waits
/// on standard error (a pipe to a journal or a slow terminal); the guard
/// flushes what is left when dropped. Other commands write directly: they
/// log little, and `pipe` leaves by `process::exit`, which drops nothing.
fn init_logging(
    default: &str,
    format: crate::config::LogFormat,
    buffered: bool,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a person at a terminal, never in a file, a
    // journal or an MTA's log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = if buffered {
        // Not lossy: a full buffer (128,000 lines) makes callers wait
        // rather than lose access-log lines.
        let (w, g) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("oxidesk-log")
            .finish(std::io::stderr());
        (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(w),
            Some(g),
        )
    } else {
        (
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
            None,
        )
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match format {
        crate::config::LogFormat::Text => builder.try_init(),
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    guard
}

/// `[log] format` of the configuration, or text when it does not load
/// (the command then reports why).
fn log_format(cli: &Cli) -> crate::config::LogFormat {
    Config::load(cli.config.as_deref(), std::env::vars())
        .map(|c| c.log.format)
        .unwrap_or_default()
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Command::Openapi) {
        out!("{}", crate::http::openapi::json());
        return Ok(());
    }
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut <Cli as clap::CommandFactory>::command(),
            "oxidesk",
            &mut script,
        );
        out!("{}", String::from_utf8_lossy(&script));
        return Ok(());
    }
    if matches!(cli.command, Command::Pipe) {
        init_logging("warn,html5ever=error", log_format(&cli), false);
        std::process::exit(pipe::run(&cli));
    }
    let is_serve = matches!(cli.command, Command::Serve(_));
    // html5ever warns about every odd table it repairs: not our news.
    let _log = init_logging(
        if is_serve {
            "info,html5ever=error"
        } else {
            "warn,html5ever=error"
        },
        log_format(&cli),
        is_serve,
    );
    let runtime = if is_serve {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    let result = runtime.block_on(async move {
        match &cli.command {
            Command::Serve(args) => serve::run(&cli, args).await,
            Command::Migrate => {
                let config = load_config(&cli)?;
                open_store(&config).await?;
                outln!("database {} is up to date", database_name(&config));
                Ok(())
            }
            Command::Backup(args) => backup::run(&cli, args),
            Command::Key(cmd) => key::run(&cli, cmd).await,
            Command::Agent(cmd) => agent::run(&cli, cmd).await,
            Command::Ticket(cmd) => ticket::run(&cli, cmd).await,
            Command::Mail(cmd) => mail::run(cmd),
            Command::MigrateData(args) => migrate_data::run(&cli, args).await,
            Command::Outbox(cmd) => outbox::run(&cli, cmd).await,
            Command::Pipe | Command::Openapi | Command::Completions { .. } => {
                unreachable!("handled above")
            }
            Command::Config(ConfigCommand::Check(args)) => check_config(&cli, args),
        }
    });
    // A connection still open past the drain deadline holds a task, and
    // a request may hold a blocking thread: neither may keep the process
    // alive once `serve` has decided to stop.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// `config check [--print]`: the start-up validation, then every
/// template rendered with sample data (strict: an unknown variable is an
/// error naming the template), then the configuration with its secrets
/// redacted.
fn check_config(cli: &Cli, args: &CheckArgs) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    crate::mail_out::render::Templates::new(&config.mail)?.check()?;
    crate::web::Web::new(&config.web).map_err(anyhow::Error::msg)?;
    if args.print {
        out!("{}", redacted_toml(&config)?);
    } else {
        outln!("configuration ok");
    }
    Ok(())
}

/// The configuration as TOML with the SMTP password and the database
/// URL's password replaced by `<redacted>`.
pub fn redacted_toml(config: &Config) -> anyhow::Result<String> {
    let mut config = config.clone();
    if config.mail.smtp_password.is_some() {
        config.mail.smtp_password = Some(REDACTED.into());
    }
    if config.is_postgres() {
        config.database = crate::storage::postgres::redacted_url(&config.database);
    }
    Ok(toml::to_string_pretty(&config)?)
}

/// What a secret is shown as.
const REDACTED: &str = "<redacted>";

/// Fails when `cond` is false.
fn ensure(cond: bool, message: &str) -> anyhow::Result<()> {
    if !cond {
        bail!("{message}");
    }
    Ok(())
}

//! The command line: `serve`, `key`, `agent`, `ticket`, `config check`,
//! `openapi`.

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

/// oxidesk: a helpdesk server speaking osTicket's ticket API.
#[derive(Debug, Parser)]
#[command(name = "oxidesk", version, about)]
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
    /// Run the HTTP server.
    Serve(serve::ServeArgs),
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
    let file = match &cli.config {
        Some(p) => identity::absolute(p).display().to_string(),
        None => "(no file: defaults)".to_string(),
    };
    let context = || {
        format!(
            "configuration {file}, read as user {}",
            identity::effective_user()
        )
    };
    let mut config = Config::load(cli.config.as_deref(), std::env::vars()).with_context(context)?;
    if let Some(db) = &cli.database {
        config.database = db.clone();
        config = config.validated().with_context(context)?;
    }
    Ok(config)
}

/// Whether a store may be created where none exists yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `serve` and `migrate-data`: a first start makes the database.
    Allowed,
    /// Everything else: a missing SQLite file means a wrong path (a
    /// relative path resolved in the MTA's directory), and filing mail
    /// into a brand-new empty database would lose it from view.
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
            message_domain: catalog.message_domain.clone(),
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
/// as `[log] format` says.
fn init_logging(default: &str, format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a person at a terminal, never in a file, a
    // journal or an MTA's log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Text => builder.try_init(),
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
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
    if matches!(cli.command, Command::Pipe) {
        init_logging("warn,html5ever=error", log_format(&cli));
        std::process::exit(pipe::run(&cli));
    }
    let is_serve = matches!(cli.command, Command::Serve(_));
    // html5ever warns about every odd table it repairs: not our news.
    init_logging(
        if is_serve {
            "info,html5ever=error"
        } else {
            "warn,html5ever=error"
        },
        log_format(&cli),
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
    runtime.block_on(async move {
        match &cli.command {
            Command::Serve(args) => serve::run(&cli, args).await,
            Command::Key(cmd) => key::run(&cli, cmd).await,
            Command::Agent(cmd) => agent::run(&cli, cmd).await,
            Command::Ticket(cmd) => ticket::run(&cli, cmd).await,
            Command::Mail(cmd) => mail::run(cmd),
            Command::MigrateData(args) => migrate_data::run(&cli, args).await,
            Command::Outbox(cmd) => outbox::run(&cli, cmd).await,
            Command::Pipe | Command::Openapi => unreachable!("handled above"),
            Command::Config(ConfigCommand::Check(args)) => {
                let config = load_config(&cli)?;
                crate::mail_out::render::Templates::new(&config.mail)?;
                if args.print {
                    out!("{}", toml::to_string_pretty(&config)?);
                } else {
                    outln!("configuration ok");
                }
                Ok(())
            }
        }
    })
}

/// Fails when `cond` is false.
fn ensure(cond: bool, message: &str) -> anyhow::Result<()> {
    if !cond {
        bail!("{message}");
    }
    Ok(())
}

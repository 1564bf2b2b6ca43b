//! The command line: `serve`, `key`, `ticket`, `config check`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::domain::catalog::Catalog;
use crate::storage::Store;
use crate::storage::sqlite::SqliteStore;

mod key;
mod mail;
mod migrate_data;
mod outbox;
mod pipe;
mod serve;
mod ticket;

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
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(db) = &cli.database {
        config.database = db.clone();
        config = config.validated()?;
    }
    Ok(config)
}

/// Opens the configured store (SQLite file or PostgreSQL server).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let catalog = Catalog::new(config);
    if config.is_postgres() {
        let settings = crate::storage::postgres::PgSettings {
            max_connections: config.postgres.max_connections,
            statement_timeout_ms: config.postgres.statement_timeout_ms,
            connect_retry_secs: config.postgres.connect_retry_secs,
        };
        let store = crate::storage::postgres::PgStore::open(
            &config.database,
            catalog.numbers.clone(),
            &settings,
        )
        .await
        .context("opening the PostgreSQL database")?;
        return Ok(Arc::new(store));
    }
    let path = config.sqlite_path();
    let store = SqliteStore::open(&path, catalog.numbers.clone(), &catalog.message_domain)
        .with_context(|| format!("opening database {}", config.database))?;
    Ok(Arc::new(store))
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if matches!(cli.command, Command::Pipe) {
        init_logging("warn,html5ever=error");
        let code = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(pipe::run(&cli)),
            Err(e) => {
                eprintln!("oxidesk pipe: {e}");
                pipe::exit::TEMPFAIL
            }
        };
        std::process::exit(code);
    }
    let is_serve = matches!(cli.command, Command::Serve(_));
    // html5ever warns about every odd table it repairs: not our news.
    init_logging(if is_serve {
        "info,html5ever=error"
    } else {
        "warn,html5ever=error"
    });
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
            Command::Ticket(cmd) => ticket::run(&cli, cmd).await,
            Command::Mail(cmd) => mail::run(cmd),
            Command::MigrateData(args) => migrate_data::run(&cli, args).await,
            Command::Outbox(cmd) => outbox::run(&cli, cmd).await,
            Command::Pipe => unreachable!("handled above"),
            Command::Config(ConfigCommand::Check(args)) => {
                let config = load_config(&cli)?;
                crate::mail_out::render::Templates::new(&config.mail)?;
                if args.print {
                    print!("{}", toml::to_string_pretty(&config)?);
                } else {
                    println!("configuration ok");
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

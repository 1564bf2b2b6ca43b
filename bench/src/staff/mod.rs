//! `oxidesk-bench staff …`: the staff side's benchmark (issues 13 and 14).
//!
//! ```text
//! oxidesk-bench staff seed    --database URL --tickets 1000000
//! oxidesk-bench staff measure --database URL [--seconds 10] [--rounds 3]
//! ```
//! `seed` loads realistic tickets through the real store; `measure` starts
//! the real `oxidesk serve` on that database and drives it with 16
//! concurrent agents over HTTP. PostgreSQL: make the database first
//! (`createdb -h 127.0.0.1 -U postgres NAME`) and pass its URL.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod measure;
mod seed;
mod textgen;

/// The departments of the seeded helpdesk (configuration ids and names).
/// Tickets are spread over them unevenly (Support gets the most).
pub const DEPARTMENTS: &[(i64, &str)] = &[
    (1, "Support"),
    (2, "Billing"),
    (3, "IT"),
    (4, "Sales"),
    (5, "Shipping"),
];

/// The staff side's benchmark.
#[derive(Debug, Parser)]
#[command(name = "oxidesk-bench staff")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Loads realistic tickets into a database through the real store.
    Seed(SeedArgs),
    /// Starts `oxidesk serve` on a seeded database and measures the staff
    /// API and web pages with concurrent agents.
    Measure(MeasureArgs),
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// `sqlite:///path/file.db` or a PostgreSQL URL (the database exists).
    #[arg(long)]
    pub database: String,
    /// How many tickets.
    #[arg(long, default_value_t = 1_000_000)]
    pub tickets: u64,
    /// Tickets in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u64,
    /// Generator seed (1 also makes the 20-entry ticket; another seed adds
    /// different tickets to a database seeded before).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The seeded database.
    #[arg(long)]
    pub database: String,
    /// The oxidesk binary (default: next to this one).
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// Concurrent agents (one keep-alive connection each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured seconds before each scenario.
    #[arg(long, default_value_t = 2)]
    pub warmup_seconds: u64,
    /// Runs of the whole set of scenarios (the spread between rounds is
    /// the machine's noise).
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Only these scenarios (comma-separated names, see the output).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The phrases `search-phrase` draws from (repeat the option; default:
    /// five phrases in three languages): one at a time shows each one's cost.
    #[arg(long)]
    pub phrase: Vec<String>,
}

/// A configuration for the store or the server on `database`: the seeded
/// departments, ten-digit ticket numbers, mail to `smtp_port` (else off).
/// The file lives as long as the returned directory.
pub fn config_for(
    database: &str,
    smtp_port: Option<u16>,
    extra: &str,
) -> anyhow::Result<(oxidesk::config::Config, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("oxidesk-staff").tempdir()?;
    let path = dir.path().join("staff.toml");
    std::fs::write(&path, config_text(database, smtp_port) + extra)?;
    let config = oxidesk::config::Config::load(Some(&path), std::iter::empty())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((config, dir))
}

pub fn config_text(database: &str, smtp_port: Option<u16>) -> String {
    let mut s = format!(
        "database = \"{database}\"\n\
         [mail]\nenabled = {}\nsmtp_port = {}\nfrom_address = \"support@example.com\"\n\
         [tickets]\nnumber_format = \"##########\"\n\
         [web]\nsecure_cookies = false\n",
        smtp_port.is_some(),
        smtp_port.unwrap_or(25),
    );
    for (id, name) in DEPARTMENTS {
        s.push_str(&format!("[[departments]]\nid = {id}\nname = \"{name}\"\n"));
    }
    s
}

/// Runs `oxidesk-bench staff …` (`args` without the leading `staff`).
pub fn main(args: Vec<String>) -> anyhow::Result<()> {
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Seed(a) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(seed::run(&a)),
        Command::Measure(a) => measure::run(&a),
    }
}

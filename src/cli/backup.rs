//! `oxidesk backup --to FILE`: an online, consistent copy of the SQLite
//! database while `serve` keeps running (SQLite's `VACUUM INTO`: one read
//! transaction, so the copy is one committed state). PostgreSQL has its
//! own tools; the command says which.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::{Cli, identity, load_config};
use crate::storage::sqlite::SqliteStore;

/// `backup` options.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The copy to write; it must not exist (a backup never overwrites).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

pub(super) fn run(cli: &Cli, args: &BackupArgs) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    if config.is_postgres() {
        bail!(
            "the database is PostgreSQL ({}): back it up with `pg_dump --format=custom \
             --file=oxidesk.dump DBNAME` and restore with `pg_restore` (see the README, Backups)",
            super::database_name(&config)
        );
    }
    let from = identity::absolute(&config.sqlite_path());
    let to = identity::absolute(&args.to);
    if !from.try_exists()? {
        bail!("database {} does not exist", from.display());
    }
    if to.try_exists()? {
        bail!(
            "{} exists already: a backup never overwrites a file (choose a new name)",
            to.display()
        );
    }
    SqliteStore::backup(&from, &to)
        .with_context(|| format!("backing up {} to {}", from.display(), to.display()))?;
    outln!("backed up {} to {}", from.display(), to.display());
    Ok(())
}

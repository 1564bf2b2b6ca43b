//! `oxidesk migrate-data --from URL --to URL`: copies every ticket,
//! attachment, key and queued mail from one database to another (SQLite
//! to PostgreSQL, or back), then proves the copy: row counts and a
//! SHA-256 over every table's rows must match on both sides.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use sha2::{Digest, Sha256};

use super::{Cli, Create, load_config};
use crate::domain::catalog::Catalog;
use crate::storage::postgres::{PgSettings, PgStore};
use crate::storage::sqlite::SqliteStore;
use crate::storage::{DataCopy, DumpValue, TABLES, TableSpec};

/// `migrate-data` options.
#[derive(Debug, Args)]
pub struct MigrateDataArgs {
    /// Source database URL.
    #[arg(long)]
    pub from: String,
    /// Target database URL (must hold no data).
    #[arg(long)]
    pub to: String,
    /// Rows per batch.
    #[arg(long, default_value_t = 500)]
    pub batch: i64,
}

async fn open(cli: &Cli, url: &str, create: Create) -> anyhow::Result<Arc<dyn DataCopy>> {
    let mut config = load_config(cli)?;
    config.database = url.to_string();
    let config = config.validated()?;
    let catalog = Catalog::new(&config);
    let numbers = catalog.numbers.clone();
    if config.is_postgres() {
        let settings = PgSettings {
            max_connections: 4,
            statement_timeout_ms: 0,
            connect_retry_secs: config.postgres.connect_retry_secs,
            // A batch copy waits for its database rather than failing.
            acquire_timeout_ms: 10_000,
            message_domain: catalog.message_domain.clone(),
            create_schema: create == Create::Allowed,
        };
        Ok(Arc::new(PgStore::open(url, numbers, &settings).await?))
    } else {
        let path = super::identity::absolute(&config.sqlite_path());
        if create == Create::Refused && !path.try_exists()? {
            bail!("database {} does not exist", path.display());
        }
        Ok(Arc::new(SqliteStore::open(
            &config.sqlite_path(),
            numbers,
            &catalog.message_domain,
        )?))
    }
}

fn digest_row(hasher: &mut Sha256, row: &[DumpValue]) {
    for v in row {
        match v {
            DumpValue::Null => hasher.update([0u8]),
            DumpValue::Int(n) => {
                hasher.update([1u8]);
                hasher.update(n.to_le_bytes());
            }
            DumpValue::Text(t) => {
                hasher.update([2u8]);
                hasher.update((t.len() as u64).to_le_bytes());
                hasher.update(t.as_bytes());
            }
            DumpValue::Blob(b) => {
                hasher.update([3u8]);
                hasher.update((b.len() as u64).to_le_bytes());
                hasher.update(b);
            }
            DumpValue::Bool(b) => hasher.update([4u8, u8::from(*b)]),
        }
    }
}

/// The key of a batch's last row, where the next batch starts.
fn last_key(table: &TableSpec, rows: &[Vec<DumpValue>]) -> Option<Vec<DumpValue>> {
    let last = rows.last()?;
    Some(
        table
            .key_positions()
            .into_iter()
            .map(|p| last[p].clone())
            .collect(),
    )
}

/// Count and checksum of a table's rows, whatever order a backend
/// returns them in (PostgreSQL sorts text keys in its collation, SQLite
/// byte-wise): the SHA-256 of each row, added up as four 64-bit lanes.
/// Keys are unique, so equal sums mean equal rows unless someone built
/// rows to collide.
async fn checksum(
    db: &dyn DataCopy,
    table: &'static TableSpec,
    batch: i64,
) -> anyhow::Result<(i64, String)> {
    let mut sum = [0u64; 4];
    let mut count = 0i64;
    let mut after = None;
    loop {
        let rows = db.export_rows(table, after, batch).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let mut hasher = Sha256::new();
            digest_row(&mut hasher, row);
            add_digest(&mut sum, &hasher.finalize());
        }
        count += rows.len() as i64;
        after = last_key(table, &rows);
    }
    let bytes: Vec<u8> = sum.iter().flat_map(|l| l.to_be_bytes()).collect();
    Ok((count, hex::encode(bytes)))
}

/// Adds a digest to the running sum, lane by lane (wrapping).
fn add_digest(sum: &mut [u64; 4], digest: &[u8]) {
    for (lane, chunk) in sum.iter_mut().zip(digest.chunks_exact(8)) {
        let v = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
        *lane = lane.wrapping_add(v);
    }
}

fn progress(table: &str, done: i64, total: i64) {
    let width = 30usize;
    let filled = if total == 0 {
        width
    } else {
        (done * width as i64 / total) as usize
    };
    let mut stderr = std::io::stderr().lock();
    let _ = write!(
        stderr,
        "\r{table:<20} [{}{}] {done}/{total}",
        "#".repeat(filled.min(width)),
        ".".repeat(width - filled.min(width))
    );
    let _ = stderr.flush();
}

pub(super) async fn run(cli: &Cli, args: &MigrateDataArgs) -> anyhow::Result<()> {
    if args.batch < 1 {
        bail!("--batch must be at least 1");
    }
    // A missing source is a wrong path, not an empty helpdesk.
    let from = open(cli, &args.from, Create::Refused)
        .await
        .context("opening the source")?;
    let to = open(cli, &args.to, Create::Allowed)
        .await
        .context("opening the target")?;
    for table in TABLES {
        let n = to.row_count(table).await?;
        if n > 0 {
            bail!(
                "the target already holds data ({n} rows in {}): migrate into an empty database",
                table.name
            );
        }
    }
    from.prepare_export()
        .await
        .context("preparing the source")?;
    for table in TABLES {
        let total = from.row_count(table).await?;
        let (mut done, mut after) = (0i64, None);
        progress(table.name, 0, total);
        loop {
            let rows = from.export_rows(table, after, args.batch).await?;
            if rows.is_empty() {
                break;
            }
            done += rows.len() as i64;
            after = last_key(table, &rows);
            to.import_rows(table, rows)
                .await
                .with_context(|| format!("copying {}", table.name))?;
            progress(table.name, done, total);
        }
        errln!();
    }
    to.finish_import(from.ticket_counter().await?).await?;
    errln!("checking…");
    let mut mismatches = Vec::new();
    for table in TABLES {
        let (a, b) = (
            checksum(from.as_ref(), table, args.batch).await?,
            checksum(to.as_ref(), table, args.batch).await?,
        );
        // The pages must have seen every row (a key that is not unique
        // would skip some on both sides alike).
        let counted = (from.row_count(table).await?, to.row_count(table).await?);
        if counted != (a.0, b.0) {
            bail!(
                "{}: {} and {} rows counted, {} and {} read in pages",
                table.name,
                counted.0,
                counted.1,
                a.0,
                b.0
            );
        }
        outln!(
            "{:<20} {:>8} rows  sha256 {}  {}",
            table.name,
            a.0,
            &a.1[..16],
            if a == b { "ok" } else { "MISMATCH" }
        );
        if a != b {
            mismatches.push(table.name);
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "the copy differs from the source in: {}",
            mismatches.join(", ")
        );
    }
    outln!("migration complete: every table matches");
    Ok(())
}

//! `oxidesk outbox list|retry`.

use clap::Subcommand;

use super::{Cli, ensure, load_config, open_existing_store};

/// `outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued, sent and failed notifications, newest first.
    List {
        /// Only rows in this state (queued, sending, sent, failed).
        #[arg(long)]
        state: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Queue a notification again now (after fixing what made it fail).
    Retry {
        /// Row id (from `outbox list`).
        id: i64,
    },
}

pub(super) async fn run(cli: &Cli, cmd: &OutboxCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = open_existing_store(&config).await?;
    match cmd {
        OutboxCommand::List { state, limit } => {
            outln!(
                "{:>6}  {:<8} {:<13} {:<6} {:<8} {:>8}  {:<30} last error",
                "id",
                "ticket",
                "kind",
                "event",
                "state",
                "attempts",
                "recipients"
            );
            for row in store.list_outbox(state.clone(), *limit).await? {
                let n = &row.notification;
                outln!(
                    "{:>6}  {:<8} {:<13} {:<6} {:<8} {:>8}  {:<30} {}",
                    row.id,
                    row.number,
                    n.kind,
                    n.event,
                    n.state,
                    n.attempts,
                    n.recipients.join(","),
                    n.last_error.as_deref().unwrap_or("")
                );
            }
        }
        OutboxCommand::Retry { id } => {
            let result = store
                .retry_outbox(*id, jiff::Timestamp::now().as_second())
                .await;
            ensure(
                !matches!(result, Err(crate::storage::StoreError::NotFound)),
                &format!("no outbox row {id} that can be retried (unknown or already sent)"),
            )?;
            result?;
            outln!("outbox row {id} queued again");
        }
    }
    Ok(())
}

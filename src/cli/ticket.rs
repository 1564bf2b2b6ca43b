//! `oxidesk ticket show|list|reply|note|close|reopen|assign`: the staff
//! API's operations for an admin's scripts, through the same domain use
//! cases (STAFF-API.md). The server's shell is trusted: the acting agent
//! (`--as`) is the author of what is written, with an admin's reach.

use clap::Subcommand;

use super::{Cli, load_config, open_existing_store};

/// `ticket` subcommands.
#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Show one ticket.
    Show {
        /// Ticket number.
        number: String,
        /// Print API.md's JSON shape instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the newest tickets.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Reply to the ticket's user (mailed through the outbox).
    Reply {
        /// Ticket number.
        number: String,
        #[command(flatten)]
        entry: EntryArgs,
        /// Also set the status (open, resolved, closed).
        #[arg(long)]
        status: Option<String>,
        /// Attach a file (repeatable).
        #[arg(long = "attach")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Add an internal note (never mailed).
    Note {
        /// Ticket number.
        number: String,
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Close a ticket.
    Close {
        /// Ticket number.
        number: String,
        /// The acting agent's address.
        #[arg(long = "as", value_name = "EMAIL")]
        agent: String,
    },
    /// Reopen a ticket.
    Reopen {
        /// Ticket number.
        number: String,
        /// The acting agent's address.
        #[arg(long = "as", value_name = "EMAIL")]
        agent: String,
    },
    /// Assign a ticket to an agent (`--to none` unassigns).
    Assign {
        /// Ticket number.
        number: String,
        /// The assignee's address, or `none`.
        #[arg(long)]
        to: String,
        /// The acting agent's address.
        #[arg(long = "as", value_name = "EMAIL")]
        agent: String,
    },
}

/// The author and body of a reply or note.
#[derive(Debug, clap::Args)]
pub struct EntryArgs {
    /// The acting agent's address (the author).
    #[arg(long = "as", value_name = "EMAIL")]
    agent: String,
    /// The body; read from standard input when absent.
    #[arg(long)]
    body: Option<String>,
    /// The body is HTML (sanitised).
    #[arg(long)]
    html: bool,
}

/// The active agent `email` names, with an admin's reach.
async fn acting_agent(
    store: &dyn crate::storage::Store,
    email: &str,
) -> anyhow::Result<crate::domain::staff::Agent> {
    let Some(mut agent) = store.agent_for_mail(email.to_string()).await? else {
        anyhow::bail!("no active agent {email}");
    };
    agent.admin = true;
    Ok(agent)
}

/// The body of `args`, from the flag or standard input (bounded).
fn entry_body(args: &EntryArgs) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    use std::io::Read;
    let body = match &args.body {
        Some(b) => b.clone(),
        None => {
            let mut buf = String::new();
            std::io::stdin()
                .take(crate::domain::work::MAX_BODY_BYTES as u64 + 1)
                .read_to_string(&mut buf)?;
            buf
        }
    };
    let mut map = serde_json::Map::new();
    map.insert("body".into(), body.into());
    map.insert(
        "format".into(),
        (if args.html { "html" } else { "text" }).into(),
    );
    Ok(map)
}

/// A file as a data URL for the reply's `attachments`.
fn attachment(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    use base64::Engine;
    let data = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let url = format!(
        "data:application/octet-stream;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    Ok(serde_json::json!({ name: url }))
}

fn work_error(e: crate::domain::work::WorkError) -> anyhow::Error {
    use crate::domain::work::WorkError;
    match e {
        WorkError::NotFound => anyhow::anyhow!("no such ticket"),
        WorkError::Store(crate::storage::StoreError::VersionMismatch) => {
            anyhow::anyhow!("the ticket changed meanwhile; try again")
        }
        other => anyhow::anyhow!("{other}"),
    }
}

pub(super) async fn run(cli: &Cli, cmd: &TicketCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = open_existing_store(&config).await?;
    match cmd {
        TicketCommand::Show { number, json } => {
            let Some(parsed) = crate::domain::ids::TicketNumber::parse(number) else {
                anyhow::bail!("\"{number}\" is not a ticket number");
            };
            let Some(t) = store.load_ticket(parsed).await? else {
                anyhow::bail!("no ticket {number}");
            };
            if *json {
                // The read API's shape (the one place that decides it).
                let json = crate::http::wire::TicketJson::from(&t);
                outln!("{}", serde_json::to_string_pretty(&json)?);
                return Ok(());
            }
            outln!("Ticket #{}  [{}]  {}", t.number, t.status, t.subject);
            outln!("From:       {} <{}>", t.user.name, t.user.email);
            outln!(
                "Created:    {}  source {}  ip {}",
                crate::domain::views::format_time(t.created),
                t.source,
                t.ip
            );
            outln!("Priority:   {}", t.priority.name);
            if let Some(topic) = &t.topic {
                outln!("Topic:      {}", topic.name);
            }
            if let Some(d) = &t.department {
                outln!("Department: {}", d.name);
            }
            for (name, value) in &t.fields {
                outln!("{name}: {value}");
            }
            for e in &t.thread {
                outln!(
                    "\n--- {} from {} <{}> at {} ({})",
                    e.kind,
                    e.from.name,
                    e.from.email,
                    crate::domain::views::format_time(e.created),
                    e.format.as_str()
                );
                outln!("{}", e.body);
                for a in &e.attachments {
                    outln!(
                        "  [attachment] {} ({}, {} bytes, sha256 {})",
                        a.name,
                        a.content_type,
                        a.size,
                        a.sha256
                    );
                }
            }
        }
        TicketCommand::Reply {
            number,
            entry,
            status,
            attach,
        } => {
            let agent = acting_agent(store.as_ref(), &entry.agent).await?;
            let mut map = entry_body(entry)?;
            if let Some(s) = status {
                map.insert("status".into(), s.clone().into());
            }
            if !attach.is_empty() {
                let files = attach
                    .iter()
                    .map(|p| attachment(p))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                map.insert("attachments".into(), files.into());
            }
            let catalog = crate::domain::catalog::Catalog::new(&config);
            let req = crate::domain::work::parse_entry(&map.into(), false, &catalog)
                .map_err(work_error)?;
            let ticket = crate::domain::work::visible_head(store.as_ref(), &agent, number)
                .await
                .map_err(work_error)?;
            let (entry, _) = crate::domain::work::add_entry(
                store.as_ref(),
                &agent,
                &ticket,
                crate::domain::views::EntryKind::Response,
                req,
            )
            .await
            .map_err(work_error)?;
            outln!(
                "reply {} added to ticket {number}; mailed through the outbox",
                entry.id
            );
        }
        TicketCommand::Note { number, entry } => {
            let agent = acting_agent(store.as_ref(), &entry.agent).await?;
            let catalog = crate::domain::catalog::Catalog::new(&config);
            let req = crate::domain::work::parse_entry(&entry_body(entry)?.into(), true, &catalog)
                .map_err(work_error)?;
            let ticket = crate::domain::work::visible_head(store.as_ref(), &agent, number)
                .await
                .map_err(work_error)?;
            let (entry, _) = crate::domain::work::add_entry(
                store.as_ref(),
                &agent,
                &ticket,
                crate::domain::views::EntryKind::Note,
                req,
            )
            .await
            .map_err(work_error)?;
            outln!("note {} added to ticket {number}", entry.id);
        }
        TicketCommand::Close { number, agent } | TicketCommand::Reopen { number, agent } => {
            let status = if matches!(cmd, TicketCommand::Close { .. }) {
                crate::domain::views::TicketStatus::Closed
            } else {
                crate::domain::views::TicketStatus::Open
            };
            let agent = acting_agent(store.as_ref(), agent).await?;
            let req = crate::domain::work::PatchRequest {
                status: Some(status),
                ..Default::default()
            };
            patch(&config, store.as_ref(), &agent, number, &req).await?;
        }
        TicketCommand::Assign { number, to, agent } => {
            let agent = acting_agent(store.as_ref(), agent).await?;
            let assignee = if to.eq_ignore_ascii_case("none") {
                None
            } else {
                Some(acting_agent(store.as_ref(), to).await?.id)
            };
            let req = crate::domain::work::PatchRequest {
                assignee: Some(assignee),
                ..Default::default()
            };
            patch(&config, store.as_ref(), &agent, number, &req).await?;
        }
        TicketCommand::List { limit } => {
            for t in store.list_tickets(*limit).await? {
                outln!(
                    "{}  {}  {:<6}  {:<30}  {}",
                    t.number,
                    t.created,
                    t.status,
                    t.user_email,
                    t.subject
                );
            }
        }
    }
    Ok(())
}

async fn patch(
    config: &crate::config::Config,
    store: &dyn crate::storage::Store,
    agent: &crate::domain::staff::Agent,
    number: &str,
    req: &crate::domain::work::PatchRequest,
) -> anyhow::Result<()> {
    let catalog = crate::domain::catalog::Catalog::new(config);
    let t = crate::domain::work::patch_ticket(store, &catalog, agent, number, req, None)
        .await
        .map_err(work_error)?;
    let assignee = t
        .work
        .assignee
        .as_ref()
        .map_or("nobody".to_string(), |a| a.name.clone());
    outln!("ticket {number}: {}, assigned to {assignee}", t.status);
    Ok(())
}

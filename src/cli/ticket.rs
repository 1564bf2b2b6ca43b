//! `oxidesk ticket show|list`.

use clap::Subcommand;

use super::{Cli, load_config, open_store};

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
}

pub(super) async fn run(cli: &Cli, cmd: &TicketCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = open_store(&config).await?;
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

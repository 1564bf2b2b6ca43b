//! `oxidesk agent add|list|disable|enable|password|token`: staff accounts
//! (STAFF-API.md, Agents and sign-in). Like `key`, a secret is printed
//! alone on the first line of standard output, once; everything else
//! goes to standard error. Agents are staff, not API keys: they share
//! nothing but the style.

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::{Cli, load_config, open_existing_store};
use crate::domain::agents::{self, AgentToken, Password, TokenKind};
use crate::domain::catalog::Catalog;
use crate::domain::ids::EmailAddress;
use crate::domain::staff::AgentId;
use crate::storage::{NewAgent, NewAgentToken, Store, StoreError};

/// `agent` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent; prints a generated password alone on the first
    /// line of stdout, once (unless `--password-stdin`).
    Add(AddArgs),
    /// List agents (never passwords or tokens).
    List,
    /// Stop an agent from signing in; ends their sessions, and their
    /// personal tokens stop working until `enable`.
    Disable {
        /// Agent id (from `agent list`).
        id: i64,
    },
    /// Let a disabled agent sign in again.
    Enable {
        /// Agent id (from `agent list`).
        id: i64,
    },
    /// Set a new password (generated and printed once, unless
    /// `--password-stdin`); ends the agent's sessions.
    Password(PasswordArgs),
    /// Make a personal access token for scripts; printed once.
    Token(TokenArgs),
}

/// `agent add` options.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Sign-in address (also the address their replies come from).
    #[arg(long)]
    pub email: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Sees and does everything.
    #[arg(long)]
    pub admin: bool,
    /// A department (configuration id) whose tickets they see (repeatable).
    #[arg(long = "department")]
    pub departments: Vec<i64>,
    /// Read the password from standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `agent password` options.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Agent id (from `agent list`).
    pub id: i64,
    /// Read the password from standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `agent token` options.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Agent id (from `agent list`).
    pub id: i64,
    /// What the token is for (shown nowhere but the database).
    #[arg(long, default_value = "personal")]
    pub name: String,
}

/// The password to set: read from standard input (one trailing line
/// break dropped), or generated (and then to be printed).
fn new_password(from_stdin: bool) -> anyhow::Result<(Password, bool)> {
    if !from_stdin {
        return Ok((Password::generate(), true));
    }
    let mut text = String::new();
    std::io::stdin()
        .take(agents::MAX_PASSWORD_BYTES as u64 + 3)
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_string();
    let password =
        Password::parse_new(text).map_err(|e| anyhow::anyhow!("--password-stdin: {e}"))?;
    Ok((password, false))
}

/// `Err` naming the agent when the store found none.
fn no_such_agent<T>(result: Result<T, StoreError>, id: i64) -> anyhow::Result<T> {
    match result {
        Err(StoreError::NotFound) => bail!("no agent with id {id}"),
        other => Ok(other?),
    }
}

pub(super) async fn run(cli: &Cli, cmd: &AgentCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    // Checked before the store is opened: a refused command writes nothing.
    let catalog = Catalog::new(&config);
    if let AgentCommand::Add(args) = cmd {
        let (email, departments) = check_add(&catalog, args)?;
        let (password, generated) = new_password(args.password_stdin)?;
        let store = open_existing_store(&config).await?;
        return add(
            store.as_ref(),
            args,
            email,
            departments,
            password,
            generated,
        )
        .await;
    }
    let store = open_existing_store(&config).await?;
    match cmd {
        AgentCommand::Add(_) => unreachable!("handled above"),
        AgentCommand::List => list(store.as_ref(), &catalog).await?,
        AgentCommand::Disable { id } => {
            no_such_agent(store.set_agent_active(AgentId(*id), false).await, *id)?;
            outln!("agent {id} disabled");
        }
        AgentCommand::Enable { id } => {
            no_such_agent(store.set_agent_active(AgentId(*id), true).await, *id)?;
            outln!("agent {id} enabled");
        }
        AgentCommand::Password(args) => {
            let id = args.id;
            if store.find_agent(AgentId(id)).await?.is_none() {
                bail!("no agent with id {id}");
            }
            let (password, generated) = new_password(args.password_stdin)?;
            let hash = agents::hash_password(password.clone())
                .await
                .map_err(anyhow::Error::msg)?;
            no_such_agent(store.set_agent_password(AgentId(id), hash).await, id)?;
            if generated {
                outln!("{}", password.expose());
                errln!("agent {id}: new password set; it is shown only now: keep it");
            } else {
                errln!("agent {id}: new password set");
            }
        }
        AgentCommand::Token(args) => {
            let id = args.id;
            let token = AgentToken::generate();
            let result = store
                .add_agent_token(NewAgentToken {
                    hash: token.hash(),
                    agent_id: AgentId(id),
                    kind: TokenKind::Personal,
                    name: args.name.clone(),
                    created: jiff::Timestamp::now().as_second(),
                    expires_at: None,
                })
                .await;
            no_such_agent(result, id)?;
            outln!("{}", token.expose());
            errln!("agent {id}: personal access token made; it is shown only now: keep it");
        }
    }
    Ok(())
}

/// The address parsed and the departments checked against the configuration.
fn check_add(catalog: &Catalog, args: &AddArgs) -> anyhow::Result<(EmailAddress, Vec<i64>)> {
    let email = EmailAddress::parse(args.email.trim())
        .map_err(|e| anyhow::anyhow!("--email {}: {e}", args.email))?;
    if args.name.trim().is_empty() {
        bail!("--name must not be empty");
    }
    let departments = agents::check_departments(catalog, &args.departments)
        .map_err(|e| anyhow::anyhow!("--{e}"))?;
    Ok((email, departments))
}

async fn add(
    store: &dyn Store,
    args: &AddArgs,
    email: EmailAddress,
    departments: Vec<i64>,
    password: Password,
    generated: bool,
) -> anyhow::Result<()> {
    let hash = agents::hash_password(password.clone())
        .await
        .map_err(anyhow::Error::msg)?;
    let result = store
        .add_agent(NewAgent {
            email: email.as_str().to_string(),
            name: args.name.trim().to_string(),
            password_hash: hash,
            admin: args.admin,
            departments,
            created: crate::domain::views::format_time(jiff::Timestamp::now()),
        })
        .await;
    let id = match result {
        Err(StoreError::Conflict(_)) => bail!("an agent with email {email} already exists"),
        other => other?,
    };
    if generated {
        outln!("{}", password.expose());
        errln!("agent {id} ({email}) created; the password is shown only now: keep it");
    } else {
        errln!("agent {id} ({email}) created");
    }
    Ok(())
}

async fn list(store: &dyn Store, catalog: &Catalog) -> anyhow::Result<()> {
    outln!(
        "{:>4}  {:<32} {:<24} {:<5} {:<6} departments",
        "id",
        "email",
        "name",
        "admin",
        "active"
    );
    for a in store.list_agents().await? {
        let departments: Vec<String> = a
            .departments
            .iter()
            .map(|d| match catalog.departments.get(d) {
                Some(named) => format!("{d} ({})", named.name),
                None => format!("{d} (not configured)"),
            })
            .collect();
        outln!(
            "{:>4}  {:<32} {:<24} {:<5} {:<6} {}",
            a.id,
            a.email,
            a.name,
            a.admin,
            a.active,
            departments.join(", ")
        );
    }
    Ok(())
}

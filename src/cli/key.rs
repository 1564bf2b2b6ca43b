//! `oxidesk key add|list|revoke`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ipnet::IpNet;

use super::{Cli, ensure, load_config, open_existing_store};
use crate::domain::keys::ApiKeySecret;
use crate::storage::NewApiKey;

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; prints it alone on the first line of stdout, once.
    Add(AddArgs),
    /// List keys (never the secrets).
    List,
    /// Deactivate a key.
    Revoke {
        /// Key id (from `key list`).
        id: i64,
    },
}

/// `key add` options.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Address or CIDR range the key may be used from (repeatable).
    #[arg(long = "ip", required = true)]
    pub ips: Vec<String>,
    /// Allow reading tickets (`GET /api/tickets/<n>.json`).
    #[arg(long)]
    pub can_read: bool,
    /// Do not allow creating tickets.
    #[arg(long)]
    pub no_create: bool,
    /// Admin notes.
    #[arg(long, default_value = "")]
    pub notes: String,
    /// Keep an existing osTicket key (32 hex characters, either case)
    /// instead of making a new one, so its clients need no change; `-`
    /// reads it from standard input (out of the process list).
    #[arg(long, value_name = "KEY")]
    pub secret: Option<String>,
}

/// The key `key add` stores: the one given with `--secret`, or a new one.
fn secret_of(args: &AddArgs) -> anyhow::Result<ApiKeySecret> {
    let Some(given) = &args.secret else {
        return Ok(ApiKeySecret::generate());
    };
    let given = if given == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("--secret -: reading the key from standard input")?;
        line
    } else {
        given.clone()
    };
    ApiKeySecret::parse_osticket(&given).context("--secret")
}

fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    crate::domain::keys::parse_network(s)
        .with_context(|| format!("--ip {s}: not an IP address or CIDR range"))
}

pub(super) async fn run(cli: &Cli, cmd: &KeyCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = open_existing_store(&config).await?;
    match cmd {
        KeyCommand::Add(args) => {
            let addresses = args
                .ips
                .iter()
                .map(|s| parse_net(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let secret = secret_of(args)?;
            let id = store
                .add_api_key(NewApiKey {
                    hash: secret.hash(),
                    prefix: secret.prefix(),
                    addresses,
                    can_create: !args.no_create,
                    can_read: args.can_read,
                    notes: args.notes.clone(),
                    created: jiff::Timestamp::now()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string(),
                })
                .await;
            let id = match id {
                Err(crate::storage::StoreError::Conflict(_)) if args.secret.is_some() => {
                    bail!("--secret: this key is already stored (see `oxidesk key list`)")
                }
                other => other?,
            };
            if args.secret.is_some() {
                errln!("key {id} added: the osTicket key is kept (accepted in either case)");
            } else {
                outln!("{}", secret.expose());
                errln!("key {id} created; it is shown only now: keep it");
            }
        }
        KeyCommand::List => {
            outln!(
                "{:>4}  {:<8} {:<6} {:<6} {:<6} {:<20} {:<30} notes",
                "id",
                "prefix",
                "active",
                "create",
                "read",
                "created",
                "addresses"
            );
            for k in store.list_api_keys().await? {
                let nets: Vec<String> = k.addresses.iter().map(ToString::to_string).collect();
                outln!(
                    "{:>4}  {:<8} {:<6} {:<6} {:<6} {:<20} {:<30} {}",
                    k.id,
                    format!("{}…", k.prefix),
                    k.is_active,
                    k.can_create,
                    k.can_read,
                    k.created,
                    nets.join(","),
                    k.notes
                );
            }
        }
        KeyCommand::Revoke { id } => {
            let result = store
                .revoke_api_key(crate::domain::ids::ApiKeyId(*id))
                .await;
            ensure(
                !matches!(result, Err(crate::storage::StoreError::NotFound)),
                &format!("no key with id {id}"),
            )?;
            result?;
            outln!("key {id} revoked");
        }
    }
    Ok(())
}

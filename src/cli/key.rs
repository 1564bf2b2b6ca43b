//! `oxidesk key add|list|revoke`.

use anyhow::Context;
use clap::{Args, Subcommand};
use ipnet::IpNet;

use super::{Cli, ensure, load_config, open_store};
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
}

fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    crate::domain::keys::parse_network(s)
        .with_context(|| format!("--ip {s}: not an IP address or CIDR range"))
}

pub(super) async fn run(cli: &Cli, cmd: &KeyCommand) -> anyhow::Result<()> {
    let config = load_config(cli)?;
    let store = open_store(&config).await?;
    match cmd {
        KeyCommand::Add(args) => {
            let addresses = args
                .ips
                .iter()
                .map(|s| parse_net(s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let secret = ApiKeySecret::generate();
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
                .await?;
            outln!("{}", secret.expose());
            errln!("key {id} created; it is shown only now: keep it");
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

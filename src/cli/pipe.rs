//! `oxidesk pipe`: one message on standard input, like osTicket's
//! `api/pipe.php`, with the `sysexits.h` codes an MTA understands
//! (API.md, Local mail pipe). A fault of ours is always 75 (EX_TEMPFAIL)
//! so the MTA keeps the message and retries: a customer is never bounced
//! for a server fault.

use std::io::Read;

use super::{Cli, load_config, open_store};
use crate::domain::DomainError;
use crate::domain::catalog::Catalog;
use crate::domain::email::{EmailContext, EmailError, file_email, prepare_email};
use crate::intake::IntakeError;
use crate::storage::EmailOutcome;

/// sysexits.h
pub mod exit {
    /// Created, appended, duplicate or bounce logged.
    pub const OK: i32 = 0;
    /// The message's content is invalid.
    pub const DATAERR: i32 = 65;
    /// The input is not a message at all.
    pub const NOINPUT: i32 = 66;
    /// The helpdesk is configured off.
    pub const UNAVAILABLE: i32 = 69;
    /// A fault of the server: retry later.
    pub const TEMPFAIL: i32 = 75;
    /// Denied (ban list).
    pub const NOPERM: i32 = 77;
}

/// Runs the pipe and returns the exit code.
pub(super) async fn run(cli: &Cli) -> i32 {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oxidesk pipe: configuration: {e:#}");
            return exit::TEMPFAIL;
        }
    };
    let limit = config.limits.max_request_body_bytes;
    let mut raw = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(limit + 1)
        .read_to_end(&mut raw);
    if let Err(e) = read {
        eprintln!("oxidesk pipe: reading standard input: {e}");
        return exit::TEMPFAIL;
    }
    if raw.len() as u64 > limit {
        eprintln!("oxidesk pipe: message over the limit of {limit} bytes");
        return exit::DATAERR;
    }
    let catalog = Catalog::new(&config);
    let ctx = EmailContext {
        client_ip: None,
        now: jiff::Timestamp::now(),
    };
    let prepared = match prepare_email(&catalog, &raw, &ctx) {
        Ok(p) => p,
        Err(e) => return report(e),
    };
    let store = match open_store(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("oxidesk pipe: database: {e:#}");
            return exit::TEMPFAIL;
        }
    };
    match file_email(store.as_ref(), prepared).await {
        Ok(outcome) => {
            match outcome {
                EmailOutcome::Created(n) => println!("created ticket {n}"),
                EmailOutcome::Appended(n) => println!("appended to ticket {n}"),
                EmailOutcome::Duplicate(Some(n)) => {
                    println!("duplicate of a message in ticket {n}")
                }
                EmailOutcome::Duplicate(None) => println!("duplicate message"),
                EmailOutcome::BounceLogged => println!("bounce logged"),
            }
            exit::OK
        }
        Err(e) => report(e),
    }
}

fn report(e: EmailError) -> i32 {
    eprintln!("oxidesk pipe: {e}");
    match e {
        EmailError::Disabled => exit::UNAVAILABLE,
        EmailError::Intake(IntakeError::EmptyBody | IntakeError::NotATicket(_)) => exit::NOINPUT,
        EmailError::Intake(_) => exit::DATAERR,
        EmailError::Domain(DomainError::Denied { .. }) => exit::NOPERM,
        EmailError::Domain(
            DomainError::Missing { .. }
            | DomainError::Invalid { .. }
            | DomainError::Unexpected { .. },
        ) => exit::DATAERR,
        EmailError::Store(_) => exit::TEMPFAIL,
    }
}

//! `oxidesk pipe`: one message on standard input, like osTicket's
//! `api/pipe.php`, with the `sysexits.h` codes an MTA understands
//! (API.md, Local mail pipe). A fault of ours is always 75 (EX_TEMPFAIL)
//! so the MTA keeps the message and retries: a customer is never bounced
//! for a server fault. A failure the message itself causes is permanent
//! (65, or 66/77/69 as API.md names them), never 75: the same message
//! would fail again on every retry, for days (issue 16, point 4). That
//! includes a panic while reading the message: reading is a pure function
//! of its bytes.

use std::io::Read;
use std::time::Duration;

use super::{Cli, Create, load_config, open_store_with};
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

/// Runs the pipe and returns the exit code: always one of [`exit`]'s,
/// whatever happens (a panic anywhere below is a fault of ours: 75).
pub(super) fn run(cli: &Cli) -> i32 {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(file(cli)))
    }));
    match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            errln!(
                "oxidesk pipe: cannot start: {e} (exit 75: the MTA keeps the message and retries)"
            );
            exit::TEMPFAIL
        }
        Err(_) => {
            errln!("oxidesk pipe: internal error (exit 75: the MTA keeps the message and retries)");
            exit::TEMPFAIL
        }
    }
}

/// One message: read, parse, store, with the exit code for the MTA.
async fn file(cli: &Cli) -> i32 {
    let config = match load_config(cli) {
        Ok(c) => c,
        Err(e) => {
            // The first line is what `mailq` shows as the reason: the
            // cause, naming the file and the user, comes first.
            errln!(
                "oxidesk pipe: {} (exit 75: the MTA keeps the message and retries)",
                one_line(&e)
            );
            return exit::TEMPFAIL;
        }
    };
    let limit = config.limits.max_request_body_bytes;
    let mut raw = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw);
    if let Err(e) = read {
        errln!("oxidesk pipe: reading standard input: {e}");
        return exit::TEMPFAIL;
    }
    if raw.len() as u64 > limit {
        errln!("oxidesk pipe: message over the limit of {limit} bytes");
        return exit::DATAERR;
    }
    let catalog = Catalog::new(&config);
    let ctx = EmailContext {
        client_ip: None,
        now: jiff::Timestamp::now(),
    };
    // Reading the message depends on its bytes alone: a panic there
    // would come back on every retry, so it is a permanent refusal.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        prepare_email(&catalog, &raw, &ctx)
    }));
    let prepared = match read {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return report(e),
        Err(_) => {
            errln!(
                "oxidesk pipe: internal error reading the message (exit 65: retrying cannot help)"
            );
            return exit::DATAERR;
        }
    };
    let budget = Duration::from_secs(config.pipe.timeout_secs.max(1));
    let filed = tokio::time::timeout(budget, async {
        let store = open_store_with(&config, Create::Refused, config.pipe.store_retry_secs)
            .await
            .map_err(|e| {
                errln!(
                    "oxidesk pipe: {} (exit 75: the MTA keeps the message and retries)",
                    one_line(&e)
                );
            })?;
        Ok::<_, ()>(file_email(store.as_ref(), &catalog.mail_rules, prepared).await)
    })
    .await;
    let result = match filed {
        Ok(Ok(result)) => result,
        Ok(Err(())) => return exit::TEMPFAIL,
        Err(_) => {
            errln!(
                "oxidesk pipe: not filed within pipe.timeout_secs = {} (exit 75: the MTA keeps the message and retries)",
                budget.as_secs()
            );
            return exit::TEMPFAIL;
        }
    };
    match result {
        Ok(outcome) => {
            match outcome {
                EmailOutcome::Created(n) => outln!("created ticket {n}"),
                EmailOutcome::Appended(n) => outln!("appended to ticket {n}"),
                EmailOutcome::Duplicate(Some(n)) => {
                    outln!("duplicate of a message in ticket {n}")
                }
                EmailOutcome::Duplicate(None) => outln!("duplicate message"),
                EmailOutcome::BounceLogged => outln!("bounce logged"),
            }
            exit::OK
        }
        Err(EmailError::Store(e)) => {
            // The cause, with the database and the user, for `mailq`.
            errln!(
                "oxidesk pipe: filing into database {} as user {}: {e} (exit 75: the MTA keeps the message and retries)",
                super::database_name(&config),
                super::identity::effective_user()
            );
            exit::TEMPFAIL
        }
        Err(e) => report(e),
    }
}

/// An error and its causes on one line, outermost first.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // An error that shows its source in its own message already.
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn report(e: EmailError) -> i32 {
    errln!("oxidesk pipe: {e}");
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

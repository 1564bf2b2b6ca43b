//! `oxidesk-bench staff seed`: realistic tickets through the real store.
//!
//! Every write is a `Store` operation the product itself uses, planned by
//! the product's domain functions, so the search index (written in each
//! write's transaction) and every counter (`entries`, `updated`,
//! `last_message_at`, `version`, `status_changed`) are exactly what the
//! product writes:
//!
//! * the ticket and its first message: `Store::create_ticket`;
//! * assignment and status changes: `domain::work::plan_patch` →
//!   `Store::change_ticket`;
//! * agent responses and internal notes: `domain::work::plan_entry` →
//!   `Store::add_staff_entry` (the response's mail is left out: this is
//!   history, it was sent long ago, and a million queued mails would be
//!   delivered by the server under measurement);
//! * the customer's follow-ups: `Store::ingest_email` onto the ticket's
//!   thread, with a Message-ID and the raw message, as mail arrives
//!   (reopening a resolved or closed ticket, as the product does).
//!
//! Speed comes from concurrency (many tickets in flight; SQLite's writer
//! commits them in groups, PostgreSQL runs them on its pool), not from a
//! bulk path.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow};
use oxidesk::domain::catalog::Catalog;
use oxidesk::domain::staff::{Actor, Agent};
use oxidesk::domain::work::{EntryRequest, PatchRequest, plan_entry, plan_patch};
use oxidesk::storage::{
    BodyFormat, EmailAddress, EntryKind, NewAgent, NewAttachment, NewEmail, NewEntry, NewTicket,
    Source, Store, ThreadQuery, ThreadRef, TicketStatus, TicketView,
};
use sha2::Digest;

use super::textgen::{self, Lang, Rng};
use super::{DEPARTMENTS, SeedArgs};

/// The subject word of the 20-entry ticket (the ticket page test finds it
/// by searching for it).
pub const TWENTY_MARK: &str = "zwanzigbench";

/// Agents per department that tickets are assigned to.
const AGENTS_PER_DEPARTMENT: usize = 4;

/// What one ticket becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extra {
    Response,
    Message,
    Note,
}

struct Ctx {
    store: Arc<dyn Store>,
    catalog: Catalog,
    /// Assignees by department index.
    agents: Vec<Vec<Agent>>,
    /// First ticket's creation time (unix s) and seconds between tickets.
    base: i64,
    spacing: f64,
    run: u64,
}

fn attach(rng: &mut Rng, lang: Lang) -> NewAttachment {
    let (name, ctype, data) = textgen::attachment(rng, lang);
    NewAttachment {
        sha256: sha2::Sha256::digest(&data).into(),
        name,
        content_type: ctype.into(),
        data,
        inline: false,
        content_id: None,
    }
}

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e}")
}

/// Extra entries after the first message: 0–6, mean ~2 (so ~3 entries a
/// ticket with the first).
fn extra_count(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..20 => 0,
        20..42 => 1,
        42..67 => 2,
        67..82 => 3,
        82..92 => 4,
        92..97 => 5,
        _ => 6,
    }
}

fn plan_extras(rng: &mut Rng, n: usize) -> Vec<Extra> {
    let mut out = Vec::with_capacity(n);
    // Typical thread: the agent answers, the customer follows up, the
    // agent answers again; notes here and there.
    for k in 0..n {
        let e = if rng.chance(15) {
            Extra::Note
        } else if k % 2 == 0 {
            Extra::Response
        } else {
            Extra::Message
        };
        out.push(e);
    }
    out
}

/// Creates ticket `i` with its whole history; returns its entry count.
async fn one_ticket(ctx: &Ctx, rng: &mut Rng, i: u64, twenty: bool) -> anyhow::Result<u64> {
    let lang = if twenty { Lang::En } else { Lang::draw(rng) };
    // Support 40%, Billing 20%, IT 20%, Sales 12%, Shipping 8%.
    let dept_ix = if twenty {
        0
    } else {
        match rng.below(100) {
            0..40 => 0,
            40..60 => 1,
            60..80 => 2,
            80..92 => 3,
            _ => 4,
        }
    };
    let (dept_id, dept_name) = DEPARTMENTS[dept_ix];
    let (name, email) = textgen::customer(rng, lang);
    let mut subject = textgen::subject(rng, lang);
    if twenty {
        subject = format!("Printer queue stuck, long thread ({TWENTY_MARK})");
    }
    let created = ctx.base + (i as f64 * ctx.spacing) as i64 + rng.below(60) as i64;
    let mut attachments = Vec::new();
    if rng.chance(10) || twenty {
        attachments.push(attach(rng, lang));
    }
    let user_email = EmailAddress::parse(&email).map_err(err)?;
    let priority = ctx
        .catalog
        .priority(match rng.below(100) {
            0..10 => 1,
            10..70 => 2,
            70..92 => 3,
            _ => 4,
        })
        .or_else(|| ctx.catalog.priority(1))
        .context("no priorities")?;
    let first = NewEntry {
        kind: EntryKind::Message,
        format: BodyFormat::Text,
        body: textgen::first_body(rng, lang, &name),
        from_name: name.clone(),
        from_email: user_email.clone(),
        message_id: None,
        auto_reply: false,
        bounce: false,
        attachments,
        dropped: Vec::new(),
        agent: None,
    };
    let number = ctx
        .store
        .create_ticket(NewTicket {
            user_email: user_email.clone(),
            user_name: name.clone(),
            subject: subject.clone(),
            source: if rng.chance(60) {
                Source::Email
            } else {
                Source::Web
            },
            priority,
            topic: None,
            department: Some(oxidesk::storage::Named {
                id: dept_id,
                name: dept_name.into(),
            }),
            ip: "192.0.2.10".into(),
            alert: false,
            autorespond: false,
            fields: Vec::new(),
            entry: first,
            mail: Vec::new(),
            now: ts(created),
            idempotency: None,
        })
        .await
        .map_err(err)?;
    let extras = if twenty {
        (0..19)
            .map(|k| match k % 3 {
                0 => Extra::Response,
                1 => Extra::Message,
                _ => Extra::Note,
            })
            .collect()
    } else {
        let n = extra_count(rng);
        plan_extras(rng, n)
    };
    // Final status: most tickets of a two-year history are done.
    let final_status = if twenty {
        TicketStatus::Open
    } else {
        match rng.below(100) {
            0..20 => TicketStatus::Open,
            20..50 => TicketStatus::Resolved,
            _ => TicketStatus::Closed,
        }
    };
    // Tickets that were worked to the end have an assignee; open ones
    // often not yet. (Also works around a PostgreSQL bug: a change with
    // no assignee caches CHANGE_TICKET with `$2` as text on its pooled
    // connection, and a later change with an assignee on that connection
    // fails with "invalid byte sequence for encoding UTF8: 0x00".)
    let assign = twenty || final_status != TicketStatus::Open || rng.chance(50);
    if extras.is_empty() && !assign && final_status == TicketStatus::Open {
        return Ok(1);
    }
    let mut view: TicketView = ctx
        .store
        .load_ticket(number.clone())
        .await
        .map_err(err)?
        .context("a ticket just created is missing")?;
    let agent = {
        let list = &ctx.agents[dept_ix];
        list[rng.below(list.len() as u64) as usize].clone()
    };
    let actor = Actor::Agent {
        id: agent.id,
        name: agent.name.clone(),
    };
    let mut t = created;
    let step = |rng: &mut Rng| 600 + rng.below(2 * 86_400) as i64;
    if assign {
        t += 60 + rng.below(3600) as i64;
        let req = PatchRequest {
            assignee: Some(Some(agent.id)),
            ..Default::default()
        };
        let named = oxidesk::storage::Named {
            id: agent.id.0,
            name: agent.name.clone(),
        };
        let change = plan_patch(
            &view,
            &req,
            &ctx.catalog,
            Some(named.clone()),
            &actor,
            ts(t),
        )
        .map_err(|e| anyhow!("{e:?}"))?;
        ctx.store.change_ticket(change).await.map_err(err)?;
        view.work.version += 1;
        view.work.assignee = Some(named);
    }
    let last = extras.len();
    let mut entries = 1u64;
    for (k, e) in extras.iter().enumerate() {
        t += step(rng);
        entries += 1;
        match e {
            Extra::Response | Extra::Note => {
                let kind = if *e == Extra::Response {
                    EntryKind::Response
                } else {
                    EntryKind::Note
                };
                // The last response may "reply and resolve/close".
                let status = (kind == EntryKind::Response
                    && k + 1 == last
                    && final_status != TicketStatus::Open)
                    .then_some(final_status);
                let body = if kind == EntryKind::Response {
                    textgen::reply_body(rng, lang, &agent.name)
                } else {
                    textgen::note_body(rng)
                };
                let mut attachments = Vec::new();
                if twenty && k == 9 {
                    attachments.push(attach(rng, lang));
                }
                let req = EntryRequest {
                    body,
                    format: BodyFormat::Text,
                    attachments,
                    status,
                };
                let mut entry = plan_entry(&view.head(), &agent, kind, req, ts(t))
                    .map_err(|e| anyhow!("{e:?}"))?;
                entry.mail.clear();
                if let Some((s, _)) = &entry.status {
                    view.status = *s;
                }
                ctx.store.add_staff_entry(entry).await.map_err(err)?;
            }
            Extra::Message => {
                let body = textgen::followup_body(rng, lang, &name);
                let message_id = format!("seed-{}-{i}-{k}@example.net", ctx.run);
                let raw = format!(
                    "From: {name} <{email}>\r\nTo: support@example.com\r\nSubject: Re: [#{number}] {subject}\r\n\
                     Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
                     Content-Type: text/plain; charset=UTF-8\r\n\r\n{body}\r\n"
                );
                let mut deflate =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                deflate.write_all(raw.as_bytes())?;
                let raw_compressed = deflate.finish()?;
                let entry = NewEntry {
                    kind: EntryKind::Message,
                    format: BodyFormat::Text,
                    body,
                    from_name: name.clone(),
                    from_email: user_email.clone(),
                    message_id: Some(message_id.clone()),
                    auto_reply: false,
                    bounce: false,
                    attachments: Vec::new(),
                    dropped: Vec::new(),
                    agent: None,
                };
                let outcome = ctx
                    .store
                    .ingest_email(NewEmail {
                        message_id: Some(message_id),
                        query: ThreadQuery {
                            thread_ids: Vec::new(),
                            subject_number: Some(number.to_string()),
                            from: user_email.clone(),
                        },
                        thread: Some(ThreadRef {
                            ticket_id: view.work.ticket_id,
                            number: number.clone(),
                            department: Some(dept_id),
                        }),
                        is_bounce: false,
                        ticket: NewTicket {
                            user_email: user_email.clone(),
                            user_name: name.clone(),
                            subject: format!("Re: [#{number}] {subject}"),
                            source: Source::Email,
                            priority: view.priority.clone(),
                            topic: None,
                            department: view.department.clone(),
                            ip: String::new(),
                            alert: false,
                            autorespond: false,
                            fields: Vec::new(),
                            entry,
                            mail: Vec::new(),
                            now: ts(t),
                            idempotency: None,
                        },
                        raw_compressed,
                    })
                    .await
                    .map_err(err)?;
                anyhow::ensure!(
                    matches!(outcome, oxidesk::storage::EmailOutcome::Appended(_)),
                    "follow-up not appended: {outcome:?}"
                );
                if let Some(s) = oxidesk::domain::work::status_after_message(view.status, false) {
                    view.status = s;
                }
            }
        }
        view.work.version += 1;
    }
    if view.status != final_status {
        t += step(rng);
        let req = PatchRequest {
            status: Some(final_status),
            ..Default::default()
        };
        let change = plan_patch(
            &view,
            &req,
            &ctx.catalog,
            view.work.assignee.clone(),
            &actor,
            ts(t),
        )
        .map_err(|e| anyhow!("{e:?}"))?;
        ctx.store.change_ticket(change).await.map_err(err)?;
    }
    Ok(entries)
}

/// Makes the assignees: `AGENTS_PER_DEPARTMENT` per department (they
/// never sign in: their hash is of a random password).
async fn assignees(store: &Arc<dyn Store>, run: u64) -> anyhow::Result<Vec<Vec<Agent>>> {
    let hash =
        oxidesk::domain::agents::hash_password_now(&oxidesk::domain::agents::Password::generate())
            .map_err(err)?;
    let mut out = Vec::new();
    for (d, (dept_id, dept_name)) in DEPARTMENTS.iter().enumerate() {
        let mut list = Vec::new();
        for k in 0..AGENTS_PER_DEPARTMENT {
            let email = format!("seed{run}-d{dept_id}-{k}@agents.example.com");
            let name = format!("{dept_name} Agent {}", d * AGENTS_PER_DEPARTMENT + k + 1);
            let id = store
                .add_agent(NewAgent {
                    email: email.clone(),
                    name: name.clone(),
                    password_hash: hash.clone(),
                    admin: false,
                    departments: vec![*dept_id],
                    created: jiff::Timestamp::now().to_string(),
                })
                .await
                .map_err(err)?;
            list.push(Agent {
                id,
                email,
                name,
                admin: false,
                active: true,
                departments: vec![*dept_id],
            });
        }
        out.push(list);
    }
    Ok(out)
}

pub async fn run(args: &SeedArgs) -> anyhow::Result<()> {
    let (config, _dir) =
        super::config_for(&args.database, None, "[postgres]\nmax_connections = 48\n")?;
    let store = oxidesk::cli::open_store(&config).await.map_err(err)?;
    let catalog = Catalog::new(&config);
    let run = jiff::Timestamp::now().as_second() as u64;
    let agents = assignees(&store, run).await?;
    let now = jiff::Timestamp::now().as_second();
    let span = 2 * 365 * 86_400;
    let ctx = Arc::new(Ctx {
        store: store.clone(),
        catalog,
        agents,
        base: now - span - 30 * 86_400,
        spacing: span as f64 / args.tickets.max(1) as f64,
        run,
    });
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let entries = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..args.concurrency {
        let ctx = ctx.clone();
        let (done, entries, next) = (done.clone(), entries.clone(), next.clone());
        let tickets = args.tickets;
        let seed = args.seed;
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new((seed << 20) ^ (c + 1));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tickets {
                    break;
                }
                // Ticket 0 is the 20-entry thread of the ticket page test.
                let n = one_ticket(&ctx, &mut rng, i, i == 0 && seed == 1).await?;
                entries.fetch_add(n, Ordering::Relaxed);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d.is_multiple_of(50_000) {
                    eprintln!(
                        "{d} tickets ({:.2} entries each), {:.0} tickets/s, {:.0} s",
                        entries.load(Ordering::Relaxed) as f64 / d as f64,
                        d as f64 / started.elapsed().as_secs_f64(),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let e = entries.load(Ordering::Relaxed);
    println!(
        "seeded {n} tickets, {e} entries ({:.2} per ticket) in {secs:.1} s: {:.0} tickets/s, {:.0} entries/s ({})",
        e as f64 / n.max(1) as f64,
        n as f64 / secs,
        e as f64 / secs,
        if config.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    if config.is_postgres() {
        // A served database has statistics and a visibility map from
        // autovacuum; this server may run with it off, and a fresh bulk
        // load has neither until it runs, so take them now (not timed).
        let vacuum = Instant::now();
        let ok = std::process::Command::new("psql")
            .arg(&args.database)
            .args(["-qc", "VACUUM (ANALYZE)"])
            .status()
            .is_ok_and(|s| s.success());
        println!(
            "VACUUM (ANALYZE): {} in {:.1} s",
            if ok {
                "done"
            } else {
                "FAILED (run it by hand)"
            },
            vacuum.elapsed().as_secs_f64()
        );
    }
    for (table, count) in store.counts().await.map_err(err)? {
        println!("  {table:<20} {count}");
    }
    Ok(())
}

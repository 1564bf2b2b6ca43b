//! `queue-seed`: loads realistic tickets into a database through the real
//! store path (`Store::create_ticket`, the index written in each ticket's
//! transaction), then measures the queue and search at the store.
//!
//! ```text
//! queue-seed --database sqlite:///tmp/q.db --tickets 1000000 seed
//! queue-seed --database sqlite:///tmp/q.db measure
//! ```
//! PostgreSQL: make the database first (`createdb`), pass its URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use oxidesk::domain::queue::QueueQuery;
use oxidesk::domain::staff::{Agent, AgentId};
use oxidesk::storage::{
    BodyFormat, EmailAddress, EntryKind, Named, NewEntry, NewTicket, Source, Store,
};

/// Seed and measure the staff queue and search.
#[derive(Debug, Parser)]
struct Args {
    /// `sqlite:///path` or a PostgreSQL database URL (the database exists).
    #[arg(long)]
    database: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates tickets.
    Seed {
        /// How many.
        #[arg(long, default_value_t = 300_000)]
        tickets: u64,
        /// Parallel creators.
        #[arg(long, default_value_t = 32)]
        concurrency: u64,
        /// Seed of the generator (a second run adds different tickets).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Times queue pages and searches.
    Measure {
        /// Runs of each query.
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
}

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Roughly Zipf: small indexes much more often.
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) - 1.0) as u64 % n
    }
}

const SUBJECTS: &[&str] = &[
    "Printer on floor {} is out of toner",
    "Cannot connect to VPN from home",
    "Password reset for {}",
    "Laptop screen flickering",
    "Email not syncing on phone",
    "Request: new monitor for desk {}",
    "Invoice {} shows the wrong amount",
    "Paper jam in the copier again",
    "Access to shared drive denied",
    "Meeting room projector not working",
    "Software licence renewal",
    "Wi-Fi drops every few minutes",
];

const PHRASES: &[&str] = &[
    "The printer says it is out of toner and nothing prints.",
    "I restarted the computer twice but the problem is still there.",
    "Could you please have a look as soon as possible?",
    "The error message reads: access denied, contact your administrator.",
    "It worked fine until the update yesterday.",
    "Several colleagues on the same floor have the same issue.",
    "Attached is a screenshot of the error.",
    "The VPN client disconnects after a few minutes.",
    "My password expired and the reset link does not work.",
    "The invoice total does not match the purchase order.",
    "Please order a replacement cartridge.",
    "Thanks in advance for your help.",
];

const FOREIGN: &[&str] = &[
    "Принтер не печатает, помогите пожалуйста.",
    "印刷できません。プリンターを確認してください。",
    "我的打印机坏了，请帮忙。",
    "Le café de la salle de réunion est en panne.",
];

/// A pseudo-word vocabulary: a long tail of rare words.
fn word(i: u64) -> String {
    const SYL: &[&str] = &[
        "ka", "lo", "mi", "ren", "tas", "vo", "quin", "der", "sul", "pra", "ne", "gol", "fi",
        "zor", "bel", "tu",
    ];
    let mut w = String::new();
    let mut n = i + 16;
    while n > 0 {
        w.push_str(SYL[(n % 16) as usize]);
        n /= 16;
    }
    w
}

fn ticket(rng: &mut Rng, i: u64, base: i64) -> NewTicket {
    let user = rng.zipf(200_000);
    let email = format!("user{user}@example{}.com", user % 50);
    let subject = SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize]
        .replace("{}", &(rng.below(900) + 100).to_string());
    let mut body = String::new();
    let target = 300 + rng.below(900) as usize;
    while body.len() < target {
        match rng.below(10) {
            0..=4 => body.push_str(PHRASES[rng.below(PHRASES.len() as u64) as usize]),
            5 if rng.below(20) == 0 => body.push_str(FOREIGN[rng.below(4) as usize]),
            _ => {
                for _ in 0..8 {
                    body.push_str(&word(rng.zipf(50_000)));
                    body.push(' ');
                }
            }
        }
        body.push(' ');
    }
    let dept = 1 + rng.below(5) as i64;
    // Two years of tickets, one every ~60 s, in creation order.
    let now = jiff::Timestamp::from_second(base + (i as i64) * 60 + rng.below(60) as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    NewTicket {
        user_email: EmailAddress::parse(&email).expect("a valid address"),
        user_name: format!("User {user}"),
        subject,
        source: Source::Api,
        priority: Named {
            id: 1 + rng.below(4) as i64,
            name: "P".into(),
        },
        topic: None,
        department: Some(Named {
            id: dept,
            name: format!("Dept {dept}"),
        }),
        ip: "192.0.2.1".into(),
        alert: false,
        autorespond: false,
        fields: Vec::new(),
        entry: NewEntry {
            kind: EntryKind::Message,
            format: BodyFormat::Text,
            body,
            from_name: format!("User {user}"),
            from_email: EmailAddress::parse(&email).expect("a valid address"),
            message_id: None,
            auto_reply: false,
            bounce: false,
            attachments: Vec::new(),
            dropped: Vec::new(),
            agent: None,
        },
        mail: Vec::new(),
        now,
        idempotency: None,
    }
}

async fn open(database: &str) -> anyhow::Result<Arc<dyn Store>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("seed.toml");
    std::fs::write(
        &path,
        format!(
            "database = \"{database}\"\n[mail]\nfrom_address = \"support@example.com\"\n[tickets]\nnumber_format = \"##########\"\n[postgres]\nmax_connections = 40\n"
        ),
    )?;
    let config = oxidesk::config::Config::load(Some(&path), std::iter::empty())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    oxidesk::cli::open_store(&config)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn seed(
    store: Arc<dyn Store>,
    tickets: u64,
    concurrency: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let base = 1_700_000_000 + (seed as i64) * 10_000_000;
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let store = store.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed << 32) ^ (c + 1));
            let mut i = c;
            while i < tickets {
                let t = ticket(&mut rng, i, base);
                store
                    .create_ticket(t)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(50_000) {
                    eprintln!(
                        "{n} tickets, {:.0}/s",
                        n as f64 / started.elapsed().as_secs_f64()
                    );
                }
                i += concurrency;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "seeded {tickets} tickets in {:.1} s ({:.0}/s)",
        started.elapsed().as_secs_f64(),
        tickets as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn time(
    store: &Arc<dyn Store>,
    name: &str,
    runs: usize,
    viewer: &Agent,
    mut pairs: impl FnMut(usize) -> Vec<(String, String)>,
) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(runs);
    let mut rows = 0usize;
    for i in 0..runs {
        let q = QueueQuery::parse(&pairs(i)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        let page = store
            .list_queue(viewer, &q)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed());
        rows += page.rows.len();
    }
    times.sort();
    println!(
        "{name:<44} p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  rows/page {:.1}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        rows as f64 / runs as f64
    );
    Ok(())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn measure(store: Arc<dyn Store>, runs: usize) -> anyhow::Result<()> {
    let admin = Agent {
        id: AgentId(1),
        email: "a@example.com".into(),
        name: "A".into(),
        admin: true,
        active: true,
        departments: vec![],
    };
    let agent = Agent {
        admin: false,
        departments: vec![2, 3],
        id: AgentId(2),
        ..admin.clone()
    };
    // Some numbers to look up.
    let sample = store
        .list_queue(
            &admin,
            &QueueQuery::parse(&pairs(&[("limit", "200"), ("sort", "number")]))
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let numbers: Vec<String> = sample.rows.iter().map(|r| r.number.to_string()).collect();
    anyhow::ensure!(!numbers.is_empty(), "no tickets: seed first");
    // Warm the caches once.
    time(&store, "warm-up", 20, &admin, |i| {
        pairs(&[("department", &(1 + i % 5).to_string())])
    })
    .await?;
    time(
        &store,
        "queue: dept+open, -updated, 50",
        runs,
        &admin,
        |i| pairs(&[("department", &(1 + i % 5).to_string()), ("status", "open")]),
    )
    .await?;
    time(
        &store,
        "queue: agent (2 depts), open, -updated, 50",
        runs,
        &agent,
        |_| pairs(&[]),
    )
    .await?;
    // A deep page: the cursor after 50 pages.
    let mut cursor = String::new();
    for _ in 0..50 {
        let mut p = pairs(&[("department", "1")]);
        if !cursor.is_empty() {
            p.push(("cursor".into(), cursor.clone()));
        }
        let q = QueueQuery::parse(&p).map_err(|e| anyhow::anyhow!("{e}"))?;
        let page = store
            .list_queue(&admin, &q)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        cursor = page.next_cursor.context("fewer than 50 pages")?;
    }
    time(
        &store,
        "queue: dept, page 51 by cursor",
        runs,
        &admin,
        |_| {
            pairs(&[("department", "1")])
                .into_iter()
                .chain([("cursor".to_string(), cursor.clone())])
                .collect()
        },
    )
    .await?;
    time(&store, "queue: sort -priority, 50", runs, &admin, |_| {
        pairs(&[("sort", "-priority")])
    })
    .await?;
    let rare = word(40_000);
    for (name, q) in [
        ("search: common word (printer)", "printer"),
        ("search: common word (toner) + dept 1", "toner"),
        ("search: rare word", rare.as_str()),
        ("search: phrase \"out of toner\"", "\"out of toner\""),
        ("search: prefix restar*", "restar*"),
        ("search: Cyrillic принтер", "принтер"),
        ("search: Japanese 印刷", "印刷"),
    ] {
        let dept = name.contains("dept 1");
        time(&store, name, runs, &admin, |_| {
            let mut p = pairs(&[("q", q)]);
            if dept {
                p.push(("department".into(), "1".into()));
            }
            p
        })
        .await?;
    }
    time(&store, "search: ticket number", runs, &admin, |i| {
        pairs(&[("q", &numbers[i % numbers.len()])])
    })
    .await?;
    time(
        &store,
        "search: printer, agent (2 depts)",
        runs,
        &agent,
        |_| pairs(&[("q", "printer")]),
    )
    .await?;
    let today = jiff::Timestamp::now();
    let mut times = Vec::new();
    for _ in 0..runs.min(50) {
        let t = Instant::now();
        store
            .queue_counts(&agent, today)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{:<44} p50 {:7.2} ms  p99 {:7.2} ms",
        "counts (agent, 2 depts)",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = open(&args.database).await?;
    match args.command {
        Command::Seed {
            tickets,
            concurrency,
            seed: s,
        } => seed(store, tickets, concurrency, s).await,
        Command::Measure { runs } => measure(store, runs).await,
    }
}

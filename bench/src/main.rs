//! `oxidesk-bench`: a real HTTP load of ticket creations.
//!
//! Starts `oxidesk serve` (the binary next to this one) on a fresh SQLite
//! database, makes a key, sends ~1 KB tickets from `--concurrency`
//! keep-alive connections for `--seconds`, then prints tickets/s, latency
//! percentiles and the server's peak RSS. Finally it kills the server with
//! SIGKILL and checks, in the database file, that every ticket answered
//! `201` is there: a `201` must mean durable.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use oxidesk_smtp_sink::{Keep, SmtpSink};

mod staff;

/// Load generator for oxidesk's ticket intake.
#[derive(Debug, Parser)]
struct Args {
    /// Parallel keep-alive connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Length of the measured run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Warm-up before measuring.
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// Approximate request body size in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// The oxidesk binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    /// Request format: `json`, `xml` or `email`.
    #[arg(long, default_value = "json", value_parser = ["json", "xml", "email"])]
    format: String,
    /// Deliver emails through `oxidesk pipe` (one process per message,
    /// `--concurrency` at a time) instead of HTTP.
    #[arg(long)]
    pipe: bool,
    /// Measure email parsing alone, on one thread, over the messages in
    /// this directory (e.g. ../shared/mail-corpus/messages).
    #[arg(long)]
    parse_mail: Option<PathBuf>,
    /// Notifications on: every ticket queues an autoresponse and a staff
    /// alert, delivered to an SMTP sink the benchmark runs. Off: tickets
    /// are sent with `alert` and `autorespond` false.
    #[arg(long)]
    notify: bool,
    /// Database: a PostgreSQL admin URL (postgres://postgres@127.0.0.1/postgres)
    /// runs on a fresh PostgreSQL database made for the run and dropped
    /// after; default: a fresh SQLite file.
    #[arg(long)]
    database: Option<String>,
    /// Server instances sharing the database; connections are spread
    /// over them.
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Keep the database directory instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// With `--notify`: after the load, let the server deliver its
    /// backlog for up to this many seconds and report mails/s. With
    /// `--relay-down`: the window the deferred CPU is measured in
    /// (default 10 s).
    #[arg(long, default_value_t = 0)]
    drain_seconds: u64,
    /// Notifications on (as `--notify`) with the SMTP relay down: the
    /// server's mail goes to a loopback port nothing listens on. Reports
    /// the server's CPU time (utime + stime) during the load and in the
    /// `--drain-seconds` after it, per ticket stored ("deferred
    /// µs/ticket": the work the load leaves behind).
    #[arg(long)]
    relay_down: bool,
}

fn json_body(i: u64, conn: usize, body_bytes: usize) -> Vec<u8> {
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
    let mut message = String::new();
    while message.len() + 200 < body_bytes {
        message.push_str(filler);
    }
    serde_json::json!({
        "name": format!("Bench User {conn}"),
        "email": format!("bench-{conn}-{}@example.com", i % 500),
        "subject": format!("Printer on floor {} is on fire", i % 7),
        "message": message,
        "phone": "3185558634X123",
        "source": "API",
        "alert": NOTIFY.load(std::sync::atomic::Ordering::Relaxed),
        "autorespond": NOTIFY.load(std::sync::atomic::Ordering::Relaxed),
    })
    .to_string()
    .into_bytes()
}

/// Whether generated tickets ask for notifications.
static NOTIFY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn xml_body(i: u64, conn: usize, body_bytes: usize) -> Vec<u8> {
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
    let mut message = String::new();
    while message.len() + 300 < body_bytes {
        message.push_str(filler);
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ticket source=\"API\" alert=\"{notify}\" autorespond=\"{notify}\">\n  \
         <name>Bench User {conn}</name>\n  <email>bench-{conn}-{}@example.com</email>\n  \
         <subject>Printer on floor {} is on fire</subject>\n  <phone>3185558634X123</phone>\n  \
         <message><![CDATA[{message}]]></message>\n</ticket>\n",
        i % 500,
        i % 7,
        notify = NOTIFY.load(std::sync::atomic::Ordering::Relaxed),
    )
    .into_bytes()
}

fn email_body(i: u64, conn: usize, body_bytes: usize) -> Vec<u8> {
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ";
    let mut message = String::new();
    while message.len() + 400 < body_bytes {
        message.push_str(filler);
        message.push_str("\r\n");
    }
    format!(
        "From: Bench User {conn} <bench-{conn}-{}@example.com>\r\nTo: support@example.com\r\n\
         Subject: Printer on floor {} is on fire\r\nDate: Thu, 05 Mar 2026 10:00:00 +0000\r\n\
         Message-ID: <bench-{conn}-{i}-{}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n{message}",
        i % 500,
        i % 7,
        std::process::id(),
    )
    .into_bytes()
}

/// Parses every message in `dir` over and over on this thread.
fn parse_mail_bench(dir: &std::path::Path, seconds: u64) -> anyhow::Result<()> {
    let mut messages = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            messages.push(std::fs::read(&path)?);
        }
    }
    if messages.is_empty() {
        bail!("no messages in {}", dir.display());
    }
    let total: usize = messages.iter().map(Vec::len).sum();
    let limits = oxidesk::intake::IntakeLimits {
        max_attachment_bytes: u64::MAX,
        max_attachments: usize::MAX,
    };
    let started = Instant::now();
    let (mut bytes, mut count, mut failed) = (0usize, 0usize, 0usize);
    while started.elapsed() < Duration::from_secs(seconds) {
        for m in &messages {
            if oxidesk::intake::email::parse_email(m, &limits).is_err() {
                failed += 1;
            }
            bytes += m.len();
            count += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "oxidesk-bench: email parsing on one thread, {} messages ({:.1} MB) per pass",
        messages.len(),
        total as f64 / 1e6
    );
    println!("throughput:       {:.1} MB/s", bytes as f64 / 1e6 / secs);
    println!("messages/s:       {:.0}", count as f64 / secs);
    println!(
        "refused (not mail or over caps), per pass: {}",
        failed * messages.len() / count.max(1)
    );
    Ok(())
}

/// Delivers emails through `oxidesk pipe`, `concurrency` processes at a time.
fn pipe_bench(
    server: &std::path::Path,
    db_url: &str,
    args: &Args,
) -> anyhow::Result<(Vec<u64>, u64)> {
    use std::io::Write;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let handles: Vec<_> = (0..args.concurrency)
        .map(|c| {
            let server = server.to_path_buf();
            let db_url = db_url.to_string();
            let body_bytes = args.body_bytes;
            std::thread::spawn(move || -> anyhow::Result<(Vec<u64>, u64)> {
                let (mut lat, mut errors, mut i) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < until {
                    i += 1;
                    let started = Instant::now();
                    let mut child = Command::new(&server)
                        .env_remove("OXIDESK_CONFIG")
                        .args(["--database", &db_url, "pipe"])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()?;
                    if let Some(mut stdin) = child.stdin.take() {
                        stdin.write_all(&email_body(i, c, body_bytes))?;
                    }
                    if child.wait()?.success() {
                        lat.push(started.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                Ok((lat, errors))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (lat, e) = h
            .join()
            .map_err(|_| anyhow::anyhow!("pipe thread panicked"))??;
        all.extend(lat);
        errors += e;
    }
    Ok((all, errors))
}

#[derive(Default)]
struct ConnResult {
    latencies_us: Vec<u64>,
    numbers: Vec<String>,
    errors: u64,
}

async fn drive(
    format: &'static str,
    port: u16,
    key: String,
    conn_id: usize,
    body_bytes: usize,
    warm_until: Instant,
    until: Instant,
) -> anyhow::Result<ConnResult> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    // Bodies are made up front so the generator spends its CPU on HTTP.
    let bodies: Vec<Bytes> = (0..500)
        .map(|i| {
            Bytes::from(match format {
                "xml" => xml_body(i, conn_id, body_bytes),
                _ => json_body(i, conn_id, body_bytes),
            })
        })
        .collect();
    let mut out = ConnResult::default();
    let mut i = 0u64;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        i += 1;
        // Every mail needs its own Message-ID, so mails are made per request.
        let body = if format == "email" {
            Bytes::from(email_body(i, conn_id, body_bytes))
        } else {
            bodies[(i as usize) % bodies.len()].clone()
        };
        let req = Request::post(match format {
            "xml" => "/api/tickets.xml",
            "email" => "/api/tickets.email",
            _ => "/api/tickets.json",
        })
        .header("host", "127.0.0.1")
        .header("x-api-key", &key)
        .body(Full::new(body))?;
        sender.ready().await?;
        let started = Instant::now();
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        if status.as_u16() == 201 {
            // Tickets answered during warm-up are checked too, not timed.
            out.numbers
                .push(String::from_utf8_lossy(&bytes).trim().to_string());
            if started >= warm_until {
                out.latencies_us.push(elapsed.as_micros() as u64);
            }
        } else {
            out.errors += 1;
            if out.errors <= 3 {
                eprintln!("status {status}: {}", String::from_utf8_lossy(&bytes));
            }
        }
    }
    Ok(out)
}

/// CPU time (user + system) the processes used so far, in µs: fields
/// 14 and 15 of `/proc/PID/stat`, in clock ticks.
fn cpu_us(pids: &[u32]) -> Option<u64> {
    let hz = clock_ticks_per_sec();
    let mut ticks = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command's closing parenthesis: field 3 (state) first.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks * 1_000_000 / hz)
}

/// `getconf CLK_TCK` (100 on Linux).
fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|hz| *hz > 0)
        .unwrap_or(100)
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// Drops the run's PostgreSQL database (unless kept).
fn drop_pg(admin: Option<&str>, name: &str, keep: bool) {
    if let Some(admin) = admin
        && !keep
    {
        let _ = Command::new("psql")
            .arg(admin)
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .status();
    }
}

fn main() -> anyhow::Result<()> {
    // `oxidesk-bench staff …`: the staff side's benchmark (staff/mod.rs).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("staff") {
        return staff::main(argv[1..].to_vec());
    }
    let args = Args::parse();
    if let Some(dir) = &args.parse_mail {
        return parse_mail_bench(dir, args.seconds);
    }
    let server = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent dir")?
            .join("oxidesk"),
    };
    if !server.exists() {
        bail!(
            "{} not found: build it first (cargo build --release)",
            server.display()
        );
    }
    let dir = tempfile::Builder::new().prefix("oxidesk-bench").tempdir()?;
    let db = dir.path().join("bench.db");
    let pg_admin = args.database.clone().filter(|d| d.starts_with("postgres"));
    let pg_name = format!("oxidesk_bench_{}", std::process::id());
    let db_url = match &pg_admin {
        Some(admin) => {
            let status = Command::new("psql")
                .arg(admin)
                .args(["-qc", &format!("CREATE DATABASE {pg_name}")])
                .status()?;
            if !status.success() {
                bail!("cannot create database {pg_name} with psql");
            }
            // Keep the admin URL's parameters (`?sslmode=…`, `?host=/socket`).
            let (base, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
            let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
            if query.is_empty() {
                format!("{base}/{pg_name}")
            } else {
                format!("{base}/{pg_name}?{query}")
            }
        }
        None => format!("sqlite://{}", db.display()),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();

    // Only `serve` and `migrate` create a database.
    let migrated = Command::new(&server)
        .env_remove("OXIDESK_CONFIG")
        .args(["--database", &db_url, "migrate"])
        .stdout(Stdio::null())
        .status()?;
    if !migrated.success() {
        bail!("oxidesk migrate failed");
    }
    let out = Command::new(&server)
        .env_remove("OXIDESK_CONFIG")
        .args(["--database", &db_url, "key", "add", "--ip", "127.0.0.1"])
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("key add failed");
    }
    let key = String::from_utf8(out.stdout)?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();

    if args.pipe {
        // Create the schema once, so concurrent first runs do not race.
        let _ = Command::new(&server)
            .env_remove("OXIDESK_CONFIG")
            .args(["--database", &db_url, "key", "list"])
            .output()?;
        let (mut lat, errors) = pipe_bench(&server, &db_url, &args)?;
        lat.sort_unstable();
        let check = oxidesk::config::Config::load(
            None,
            [("OXIDESK__DATABASE".to_string(), db_url.clone())],
        )?;
        let stored: i64 = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let store = oxidesk::cli::open_store(&check).await?;
                let counts = store.counts().await?;
                anyhow::Ok(
                    counts
                        .iter()
                        .find(|(t, _)| t == "tickets")
                        .map_or(0, |(_, n)| *n),
                )
            })?;
        println!(
            "oxidesk-bench: email through `oxidesk pipe`, {} at a time, {} s",
            args.concurrency, args.seconds
        );
        println!(
            "messages/s:       {:.0}",
            lat.len() as f64 / args.seconds as f64
        );
        println!("latency p50:      {:.2} ms", percentile(&lat, 0.50));
        println!("latency p99:      {:.2} ms", percentile(&lat, 0.99));
        println!("errors:           {errors}");
        println!("exit 0 count:     {}, tickets stored: {stored}", lat.len());
        drop_pg(pg_admin.as_deref(), &pg_name, args.keep);
        if errors > 0 || stored != lat.len() as i64 {
            bail!(
                "FAILED: {errors} errors, {stored} stored for {} accepted",
                lat.len()
            );
        }
        return Ok(());
    }

    let notify = args.notify || args.relay_down;
    NOTIFY.store(notify, std::sync::atomic::Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // Without --notify nothing connects to it; with it, a long run must
    // not keep every mail in memory: count only.
    let sink = runtime.block_on(SmtpSink::bind(0, Keep::Count))?;
    // --relay-down: a loopback port that was free a moment ago, so that
    // every connection is refused.
    let sink_port = if args.relay_down {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    } else {
        sink.port
    };
    // Stock helpdesk, plus staff alerts for Support and no hourly cap, so
    // that every ticket queues two mails when --notify is on.
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[mail]\nenabled = {}\nsmtp_port = {sink_port}\nfrom_address = \"support@example.com\"\n\
             autoresponse_limit_per_hour = 1000000000\n\n\
             [[departments]]\nid = 1\nname = \"Support\"\nalert_recipients = [\"staff@example.com\"]\n\
             [[departments]]\nid = 2\nname = \"Sales\"\n[[departments]]\nid = 3\nname = \"Maintenance\"\n",
            notify
        ),
    )?;
    let ports: Vec<u16> = (0..args.instances.max(1))
        .map(|i| {
            if i == 0 {
                Ok(port)
            } else {
                Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port())
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let mut children = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let log = std::fs::File::create(dir.path().join(format!("server{i}.log")))?;
        let child = Command::new(&server)
            .env_remove("OXIDESK_CONFIG")
            .arg("--config")
            .arg(&config)
            .args([
                "--database",
                &db_url,
                "serve",
                "--listen",
                &format!("127.0.0.1:{p}"),
            ])
            .stderr(log)
            .spawn()?;
        children.push(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                for c in &mut children {
                    let _ = c.kill();
                }
                bail!("server did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let format: &'static str = match args.format.as_str() {
        "xml" => "xml",
        "email" => "email",
        _ => "json",
    };
    let pids: Vec<u32> = children.iter().map(std::process::Child::id).collect();
    let cpu_at_start = cpu_us(&pids);
    let warm_until = Instant::now() + Duration::from_secs(args.warmup_seconds);
    let until = warm_until + Duration::from_secs(args.seconds);
    let results: Vec<ConnResult> = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|c| {
                tokio::spawn(drive(
                    format,
                    ports[c % ports.len()],
                    key.clone(),
                    c,
                    args.body_bytes,
                    warm_until,
                    until,
                ))
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await??);
        }
        anyhow::Ok(results)
    })?;
    let cpu_after_load = cpu_us(&pids);
    // --relay-down: what the load leaves the server to do (the outbox
    // against a relay that refuses connections), measured idle.
    let deferred = if args.relay_down {
        let window = if args.drain_seconds > 0 {
            args.drain_seconds
        } else {
            10
        };
        std::thread::sleep(Duration::from_secs(window));
        Some((cpu_us(&pids), window))
    } else {
        None
    };
    let rss: Option<u64> = children.iter().map(|c| peak_rss_kib(c.id())).sum();
    let during_load = sink.accepted();
    let mut drained = None;
    if args.notify && !args.relay_down && args.drain_seconds > 0 {
        // Idle server, backlog in the outbox: how fast does it deliver?
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.drain_seconds);
        let (mut last, mut last_change) = (during_load, started);
        while Instant::now() < deadline && last_change.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(50));
            let now = sink.accepted();
            if now != last {
                (last, last_change) = (now, Instant::now());
            }
        }
        let secs = last_change.duration_since(started).as_secs_f64();
        drained = Some((last - during_load, secs));
    }

    // SIGKILL: no graceful shutdown, no chance to flush anything late.
    for c in &mut children {
        c.kill()?;
        c.wait()?;
    }

    let mut latencies: Vec<u64> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let numbers: Vec<&String> = results.iter().flat_map(|r| r.numbers.iter()).collect();
    let errors: u64 = results.iter().map(|r| r.errors).sum();

    let check_config = oxidesk::config::Config::load(
        Some(&config),
        [("OXIDESK__DATABASE".to_string(), db_url.clone())],
    )?;
    let (missing, queued) = runtime.block_on(async {
        let store = oxidesk::cli::open_store(&check_config).await?;
        let mut missing = 0usize;
        for n in &numbers {
            // A 201 whose body is no ticket number is a missing ticket.
            let exists = match oxidesk::storage::TicketNumber::parse(n) {
                Some(number) => store.ticket_exists(number).await?,
                None => false,
            };
            if !exists {
                missing += 1;
            }
        }
        // Mail queued per ticket, over an even sample of the 201s (every
        // ticket should show both mails, sent or not).
        let step = (numbers.len() / 2000).max(1);
        let (mut sampled, mut queued) = (0usize, 0usize);
        for n in numbers.iter().step_by(step) {
            let Some(number) = oxidesk::storage::TicketNumber::parse(n) else {
                continue;
            };
            if let Some(t) = store.load_ticket(number).await? {
                sampled += 1;
                queued += t.notifications.len();
            }
        }
        anyhow::Ok((missing, (sampled, queued)))
    })?;
    let unique: std::collections::HashSet<&&String> = numbers.iter().collect();

    let measured = latencies.len();
    println!(
        "oxidesk-bench: {}, concurrency {}, {} s measured (+{} s warm-up), ~{} B bodies, {} on {}",
        args.format,
        args.concurrency,
        args.seconds,
        args.warmup_seconds,
        args.body_bytes,
        if ports.len() == 1 {
            "1 instance".to_string()
        } else {
            format!("{} instances", ports.len())
        },
        if pg_admin.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "tickets/s:        {:.0}",
        measured as f64 / args.seconds as f64
    );
    println!("latency p50:      {:.2} ms", percentile(&latencies, 0.50));
    println!("latency p99:      {:.2} ms", percentile(&latencies, 0.99));
    println!(
        "latency max:      {:.2} ms",
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "server peak RSS:  {} MiB",
        rss.map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or_else(|| "?".into())
    );
    println!("errors:           {errors}");
    if let (Some(start), Some(end)) = (cpu_at_start, cpu_after_load) {
        println!(
            "server CPU:       {:.1} µs/ticket during the load ({:.2} s)",
            (end - start) as f64 / numbers.len().max(1) as f64,
            (end - start) as f64 / 1e6
        );
    }
    if let (Some((Some(after), window)), Some(end)) = (deferred, cpu_after_load) {
        println!(
            "deferred:         {:.2} µs/ticket (server CPU {:.3} s in the {window} s after the load, {} tickets; relay down)",
            (after - end) as f64 / numbers.len().max(1) as f64,
            (after - end) as f64 / 1e6,
            numbers.len()
        );
    }
    if notify {
        println!(
            "notifications:    {:.2} queued per ticket (sample of {}), {} delivered to the SMTP sink during the run",
            queued.1 as f64 / queued.0.max(1) as f64,
            queued.0,
            during_load
        );
        if let Some((mails, secs)) = drained {
            println!(
                "drained after:    {mails} mails in {secs:.1} s ({:.0} mails/s, idle server)",
                mails as f64 / secs.max(0.001)
            );
        }
    }
    println!(
        "201s checked:     {} (unique {}), missing after SIGKILL: {missing}",
        numbers.len(),
        unique.len()
    );
    drop_pg(pg_admin.as_deref(), &pg_name, args.keep);
    if args.keep {
        println!("database kept at {}", dir.keep().display());
    }
    if missing > 0 || errors > 0 || unique.len() != numbers.len() {
        bail!(
            "FAILED: {missing} missing, {errors} errors, {} duplicates",
            numbers.len() - unique.len()
        );
    }
    Ok(())
}

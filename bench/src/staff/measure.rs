//! `oxidesk-bench staff measure`: the real `oxidesk serve` on a seeded
//! database, driven by concurrent agents over HTTP/1.1 keep-alive
//! connections, one scenario at a time for a fixed time each.

// `*rng.pick(..)` picks the `&str` out of a `&&str` for a generic call.
#![allow(clippy::explicit_auto_deref)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use oxidesk_smtp_sink::{Keep, SmtpSink};

use super::seed::TWENTY_MARK;
use super::textgen::{self, Rng};
use super::{DEPARTMENTS, MeasureArgs};

/// One signed-in agent: an API session and a web session.
#[derive(Debug, Clone)]
struct Agent {
    admin: bool,
    department: i64,
    token: String,
    cookie: String,
}

/// A request to send.
struct Req {
    post: bool,
    path: String,
    body: Option<String>,
    form: bool,
    auth: Auth,
}

#[derive(Clone, Copy)]
enum Auth {
    Bearer,
    Cookie,
}

/// A kept-alive HTTP/1 connection.
struct Conn {
    port: u16,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Conn {
    fn new(port: u16) -> Self {
        Self { port, sender: None }
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().context("no connection")?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn call(&mut self, r: &Req, agent: &Agent) -> anyhow::Result<Answer> {
        let mut b = Request::builder()
            .method(if r.post { "POST" } else { "GET" })
            .uri(&r.path)
            .header("host", "127.0.0.1");
        b = match r.auth {
            Auth::Bearer => b.header("authorization", format!("Bearer {}", agent.token)),
            Auth::Cookie => b.header("cookie", format!("oxidesk_session={}", agent.cookie)),
        };
        if r.body.is_some() {
            b = b.header(
                "content-type",
                if r.form {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                },
            );
        }
        let body = Full::new(Bytes::from(r.body.clone().unwrap_or_default()));
        self.send(b.body(body)?).await
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn get(path: String, auth: Auth) -> Req {
    Req {
        post: false,
        path,
        body: None,
        form: false,
        auth,
    }
}

/// What the scenarios draw from.
struct Data {
    /// Ticket numbers to search for (any status, department).
    numbers: Vec<String>,
    /// Open tickets per department (index as `DEPARTMENTS`), to reply to.
    open: Vec<Vec<String>>,
    /// The 20-entry ticket.
    twenty: String,
    /// Rare words that match a few tickets.
    rare: Vec<String>,
    /// Phrases to search for (`--phrase`, else [`PHRASES`]).
    phrases: Vec<String>,
}

const PHRASES: &[&str] = &[
    "\"out of toner\"",
    "\"access denied\"",
    "\"reset link\"",
    "\"ne fonctionne pas\"",
    "\"не печатает\"",
];

type Plan = Box<dyn Fn(&Agent, &Data, &mut Rng) -> Req + Send + Sync>;

/// The scenarios, in the order they run.
fn scenarios() -> Vec<(&'static str, Plan)> {
    fn dept(a: &Agent, rng: &mut Rng) -> i64 {
        if a.admin {
            DEPARTMENTS[rng.below(DEPARTMENTS.len() as u64) as usize].0
        } else {
            a.department
        }
    }
    fn search(q: &str) -> Req {
        get(
            format!("/api/v1/tickets?q={}&status=any&limit=50", enc(q)),
            Auth::Bearer,
        )
    }
    vec![
        (
            "queue",
            Box::new(|a: &Agent, _: &Data, rng: &mut Rng| {
                let status = match rng.below(10) {
                    0..7 => "open",
                    7..9 => "resolved",
                    _ => "closed",
                };
                get(
                    format!(
                        "/api/v1/tickets?department={}&status={status}&sort=-updated&limit=50",
                        dept(a, rng)
                    ),
                    Auth::Bearer,
                )
            }) as Plan,
        ),
        (
            "search-common",
            Box::new(|_: &Agent, _: &Data, rng: &mut Rng| {
                search(rng.pick(&["printer", "password", "invoice"]))
            }),
        ),
        (
            "search-rare",
            Box::new(|_: &Agent, d: &Data, rng: &mut Rng| search(rng.pick_ref(&d.rare).as_str())),
        ),
        (
            "search-phrase",
            Box::new(|_: &Agent, d: &Data, rng: &mut Rng| {
                search(rng.pick_ref(&d.phrases).as_str())
            }),
        ),
        (
            "search-number",
            Box::new(|_: &Agent, d: &Data, rng: &mut Rng| {
                search(rng.pick_ref(&d.numbers).as_str())
            }),
        ),
        (
            "web-queue",
            Box::new(|_: &Agent, _: &Data, _: &mut Rng| get("/scp/".into(), Auth::Cookie)),
        ),
        (
            "web-ticket",
            Box::new(|_: &Agent, d: &Data, _: &mut Rng| {
                get(format!("/scp/tickets/{}", d.twenty), Auth::Cookie)
            }),
        ),
        (
            "reply",
            Box::new(|a: &Agent, d: &Data, rng: &mut Rng| {
                let ix = (dept(a, rng) - 1) as usize;
                let number = rng.pick_ref(&d.open[ix]).clone();
                let body = textgen::reply_body(rng, textgen::Lang::En, "Bench Agent");
                Req {
                    post: true,
                    path: format!("/api/v1/tickets/{number}/replies"),
                    body: Some(serde_json::json!({"body": body, "format": "text"}).to_string()),
                    form: false,
                    auth: Auth::Bearer,
                }
            }),
        ),
    ]
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u64>,
    errors: u64,
}

async fn worker(
    port: u16,
    agent: Agent,
    data: std::sync::Arc<Data>,
    plan: std::sync::Arc<Plan>,
    seed: u64,
    warm_until: Instant,
    until: Instant,
) -> anyhow::Result<WorkerResult> {
    let mut conn = Conn::new(port);
    let mut rng = Rng::new(seed);
    let mut out = WorkerResult::default();
    while Instant::now() < until {
        let req = plan(&agent, &data, &mut rng);
        let started = Instant::now();
        let answer = conn.call(&req, &agent).await;
        let elapsed = started.elapsed();
        match answer {
            Ok(a) if (200..300).contains(&a.status) => {
                if started >= warm_until {
                    out.latencies_us.push(elapsed.as_micros() as u64);
                }
            }
            Ok(a) => {
                out.errors += 1;
                if out.errors <= 2 {
                    eprintln!(
                        "{} {}: {}",
                        req.path,
                        a.status,
                        String::from_utf8_lossy(&a.body[..a.body.len().min(200)])
                    );
                }
            }
            Err(e) => {
                out.errors += 1;
                conn.sender = None;
                if out.errors <= 2 {
                    eprintln!("{}: {e}", req.path);
                }
            }
        }
    }
    Ok(out)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// The largest `RssAnon` of the server seen after a scenario, KiB.
static ANON_PEAK_KIB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

/// One scenario's figures.
struct Figures {
    name: &'static str,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    rate: f64,
    errors: u64,
}

fn target(name: &str) -> Option<f64> {
    match name {
        "queue" | "reply" => Some(20.0),
        n if n.starts_with("search") => Some(50.0),
        n if n.starts_with("web") => Some(30.0),
        _ => None,
    }
}

/// Makes an agent with the CLI and returns its password.
fn add_agent(
    server: &std::path::Path,
    config: &std::path::Path,
    email: &str,
    name: &str,
    admin: bool,
    department: i64,
) -> anyhow::Result<String> {
    let password = format!("bench-password-{}", std::process::id());
    let department = department.to_string();
    let mut args = vec![
        "agent",
        "add",
        "--email",
        email,
        "--name",
        name,
        "--password-stdin",
    ];
    if admin {
        args.push("--admin");
    } else {
        args.extend(["--department", &department]);
    }
    let out = oxidesk_cli(server, config, &args, Some(&password))?;
    if out.status.success() {
        return Ok(password);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.contains("already exists") {
        bail!("agent add {email}: {stderr}");
    }
    // A run before this one made it: the same agents every run, so that
    // pages listing agents weigh the same from run to run.
    let list = oxidesk_cli(server, config, &["agent", "list"], None)?;
    if !list.status.success() {
        bail!("agent list: {}", String::from_utf8_lossy(&list.stderr));
    }
    let listed = String::from_utf8_lossy(&list.stdout);
    let id = listed
        .lines()
        .find_map(|l| {
            let mut cols = l.split_whitespace();
            let id = cols.next()?;
            (cols.next()? == email).then(|| id.to_string())
        })
        .with_context(|| format!("agent {email} exists but is not listed"))?;
    let out = oxidesk_cli(
        server,
        config,
        &["agent", "password", &id, "--password-stdin"],
        Some(&password),
    )?;
    if !out.status.success() {
        bail!(
            "agent password {email}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(password)
}

/// Runs `oxidesk --config CONFIG ARGS…`, writing `stdin_line` (and a
/// newline) to its standard input when given.
fn oxidesk_cli(
    server: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
    stdin_line: Option<&str>,
) -> anyhow::Result<std::process::Output> {
    let mut child = Command::new(server)
        .env_remove("OXIDESK_CONFIG")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(if stdin_line.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(line) = stdin_line {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(format!("{line}\n").as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

async fn sign_in(port: u16, email: &str, password: &str) -> anyhow::Result<(String, String)> {
    let mut conn = Conn::new(port);
    let body = serde_json::json!({"email": email, "password": password}).to_string();
    let a = conn
        .send(
            Request::post("/api/v1/session")
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))?,
        )
        .await?;
    if a.status != 201 {
        bail!("POST /api/v1/session: {}", a.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&a.body)?;
    let token = v["token"].as_str().context("no token")?.to_string();
    let form = format!(
        "email={}&password={}&next=%2Fscp%2F",
        enc(email),
        enc(password)
    );
    let a = conn
        .send(
            Request::post("/scp/login")
                .header("host", "127.0.0.1")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(form)))?,
        )
        .await?;
    let cookie = a
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("oxidesk_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .with_context(|| format!("POST /scp/login: {} without a session cookie", a.status))?;
    Ok((token, cookie))
}

/// Ticket numbers from an API answer.
fn numbers_of(body: &[u8]) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    let list = v["tickets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["number"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok((list, v["next_cursor"].as_str().map(str::to_string)))
}

async fn gather(port: u16, admin: &Agent, phrases: &[String]) -> anyhow::Result<Data> {
    let mut conn = Conn::new(port);
    let mut list = async |path: String| -> anyhow::Result<(Vec<String>, Option<String>)> {
        let a = conn.call(&get(path.clone(), Auth::Bearer), admin).await?;
        if a.status != 200 {
            bail!("{path}: {}", a.status);
        }
        numbers_of(&a.body)
    };
    // Replies go to 1,000 open tickets of each department taken across
    // its backlog (by number: random digits), not to the most recently
    // updated: a reply makes its ticket the most recent, so those same
    // 200 tickets got every reply of every run, and their threads grew
    // to over 100 entries (the seed's average is 3) after a few runs.
    // Each run starts at another page (0–15), so runs spread too.
    let skip = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 16);
    let mut open = Vec::new();
    for (id, _) in DEPARTMENTS {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 0..5 + skip {
            let mut path =
                format!("/api/v1/tickets?department={id}&status=open&sort=number&limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", enc(c)));
            }
            let (n, next) = list(path).await?;
            if page >= skip || next.is_none() {
                all.extend(n);
            }
            cursor = next;
            if cursor.is_none() {
                break;
            }
        }
        if all.is_empty() {
            bail!("no open tickets in department {id}: seed first");
        }
        open.push(all);
    }
    // Numbers from all over the number space (they are random digits).
    let mut numbers = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut path = "/api/v1/tickets?status=any&sort=number&limit=200".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let (n, next) = list(path).await?;
        numbers.extend(n);
        cursor = next;
    }
    for (_, closed) in [(0, "closed"), (1, "resolved")] {
        let (n, _) = list(format!(
            "/api/v1/tickets?status={closed}&sort=-created&limit=200"
        ))
        .await?;
        numbers.extend(n);
    }
    let (t, _) = list(format!("/api/v1/tickets?q={TWENTY_MARK}&status=any")).await?;
    let twenty = t
        .first()
        .cloned()
        .context("the 20-entry ticket is missing: seed with --seed 1")?;
    // Rare words: pseudo-words deep in the Zipf tail, kept when they
    // match 1–20 tickets.
    let mut rare = Vec::new();
    let mut matches = Vec::new();
    let mut k = 20_000u64;
    while rare.len() < 20 && k < 200_000 {
        let w = textgen::word(k);
        let (n, _) = list(format!("/api/v1/tickets?q={w}&status=any&limit=50")).await?;
        if (1..=20).contains(&n.len()) {
            matches.push(n.len());
            rare.push(w);
        }
        k += 3_719;
    }
    if rare.is_empty() {
        bail!("no rare word found");
    }
    println!(
        "data: {} numbers, open per department {:?}, 20-entry ticket {twenty}, {} rare words ({:?} matches)",
        numbers.len(),
        open.iter().map(Vec::len).collect::<Vec<_>>(),
        rare.len(),
        matches
    );
    for q in ["printer", "password", "invoice"]
        .iter()
        .map(|s| s.to_string())
        .chain(phrases.iter().cloned())
    {
        let (n, next) = list(format!("/api/v1/tickets?q={}&status=any&limit=50", enc(&q))).await?;
        println!(
            "  q={q}: {}{} on the first page",
            n.len(),
            if next.is_some() { "+ (more)" } else { "" }
        );
    }
    Ok(Data {
        numbers,
        open,
        twenty,
        rare,
        phrases: phrases.to_vec(),
    })
}

/// HTML bytes of a page and the bytes of the stylesheets it links.
async fn page_weight(port: u16, agent: &Agent, path: &str) -> anyhow::Result<(usize, usize)> {
    let mut conn = Conn::new(port);
    let a = conn.call(&get(path.into(), Auth::Cookie), agent).await?;
    if a.status != 200 {
        bail!("{path}: {}", a.status);
    }
    let html = String::from_utf8_lossy(&a.body).to_string();
    let mut css = 0;
    for part in html.split("<link").skip(1) {
        let tag = part.split('>').next().unwrap_or("");
        if !tag.contains("stylesheet") {
            continue;
        }
        if let Some(href) = tag
            .split("href=\"")
            .nth(1)
            .and_then(|h| h.split('"').next())
        {
            let c = conn
                .call(&get(href.replace("&amp;", "&"), Auth::Cookie), agent)
                .await?;
            css += c.body.len();
        }
    }
    Ok((a.body.len(), css))
}

pub fn run(args: &MeasureArgs) -> anyhow::Result<()> {
    let server: PathBuf = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent dir")?
            .join("oxidesk"),
    };
    if !server.exists() {
        bail!("{} not found: cargo build --release", server.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sink = runtime.block_on(SmtpSink::bind(0, Keep::Count))?;
    let (_, dir) = super::config_for(&args.database, Some(sink.port), "")?;
    let config = dir.path().join("staff.toml");

    // Agents: one admin, the others in one department each; the same
    // ones (by address) in every run on a database.
    let mut accounts = Vec::new();
    for k in 0..args.concurrency {
        let admin = k == 0;
        let department = DEPARTMENTS[k % DEPARTMENTS.len()].0;
        let email = format!("bench-{k}@agents.example.com");
        let password = add_agent(
            &server,
            &config,
            &email,
            &format!("Bench Agent {k}"),
            admin,
            department,
        )?;
        accounts.push((email, password, admin, department));
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let started = Instant::now();
    let mut child = Command::new(&server)
        .env_remove("OXIDESK_CONFIG")
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(log)
        .spawn()?;
    let pid = child.id();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            bail!("server did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "server up in {:.1} s on {}",
        started.elapsed().as_secs_f64(),
        if args.database.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let result = runtime.block_on(measure(args, port, pid, accounts));
    let hwm = proc_status_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    // SQLite's read connections map the database file: its pages they
    // touch count in VmRSS/VmHWM (the kernel's page cache, shared and
    // reclaimable); the server's own memory is the anonymous part.
    println!(
        "server peak RSS (VmHWM, mapped database pages included): {} MiB; peak anonymous RSS (sampled after each scenario): {:.1} MiB; mails delivered to the sink: {}",
        hwm.map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or_else(|| "?".into()),
        ANON_PEAK_KIB.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        sink.accepted()
    );
    if result.is_err() {
        let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!(
            "server log (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    result
}

async fn measure(
    args: &MeasureArgs,
    port: u16,
    pid: u32,
    accounts: Vec<(String, String, bool, i64)>,
) -> anyhow::Result<()> {
    let mut agents = Vec::new();
    for (email, password, admin, department) in &accounts {
        let (token, cookie) = sign_in(port, email, password).await?;
        agents.push(Agent {
            admin: *admin,
            department: *department,
            token,
            cookie,
        });
    }
    let phrases: Vec<String> = if args.phrase.is_empty() {
        PHRASES.iter().map(|s| s.to_string()).collect()
    } else {
        args.phrase.clone()
    };
    let data = std::sync::Arc::new(gather(port, &agents[0], &phrases).await?);
    for path in ["/scp/".to_string(), format!("/scp/tickets/{}", data.twenty)] {
        let (html, css) = page_weight(port, &agents[0], &path).await?;
        println!(
            "page {path}: HTML {html} B + CSS {css} B = {:.1} KB (target ≤ 60 KB)",
            (html + css) as f64 / 1000.0
        );
    }
    println!(
        "{} agents (1 admin, the others one department each), {} s per scenario after {} s warm-up",
        args.concurrency, args.seconds, args.warmup_seconds
    );
    let mut all: Vec<Vec<Figures>> = Vec::new();
    for round in 0..args.rounds {
        let mut figures = Vec::new();
        for (name, plan) in scenarios() {
            if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
                continue;
            }
            let plan = std::sync::Arc::new(plan);
            let warm_until = Instant::now() + Duration::from_secs(args.warmup_seconds);
            let until = warm_until + Duration::from_secs(args.seconds);
            let tasks: Vec<_> = (0..args.concurrency)
                .map(|w| {
                    // The ticket page: the 20-entry ticket is in Support;
                    // agents of other departments look at it as the admin.
                    let mut agent = agents[w].clone();
                    if name == "web-ticket" && !agent.admin && agent.department != 1 {
                        agent = agents[0].clone();
                    }
                    tokio::spawn(worker(
                        port,
                        agent,
                        data.clone(),
                        plan.clone(),
                        ((round as u64) << 32) ^ (w as u64 + 1) ^ 0x5151,
                        warm_until,
                        until,
                    ))
                })
                .collect();
            let mut lat = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let r = t.await??;
                lat.extend(r.latencies_us);
                errors += r.errors;
            }
            lat.sort_unstable();
            let f = Figures {
                name,
                p50: percentile(&lat, 0.50),
                p90: percentile(&lat, 0.90),
                p99: percentile(&lat, 0.99),
                max: lat.last().copied().unwrap_or(0) as f64 / 1000.0,
                rate: lat.len() as f64 / args.seconds as f64,
                errors,
            };
            let anon = proc_status_kib(pid, "RssAnon:").unwrap_or(0);
            ANON_PEAK_KIB.fetch_max(anon, std::sync::atomic::Ordering::Relaxed);
            println!(
                "round {} {:<14} p50 {:7.2}  p90 {:7.2}  p99 {:7.2}  max {:8.2} ms  {:7.0} req/s  errors {}  (RSS {} MiB, anonymous {} MiB)",
                round + 1,
                f.name,
                f.p50,
                f.p90,
                f.p99,
                f.max,
                f.rate,
                f.errors,
                proc_status_kib(pid, "VmRSS:").unwrap_or(0) / 1024,
                anon / 1024
            );
            figures.push(f);
        }
        all.push(figures);
    }
    // The summary: medians over rounds, p99 range.
    println!();
    println!(
        "| scenario | p50 ms | p90 ms | p99 ms | max ms | req/s | p99 target | p99 over rounds |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for i in 0..all[0].len() {
        let mut rows: Vec<&Figures> = all.iter().map(|r| &r[i]).collect();
        rows.sort_by(|a, b| a.p99.total_cmp(&b.p99));
        let mid = rows[rows.len() / 2];
        let t = target(mid.name);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {} | {} |",
            mid.name,
            mid.p50,
            mid.p90,
            mid.p99,
            mid.max,
            mid.rate,
            t.map(|t| format!(
                "≤ {t:.0} {}",
                if mid.p99 <= t { "met" } else { "**missed**" }
            ))
            .unwrap_or_default(),
            if rows.len() > 1 {
                format!("{:.2}–{:.2}", rows[0].p99, rows[rows.len() - 1].p99)
            } else {
                "-".into()
            }
        );
    }
    Ok(())
}

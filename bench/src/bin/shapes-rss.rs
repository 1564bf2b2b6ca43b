//! `shapes-rss`: the server's peak memory under bodies of hostile shapes
//! (issue 16 point 3), measured as the `VmHWM` of a real `oxidesk serve`.
//!
//! Each scenario starts a fresh server (so its high-water mark is the
//! scenario's own) on a fresh SQLite file, or a fresh PostgreSQL database
//! with `--database postgres://…`, sends its requests at once, each on its
//! own connection, and prints: the answers by status, the server's RSS
//! before the load, its peak (VmHWM), its RSS after, and the peak over the
//! configured bytes in flight.
//!
//! ```text
//! cargo build --release --bin oxidesk
//! cargo run -p oxidesk-bench --bin shapes-rss -- --server target/release/oxidesk
//! ```
//!
//! Scenarios (sizes just under the default 40 MiB body cap):
//! * `plain16`: 16 concurrent 39 MiB tickets whose message is plain text;
//! * `attach16`: 16 concurrent tickets with one 24 MiB base64 attachment
//!   (32 MiB of body; the default attachment cap is 25 MiB);
//! * `xml16`: the same attachment in XML, base64 in CRLF-wrapped lines;
//! * `empties8`: 8 concurrent 37 MiB `"attachments":[{},{},…]`;
//! * `keys1`: one 40 MiB object of 3.3M keys.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[derive(Debug, Parser)]
struct Args {
    /// The oxidesk binary (a release build).
    #[arg(long)]
    server: PathBuf,
    /// A PostgreSQL admin URL: each scenario gets a fresh database made
    /// for it and dropped after; default: a fresh SQLite file.
    #[arg(long)]
    database: Option<String>,
    /// Scenarios to run (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// `limits.max_bytes_in_flight` for the server (only set when given:
    /// a server from before the budget refuses the unknown setting).
    #[arg(long)]
    budget: Option<u64>,
    /// `limits.bytes_in_flight_wait_ms` (only set when given).
    #[arg(long)]
    wait_ms: Option<u64>,
}

const MIB: usize = 1024 * 1024;

fn head(tag: &str) -> String {
    format!(
        r#"{{"name":"Shape {tag}","email":"{tag}@example.com","subject":"shape {tag}","alert":false,"autorespond":false,"#
    )
}

fn plain(size: usize) -> Vec<u8> {
    let mut b = head("plain").into_bytes();
    b.extend(br#""message":""#);
    let words = b"lorem ipsum dolor sit amet ";
    while b.len() < size - 2 {
        b.push(words[b.len() % words.len()]);
    }
    b.extend(br#""}"#);
    b
}

fn base64_of(n: usize) -> String {
    use std::fmt::Write as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // Any base64 text decodes; n is a multiple of 3 here, so 4n/3 symbols.
    let mut s = String::with_capacity(n / 3 * 4);
    for i in 0..n / 3 * 4 {
        let _ = s.write_char(char::from(ALPHABET[(i * 7 + i / 64) % 64]));
    }
    s
}

fn attachment_json(decoded: usize) -> Vec<u8> {
    let mut b = head("attach").into_bytes();
    b.extend(
        br#""message":"see file","attachments":[{"big.bin":"data:application/octet-stream;base64,"#,
    );
    b.extend(base64_of(decoded).as_bytes());
    b.extend(br#""}]}"#);
    b
}

fn attachment_xml(decoded: usize) -> Vec<u8> {
    let b64 = base64_of(decoded);
    let mut b = b"<?xml version=\"1.0\"?><ticket><name>X</name><email>x@example.com</email>\
        <subject>xml</subject><alert>false</alert><autorespond>false</autorespond>\
        <message>see file</message><attachments><file name=\"big.bin\" encoding=\"base64\">"
        .to_vec();
    for line in b64.as_bytes().chunks(76) {
        b.extend(line);
        b.extend(b"\r\n");
    }
    b.extend(b"</file></attachments></ticket>");
    b
}

fn empties(size: usize) -> Vec<u8> {
    let mut b = head("empties").into_bytes();
    b.extend(br#""message":"m","attachments":[{}"#);
    while b.len() < size - 3 {
        b.extend(b",{}");
    }
    b.extend(b"]}");
    b
}

fn keys(size: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut b = head("keys").into_bytes();
    b.extend(br#""message":"m""#);
    let mut i = 0u64;
    while b.len() < size - 16 {
        let _ = write!(b, ",\"k{i}\":1");
        i += 1;
    }
    b.push(b'}');
    b
}

struct Scenario {
    name: &'static str,
    path: &'static str,
    concurrency: usize,
    body: fn() -> Vec<u8>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "plain16",
        path: "/api/tickets.json",
        concurrency: 16,
        body: || plain(39 * MIB),
    },
    Scenario {
        name: "attach16",
        path: "/api/tickets.json",
        concurrency: 16,
        body: || attachment_json(24 * MIB),
    },
    Scenario {
        name: "xml16",
        path: "/api/tickets.xml",
        concurrency: 16,
        body: || attachment_xml(24 * MIB),
    },
    Scenario {
        name: "empties8",
        path: "/api/tickets.json",
        concurrency: 8,
        body: || empties(37 * MIB),
    },
    Scenario {
        name: "keys1",
        path: "/api/tickets.json",
        concurrency: 1,
        body: || keys(40 * MIB - 1024),
    },
];

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

struct Server {
    child: Child,
    port: u16,
    key: String,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin, name)) = &self.pg {
            let _ = Command::new("psql")
                .arg(admin)
                .args([
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .status();
        }
    }
}

fn start(args: &Args, n: usize) -> anyhow::Result<Server> {
    let dir = tempfile::Builder::new().prefix("shapes-rss").tempdir()?;
    let (db_url, pg) = match &args.database {
        Some(admin) => {
            let name = format!("oxidesk_shapes_{}_{n}", std::process::id());
            let ok = Command::new("psql")
                .arg(admin)
                .args(["-qc", &format!("CREATE DATABASE {name}")])
                .status()?
                .success();
            if !ok {
                bail!("cannot create database {name}");
            }
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            (format!("{base}/{name}"), Some((admin.clone(), name)))
        }
        None => (
            format!("sqlite://{}", dir.path().join("shapes.db").display()),
            None,
        ),
    };
    let mut env: Vec<(String, String)> = Vec::new();
    if let Some(b) = args.budget {
        env.push(("OXIDESK__LIMITS__MAX_BYTES_IN_FLIGHT".into(), b.to_string()));
    }
    if let Some(w) = args.wait_ms {
        env.push((
            "OXIDESK__LIMITS__BYTES_IN_FLIGHT_WAIT_MS".into(),
            w.to_string(),
        ));
    }
    let run = |extra: &[&str]| {
        let mut c = Command::new(&args.server);
        c.env_remove("OXIDESK_CONFIG")
            .envs(env.iter().cloned())
            .args(["--database", &db_url])
            .args(extra);
        c
    };
    if !run(&["migrate"]).stdout(Stdio::null()).status()?.success() {
        bail!("migrate failed");
    }
    let out = run(&["key", "add", "--ip", "127.0.0.1"])
        .stderr(Stdio::null())
        .output()?;
    let key = String::from_utf8(out.stdout)?
        .lines()
        .next()
        .context("no key")?
        .to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("server.log"))?;
    let child = run(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stderr(log)
        .spawn()?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("server did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server {
        child,
        port,
        key,
        pg,
        _dir: dir,
    })
}

async fn send(port: u16, key: String, path: &'static str, body: Bytes) -> anyhow::Result<u16> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::post(path)
        .header("host", "127.0.0.1")
        .header("x-api-key", key)
        .body(Full::new(body))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let text = resp.into_body().collect().await?.to_bytes();
    if status != 201 && status != 400 && status != 413 {
        eprintln!("  {status}: {}", String::from_utf8_lossy(&text).trim());
    }
    Ok(status)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    println!(
        "scenario   n  body_MiB  answers                 rss_before_MiB  peak_MiB  rss_after_MiB  wall_s"
    );
    for (i, s) in SCENARIOS.iter().enumerate() {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == s.name) {
            continue;
        }
        let body = Bytes::from((s.body)());
        let server = start(&args, i)?;
        let pid = server.child.id();
        let before = status_kib(pid, "VmRSS:");
        let started = Instant::now();
        let statuses: Vec<u16> = runtime.block_on(async {
            let tasks: Vec<_> = (0..s.concurrency)
                .map(|_| tokio::spawn(send(server.port, server.key.clone(), s.path, body.clone())))
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await??);
            }
            anyhow::Ok(out)
        })?;
        let wall = started.elapsed().as_secs_f64();
        let peak = status_kib(pid, "VmHWM:");
        let after = status_kib(pid, "VmRSS:");
        let mut counts = std::collections::BTreeMap::new();
        for st in statuses {
            *counts.entry(st).or_insert(0) += 1;
        }
        let answers: Vec<String> = counts.iter().map(|(s, n)| format!("{n}×{s}")).collect();
        println!(
            "{:<9} {:>2}  {:>8.1}  {:<22}  {:>14.0}  {:>8.0}  {:>13.0}  {:>6.1}",
            s.name,
            s.concurrency,
            body.len() as f64 / MIB as f64,
            answers.join(" "),
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            after as f64 / 1024.0,
            wall
        );
        drop(server);
    }
    Ok(())
}

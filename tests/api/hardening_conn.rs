//! Issue 16, points 1, 6 and 8: slow and idle clients cannot hold the
//! server (header and body deadlines, the keep-alive idle timeout, the
//! connection cap), a failing store answers 503 fast and recovers, and an
//! answer that ends a connection says `Connection: close`. Raw sockets
//! over loopback; deadlines of a second or two, measured.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_env, ticket};

/// A server with `[server]` set by `OXIDESK__SERVER__…` variables.
async fn app_with(server: &[(&str, &str)]) -> TestApp {
    let env: Vec<(String, String)> = server
        .iter()
        .map(|(k, v)| {
            (
                format!("OXIDESK__SERVER__{}", k.to_uppercase()),
                v.to_string(),
            )
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_app_env("", &env).await
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header lines, lower-cased.
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n.trim() == name).then(|| v.trim())
        })
    }
}

/// Reads one answer (head and `Content-Length` body); `None` when the
/// connection ends first.
async fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    Some(Answer { status, head, body })
}

/// Reads until the server closes the connection (EOF or reset), and
/// returns what it sent meanwhile; panics after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; it sent {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// A valid ticket as JSON, padded with spaces to `size` bytes.
fn ticket_of_size(tag: &str, size: usize) -> Vec<u8> {
    let mut body = ticket(tag).to_string().into_bytes();
    assert!(body.len() <= size);
    body.resize(size, b' ');
    body
}

fn post_head(addr: SocketAddr, key: &str, length: usize) -> String {
    format!(
        "POST /api/tickets.json HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// Connects, sends a partial request head, then one more byte every
/// 200 ms; returns how long the server took to close it.
async fn slow_header_client(addr: SocketAddr, limit: Duration) -> Duration {
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(b"POST /api/tickets.json HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(b"a").await.is_err() {
                break;
            }
        }
    });
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, read.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(_)) => {}
            Err(_) => panic!("a slow header client was kept for {limit:?}"),
        }
    }
    trickle.abort();
    start.elapsed()
}

async fn post_ticket(app: &TestApp, tag: &str) -> (u16, Duration) {
    // A client of its own: a fresh connection, as a new client would.
    let client = reqwest::Client::new();
    let start = Instant::now();
    let r = client
        .post(format!("http://{}/api/tickets.json", app.addr))
        .header("X-API-Key", &app.key)
        .body(ticket(tag).to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_closed_and_do_not_block_others() {
    let app = app_with(&[("header_read_timeout_secs", "1")]).await;
    let slow: Vec<_> = (0..20)
        .map(|_| tokio::spawn(slow_header_client(app.addr, Duration::from_secs(10))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took) = post_ticket(&app, "beside-slow-headers").await;
    assert_eq!(status, 201);
    assert!(
        took < Duration::from_secs(1),
        "a normal client took {took:?}"
    );
    for client in slow {
        let held = client.await.unwrap();
        // Closed at its deadline of 1 s, not before and not much after.
        assert!(
            held >= Duration::from_millis(900) && held < Duration::from_millis(2500),
            "a slow header client was closed after {held:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_shorter_than_content_length_times_out() {
    let app = app_with(&[("body_timeout_secs", "1")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let start = Instant::now();
    let body = ticket_of_size("short-body", 1000);
    stream
        .write_all(post_head(app.addr, &app.key, 1000).as_bytes())
        .await
        .unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), read_answer(&mut stream))
        .await
        .expect("no answer within 10 s")
        .expect("closed without an answer");
    let took = start.elapsed();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert!(answer.body.contains("did not arrive in time"), "{answer:?}");
    closed_within(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(app.count("tickets").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_at_its_minimum_rate() {
    let app = app_with(&[
        ("body_timeout_secs", "1"),
        ("body_min_bytes_per_sec", "1024"),
    ])
    .await;
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let body = ticket_of_size("trickle", 100_000);
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(post_head(app.addr, &app.key, body.len()).as_bytes())
        .await
        .unwrap();
    let start = Instant::now();
    // 20 bytes a second: each earns the deadline 20 ms.
    let trickle = tokio::spawn(async move {
        for byte in body.chunks(1) {
            if write.write_all(byte).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), read.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("a trickling body was kept for 10 s"),
        }
    }
    let took = start.elapsed();
    trickle.abort();
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "cut off after {took:?}"
    );
    assert_eq!(app.count("tickets").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_body_outlasts_the_base_deadline() {
    let app = app_with(&[
        ("body_timeout_secs", "1"),
        ("body_min_bytes_per_sec", "1024"),
    ])
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let body = ticket_of_size("steady", 4096);
    stream
        .write_all(post_head(app.addr, &app.key, body.len()).as_bytes())
        .await
        .unwrap();
    let start = Instant::now();
    // 1 KiB every 500 ms: 2 KiB/s, past the 1 s base but above the rate.
    for part in body.chunks(1024) {
        stream.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let answer = read_answer(&mut stream).await.expect("an answer");
    assert!(start.elapsed() > Duration::from_millis(1500));
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.header("connection"), None, "{answer:?}");
    assert_eq!(app.count("tickets").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let app = app_with(&[("header_read_timeout_secs", "1")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // Two requests on the connection: it is kept alive between them...
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await.expect("an answer");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("connection"), None, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // ...and closed once idle for the deadline.
    let idle = Instant::now() - Duration::from_millis(500);
    let sent = closed_within(&mut stream, Duration::from_secs(5)).await;
    let took = idle.elapsed();
    assert!(sent.is_empty(), "{:?}", String::from_utf8_lossy(&sent));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "an idle connection was closed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_held_connections_leave_a_201_under_a_second() {
    let app = app_with(&[
        ("header_read_timeout_secs", "2"),
        ("body_timeout_secs", "2"),
    ])
    .await;
    let addr = app.addr;
    let key = app.key.clone();
    let mut held = Vec::new();
    // 200 that send nothing, 200 that trickle a head, 100 that send a
    // head and part of a body.
    // Connected one after another, as the clients of a busy server
    // arrive: 500 at once would overflow the test listener's backlog of
    // 128 (tokio's), a limit of the kernel, not of the server.
    for i in 0..500 {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let trickle = match i % 5 {
            0 | 1 => None,
            2 | 3 => {
                stream
                    .write_all(b"POST /api/tickets.json HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await
                    .unwrap();
                Some(())
            }
            _ => {
                stream
                    .write_all(post_head(addr, &key, 1000).as_bytes())
                    .await
                    .unwrap();
                stream.write_all(b"{\"name\":").await.unwrap();
                None
            }
        };
        held.push(tokio::spawn(async move {
            let mut chunk = [0u8; 1024];
            loop {
                let read =
                    tokio::time::timeout(Duration::from_millis(200), stream.read(&mut chunk));
                match read.await {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(_)) => {}
                    Err(_) if start.elapsed() > Duration::from_secs(10) => {
                        panic!("a held connection was kept for 10 s")
                    }
                    Err(_) => {
                        if trickle.is_some() && stream.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                }
            }
            (i % 5, start.elapsed())
        }));
    }
    let (status, took) = post_ticket(&app, "beside-500").await;
    assert_eq!(status, 201);
    assert!(
        took < Duration::from_secs(1),
        "a normal client took {took:?} beside 500 held connections"
    );
    let mut worst = Duration::ZERO;
    for h in held {
        let (kind, after) = h.await.unwrap();
        assert!(
            after < Duration::from_millis(4000),
            "a held connection (kind {kind}) was closed only after {after:?} (deadline 2 s)"
        );
        worst = worst.max(after);
    }
    eprintln!("500 held connections: a 201 in {took:?}; the last closed after {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_is_enforced() {
    let app = app_with(&[("max_connections", "4"), ("header_read_timeout_secs", "30")]).await;
    // Four connections the server has accepted (each got an answer) and
    // that stay open, idle.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_answer(&mut stream).await.unwrap().status, 200);
        held.push(stream);
    }
    // A fifth connects (the kernel's backlog) but is not served...
    let mut fifth = TcpStream::connect(app.addr).await.unwrap();
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = tokio::spawn(async move {
        let answer = read_answer(&mut fifth).await;
        (answer.map(|a| a.status), Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...until one of the four closes.
    let released = Instant::now();
    drop(held.pop());
    let (status, at) = tokio::time::timeout(Duration::from_secs(5), answered)
        .await
        .expect("the fifth was not served after a connection closed")
        .unwrap();
    assert_eq!(status, Some(200));
    assert!(
        at > released,
        "the fifth connection was served beside four at the cap of 4"
    );
    assert!(
        at - released < Duration::from_secs(1),
        "served {:?} after the release",
        at - released
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_close_says_connection_close() {
    let app = app_with(&[]).await;
    // A wrong key and a body the server does not read: the 401 ends the
    // connection, and says so.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let body = ticket_of_size("unauthorized", 100_000);
    stream
        .write_all(post_head(app.addr, "not-a-key", body.len()).as_bytes())
        .await
        .unwrap();
    stream.write_all(&body[..1000]).await.unwrap();
    let answer = read_answer(&mut stream).await.expect("an answer");
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    closed_within(&mut stream, Duration::from_secs(2)).await;

    // The same with the whole (small) body sent: still unread, still said.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let body = ticket_of_size("unauthorized-small", 200);
    stream
        .write_all(post_head(app.addr, "not-a-key", body.len()).as_bytes())
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    let answer = read_answer(&mut stream).await.expect("an answer");
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    closed_within(&mut stream, Duration::from_secs(2)).await;

    // A request whose body was read keeps its connection: two tickets on
    // one connection, neither answer saying close.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    for tag in ["kept-1", "kept-2"] {
        let body = ticket_of_size(tag, 300);
        stream
            .write_all(post_head(app.addr, &app.key, body.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(&body).await.unwrap();
        let answer = read_answer(&mut stream).await.expect("an answer");
        assert_eq!(answer.status, 201, "{answer:?}");
        assert_eq!(answer.header("connection"), None, "{answer:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_closes_slow_clients_too() {
    let app = app_with(&[("header_read_timeout_secs", "1")]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = oxidesk::app::AppState::new(&app.config, app.store.clone());
    let metrics = tokio::spawn(oxidesk::app::serve_metrics(listener, state));
    let held = slow_header_client(addr, Duration::from_secs(10)).await;
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_millis(2500),
        "a slow client of /metrics was closed after {held:?}"
    );
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    metrics.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_limit_caps_connections_instead_of_failing_accepts() {
    // `oxidesk serve` under an open-file limit of 400 (soft = hard, so it
    // cannot raise it): it serves at most 144 connections (400 less 256
    // kept for itself) and so never runs out of files, where 500 idle
    // sockets used to leave it failing every accept, logging each.
    let dir = tempfile::tempdir().unwrap();
    let (database, pg) = crate::helpers::test_database(&dir.path().join("oxidesk.db")).await;
    let config = dir.path().join("oxidesk.toml");
    std::fs::write(
        &config,
        format!(
            "database = \"{database}\"\n{}\n[server]\nheader_read_timeout_secs = 1\n",
            crate::helpers::fixture_config_text()
        ),
    )
    .unwrap();
    let key = crate::helpers::cli_key_add(&config);
    let log = dir.path().join("serve.log");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 400 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("OXIDESK_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = crate::helpers::listening_address(&mut child);
    let mut idle = Vec::new();
    for _ in 0..500 {
        // 144 served, the rest in serve's listen backlog of 1024.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        idle.push(tokio::spawn(async move {
            closed_within(&mut stream, Duration::from_secs(20)).await;
        }));
    }
    let start = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/tickets.json"))
        .header("X-API-Key", &key)
        .timeout(Duration::from_secs(20))
        .body(ticket("under-the-file-limit").to_string())
        .send()
        .await
        .unwrap();
    let took = start.elapsed();
    assert_eq!(r.status().as_u16(), 201);
    for h in idle {
        h.await.unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("does not fit the open-file limit of 400: serving at most 144 connections"),
        "{text}"
    );
    assert!(text.contains("new ones wait until one closes"), "{text}");
    assert!(!text.contains("Too many open files"), "{text}");
    assert!(!text.contains("cannot accept"), "{text}");
    eprintln!(
        "open-file limit 400, 500 idle sockets: a 201 after {took:?} (they are closed 144 at a time, 1 s each)"
    );
    pg.iter()
        .for_each(|n| crate::helpers::drop_test_database(n));
}

// ---------------------------------------------------------------------
// Point 6: the store fails (PostgreSQL only: a TCP proxy in front of the
// shared server is cut and restored; the server itself is never stopped).

mod store_down {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use oxidesk::app::{AppState, serve};
    use oxidesk::config::Config;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    use crate::helpers::{add_key, drop_test_database, fixture_config_text, test_database, ticket};

    /// Forwards 127.0.0.1:`addr` to PostgreSQL; can be cut (every
    /// connection dropped, new ones refused), restored, and stalled
    /// (what clients send is held, as from a server that stopped
    /// answering).
    struct Proxy {
        addr: SocketAddr,
        target: SocketAddr,
        acceptor: Mutex<Option<JoinHandle<()>>>,
        pumps: Arc<Mutex<Vec<JoinHandle<()>>>>,
        stalled: Arc<AtomicBool>,
        held: Arc<AtomicUsize>,
    }

    impl Proxy {
        async fn start(target: SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let proxy = Self {
                addr: listener.local_addr().unwrap(),
                target,
                acceptor: Mutex::new(None),
                pumps: Arc::default(),
                stalled: Arc::default(),
                held: Arc::default(),
            };
            proxy.accept_on(listener);
            proxy
        }

        fn accept_on(&self, listener: TcpListener) {
            let (target, pumps) = (self.target, self.pumps.clone());
            let (stalled, held) = (self.stalled.clone(), self.held.clone());
            let task = tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(target).await else {
                        continue;
                    };
                    let (stalled, held) = (stalled.clone(), held.clone());
                    let pump = tokio::spawn(async move {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        let up = pump(client_read, server_write, Some((stalled, held)));
                        let down = pump(server_read, client_write, None);
                        tokio::join!(up, down);
                    });
                    pumps.lock().unwrap().push(pump);
                }
            });
            *self.acceptor.lock().unwrap() = Some(task);
        }

        /// Every connection dropped; new ones refused (nothing listens).
        fn cut(&self) {
            if let Some(task) = self.acceptor.lock().unwrap().take() {
                task.abort();
            }
            for pump in self.pumps.lock().unwrap().drain(..) {
                pump.abort();
            }
        }

        /// Listening again on the same port.
        async fn restore(&self) {
            self.stalled.store(false, Ordering::SeqCst);
            let listener = loop {
                // The aborted acceptor drops its listener asynchronously.
                match TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            self.accept_on(listener);
        }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        stall: Option<(Arc<AtomicBool>, Arc<AtomicUsize>)>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Some((stalled, held)) = &stall
                && stalled.load(Ordering::SeqCst)
            {
                held.fetch_add(1, Ordering::SeqCst);
                while stalled.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    struct Served {
        addr: SocketAddr,
        key: String,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: Option<JoinHandle<()>>,
        _dir: tempfile::TempDir,
    }

    impl Served {
        async fn post(&self, tag: &str) -> (u16, Option<String>, String, Duration) {
            let start = Instant::now();
            let r = reqwest::Client::new()
                .post(format!("http://{}/api/tickets.json", self.addr))
                .header("X-API-Key", &self.key)
                .body(ticket(tag).to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body = r.text().await.unwrap();
            (status, retry, body, start.elapsed())
        }

        async fn stop(mut self) {
            let _ = self.stop.take().unwrap().send(());
            self.task.take().unwrap().await.unwrap();
        }
    }

    /// oxidesk on a database of its own reached through `proxy`.
    async fn serve_through(proxy: &Proxy, database: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let proxied = database.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
        assert_ne!(
            proxied, database,
            "TEST_DATABASE_URL must name 127.0.0.1:5432"
        );
        let path = dir.path().join("oxidesk.toml");
        std::fs::write(
            &path,
            format!("database = \"{proxied}\"\n{}", fixture_config_text()),
        )
        .unwrap();
        let config = Config::load(
            Some(&path),
            vec![("OXIDESK__MAIL__ENABLED".to_string(), "false".to_string())],
        )
        .unwrap();
        let store = oxidesk::cli::open_store(&config).await.unwrap();
        let key = add_key(&store, &["127.0.0.1/32"], true, true).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(&config, store);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Served {
            addr,
            key,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    fn on_postgres() -> bool {
        let on = std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty());
        if !on {
            eprintln!("PostgreSQL only (TEST_DATABASE_URL): skipped on SQLite");
        }
        on
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_down_answers_503_fast_and_recovers() {
        if !on_postgres() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (database, name) = test_database(&dir.path().join("unused.db")).await;
        let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
        let app = serve_through(&proxy, &database).await;
        assert_eq!(app.post("before").await.0, 201);

        // Down: every answer is a fast 503 saying the database is
        // unavailable, with Retry-After; never a 500, never a 10 s wait.
        proxy.cut();
        let mut slowest = Duration::ZERO;
        for i in 0..3 {
            let (status, retry, body, took) = app.post(&format!("down-{i}")).await;
            assert_eq!(status, 503, "{body}");
            assert_eq!(retry.as_deref(), Some("1"));
            assert!(body.contains("database is busy or unreachable"), "{body}");
            assert!(!body.contains("Internal server error"), "{body}");
            slowest = slowest.max(took);
        }
        assert!(slowest < Duration::from_secs(2), "a 503 took {slowest:?}");
        let start = Instant::now();
        let ready = reqwest::get(format!("http://{}/readyz", app.addr))
            .await
            .unwrap();
        assert_eq!(ready.status().as_u16(), 503);
        assert!(ready.text().await.unwrap().contains("not ready"));
        assert!(start.elapsed() < Duration::from_secs(2));

        // Back: tickets again, without a restart.
        proxy.restore().await;
        let (status, _, body, took) = app.post("after").await;
        assert_eq!(status, 201, "{body}");
        eprintln!(
            "database down: slowest 503 in {slowest:?}; first ticket after it came back in {took:?}"
        );

        // In flight: the statement is sent, the database stops answering,
        // then the connection dies: 503, not 500.
        proxy.stalled.store(true, Ordering::SeqCst);
        let held_before = proxy.held.load(Ordering::SeqCst);
        let in_flight = {
            let (addr, key) = (app.addr, app.key.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("http://{addr}/api/tickets.json"))
                    .header("X-API-Key", key)
                    .body(ticket("in-flight").to_string())
                    .send()
                    .await
                    .unwrap()
            })
        };
        let waited = Instant::now();
        while proxy.held.load(Ordering::SeqCst) == held_before {
            assert!(
                waited.elapsed() < Duration::from_secs(5),
                "the request never reached the database"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        proxy.cut();
        let r = in_flight.await.unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        proxy.restore().await;
        assert_eq!(app.post("after-in-flight").await.0, 201);

        app.stop().await;
        proxy.cut();
        drop_test_database(&name.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn terminated_database_sessions_answer_503_not_500() {
        if !on_postgres() {
            return;
        }
        // What a PostgreSQL restart does to open connections: each is
        // ended with 57P01 (admin shutdown), which was a 500.
        let dir = tempfile::tempdir().unwrap();
        let (database, name) = test_database(&dir.path().join("unused.db")).await;
        let name = name.unwrap();
        let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
        let app = serve_through(&proxy, &database).await;
        for i in 0..3 {
            assert_eq!(app.post(&format!("warm-{i}")).await.0, 201);
        }
        let admin = std::env::var("TEST_DATABASE_URL").unwrap();
        let terminated: Vec<bool> = {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&name)
            .fetch_all(&mut conn)
            .await
            .unwrap()
        };
        assert!(!terminated.is_empty());
        let mut answers = Vec::new();
        for i in 0..10 {
            let (status, retry, body, _) = app.post(&format!("after-{i}")).await;
            assert!(status == 201 || status == 503, "{status}: {body}");
            if status == 503 {
                assert_eq!(retry.as_deref(), Some("1"));
            }
            answers.push(status);
            if status == 201 {
                break;
            }
        }
        // Whether the first answer is a 503 is a race: a session whose
        // end the pool notices before handing it out is replaced, and
        // that request is a 201 (seen in CI). Never a 500, and served again.
        assert_eq!(answers.last(), Some(&201), "{answers:?}");
        eprintln!(
            "after terminating {} session(s): {answers:?}",
            terminated.len()
        );
        app.stop().await;
        proxy.cut();
        drop_test_database(&name);
    }
}

//! A small SMTP server on loopback for the notification tests: it speaks
//! enough RFC 5321 for lettre, records every message it accepted, can
//! answer 451 (temporarily unavailable), and can hold a message before
//! accepting it — a message whose client disappears while held is never
//! counted (the client never learnt it was accepted).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt: Vec<String>,
    pub data: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        // Undo quoted-printable soft breaks and =XX for assertions.
        let joined = body.replace("=\r\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'='
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).to_string()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    fail_with: Option<u16>,
    hold: bool,
    holding: usize,
    open_sessions: usize,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    state: Arc<Mutex<State>>,
    release: Arc<Notify>,
    kick: Arc<Notify>,
    _task: Arc<TaskGuard>,
}

/// Stops the listener when the last handle goes.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let release = Arc::new(Notify::new());
        let kick = Arc::new(Notify::new());
        let (s, r, k) = (state.clone(), release.clone(), kick.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, s.clone(), r.clone(), k.clone()));
            }
        });
        Self {
            port,
            state,
            release,
            kick,
            _task: Arc::new(TaskGuard(task)),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn fail_with(&self, code: Option<u16>) {
        self.state.lock().unwrap().fail_with = code;
    }

    pub fn hold(&self, on: bool) {
        self.state.lock().unwrap().hold = on;
        if !on {
            self.release.notify_waiters();
        }
    }

    /// Closes every connection waiting for its next command, as a server
    /// drops idle clients.
    pub fn kick_idle(&self) {
        self.kick.notify_waiters();
    }

    pub fn holding(&self) -> usize {
        self.state.lock().unwrap().holding
    }

    /// Connections open on the server side.
    pub fn open_sessions(&self) -> usize {
        self.state.lock().unwrap().open_sessions
    }

    /// Waits until `done` holds (or panics after `secs`): for things that
    /// happen on the sink's side of a socket, such as noticing a closed
    /// connection.
    pub async fn wait_until(&self, what: &str, secs: u64, done: impl Fn(&Self) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "SMTP sink: {what} not after {secs} s"
            );
            // A poll interval: the condition is what the test waits for.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `n` messages were accepted (or panics after `secs`).
    /// A wait for presence: whether more than `n` come is for the caller
    /// to decide from the sender's state, never from the time waited.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        for _ in 0..secs * 20 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            // A poll interval, not an absence check.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "SMTP sink got {} messages, expected {n}",
            self.received().len()
        );
    }
}

/// Counts a session as open for its lifetime.
struct SessionGuard(Arc<Mutex<State>>);

impl SessionGuard {
    fn new(state: &Arc<Mutex<State>>) -> Self {
        state.lock().unwrap().open_sessions += 1;
        Self(state.clone())
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.open_sessions -= 1;
        }
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    release: Arc<Notify>,
    kick: Arc<Notify>,
) {
    let _open = SessionGuard::new(&state);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        tokio::select! {
            read = reader.read_line(&mut line) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            () = kick.notified() => return,
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let reply: String = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            "250-sink\r\n250 8BITMIME\r\n".into()
        } else if cmd.starts_with("MAIL FROM") {
            rcpt.clear();
            match state.lock().unwrap().fail_with {
                Some(code) => format!("{code} try again later\r\n"),
                None => "250 OK\r\n".into(),
            }
        } else if cmd.starts_with("RCPT TO") {
            let addr = line.trim_end()[8..].trim().trim_start_matches(':').trim();
            rcpt.push(addr.trim_matches(['<', '>']).to_string());
            "250 OK\r\n".into()
        } else if cmd == "DATA" {
            if write.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let hold = state.lock().unwrap().hold;
            if hold {
                state.lock().unwrap().holding += 1;
                let mut probe = [0u8; 1];
                let released = tokio::select! {
                    () = release.notified() => true,
                    _ = reader.read(&mut probe) => false,
                };
                state.lock().unwrap().holding -= 1;
                if !released {
                    // The client went away before we accepted: not received.
                    return;
                }
            }
            // Recorded before the client hears 250: once the sender has
            // marked a mail sent, the sink has it.
            state.lock().unwrap().received.push(Received {
                rcpt: rcpt.clone(),
                data,
            });
            if write.write_all(b"250 OK queued\r\n").await.is_err() {
                return;
            }
            continue;
        } else if cmd.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            "250 OK\r\n".into()
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

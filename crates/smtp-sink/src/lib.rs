//! A small SMTP server on loopback, for oxidesk's integration tests and
//! its benchmark: it speaks enough RFC 5321 for lettre and accepts every
//! message, counting it and (unless told to only count) recording it.
//!
//! For the tests it can also misbehave on purpose: answer 451
//! (temporarily unavailable), hold a message before accepting it — a
//! message whose client disappears while held is never counted, as the
//! client never learnt it was accepted — and drop idle clients.
//!
//! It is test support: it never relays, stores nothing on disk and makes
//! no claim to be a correct SMTP server beyond what oxidesk's sender says.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `RCPT TO` addresses, without angle brackets.
    pub rcpt: Vec<String>,
    /// The message as sent after `DATA` (dot-unstuffed, CRLF kept).
    pub data: String,
}

impl Received {
    /// The first header field of that name (case-insensitive), unfolded
    /// and trimmed.
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

    /// The body after the header block, quoted-printable undone.
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

/// What the sink keeps of each accepted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every message, for [`SmtpSink::received`] (the tests).
    Messages,
    /// Only the count (the benchmark: a long run must not grow memory).
    Count,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    fail_with: Option<u16>,
    hold: bool,
    holding: usize,
    open_sessions: usize,
}

/// A running sink; clones share it. The listener stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct SmtpSink {
    /// The loopback port it listens on.
    pub port: u16,
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

/// What the sessions and the handles share.
struct Shared {
    keep: Keep,
    state: Mutex<State>,
    accepted: AtomicU64,
    release: Notify,
    kick: Notify,
}

impl Shared {
    /// The state, also after a panic elsewhere: a test that failed while
    /// holding the lock must not turn every later call into a panic.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stops the listener when the last handle goes.
struct TaskGuard(tokio::task::JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SmtpSink {
    /// A sink recording every message, on a free port.
    ///
    /// # Panics
    /// When no loopback port can be bound: this is for tests, where that
    /// is a failed test. Use [`SmtpSink::bind`] to handle the error.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A sink recording every message, on `port` (0: a free one), e.g. to
    /// come back on the port of a sink that was dropped.
    ///
    /// # Panics
    /// When the port cannot be bound (see [`SmtpSink::start`]).
    pub async fn start_on(port: u16) -> Self {
        match Self::bind(port, Keep::Messages).await {
            Ok(sink) => sink,
            Err(e) => panic!("SMTP sink cannot listen on 127.0.0.1:{port}: {e}"),
        }
    }

    /// A sink on `127.0.0.1:port` (0: a free one) keeping `keep`. Must be
    /// called inside a tokio runtime, which runs its sessions.
    pub async fn bind(port: u16, keep: Keep) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            keep,
            state: Mutex::new(State::default()),
            accepted: AtomicU64::new(0),
            release: Notify::new(),
            kick: Notify::new(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, s.clone()));
            }
        });
        Ok(Self {
            port,
            shared,
            _task: Arc::new(TaskGuard(task)),
        })
    }

    /// The messages accepted so far, in order (empty with [`Keep::Count`]).
    pub fn received(&self) -> Vec<Received> {
        self.shared.state().received.clone()
    }

    /// How many messages were accepted so far, whatever is kept.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Answers `MAIL FROM` with this code (e.g. 451) instead of 250;
    /// `None` accepts again.
    pub fn fail_with(&self, code: Option<u16>) {
        self.shared.state().fail_with = code;
    }

    /// On: messages are held after their data, unanswered, until it is
    /// turned off again (which accepts every held one).
    pub fn hold(&self, on: bool) {
        self.shared.state().hold = on;
        if !on {
            self.shared.release.notify_waiters();
        }
    }

    /// Closes every connection waiting for its next command, as a server
    /// drops idle clients.
    pub fn kick_idle(&self) {
        self.shared.kick.notify_waiters();
    }

    /// How many messages are held right now.
    pub fn holding(&self) -> usize {
        self.shared.state().holding
    }

    /// Connections open on the server side.
    pub fn open_sessions(&self) -> usize {
        self.shared.state().open_sessions
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
    ///
    /// # Panics
    /// When fewer than `n` arrived in time: the test's assertion.
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
struct SessionGuard(Arc<Shared>);

impl SessionGuard {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.state().open_sessions += 1;
        Self(shared.clone())
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.state().open_sessions -= 1;
    }
}

async fn session(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let _open = SessionGuard::new(&shared);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let keep_data = shared.keep == Keep::Messages;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        tokio::select! {
            read = reader.read_line(&mut line) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            () = shared.kick.notified() => return,
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let reply: String = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            "250-sink\r\n250 8BITMIME\r\n".into()
        } else if cmd.starts_with("MAIL FROM") {
            rcpt.clear();
            match shared.state().fail_with {
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
                // Counting only: the text is not kept, so not copied.
                if keep_data {
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
            }
            let hold = shared.state().hold;
            if hold {
                shared.state().holding += 1;
                let mut probe = [0u8; 1];
                let released = tokio::select! {
                    () = shared.release.notified() => true,
                    _ = reader.read(&mut probe) => false,
                };
                shared.state().holding -= 1;
                if !released {
                    // The client went away before we accepted: not received.
                    return;
                }
            }
            // Recorded before the client hears 250: once the sender has
            // marked a mail sent, the sink has it.
            shared.accepted.fetch_add(1, Ordering::Relaxed);
            if keep_data {
                shared.state().received.push(Received {
                    rcpt: rcpt.clone(),
                    data,
                });
            }
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

//! `email-scale`: time per MB and peak memory of email intake, by message
//! shape and size (issue 16, points 2 and 3). Every pass over a message
//! must be linear: the time per MB of each shape stays flat from 1 to
//! 40 MB, and peak RSS stays a small multiple of the message.
//!
//! ```text
//! email-scale [--sizes 1,2,5,10,20,40] [--shapes a,b] [--timeout SECS]
//! email-scale --one SHAPE MB          (one run in this process)
//! ```
//! Each (shape, size) runs in a child process of its own, so that its
//! peak RSS (`VmHWM`) is its own; a run past `--timeout` (default 120 s)
//! is killed and reported as such. The parse is the library's
//! `intake::email::parse_email`, exactly what `POST /api/tickets.email`
//! and `oxidesk pipe` run, with the default limits.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SHAPES: &[(&str, &str)] = &[
    (
        "dash-lines",
        "15,000 boundary= headers, then body lines starting with --",
    ),
    ("tiny-parts", "a multipart of parts of a few bytes each"),
    (
        "long-header",
        "one long Subject of unclosed encoded words (=?x?B?…)",
    ),
    ("base64", "one big base64 attachment"),
    ("uuencode", "a text body carrying one uuencoded file"),
    (
        "unfound-boundaries",
        "parts declaring multipart boundaries that never occur",
    ),
    (
        "dash-body",
        "a 70-byte boundary of dashes over a body of dash lines",
    ),
    (
        "unfound-900",
        "900 parts declaring boundaries that never come, then text",
    ),
    ("many-headers", "a header block of many short fields"),
    ("html", "a big html body"),
];

/// A message of `shape`, about `size` bytes.
fn build(shape: &str, size: usize) -> Vec<u8> {
    let mut m = String::with_capacity(size + 4096);
    m.push_str("From: Bench <bench@example.com>\r\nTo: help@example.com\r\nMessage-ID: <bench@example.com>\r\nMIME-Version: 1.0\r\n");
    match shape {
        "dash-lines" => {
            m.push_str("Subject: dash lines\r\nContent-Type: text/plain\r\n");
            // 15,000 fields: under the default cap of header fields.
            for i in 0..15_000 {
                let _ = write!(m, "X-Junk-{i}: a; boundary=\"bnd{i:08}\"\r\n");
            }
            m.push_str("\r\n");
            while m.len() < size {
                m.push_str("--bnc-not-a-boundary\r\n");
            }
        }
        "tiny-parts" => {
            m.push_str(
                "Subject: tiny parts\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
            );
            while m.len() < size {
                m.push_str("--b\r\n\r\nx\r\n");
            }
            m.push_str("--b--\r\n");
        }
        "long-header" => {
            m.push_str("Subject: ");
            while m.len() < size {
                m.push_str("=?utf-8?B?QUJD ");
            }
            m.push_str("\r\nContent-Type: text/plain\r\n\r\nbody\r\n");
        }
        "base64" => {
            m.push_str("Subject: base64\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
            while m.len() < size {
                m.push_str("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2\r\n");
            }
            m.push_str("--b--\r\n");
        }
        "uuencode" => {
            m.push_str("Subject: uuencode\r\nContent-Type: text/plain\r\n\r\nsee the file\r\n\r\nbegin 644 big.bin\r\n");
            while m.len() < size {
                m.push_str("M86)C9&5F9VAI:FML;6YO<'%R<W1U=G=X>7I!0D-$149'2$E*2TQ-3D]045)3\r\n");
            }
            m.push_str("`\r\nend\r\n");
        }
        "unfound-boundaries" => {
            m.push_str("Subject: unfound boundaries\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
            let mut i = 0;
            while m.len() < size {
                let _ = write!(
                    m,
                    "--b\r\nContent-Type: multipart/mixed; boundary=\"nf{i:08}\"\r\n\r\nx\r\n"
                );
                i += 1;
            }
            m.push_str("--b--\r\n");
        }
        "dash-body" => {
            let boundary = format!("{}x", "-".repeat(69));
            let _ = write!(
                m,
                "Subject: dash body\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
            );
            let line = format!("{}\r\n", "-".repeat(76));
            while m.len() < size {
                m.push_str(&line);
            }
            let _ = write!(m, "--{boundary}--\r\n");
        }
        "unfound-900" => {
            m.push_str("Subject: unfound boundaries, then text\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
            for i in 0..900 {
                let _ = write!(
                    m,
                    "--b\r\nContent-Type: multipart/mixed; boundary=\"nf{i:08}\"\r\n\r\nx\r\n"
                );
            }
            m.push_str("--b\r\nContent-Type: text/plain\r\n\r\n");
            while m.len() < size {
                m.push_str("plain text that goes on and on and on and on and on\r\n");
            }
            m.push_str("--b--\r\n");
        }
        "many-headers" => {
            m.push_str("Subject: many headers\r\n");
            while m.len() < size {
                m.push_str("X-A: b\r\n");
            }
            m.push_str("Content-Type: text/plain\r\n\r\nbody\r\n");
        }
        "html" => {
            m.push_str(
                "Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>\r\n",
            );
            while m.len() < size {
                m.push_str("<p>Hello <b>world</b>, <a href=\"https://example.com/x\">a link</a> and text.</p>\r\n");
            }
            m.push_str("</body></html>\r\n");
        }
        other => panic!("unknown shape {other}"),
    }
    m.into_bytes()
}

/// `VmHWM` of this process in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One run: prints `ok|refused SECS PEAK_KIB BEFORE_KIB MESSAGE_BYTES`.
fn one(shape: &str, mb: f64) {
    let raw = build(shape, (mb * 1024.0 * 1024.0) as usize);
    let before = peak_rss_kib();
    let limits = oxidesk::intake::IntakeLimits {
        max_attachment_bytes: 25 * 1024 * 1024,
        max_attachments: 64,
    };
    let started = Instant::now();
    let result = oxidesk::intake::email::parse_email(&raw, &limits);
    let secs = started.elapsed().as_secs_f64();
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("refused:{}", e.to_string().replace(' ', "_")),
    };
    drop(result);
    println!(
        "{outcome} {secs:.4} {} {before} {}",
        peak_rss_kib(),
        raw.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one") {
        one(&args[2], args[3].parse().expect("MB"));
        return;
    }
    let mut sizes: Vec<f64> = vec![1.0, 2.0, 5.0, 10.0, 20.0, 40.0];
    let mut shapes: Vec<String> = SHAPES.iter().map(|(s, _)| s.to_string()).collect();
    let mut timeout = Duration::from_secs(120);
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--sizes" => sizes = value.split(',').map(|s| s.parse().expect("size")).collect(),
            "--shapes" => shapes = value.split(',').map(str::to_string).collect(),
            "--timeout" => timeout = Duration::from_secs(value.parse().expect("seconds")),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let exe = std::env::current_exe().expect("own path");
    println!(
        "{:<20} {:>6} {:>10} {:>10} {:>10} {:>9}  outcome",
        "shape", "MB", "secs", "ms/MB", "peak MiB", "peak/msg"
    );
    for shape in &shapes {
        for &mb in &sizes {
            let mut child = Command::new(&exe)
                .args(["--one", shape, &mb.to_string()])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn");
            let started = Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().expect("wait") {
                    break Some(s);
                }
                if started.elapsed() > timeout {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if status.is_none() {
                println!(
                    "{shape:<20} {mb:>6} {:>10} {:>10} {:>10} {:>9}  killed after {} s",
                    ">",
                    "-",
                    "-",
                    "-",
                    timeout.as_secs()
                );
                continue;
            }
            let out = child.wait_with_output().expect("output");
            let line = String::from_utf8_lossy(&out.stdout);
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 {
                println!("{shape:<20} {mb:>6}  crashed: {line}");
                continue;
            }
            let secs: f64 = f[1].parse().unwrap_or(0.0);
            let peak: f64 = f[2].parse::<f64>().unwrap_or(0.0) / 1024.0;
            let msg_mib: f64 = f[4].parse::<f64>().unwrap_or(0.0) / 1024.0 / 1024.0;
            println!(
                "{shape:<20} {mb:>6} {secs:>10.3} {:>10.1} {peak:>10.1} {:>9.1}  {}",
                secs * 1000.0 / msg_mib,
                peak / msg_mib,
                f[0]
            );
        }
    }
}

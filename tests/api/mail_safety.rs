//! Mail that is never lost, never looped and reads right (issue 11):
//! the pipe under an MTA, bounce and auto-reply loops, the MIME of
//! outgoing mail, alerts a person can follow, oversize parts in email.
//! Each test is named after the symptom it guards against.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_full, with_staff_alerts};
use crate::smtp_sink::{Received, SmtpSink};

/// A plain message.
fn mail(from: &str, subject: &str, message_id: &str, extra: &[&str], body: &str) -> Vec<u8> {
    let mut lines = vec![
        format!("From: {from}"),
        "To: support@example.com".to_string(),
        format!("Subject: {subject}"),
        format!("Message-ID: <{message_id}>"),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines.extend(["Content-Type: text/plain; charset=utf-8", "", body].map(String::from));
    lines.join("\r\n").into_bytes()
}

/// A delivery status notification returning the message `returned_id`.
fn bounce(message_id: &str, returned_id: &str) -> Vec<u8> {
    [
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)".to_string(),
        "To: support@example.com".into(),
        "Subject: Undelivered Mail Returned to Sender".into(),
        format!("Message-ID: <{message_id}>"),
        "Auto-Submitted: auto-replied".into(),
        "MIME-Version: 1.0".into(),
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"".into(),
        "".into(),
        "--b".into(),
        "Content-Type: text/plain".into(),
        "".into(),
        "<staff@example.com>: mailbox full".into(),
        "--b".into(),
        "Content-Type: message/delivery-status".into(),
        "".into(),
        "Reporting-MTA: dns; mx.example.net".into(),
        "".into(),
        "Final-Recipient: rfc822; staff@example.com".into(),
        "Action: failed".into(),
        "Status: 5.2.2".into(),
        "--b".into(),
        "Content-Type: text/rfc822-headers".into(),
        "".into(),
        "From: Support <support@example.com>".into(),
        format!("Message-ID: <{returned_id}>"),
        "--b--".into(),
    ]
    .join("\r\n")
    .into_bytes()
}

/// How `oxidesk pipe` ended.
struct Piped {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `oxidesk --config CONFIG pipe [args]` in `cwd` with `input` on
/// standard input. `closed_outputs`: standard output and error are
/// pipes whose reading ends are closed at once (an MTA that stopped
/// reading), so every write to them fails.
fn run_pipe(
    config: &std::path::Path,
    args: &[&str],
    input: &[u8],
    cwd: Option<&std::path::Path>,
    closed_outputs: bool,
) -> Piped {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxidesk"));
    cmd.arg("--config")
        .arg(config)
        .arg("pipe")
        .args(args)
        .env_remove("OXIDESK_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if closed_outputs {
        drop(child.stdout.take());
        drop(child.stderr.take());
    }
    let mut stdin = child.stdin.take().unwrap();
    // The pipe may stop reading early (a refused configuration).
    let _ = stdin.write_all(input);
    drop(stdin);
    if !closed_outputs {
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
    }
    let status = child.wait().unwrap();
    Piped {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        took: started.elapsed(),
    }
}

/// A configuration whose PostgreSQL server is unreachable (nothing
/// listens on the port), giving up after `retry` seconds.
fn unreachable_store_config(dir: &std::path::Path, retry: u64) -> std::path::PathBuf {
    let port = crate::helpers::free_port();
    let path = dir.join("down.toml");
    std::fs::write(
        &path,
        format!(
            "database = \"postgres://postgres@127.0.0.1:{port}/oxidesk\"\n\
             [pipe]\nstore_retry_secs = {retry}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn pipe_never_dies_with_a_panic_when_the_store_is_down_and_stderr_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = unreachable_store_config(dir.path(), 3);
    let raw = mail("c@example.com", "Help", "down1@x", &[], "hello");
    // Before: a WARN line every 0.5 s for 30 s, then a write to the
    // closed stderr panicked: exit 101, and Postfix bounced the mail.
    let p = run_pipe(&config, &[], &raw, None, true);
    assert_eq!(p.code, 75, "must be EX_TEMPFAIL, never a panic");
    assert!(
        p.took < Duration::from_secs(15),
        "the pipe gives up on its own setting, took {:?}",
        p.took
    );
    // Read: one line per attempt (attempts back off), the cause first.
    let p = run_pipe(&config, &[], &raw, None, false);
    assert_eq!(p.code, 75, "{}", p.stderr);
    let lines: Vec<&str> = p.stderr.lines().collect();
    assert!(
        lines.len() <= 8,
        "a flood of {} lines: {}",
        lines.len(),
        p.stderr
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(
            "oxidesk pipe: opening the PostgreSQL database postgres://postgres@127.0.0.1:"
        ) && last.contains("as user ")
            && last.contains("exit 75"),
        "{last}"
    );
    assert!(
        !p.stderr.contains('\x1b'),
        "ANSI colour in a log file: {}",
        p.stderr
    );
}

#[test]
fn pipe_config_faults_exit_75_with_the_file_and_user_on_the_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let raw = mail("c@example.com", "Help", "cfg1@x", &[], "hello");
    let missing = dir.path().join("missing.toml");
    let p = run_pipe(&missing, &[], &raw, None, false);
    assert_eq!(p.code, 75, "{}", p.stderr);
    let first = p.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(&missing.display().to_string())
            && first.contains("read as user ")
            && first.contains("No such file"),
        "{first}"
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[mail]\nsmtp_hots = \"x\"\n").unwrap();
    let p = run_pipe(&unknown, &[], &raw, None, false);
    assert_eq!(p.code, 75, "{}", p.stderr);
    let first = p.stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(&unknown.display().to_string()) && first.contains("smtp_hots"),
        "{first}"
    );

    // A wrong flag in the MTA's command line: clap's exit 2 would bounce.
    let p = run_pipe(&unknown, &["--bogus"], &raw, None, false);
    assert_eq!(p.code, 75, "{}", p.stderr);
}

#[test]
fn pipe_from_another_directory_never_files_into_a_brand_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let config = dir.path().join("rel.toml");
    std::fs::write(&config, "database = \"sqlite://data/oxidesk.db\"\n").unwrap();
    let raw = mail("c@example.com", "Help", "rel1@x", &[], "hello");
    let p = run_pipe(&config, &[], &raw, Some(spool.path()), false);
    assert_eq!(p.code, 75, "{}", p.stderr);
    let expected = spool.path().join("data/oxidesk.db");
    assert!(
        p.stderr.contains(&expected.display().to_string()) && p.stderr.contains("does not exist"),
        "{}",
        p.stderr
    );
    assert!(!expected.exists(), "the pipe created a database");
}

#[tokio::test]
async fn pipe_with_closed_stdout_and_stderr_still_files_and_exits_0() {
    let app = spawn_app().await;
    let raw = mail("closed@example.com", "Closed", "closed1@x", &[], "hi");
    let p = run_pipe(&app.config_path, &[], &raw, None, true);
    assert_eq!(p.code, 0);
    let again = run_pipe(&app.config_path, &[], &raw, None, false);
    assert_eq!(again.code, 0);
    assert!(
        again.stdout.starts_with("duplicate of a message in ticket"),
        "{}",
        again.stdout
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_database_the_pipe_user_cannot_write_is_named_with_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    if app.config.is_postgres() || rustix::process::geteuid().is_root() {
        // Root writes any file, whatever its mode; PostgreSQL has no file.
        eprintln!("skipped: needs SQLite and a user other than root");
        return;
    }
    let db = app.config.sqlite_path();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let raw = mail("ro@example.com", "Read-only", "ro1@x", &[], "hi");
    let p = run_pipe(&app.config_path, &[], &raw, None, false);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(p.code, 75, "{}", p.stderr);
    assert!(
        p.stderr.contains("read-only") && p.stderr.contains("as user "),
        "{}",
        p.stderr
    );
}

/// A real server with alerts to staff@example.com, mail to `sink`.
async fn app_with_sink(sink: &SmtpSink, extra_env: &[(&str, &str)]) -> TestApp {
    let port = sink.port.to_string();
    let mut env = vec![
        ("OXIDESK__MAIL__ENABLED", "true"),
        ("OXIDESK__MAIL__SMTP_PORT", port.as_str()),
        ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com"),
        ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50"),
        ("OXIDESK__MAIL__SMTP_TIMEOUT_SECS", "5"),
    ];
    env.extend_from_slice(extra_env);
    spawn_app_full("", &env, &with_staff_alerts).await
}

fn kinds(t: &Value) -> Vec<(String, String)> {
    t["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["event"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A child process killed when the test ends, even by a failed assert.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn is_alert(m: &Received) -> bool {
    m.rcpt.iter().any(|r| r == "staff@example.com")
}

#[tokio::test]
async fn a_bouncing_alert_recipient_gets_one_alert_and_one_bounce_not_a_loop() {
    // The real binary: `oxidesk serve` sends, and every alert the SMTP
    // sink receives comes back as a bounce through `oxidesk pipe`, as a
    // full mailbox would. Before: 30 alerts and 30 bounces in 30 s.
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = crate::helpers::test_database(&dir.path().join("o.db")).await;
    let config = dir.path().join("o.toml");
    std::fs::write(
        &config,
        format!(
            "database = \"{database}\"\n{}",
            with_staff_alerts(&crate::helpers::fixture_config_text())
        ),
    )
    .unwrap();
    crate::helpers::cli_migrate(&config);
    let out = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&config)
        .args(["key", "add", "--ip", "127.0.0.1", "--can-read"])
        .env_remove("OXIDESK_CONFIG")
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap();
    let key = key.lines().next().unwrap().to_string();
    let (server, addr) = crate::helpers::serve_process(
        &config,
        &[
            // Off by default (no mail before [mail] is configured).
            ("OXIDESK__MAIL__ENABLED", "true".into()),
            ("OXIDESK__MAIL__SMTP_PORT", sink.port.to_string()),
            ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com".into()),
            ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50".into()),
        ],
    );
    let server = ChildGuard(server);
    let client = reqwest::Client::new();
    let number = client
        .post(format!("http://{addr}/api/tickets.json"))
        .header("X-API-Key", &key)
        .body(crate::helpers::ticket("loop").to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let read = |number: String| {
        let client = client.clone();
        let key = key.clone();
        async move {
            let text = client
                .get(format!("http://{addr}/api/tickets/{number}.json"))
                .header("X-API-Key", &key)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("ticket {number}: {e}: {text}"))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut bounced = 0;
    let mut quiet = false;
    while Instant::now() < deadline {
        let alerts: Vec<Received> = sink.received().into_iter().filter(is_alert).collect();
        for alert in &alerts[bounced..] {
            let id = alert.header("Message-ID").unwrap();
            let id = id.trim_matches(['<', '>']);
            let p = run_pipe(
                &config,
                &[],
                &bounce(&format!("dsn{bounced}@mx"), id),
                None,
                false,
            );
            assert_eq!(p.code, 0, "{}", p.stderr);
            bounced += 1;
        }
        // Quiet: every alert came back, and nothing is waiting to be
        // sent. What a bounce queues is in the ticket the moment the
        // pipe exits, so there is nothing more to come.
        let t = read(number.clone()).await;
        let waiting = t["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["state"] != "sent");
        let alerts_queued = kinds(&t).iter().filter(|(k, _)| k == "alert").count();
        if bounced > 0 && !waiting && alerts_queued == bounced {
            quiet = true;
            break;
        }
        // A poll interval: the loop ends on the quiet condition above,
        // decided from the ticket's state, not on the time waited.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = read(number.clone()).await;
    drop(server);
    if let Some(name) = pg_name {
        crate::helpers::drop_test_database(&name);
    }
    let alerts = sink.received().into_iter().filter(is_alert).count();
    assert_eq!(alerts, 1, "alerts sent in the loop");
    let bounces = t["thread"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["flags"]["bounce"] == json!(true))
        .count();
    assert_eq!(bounces, 1, "bounce entries: {t}");
    assert_eq!(
        kinds(&t),
        [
            ("autoresponse".into(), "new".into()),
            ("alert".into(), "new".into())
        ]
    );
    assert!(quiet, "still mailing after 30 s");
}

#[tokio::test]
async fn an_out_of_office_reply_to_the_autoresponse_alerts_nobody() {
    let app = spawn_app_full("", &[], &with_staff_alerts).await;
    let n = app.post_json(&crate::helpers::ticket("ooo")).await.number();
    let ooo = mail(
        "ooo@example.com",
        &format!("Automatic reply: [#{n}] Subject ooo"),
        "ooo1@x",
        &["Auto-Submitted: auto-replied", "X-Autoreply: yes"],
        "I am out of the office until Monday.",
    );
    let r = app.post_raw("/api/tickets.email", ooo).await;
    assert_eq!(r.number(), n, "the reply joins its ticket");
    let t = app.get_ticket(&n).await;
    assert_eq!(t["thread"].as_array().unwrap().len(), 2);
    assert_eq!(t["thread"][1]["flags"]["auto_reply"], json!(true));
    assert_eq!(
        kinds(&t),
        [
            ("autoresponse".into(), "new".into()),
            ("alert".into(), "new".into())
        ],
        "an automatic reply queued mail"
    );
    // The same auto-reply opening a ticket of its own queues nothing either.
    let lone = mail(
        "robot@example.com",
        "Out of office",
        "ooo2@x",
        &["Auto-Submitted: auto-replied"],
        "away",
    );
    let m = app.post_raw("/api/tickets.email", lone).await.number();
    assert_eq!(
        kinds(&app.get_ticket(&m).await),
        Vec::<(String, String)>::new()
    );
}

#[tokio::test]
async fn alerts_per_ticket_are_capped_so_any_future_loop_dies_by_itself() {
    let app = spawn_app_full(
        "",
        &[("OXIDESK__MAIL__ALERT_LIMIT_PER_TICKET_PER_HOUR", "3")],
        &with_staff_alerts,
    )
    .await;
    let n = app
        .post_raw(
            "/api/tickets.email",
            mail("capped@example.com", "Capped", "cap0@x", &[], "first"),
        )
        .await
        .number();
    for i in 1..=4 {
        let reply = mail(
            "capped@example.com",
            "Re: Capped",
            &format!("cap{i}@x"),
            &["In-Reply-To: <cap0@x>"],
            "more",
        );
        assert_eq!(app.post_raw("/api/tickets.email", reply).await.number(), n);
    }
    let t = app.get_ticket(&n).await;
    assert_eq!(
        t["thread"].as_array().unwrap().len(),
        5,
        "every reply is kept"
    );
    let alerts = kinds(&t).iter().filter(|(k, _)| k == "alert").count();
    assert_eq!(alerts, 3, "one new-ticket alert and two reply alerts: {t}");
}

/// Parses what the sink received.
fn parsed(m: &Received) -> mail_parser::Message<'_> {
    MessageParser::default().parse(m.data.as_bytes()).unwrap()
}

#[tokio::test]
async fn outgoing_mail_is_mime_with_a_charset_and_names_read_right() {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(
        &sink,
        &[("OXIDESK__MAIL__FROM_NAME", "Équipe Support Ünited")],
    )
    .await;
    let subject = "Drucker kaputt – bitte helfen ☃ 日本語";
    let message = "Grüße aus Köln: der Drucker zeigt «Fehler 42».";
    let n = app
        .post_json(&json!({
            "name": "André Müller",
            "email": "andre@example.com",
            "subject": subject,
            "message": message,
        }))
        .await
        .number();
    let mails = sink.wait_for(2, 10).await;
    assert_eq!(mails.len(), 2);
    for m in &mails {
        let head = m.data.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii(), "raw 8-bit header bytes: {head}");
        assert_eq!(m.header("MIME-Version").as_deref(), Some("1.0"), "{head}");
        let ct = m.header("Content-Type").unwrap().to_ascii_lowercase();
        assert!(
            ct.starts_with("text/plain") && ct.contains("charset=utf-8"),
            "{ct}"
        );
        assert_eq!(m.header("Precedence").as_deref(), Some("bulk"));
        assert_eq!(m.header("X-Auto-Response-Suppress").as_deref(), Some("All"));
        let p = parsed(m);
        let from = p.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Équipe Support Ünited"));
        assert_eq!(from.address(), Some("support@example.com"));
        assert!(p.subject().unwrap().contains(subject), "{:?}", p.subject());
        let body = p.body_text(0).unwrap();
        assert!(body.contains(message), "{body}");
        if is_alert(m) {
            assert!(body.contains("André Müller <andre@example.com>"), "{body}");
        } else {
            assert!(body.contains("Dear André Müller"), "{body}");
            assert_eq!(p.subject().unwrap(), format!("[#{n}] {subject}"));
        }
    }
}

#[tokio::test]
async fn an_html_template_adds_an_html_alternative() {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(
        &sink,
        &[(
            "OXIDESK__MAIL__ALERT_BODY_HTML",
            "<p>Ticket <b>#{{ number }}</b>: {{ subject }}</p>",
        )],
    )
    .await;
    app.post_json(&json!({
        "name": "Zoë", "email": "zoe@example.com",
        "subject": "Café <b>crème</b>", "message": "x",
    }))
    .await
    .number();
    let mails = sink.wait_for(2, 10).await;
    let alert = mails.iter().find(|m| is_alert(m)).unwrap();
    let ct = alert.header("Content-Type").unwrap();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    let p = parsed(alert);
    assert!(p.body_text(0).unwrap().contains("Café <b>crème</b>"));
    let html = p.body_html(0).unwrap();
    assert!(
        html.contains("Café &lt;b&gt;crème&lt;&#x2f;b&gt;"),
        "customer text must be escaped in HTML: {html}"
    );
    let auto = mails.iter().find(|m| !is_alert(m)).unwrap();
    assert!(
        auto.header("Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn a_reply_alert_names_its_real_sender_and_alerts_thread_together() {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(&sink, &[]).await;
    let n = app
        .post_raw(
            "/api/tickets.email",
            mail(
                "Cus Tomer <cus@example.com>",
                "Broken",
                "root@cus",
                &[],
                "it broke",
            ),
        )
        .await
        .number();
    let first = sink.wait_for(2, 10).await;
    let first_alert = first.iter().find(|m| is_alert(m)).unwrap().clone();
    assert_eq!(
        first_alert.header("In-Reply-To"),
        None,
        "staff never saw the customer's mail"
    );
    let first_id = first_alert.header("Message-ID").unwrap();

    for (i, from) in [
        "Col League <col@example.org>",
        "Third Party <third@example.net>",
    ]
    .iter()
    .enumerate()
    {
        let reply = mail(
            from,
            "Re: Broken",
            &format!("r{i}@x"),
            &["In-Reply-To: <root@cus>"],
            "more",
        );
        assert_eq!(app.post_raw("/api/tickets.email", reply).await.number(), n);
    }
    let all = sink.wait_for(4, 10).await;
    let alerts: Vec<&Received> = all.iter().filter(|m| is_alert(m)).collect();
    assert_eq!(alerts.len(), 3, "new, and one per reply");
    // Mails may arrive in any order (several in flight): find each by
    // whom it names.
    let naming = |who: &str| -> &Received {
        alerts
            .iter()
            .copied()
            .find(|m| parsed(m).body_text(0).unwrap().contains(who))
            .unwrap_or_else(|| panic!("no alert names {who}"))
    };
    let second = naming("From:       Col League <col@example.org>");
    let body = parsed(second).body_text(0).unwrap().to_string();
    assert!(
        body.contains("User:       Cus Tomer <cus@example.com>"),
        "{body}"
    );
    assert_eq!(
        second.header("In-Reply-To").as_deref(),
        Some(first_id.as_str())
    );
    let third = naming("From:       Third Party <third@example.net>");
    let second_id = second.header("Message-ID").unwrap();
    assert_eq!(
        third.header("In-Reply-To").as_deref(),
        Some(second_id.as_str())
    );
    assert_eq!(
        third.header("References").as_deref(),
        Some(format!("{first_id} {second_id}").as_str())
    );
    // The autoresponse still answers the customer's own message.
    let auto = first.iter().find(|m| !is_alert(m)).unwrap();
    assert_eq!(auto.header("In-Reply-To").as_deref(), Some("<root@cus>"));
}

/// A message with a small file and one over the fixture's 1 MiB cap.
fn with_oversize_file(message_id: &str) -> Vec<u8> {
    let big = "A".repeat(1_600_000);
    let wrapped: Vec<&str> = big
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    [
        "From: big@example.com".to_string(),
        "Subject: Logs attached".into(),
        format!("Message-ID: <{message_id}>"),
        "MIME-Version: 1.0".into(),
        "Content-Type: multipart/mixed; boundary=\"b\"".into(),
        "".into(),
        "--b".into(),
        "Content-Type: text/plain; charset=utf-8".into(),
        "".into(),
        "Logs attached.".into(),
        "--b".into(),
        "Content-Type: text/plain; name=\"small.txt\"".into(),
        "Content-Disposition: attachment; filename=\"small.txt\"".into(),
        "".into(),
        "small file".into(),
        "--b".into(),
        "Content-Type: application/octet-stream; name=\"huge.log\"".into(),
        "Content-Disposition: attachment; filename=\"huge.log\"".into(),
        "Content-Transfer-Encoding: base64".into(),
        "".into(),
        wrapped.join("\r\n"),
        "--b--".into(),
    ]
    .join("\r\n")
    .into_bytes()
}

#[tokio::test]
async fn an_oversize_attachment_in_email_files_the_ticket_and_records_the_part() {
    let app = spawn_app().await;
    // Over HTTP: before, 413, and osTicket's automail scripts retried for days.
    let r = app
        .post_raw("/api/tickets.email", with_oversize_file("big1@x"))
        .await;
    let n = r.number();
    let t = app.get_ticket(&n).await;
    let entry = &t["thread"][0];
    assert_eq!(entry["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(entry["attachments"][0]["name"], "small.txt");
    let dropped = entry["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{entry}");
    assert_eq!(dropped[0]["name"], "huge.log");
    // base64 of 1.6 MB of "A" decodes to 1.2 MB.
    assert_eq!(dropped[0]["size"], json!(1_200_000));
    assert!(
        dropped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("1048576 bytes"),
        "{dropped:?}"
    );
    // Through the pipe: filed, exit 0.
    let p = run_pipe(
        &app.config_path,
        &[],
        &with_oversize_file("big2@x"),
        None,
        false,
    );
    assert_eq!(p.code, 0, "{}", p.stderr);
    let m = p
        .stdout
        .trim()
        .strip_prefix("created ticket ")
        .unwrap()
        .to_string();
    let t = app.get_ticket(&m).await;
    assert_eq!(t["thread"][0]["dropped"][0]["name"], "huge.log");
    // JSON keeps its 413: the client can fix its request.
    let big = format!("data:text/plain;base64,{}", "QUFB".repeat(400_000));
    let r = app
        .post_json(&json!({
            "name": "J", "email": "j@example.com", "subject": "s", "message": "m",
            "attachments": [{"big.txt": big}],
        }))
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
}

#[tokio::test]
async fn a_reply_from_the_alert_recipient_alerts_staff_not_the_customer() {
    // Staff answer an alert by mail: the reply's sender is the alert's
    // own recipient. The alert it queues must still go to staff (it
    // quotes their reply), never to the ticket's user.
    let app = spawn_app_full("", &[], &with_staff_alerts).await;
    let n = app
        .post_raw(
            "/api/tickets.email",
            mail(
                "Cus Tomer <cus@example.com>",
                "Help",
                "cust1@x",
                &[],
                "help",
            ),
        )
        .await
        .number();
    let reply = mail(
        "Staff <staff@example.com>",
        "Re: Help",
        "staff1@x",
        &["In-Reply-To: <cust1@x>"],
        "internal thoughts",
    );
    assert_eq!(app.post_raw("/api/tickets.email", reply).await.number(), n);
    let t = app.get_ticket(&n).await;
    let alerts: Vec<&Value> = t["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 2, "{t}");
    for a in alerts {
        assert_eq!(a["recipients"], json!(["staff@example.com"]), "{t}");
    }
}

//! Autoresponses and staff alerts through the outbox, delivered to a real
//! SMTP server on loopback. Tests of retries and give-ups drive their own
//! sender with `run_once()` on a test clock: no real seconds pass.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oxidesk::mail_out::IntakeSignal;
use oxidesk::mail_out::sender::OutboxSender;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestClock, outbox_sender, pipe, spawn_app_full, ticket, with_staff_alerts,
};
use crate::smtp_sink::SmtpSink;

/// An app whose own sender delivers to the SMTP server on `port`.
async fn app_with_sink(port: u16, extra_env: &[(&str, &str)]) -> TestApp {
    app_with_mail(port, true, extra_env).await
}

/// An app with no sender of its own: the test drives one ([`driven`]).
pub(crate) async fn app_without_sender(port: u16, extra_env: &[(&str, &str)]) -> TestApp {
    app_with_mail(port, false, extra_env).await
}

async fn app_with_mail(port: u16, sender: bool, extra_env: &[(&str, &str)]) -> TestApp {
    let port = port.to_string();
    let mut env = vec![
        (
            "OXIDESK__MAIL__ENABLED",
            if sender { "true" } else { "false" },
        ),
        ("OXIDESK__MAIL__SMTP_PORT", port.as_str()),
        ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com"),
        ("OXIDESK__MAIL__RETRY_INITIAL_SECS", "1"),
        ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50"),
        ("OXIDESK__MAIL__LEASE_SECS", "2"),
        ("OXIDESK__MAIL__SMTP_TIMEOUT_SECS", "5"),
    ];
    env.retain(|(k, _)| !extra_env.iter().any(|(e, _)| e == k));
    env.extend_from_slice(extra_env);
    spawn_app_full("", &env, &with_staff_alerts).await
}

/// A sender for `app` that runs only in [`pass`], on a clock at `start`.
pub(crate) fn driven(app: &TestApp, start: i64) -> (Arc<OutboxSender>, TestClock) {
    let clock = TestClock::at(start);
    (outbox_sender(app, &clock), clock)
}

/// One pass of `sender` with its clock at `now`: how many mails it tried.
pub(crate) async fn pass(sender: &Arc<OutboxSender>, clock: &TestClock, now: i64) -> usize {
    clock.set(now);
    sender.run_once(&IntakeSignal::default()).await.unwrap()
}

fn wall_clock() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Unix time of ticket `n`'s creation: when its mail was queued.
pub(crate) async fn created_at(app: &TestApp, n: &str) -> i64 {
    let t = app.get_ticket(n).await;
    let created: jiff::Timestamp = t["created"].as_str().unwrap().parse().unwrap();
    created.as_second()
}

/// (kind, state, attempts) of each of a ticket's mails.
fn mail_states(t: &Value) -> Vec<(String, String, i64)> {
    t["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_string(),
                n["state"].as_str().unwrap().to_string(),
                n["attempts"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Both mails of a new ticket in `state` after `attempts`.
fn both(state: &str, attempts: i64) -> Vec<(String, String, i64)> {
    ["autoresponse", "alert"]
        .map(|k| (k.to_string(), state.to_string(), attempts))
        .to_vec()
}

fn by_kind(mails: &[crate::smtp_sink::Received]) -> HashMap<String, crate::smtp_sink::Received> {
    mails
        .iter()
        .map(|m| (m.header("Auto-Submitted").unwrap_or_default(), m.clone()))
        .collect()
}

#[tokio::test]
async fn a_new_ticket_sends_an_autoresponse_and_an_alert() {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(sink.port, &[]).await;
    let mut t = ticket("notify");
    t["name"] = json!("Nora Notify");
    t["subject"] = json!("Printer on fire");
    let n = app.post_json(&t).await.number();
    let mails = by_kind(&sink.wait_for(2, 10).await);
    let auto = &mails["auto-replied"];
    assert_eq!(auto.rcpt, vec!["notify@example.com"]);
    assert_eq!(
        auto.header("Subject").unwrap(),
        format!("[#{n}] Printer on fire")
    );
    assert!(auto.header("From").unwrap().contains("support@example.com"));
    let body = auto.body();
    assert!(
        body.contains("Nora Notify") && body.contains(&n) && body.contains("Body notify"),
        "{body}"
    );
    let alert = &mails["auto-generated"];
    assert_eq!(alert.rcpt, vec!["staff@example.com"]);
    assert!(
        alert
            .header("Subject")
            .unwrap()
            .contains(&format!("[#{n}]"))
    );
    assert!(alert.body().contains("notify@example.com"));
    // The read API shows both, sent.
    let mut states = Vec::new();
    for _ in 0..40 {
        let t = app.get_ticket(&n).await;
        states = t["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["kind"].clone(), n["state"].clone()))
            .collect();
        if states.iter().all(|(_, s)| s == "sent") {
            break;
        }
        // A poll interval while the app's own sender marks them sent.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        states,
        vec![
            (json!("autoresponse"), json!("sent")),
            (json!("alert"), json!("sent"))
        ]
    );
}

#[tokio::test]
async fn the_flags_suppress_their_mails() {
    let sink = SmtpSink::start().await;
    let app = app_without_sender(sink.port, &[]).await;
    let mut t = ticket("quiet");
    t["alert"] = json!(false);
    t["autorespond"] = json!(false);
    let quiet = app.post_json(&t).await.number();
    let mut t = ticket("alert-only");
    t["autorespond"] = json!("no");
    let alert_only = app.post_json(&t).await.number();
    // One pass tries every mail queued: the alert alone.
    let (sender, clock) = driven(&app, wall_clock());
    assert_eq!(pass(&sender, &clock, clock.now()).await, 1);
    let mails = sink.wait_for(1, 10).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].rcpt, vec!["staff@example.com"]);
    assert!(mails[0].header("Subject").unwrap().contains(&alert_only));
    assert_eq!(app.get_ticket(&quiet).await["notifications"], json!([]));
    assert_eq!(pass(&sender, &clock, clock.now() + 3600).await, 0);
}

fn notification_kinds(t: &serde_json::Value) -> Vec<String> {
    t["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_string())
        .collect()
}

fn auto_reply_mail(from: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Robot <{from}>\r\nTo: support@example.com\r\nSubject: Out of office\r\nMessage-ID: <{id}>\r\n\
         Auto-Submitted: auto-replied\r\nContent-Type: text/plain\r\n\r\nI am away.\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn an_auto_reply_gets_no_autoresponse_and_the_cap_holds() {
    let sink = SmtpSink::start().await;
    let app = app_without_sender(
        sink.port,
        &[("OXIDESK__MAIL__AUTORESPONSE_LIMIT_PER_HOUR", "2")],
    )
    .await;
    let n = app
        .post_raw(
            "/api/tickets.email",
            auto_reply_mail("robot@example.com", "ooo@x"),
        )
        .await
        .number();
    // Automatic mail queues no mail at all: no autoresponse, no alert.
    assert!(notification_kinds(&app.get_ticket(&n).await).is_empty());
    // Three tickets from one address in an hour: two autoresponses.
    for i in 0..3 {
        let mut t = ticket("capped");
        t["subject"] = json!(format!("Capped {i}"));
        app.post_json(&t).await.number();
    }
    // One pass tries every queued mail: 3 alerts, 2 autoresponses.
    let (sender, clock) = driven(&app, wall_clock());
    assert_eq!(pass(&sender, &clock, clock.now()).await, 5);
    let all = sink.wait_for(5, 10).await;
    assert_eq!(all.len(), 5, "{all:?}");
    let autos = all
        .iter()
        .filter(|m| m.rcpt == vec!["capped@example.com"])
        .count();
    assert_eq!(autos, 2, "{all:?}");
    assert!(all.iter().all(|m| m.rcpt != vec!["robot@example.com"]));
    assert_eq!(pass(&sender, &clock, clock.now() + 3600).await, 0);
}

/// `oxidesk pipe` runs as another process on the same database while
/// the server runs: the autoresponses it queued count against the
/// server's hourly cap for that address (SQLite's writer keeps the
/// windows in memory and reads them again when another process wrote).
#[tokio::test]
async fn autoresponses_queued_by_pipe_count_against_the_servers_cap() {
    let sink = SmtpSink::start().await;
    let env = [("OXIDESK__MAIL__AUTORESPONSE_LIMIT_PER_HOUR", "2")];
    let app = app_with_sink(sink.port, &env).await;
    // The server has written (and read its windows) before the pipe runs.
    let n = app.post_json(&ticket("first")).await.number();
    assert_eq!(
        notification_kinds(&app.get_ticket(&n).await),
        ["autoresponse", "alert"]
    );
    for i in 0..2 {
        let raw = format!(
            "From: Piped <piped-cap@example.com>\r\nTo: support@example.com\r\n\
             Subject: Piped {i}\r\nMessage-ID: <piped-cap-{i}@example.com>\r\n\
             Content-Type: text/plain; charset=UTF-8\r\n\r\nThe printer is down.\r\n"
        );
        let (code, out) = pipe(&app, raw.as_bytes(), &env);
        assert_eq!(code, 0, "{out}");
        let n = out.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(
            notification_kinds(&app.get_ticket(&n).await),
            ["autoresponse", "alert"]
        );
    }
    // The address has had its two this hour, through the pipe.
    let n = app.post_json(&ticket("piped-cap")).await.number();
    assert_eq!(notification_kinds(&app.get_ticket(&n).await), ["alert"]);
    let n = app.post_json(&ticket("someone-else")).await.number();
    assert_eq!(
        notification_kinds(&app.get_ticket(&n).await),
        ["autoresponse", "alert"]
    );
}

#[tokio::test]
async fn the_cap_holds_across_a_restart() {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(
        sink.port,
        &[("OXIDESK__MAIL__AUTORESPONSE_LIMIT_PER_HOUR", "2")],
    )
    .await;
    for i in 0..2 {
        let mut t = ticket("restarted");
        t["subject"] = json!(format!("Before restart {i}"));
        let n = app.post_json(&t).await.number();
        assert_eq!(
            notification_kinds(&app.get_ticket(&n).await),
            ["autoresponse", "alert"]
        );
    }
    let app = app.restart().await;
    // The address has had its two this hour; other addresses have not.
    let mut t = ticket("RESTARTED");
    t["subject"] = json!("After restart");
    let n = app.post_json(&t).await.number();
    assert_eq!(notification_kinds(&app.get_ticket(&n).await), ["alert"]);
    let n = app.post_json(&ticket("someone-else")).await.number();
    assert_eq!(
        notification_kinds(&app.get_ticket(&n).await),
        ["autoresponse", "alert"]
    );
}

#[tokio::test]
async fn mails_wait_while_smtp_is_down_and_go_out_when_it_is_up() {
    // Nothing listens on the port until the test starts the sink there.
    // Another process may take the port meanwhile (free_port's race):
    // acceptable, since the test binds it itself and a taken port fails
    // the bind loudly instead of passing.
    let port = crate::helpers::free_port();
    let app = app_without_sender(port, &[("OXIDESK__MAIL__RETRY_INITIAL_SECS", "60")]).await;
    let n = app.post_json(&ticket("down")).await.number();
    let t0 = created_at(&app, &n).await;
    let (sender, clock) = driven(&app, t0);
    // A first attempt fails (nothing listens) and is rescheduled.
    assert_eq!(pass(&sender, &clock, t0).await, 2);
    let t = app.get_ticket(&n).await;
    assert_eq!(mail_states(&t), both("queued", 1));
    assert!(
        t["notifications"][0]["last_error"].as_str().is_some(),
        "{t}"
    );
    assert_eq!(pass(&sender, &clock, t0 + 59).await, 0, "retried early");
    let sink = SmtpSink::start_on(port).await;
    assert_eq!(pass(&sender, &clock, t0 + 60).await, 2);
    assert_eq!(sink.wait_for(2, 10).await.len(), 2);
    assert_eq!(mail_states(&app.get_ticket(&n).await), both("sent", 2));
}

#[tokio::test]
async fn temporary_refusals_are_retried_and_permanent_ones_recorded() {
    let sink = SmtpSink::start().await;
    sink.fail_with(Some(451));
    let app = app_without_sender(sink.port, &[("OXIDESK__MAIL__RETRY_INITIAL_SECS", "60")]).await;
    let n = app.post_json(&ticket("temp")).await.number();
    let t0 = created_at(&app, &n).await;
    let (sender, clock) = driven(&app, t0);
    assert_eq!(pass(&sender, &clock, t0).await, 2);
    // Both were refused at MAIL FROM: the sink accepted nothing.
    assert!(sink.received().is_empty());
    let t = app.get_ticket(&n).await;
    assert_eq!(mail_states(&t), both("queued", 1));
    assert!(
        t["notifications"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("451"),
        "{t}"
    );
    assert_eq!(pass(&sender, &clock, t0 + 59).await, 0, "retried early");
    sink.fail_with(None);
    assert_eq!(pass(&sender, &clock, t0 + 60).await, 2);
    sink.wait_for(2, 10).await;
    assert_eq!(mail_states(&app.get_ticket(&n).await), both("sent", 2));

    sink.fail_with(Some(550));
    let m = app.post_json(&ticket("perm")).await.number();
    let now = created_at(&app, &m).await.max(t0 + 60);
    assert_eq!(pass(&sender, &clock, now).await, 2);
    let t = app.get_ticket(&m).await;
    assert_eq!(mail_states(&t), both("failed", 1));
    assert!(
        t["notifications"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("550"),
        "{t}"
    );
    // Given up for good: never tried again.
    assert_eq!(pass(&sender, &clock, now + 86_400).await, 0);
}

#[tokio::test]
async fn a_reply_to_the_autoresponse_joins_the_ticket() {
    let sink = SmtpSink::start().await;
    let app = app_with_sink(sink.port, &[]).await;
    let n = app.post_json(&ticket("replier")).await.number();
    let mails = by_kind(&sink.wait_for(2, 10).await);
    let auto_id = mails["auto-replied"].header("Message-ID").unwrap();
    let reply = format!(
        "From: Test User <replier@example.com>\r\nTo: support@example.com\r\nSubject: Re: your request\r\n\
         Message-ID: <reply-to-auto@x>\r\nIn-Reply-To: {auto_id}\r\nContent-Type: text/plain\r\n\r\nThanks!\r\n"
    );
    let r = app.post_raw("/api/tickets.email", reply.into_bytes()).await;
    assert_eq!(r.number(), n);
    let t = app.get_ticket(&n).await;
    assert_eq!(t["thread"].as_array().unwrap().len(), 2);
    // A reply alerts the staff, and does not autorespond.
    let kinds: Vec<_> = t["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["kind"].clone(), n["event"].clone()))
        .collect();
    assert_eq!(kinds.last().unwrap(), &(json!("alert"), json!("reply")));
    assert_eq!(kinds.iter().filter(|(k, _)| k == "autoresponse").count(), 1);
}

fn start_server(config: &std::path::Path, smtp: u16) -> (std::process::Child, SocketAddr) {
    crate::helpers::serve_process(
        config,
        &[
            // Off by default (no mail before [mail] is configured).
            ("OXIDESK__MAIL__ENABLED", "true".into()),
            ("OXIDESK__MAIL__SMTP_PORT", smtp.to_string()),
            ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com".into()),
            ("OXIDESK__MAIL__LEASE_SECS", "1".into()),
            ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50".into()),
        ],
    )
}

/// Stops a server as its supervisor would (SIGTERM) and waits for it: it
/// exits after its sender's current pass, so every delivery it began has
/// ended by then.
pub(crate) fn terminate(server: &mut std::process::Child) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn killed_mid_delivery_and_restarted_every_mail_arrives_once() {
    let sink = SmtpSink::start().await;
    sink.hold(true);
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = crate::helpers::test_database(&dir.path().join("o.db")).await;
    let config = dir.path().join("o.toml");
    let text = format!(
        "database = \"{database}\"\n{}",
        with_staff_alerts(&crate::helpers::fixture_config_text())
    );
    std::fs::write(&config, text).unwrap();
    let key = crate::helpers::cli_key_add(&config);
    let (mut server, addr) = start_server(&config, sink.port);
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = client
            .post(format!("http://{addr}/api/tickets.json"))
            .header("X-API-Key", &key)
            .body(ticket(&format!("restart{i}")).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Kill the server while the SMTP server holds a message it has not
    // yet accepted.
    sink.wait_until("a held delivery", 10, |s| s.holding() > 0)
        .await;
    server.kill().unwrap();
    server.wait().unwrap();
    // The sink drops each held message once it sees its client gone;
    // while holding it accepts nothing.
    sink.wait_until("the killed client's connections closed", 10, |s| {
        s.holding() == 0
    })
    .await;
    assert!(sink.received().is_empty());
    sink.hold(false);

    let (mut server, _) = start_server(&config, sink.port);
    // Every mail sent, as the store says (a wait for presence); then the
    // server stops, and with it any delivery in flight: the sink's count
    // is final.
    let cfg = oxidesk::config::Config::load(Some(&config), std::iter::empty()).unwrap();
    let store = oxidesk::cli::open_store(&cfg).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = store.list_outbox(None, 100).await.unwrap();
        if rows.len() == 10
            && rows
                .iter()
                .all(|r| r.notification.state == oxidesk::storage::MailState::Sent)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        // A poll interval: the loop ends on the condition.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(store);
    terminate(&mut server);
    let all = sink.received();
    assert_eq!(all.len(), 10, "{} mails for 10 notifications", all.len());
    let ids: std::collections::HashSet<_> = all
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 10, "a mail was sent twice");
    if let Some(name) = pg_name {
        crate::helpers::drop_test_database(&name);
    }
}

#[tokio::test]
async fn mail_is_given_up_after_the_configured_time_and_can_be_retried() {
    // The relay defers every mail (451). A relay that cannot be reached
    // gives no mail up (outbox_breaker.rs).
    let sink = SmtpSink::start().await;
    sink.fail_with(Some(451));
    let app = app_without_sender(
        sink.port,
        &[
            ("OXIDESK__MAIL__RETRY_INITIAL_SECS", "60"),
            ("OXIDESK__MAIL__RETRY_MAX_SECS", "3600"),
            ("OXIDESK__MAIL__GIVE_UP_AFTER_SECS", "600"),
        ],
    )
    .await;
    let n = app.post_json(&ticket("giveup")).await.number();
    let t0 = created_at(&app, &n).await;
    let (sender, clock) = driven(&app, t0);
    // Attempts at +0, +60, +180, +420 (backoff 60, 120, 240 s); the next
    // would come at +900, past the 600 s give-up: the fourth failure
    // gives up. Not a moment early.
    for (after, tried) in [
        (0, 2),
        (59, 0),
        (60, 2),
        (179, 0),
        (180, 2),
        (419, 0),
        (420, 2),
    ] {
        assert_eq!(
            pass(&sender, &clock, t0 + after).await,
            tried,
            "at +{after} s"
        );
    }
    let t = app.get_ticket(&n).await;
    assert_eq!(mail_states(&t), both("failed", 4));
    let error = t["notifications"][0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("gave up after 4 attempts") && error.contains("451"),
        "{t}"
    );
    assert_eq!(pass(&sender, &clock, t0 + 86_400).await, 0);
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
            .arg("--config")
            .arg(&app.config_path)
            .args(args)
            .env_remove("OXIDESK_CONFIG")
            .output()
            .unwrap()
    };
    let list = String::from_utf8(cli(&["outbox", "list", "--state", "failed"]).stdout).unwrap();
    assert!(list.contains(&n) && list.contains("gave up"), "{list}");
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(cli(&["outbox", "retry", &id]).status.success());
    sink.fail_with(None);
    // Queued again now (the CLI's clock): due at once, and the other
    // failed mail stays failed.
    assert_eq!(
        pass(&sender, &clock, wall_clock().max(t0 + 86_400)).await,
        1
    );
    assert_eq!(sink.wait_for(1, 10).await.len(), 1);
    assert!(!cli(&["outbox", "retry", "999999"]).status.success());
}

#[tokio::test]
async fn a_connection_the_server_dropped_is_replaced_at_once() {
    let sink = SmtpSink::start().await;
    let app = app_without_sender(sink.port, &[("OXIDESK__MAIL__RETRY_INITIAL_SECS", "30")]).await;
    app.post_json(&ticket("kept1")).await.number();
    let (sender, clock) = driven(&app, wall_clock());
    assert_eq!(pass(&sender, &clock, clock.now()).await, 2);
    sink.wait_for(2, 10).await;
    // The server closes the connections the sender keeps for later.
    sink.kick_idle();
    sink.wait_until("idle connections closed", 10, |s| s.open_sessions() == 0)
        .await;
    let n = app.post_json(&ticket("kept2")).await.number();
    let now = created_at(&app, &n).await.max(clock.now());
    assert_eq!(pass(&sender, &clock, now).await, 2);
    // Sent on a new connection at the first attempt: no failure, no retry.
    let t = app.get_ticket(&n).await;
    assert_eq!(mail_states(&t), both("sent", 1));
    for note in t["notifications"].as_array().unwrap() {
        assert!(note["last_error"].is_null(), "{note}");
    }
    assert_eq!(sink.wait_for(4, 10).await.len(), 4);
}

/// The sender takes only the CPU that ticket intake leaves.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_sender_runs_at_the_lowest_cpu_priority() {
    let sink = SmtpSink::start().await;
    let _app = app_with_sink(sink.port, &[]).await;
    let mut nices = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim() == "oxidesk-outbox" {
            let stat = std::fs::read_to_string(task.join("stat")).unwrap();
            // Fields after the command's closing parenthesis; nice is 19th overall.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .collect();
            nices.push(fields[16].parse::<i32>().unwrap());
        }
    }
    // Other tests of this process may run senders too: all are niced.
    assert!(!nices.is_empty());
    assert!(nices.iter().all(|n| *n == 19), "{nices:?}");
}

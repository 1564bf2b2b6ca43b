//! Autoresponses and staff alerts through the outbox, delivered to a real
//! SMTP server on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, spawn_app_full, ticket, with_staff_alerts};
use crate::smtp_sink::SmtpSink;

async fn app_with_sink(port: u16, extra_env: &[(&str, &str)]) -> TestApp {
    let port = port.to_string();
    let mut env = vec![
        ("OXIDESK__MAIL__ENABLED", "true"),
        ("OXIDESK__MAIL__SMTP_PORT", port.as_str()),
        ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com"),
        ("OXIDESK__MAIL__RETRY_INITIAL_SECS", "1"),
        ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50"),
        ("OXIDESK__MAIL__LEASE_SECS", "2"),
        ("OXIDESK__MAIL__SMTP_TIMEOUT_SECS", "5"),
    ];
    env.extend_from_slice(extra_env);
    spawn_app_full("", &env, &with_staff_alerts).await
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
    let app = app_with_sink(sink.port, &[]).await;
    let mut t = ticket("quiet");
    t["alert"] = json!(false);
    t["autorespond"] = json!(false);
    let quiet = app.post_json(&t).await.number();
    let mut t = ticket("alert-only");
    t["autorespond"] = json!("no");
    let alert_only = app.post_json(&t).await.number();
    let mails = sink.wait_for(1, 10).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mails = if sink.received().len() > mails.len() {
        sink.received()
    } else {
        mails
    };
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].rcpt, vec!["staff@example.com"]);
    assert!(mails[0].header("Subject").unwrap().contains(&alert_only));
    assert_eq!(app.get_ticket(&quiet).await["notifications"], json!([]));
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
    let app = app_with_sink(
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
    let mails = sink.wait_for(5, 10).await; // 3 alerts, 2 autoresponses
    tokio::time::sleep(Duration::from_millis(400)).await;
    let all = sink.received();
    assert!(all.len() >= mails.len());
    let autos = all
        .iter()
        .filter(|m| m.rcpt == vec!["capped@example.com"])
        .count();
    assert_eq!(autos, 2, "{all:?}");
    assert!(all.iter().all(|m| m.rcpt != vec!["robot@example.com"]));
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
    let port = crate::helpers::free_port();
    let app = app_with_sink(port, &[]).await;
    let n = app.post_json(&ticket("down")).await.number();
    // A first attempt fails (nothing listens) and is rescheduled.
    let mut saw_retry = false;
    for _ in 0..60 {
        let t = app.get_ticket(&n).await;
        if t["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["state"] == "queued" && n["attempts"].as_i64() >= Some(1))
        {
            saw_retry = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_retry, "no failed attempt was recorded");
    let sink = SmtpSink::start_on(port).await;
    let mails = sink.wait_for(2, 15).await;
    assert_eq!(mails.len(), 2);
}

#[tokio::test]
async fn temporary_refusals_are_retried_and_permanent_ones_recorded() {
    let sink = SmtpSink::start().await;
    sink.fail_with(Some(451));
    let app = app_with_sink(sink.port, &[]).await;
    let n = app.post_json(&ticket("temp")).await.number();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.received().is_empty());
    sink.fail_with(None);
    sink.wait_for(2, 15).await;

    sink.fail_with(Some(550));
    let m = app.post_json(&ticket("perm")).await.number();
    let mut failed = Vec::new();
    for _ in 0..100 {
        let t = app.get_ticket(&m).await;
        failed = t["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "failed")
            .cloned()
            .collect();
        if failed.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0]["last_error"].as_str().unwrap().contains("550"));
    let _ = n;
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
            ("OXIDESK__MAIL__SMTP_PORT", smtp.to_string()),
            ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com".into()),
            ("OXIDESK__MAIL__LEASE_SECS", "1".into()),
            ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50".into()),
        ],
    )
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
    for _ in 0..200 {
        if sink.holding() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(sink.holding() > 0, "no delivery in progress");
    server.kill().unwrap();
    server.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.received().is_empty());
    sink.hold(false);

    let (mut server, _) = start_server(&config, sink.port);
    let mails = sink.wait_for(10, 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = sink.received();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(all.len(), 10, "{} mails for 10 notifications", all.len());
    let ids: std::collections::HashSet<_> = all
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 10, "a mail was sent twice");
    assert!(mails.len() <= 10);
    if let Some(name) = pg_name {
        crate::helpers::drop_test_database(&name);
    }
}

#[tokio::test]
async fn mail_is_given_up_after_the_configured_time_and_can_be_retried() {
    let port = crate::helpers::free_port();
    let app = app_with_sink(port, &[("OXIDESK__MAIL__GIVE_UP_AFTER_SECS", "1")]).await;
    let n = app.post_json(&ticket("giveup")).await.number();
    let mut failed = 0;
    for _ in 0..100 {
        let t = app.get_ticket(&n).await;
        let notes = t["notifications"].as_array().unwrap().clone();
        failed = notes.iter().filter(|n| n["state"] == "failed").count();
        if failed == 2 {
            assert!(
                notes[0]["last_error"].as_str().unwrap().contains("gave up"),
                "{notes:?}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed, 2);
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
    let sink = SmtpSink::start_on(port).await;
    let mails = sink.wait_for(1, 15).await;
    assert_eq!(mails.len(), 1);
    assert!(!cli(&["outbox", "retry", "999999"]).status.success());
}

#[tokio::test]
async fn a_connection_the_server_dropped_is_replaced_at_once() {
    let sink = SmtpSink::start().await;
    // A retry would come only after 30 s: the mails must go out on a
    // new connection at their first attempt.
    let app = app_with_sink(sink.port, &[("OXIDESK__MAIL__RETRY_INITIAL_SECS", "30")]).await;
    app.post_json(&ticket("kept1")).await.number();
    sink.wait_for(2, 10).await;
    // The server closes the connections the sender keeps for later.
    sink.kick_idle();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n = app.post_json(&ticket("kept2")).await.number();
    sink.wait_for(4, 5).await;
    let mut notes = Vec::new();
    for _ in 0..100 {
        notes = app.get_ticket(&n).await["notifications"]
            .as_array()
            .unwrap()
            .clone();
        if notes.iter().all(|n| n["state"] == "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(notes.len(), 2);
    for note in &notes {
        assert_eq!(note["state"], "sent", "{note}");
        assert_eq!(note["attempts"], 1, "{note}");
        assert!(note["last_error"].is_null(), "{note}");
    }
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

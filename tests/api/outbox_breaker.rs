//! The sender's circuit breaker (issue 17, point 5): a relay that refuses
//! connections is tried once per backoff, not once per mail. Driven with
//! `run_once()` on a test clock against a real SMTP sink started on the
//! port the relay was down on; the last test runs the real server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oxidesk::storage::{MailState, OutboxSummary};

use crate::helpers::{TestApp, free_port, ticket};
use crate::notify::{app_without_sender, created_at, driven, pass};
use crate::smtp_sink::SmtpSink;

/// Every outbox row (mail not taken yet included): id → (state,
/// attempts, last error).
async fn outbox(app: &TestApp) -> HashMap<i64, (MailState, i64, Option<String>)> {
    app.store
        .list_outbox(None, 500)
        .await
        .unwrap()
        .into_iter()
        .map(
            |OutboxSummary {
                 id,
                 notification: n,
                 ..
             }| (id, (n.state, n.attempts, n.last_error)),
        )
        .collect()
}

/// How many rows have each attempt count.
fn by_attempts(rows: &HashMap<i64, (MailState, i64, Option<String>)>) -> HashMap<i64, usize> {
    let mut out = HashMap::new();
    for (_, attempts, _) in rows.values() {
        *out.entry(*attempts).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn a_relay_that_refuses_connections_is_left_alone_until_its_backoff_passes() {
    // Nothing listens on the port until the test starts the sink there
    // (free_port's race is acceptable: the test binds the port itself).
    let port = free_port();
    let app = app_without_sender(
        port,
        &[
            ("OXIDESK__MAIL__RETRY_INITIAL_SECS", "60"),
            ("OXIDESK__MAIL__RELAY_BACKOFF_MAX_SECS", "240"),
        ],
    )
    .await;
    let mut last = String::new();
    for i in 0..10 {
        last = app.post_json(&ticket(&format!("down{i}"))).await.number();
    }
    let t0 = created_at(&app, &last).await;
    let (sender, clock) = driven(&app, t0);

    // 20 mails. The pass offers 8 at once (the sender's connections);
    // the first refused connection opens the breaker, so the other 12
    // are never offered, nor counted as attempts.
    assert_eq!(pass(&sender, &clock, t0).await, 8);
    let rows = outbox(&app).await;
    assert_eq!(rows.len(), 20);
    assert!(rows.values().all(|r| r.0 == MailState::Queued), "{rows:?}");
    assert_eq!(by_attempts(&rows), HashMap::from([(1, 8), (0, 12)]));
    for (state, attempts, error) in rows.values() {
        match attempts {
            1 => assert!(
                error
                    .as_deref()
                    .is_some_and(|e| e.contains("no session with the SMTP relay")),
                "{state:?} {error:?}"
            ),
            _ => assert_eq!(error, &None),
        }
    }

    // Open: no pass claims, tries or writes anything, not even the mail
    // of a ticket that arrives meanwhile.
    let during = app.post_json(&ticket("during")).await.number();
    for after in [1, 30, 59] {
        assert_eq!(pass(&sender, &clock, t0 + after).await, 0, "at +{after} s");
    }
    let mut expected = rows.clone();
    let now = outbox(&app).await;
    assert_eq!(now.len(), 22);
    for (id, row) in &now {
        if !rows.contains_key(id) {
            assert_eq!(row, &(MailState::Queued, 0, None), "{during}: {row:?}");
            expected.insert(*id, row.clone());
        }
    }
    assert_eq!(now, expected, "rows changed while the breaker was open");

    // The backoff passed: one mail is tried, fails, and the breaker opens
    // again for twice as long (then at most 240 s).
    let total = |rows: &HashMap<i64, (MailState, i64, Option<String>)>| -> i64 {
        rows.values().map(|r| r.1).sum()
    };
    assert_eq!(pass(&sender, &clock, t0 + 60).await, 1);
    assert_eq!(total(&outbox(&app).await), 9);
    assert_eq!(pass(&sender, &clock, t0 + 179).await, 0);
    assert_eq!(pass(&sender, &clock, t0 + 180).await, 1);
    assert_eq!(total(&outbox(&app).await), 10);
    assert_eq!(pass(&sender, &clock, t0 + 419).await, 0);

    // The relay is back: the try succeeds, the breaker closes and
    // everything goes out in the same pass.
    let sink = SmtpSink::start_on(port).await;
    assert_eq!(pass(&sender, &clock, t0 + 420).await, 22);
    assert_eq!(sink.wait_for(22, 10).await.len(), 22);
    let rows = outbox(&app).await;
    assert!(rows.values().all(|r| r.0 == MailState::Sent), "{rows:?}");
    assert_eq!(total(&rows), 10 + 22);
    assert_eq!(pass(&sender, &clock, t0 + 421).await, 0);
}

#[tokio::test]
async fn a_relay_down_past_the_give_up_time_gives_no_mail_up() {
    let port = free_port();
    let app = app_without_sender(
        port,
        &[
            ("OXIDESK__MAIL__RETRY_INITIAL_SECS", "60"),
            ("OXIDESK__MAIL__RETRY_MAX_SECS", "3600"),
            ("OXIDESK__MAIL__RELAY_BACKOFF_MAX_SECS", "3600"),
            ("OXIDESK__MAIL__GIVE_UP_AFTER_SECS", "600"),
        ],
    )
    .await;
    app.post_json(&ticket("outage1")).await.number();
    let last = app.post_json(&ticket("outage2")).await.number();
    let t0 = created_at(&app, &last).await;
    let (sender, clock) = driven(&app, t0);
    // The relay stays down for half an hour, three times the give-up
    // time: tried at +0 (all four at once), then one at +60, +180, +420
    // and +900 (backoff 60, 120, 240, 480, 960 s).
    for (after, tried) in [(0, 4), (59, 0), (60, 1), (180, 1), (420, 1), (900, 1)] {
        assert_eq!(
            pass(&sender, &clock, t0 + after).await,
            tried,
            "at +{after} s"
        );
    }
    let rows = outbox(&app).await;
    assert!(rows.values().all(|r| r.0 == MailState::Queued), "{rows:?}");
    assert_eq!(pass(&sender, &clock, t0 + 1859).await, 0);

    // Back, it takes them all: none was given up for the relay's outage.
    let sink = SmtpSink::start_on(port).await;
    assert_eq!(pass(&sender, &clock, t0 + 1860).await, 4);
    assert_eq!(sink.wait_for(4, 10).await.len(), 4);
    let rows = outbox(&app).await;
    assert!(rows.values().all(|r| r.0 == MailState::Sent), "{rows:?}");

    // The give-up rule still holds for what the relay itself defers: a
    // mail past its give-up time (the test clock is half an hour past
    // its creation) that the relay answers 451 is given up at once.
    sink.fail_with(Some(451));
    let late = app.post_json(&ticket("late")).await.number();
    let now = (t0 + 1860).max(created_at(&app, &late).await + 600);
    assert_eq!(pass(&sender, &clock, now).await, 2);
    let failed: Vec<_> = outbox(&app)
        .await
        .into_values()
        .filter(|r| r.0 == MailState::Failed)
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for (_, _, error) in failed {
        let error = error.unwrap();
        assert!(
            error.contains("gave up") && error.contains("451"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn the_server_reports_the_breaker_once_as_it_opens_and_closes() {
    let port = free_port();
    let smtp_port = port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = crate::helpers::test_database(&dir.path().join("b.db")).await;
    let config = dir.path().join("b.toml");
    let text = format!(
        "database = \"{database}\"\n{}",
        crate::helpers::with_staff_alerts(&crate::helpers::fixture_config_text())
    );
    std::fs::write(&config, text).unwrap();
    let key = crate::helpers::cli_key_add(&config);
    let log_path = dir.path().join("server.log");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("OXIDESK_CONFIG")
        .env_remove("RUST_LOG")
        .envs([
            ("OXIDESK__MAIL__ENABLED", "true"),
            ("OXIDESK__MAIL__SMTP_PORT", smtp_port.as_str()),
            ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com"),
            ("OXIDESK__MAIL__RETRY_INITIAL_SECS", "1"),
            ("OXIDESK__MAIL__RELAY_BACKOFF_MAX_SECS", "1"),
            ("OXIDESK__MAIL__POLL_INTERVAL_MS", "50"),
        ])
        .stderr(std::fs::File::create(&log_path).unwrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = crate::helpers::listening_address(&mut server);
    let client = reqwest::Client::new();
    let relay_state = || async {
        let page = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.lines()
            .find_map(|l| l.strip_prefix("oxidesk_outbox_relay_state "))
            .map(|v| v.trim().to_string())
    };
    for i in 0..3 {
        let r = client
            .post(format!("http://{addr}/api/tickets.json"))
            .header("X-API-Key", &key)
            .body(ticket(&format!("gauge{i}")).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Waits for presence only: the gauge says open (2).
    let deadline = Instant::now() + Duration::from_secs(20);
    while relay_state().await.as_deref() != Some("2") {
        assert!(Instant::now() < deadline, "{:?}", relay_state().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sink = SmtpSink::start_on(port).await;
    assert_eq!(sink.wait_for(6, 20).await.len(), 6);
    let deadline = Instant::now() + Duration::from_secs(20);
    while relay_state().await.as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "{:?}", relay_state().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crate::notify::terminate(&mut server);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    // Once each, whatever the mails and tries in between.
    assert_eq!(count("cannot be reached"), 1, "{log}");
    assert_eq!(count("answers again"), 1, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("cannot be reached")),
        "{log}"
    );
    assert_eq!(count("mail will be retried"), 0, "{log}");
    if let Some(name) = pg_name {
        crate::helpers::drop_test_database(&name);
    }
}

//! Operations: `/healthz`, `/readyz`, `/metrics`, the access log and the
//! rate limits (issue 15, points 1–4).

use std::collections::HashMap;
use std::io::BufRead;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{
    add_key, cli_key_add, drop_test_database, fixture_config_text, free_port, listening_address,
    spawn_app, spawn_app_env, test_database, ticket,
};

async fn get_json(app: &crate::helpers::TestApp, path: &str) -> (u16, Value) {
    let r = app.send(Method::GET, path, None, Vec::new(), &[]).await;
    (r.status, serde_json::from_str(&r.body).unwrap())
}

#[tokio::test]
async fn healthz_and_readyz_answer_without_a_key() {
    let app = spawn_app().await;
    let (status, body) = get_json(&app, "/healthz").await;
    assert_eq!((status, &body["status"]), (200, &Value::from("ok")));
    let (status, body) = get_json(&app, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let checks = &body["checks"];
    assert_eq!(checks["store"]["ok"], true);
    assert_eq!(checks["schema"]["ok"], true);
    assert_eq!(checks["schema"]["version"], checks["schema"]["expected"]);
    assert_eq!(checks["outbox"]["ok"], true);
    // Mail is off in this app: the outbox's age is not held against it.
    assert_eq!(checks["outbox"]["checked"], false);
}

#[tokio::test]
async fn readyz_is_503_while_mail_waits_too_long() {
    // Mail on, to a port nothing listens on: the autoresponse stays queued.
    let port = free_port().to_string();
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__MAIL__ENABLED", "true"),
            ("OXIDESK__MAIL__SMTP_HOST", "127.0.0.1"),
            ("OXIDESK__MAIL__SMTP_PORT", port.as_str()),
            ("OXIDESK__HEALTH__OUTBOX_MAX_AGE_SECS", "1"),
        ],
    )
    .await;
    app.post_json(&ticket("stuck")).await.number();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_json(&app, "/readyz").await;
        if status == 503 {
            assert_eq!(body["status"], "not ready");
            assert_eq!(body["checks"]["outbox"]["ok"], false, "{body}");
            assert!(body["checks"]["outbox"]["queued"].as_i64().unwrap() >= 1);
            assert_eq!(body["checks"]["store"]["ok"], true);
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "still ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The samples of a Prometheus text page: `name{labels}` → value.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include every `labels`.
fn sample(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v)
        .sum()
}

async fn scrape(app: &crate::helpers::TestApp) -> HashMap<String, f64> {
    let r = app
        .send(Method::GET, "/metrics", None, Vec::new(), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    parse_metrics(&r.body)
}

#[tokio::test]
async fn metrics_move_after_requests() {
    let app = spawn_app().await;
    // The recorder is the process's: other tests add to the same
    // counters, so only increases are checked.
    let before = scrape(&app).await;
    for i in 0..3 {
        app.post_json(&ticket(&format!("metrics{i}")))
            .await
            .number();
    }
    let xml = "<ticket><name>M</name><email>m-xml@example.com</email><subject>s</subject><message>m</message></ticket>";
    app.post_raw("/api/tickets.xml", xml.into()).await.number();
    let refused = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some("wrong"),
            b"{}".to_vec(),
            &[],
        )
        .await;
    assert_eq!(refused.status, 401);
    let bad = app.post_raw("/api/tickets.json", b"{".to_vec()).await;
    assert_eq!(bad.status, 400);
    let after = scrape(&app).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let created = [
        ("route", "/api/{file}"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert!(moved("oxidesk_http_requests_total", &created) >= 4.0);
    assert!(
        moved(
            "oxidesk_http_requests_total",
            &[("route", "/api/{file}"), ("status", "401")]
        ) >= 1.0
    );
    assert!(
        moved(
            "oxidesk_http_request_duration_seconds_count",
            &[("route", "/api/{file}"), ("method", "POST")]
        ) >= 6.0
    );
    // Buckets are explicit: a histogram, not a summary.
    assert!(after.keys().any(|k| {
        k.starts_with("oxidesk_http_request_duration_seconds_bucket{") && k.contains("le=\"0.005\"")
    }));
    assert!(moved("oxidesk_tickets_created_total", &[("channel", "json")]) >= 3.0);
    assert!(moved("oxidesk_tickets_created_total", &[("channel", "xml")]) >= 1.0);
    assert!(
        moved(
            "oxidesk_tickets_refused_total",
            &[("channel", "json"), ("reason", "invalid")]
        ) >= 1.0
    );
    assert!(
        moved(
            "oxidesk_api_key_refusals_total",
            &[("reason", "key_unknown")]
        ) >= 1.0
    );
    if std::env::var("TEST_DATABASE_URL").is_err() {
        assert!(moved("oxidesk_sqlite_commit_batch_size_count", &[]) >= 4.0);
        assert!(moved("oxidesk_sqlite_commit_duration_seconds_count", &[]) >= 4.0);
        // Every answered write waited for an fsync of the log.
        assert!(moved("oxidesk_sqlite_sync_seconds_count", &[("file", "log")]) >= 1.0);
        // Tickets were indexed: the full-text index has segments.
        assert!(sample(&after, "oxidesk_sqlite_search_segments", &[]) >= 1.0);
    } else {
        assert!(after.contains_key("oxidesk_postgres_connections{state=\"in_use\"}"));
    }
    assert!(after.contains_key("oxidesk_outbox_queued"));
    assert!(after.contains_key("oxidesk_outbox_oldest_age_seconds"));
    assert_eq!(sample(&after, "oxidesk_store_up", &[]), 1.0);
    assert_eq!(
        sample(
            &after,
            "oxidesk_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    // No label holds raw input: the refused key's text, a raw path.
    let page = app
        .send(Method::GET, "/metrics", None, Vec::new(), &[])
        .await
        .body;
    assert!(!page.contains("wrong"));
    assert!(!page.contains("tickets.json"));
}

#[tokio::test]
async fn metrics_off_serves_no_page() {
    let app = spawn_app_env("", &[("OXIDESK__METRICS__ENABLED", "false")]).await;
    let r = app
        .send(Method::GET, "/metrics", None, Vec::new(), &[])
        .await;
    assert_eq!(r.status, 404);
}

fn header<'a>(r: &'a crate::helpers::Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_key_over_its_limit_gets_429_with_rate_limit_headers() {
    let app = spawn_app_env("", &[("OXIDESK__LIMITS__REQUESTS_PER_MINUTE_PER_KEY", "2")]).await;
    let first = app.post_json(&ticket("rl1")).await;
    assert_eq!(first.status, 201);
    assert_eq!(header(&first, "ratelimit-limit"), Some("2"));
    assert_eq!(header(&first, "ratelimit-remaining"), Some("1"));
    let reset: u64 = header(&first, "ratelimit-reset").unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    assert_eq!(header(&first, "retry-after"), None);
    let second = app.post_json(&ticket("rl2")).await;
    assert_eq!(second.status, 201);
    assert_eq!(header(&second, "ratelimit-remaining"), Some("0"));
    let third = app.post_json(&ticket("rl3")).await;
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.body, "Too many requests");
    assert_eq!(header(&third, "ratelimit-remaining"), Some("0"));
    let retry: u64 = header(&third, "retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Another key has its own allowance.
    let other = add_key(&app.store, &["127.0.0.1/32"], true, true).await;
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&other),
            ticket("rl4").to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(header(&r, "ratelimit-remaining"), Some("1"));
}

#[tokio::test]
async fn an_address_over_its_limit_gets_429_but_probes_still_answer() {
    let app = spawn_app_env(
        "",
        &[("OXIDESK__LIMITS__REQUESTS_PER_MINUTE_PER_ADDRESS", "2")],
    )
    .await;
    for remaining in ["1", "0"] {
        let r = app
            .send(Method::GET, "/api/openapi.json", None, Vec::new(), &[])
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "ratelimit-remaining"), Some(remaining));
    }
    let r = app
        .send(
            Method::GET,
            "/api/openapi.json",
            None,
            Vec::new(),
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(header(&r, "retry-after").is_some());
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"]["status"], 429);
    assert_eq!(get_json(&app, "/healthz").await.0, 200);
    assert_eq!(get_json(&app, "/readyz").await.0, 200);
}

#[tokio::test]
async fn failed_key_checks_are_throttled_per_address() {
    let app = spawn_app_env(
        "",
        &[("OXIDESK__LIMITS__KEY_FAILURES_PER_MINUTE_PER_ADDRESS", "2")],
    )
    .await;
    let body = ticket("guess").to_string().into_bytes();
    for _ in 0..2 {
        let r = app
            .send(
                Method::POST,
                "/api/tickets.json",
                Some("guess"),
                body.clone(),
                &[],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some("guess"),
            body.clone(),
            &[],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(header(&r, "retry-after").is_some());
    // While the address is blocked, even a valid key is not looked at.
    let r = app.post_raw("/api/tickets.json", body).await;
    assert_eq!(r.status, 429);
    assert_eq!(app.store.list_tickets(10).await.unwrap().len(), 0);
}

/// `oxidesk serve` as a process whose standard error is kept: the lines
/// arrive on the returned channel.
fn serve_with_stderr(
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::sync::mpsc::Receiver<String>,
) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"));
    cmd.arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("OXIDESK_CONFIG")
        .env_remove("RUST_LOG")
        .env("OXIDESK__MAIL__ENABLED", "false")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = listening_address(&mut child);
    (child, addr, rx)
}

/// Lines from `rx` until one satisfies `want` (30 s at most); every line
/// read is appended to `seen`.
fn wait_for_line(
    rx: &std::sync::mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no such line ({e}); seen:\n{}", seen.join("\n")));
        seen.push(line.clone());
        if want(&line) {
            return line;
        }
    }
}

async fn access_log_test(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = test_database(&dir.path().join("log.db")).await;
    let config = dir.path().join("log.toml");
    std::fs::write(
        &config,
        format!(
            "database = \"{database}\"\n{}\n[log]\nformat = \"{format}\"\n",
            fixture_config_text()
        ),
    )
    .unwrap();
    let key = cli_key_add(&config);
    let (mut server, addr, lines) = serve_with_stderr(&config, &[]);
    let client = reqwest::Client::new();
    let created = client
        .post(format!("http://{addr}/api/tickets.json"))
        .header("X-API-Key", &key)
        .header("X-Request-Id", "log-test-1")
        .body(ticket("logged").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let refused = client
        .post(format!("http://{addr}/api/tickets.json"))
        .header("X-API-Key", "not-a-key-9f8e7d")
        .header("X-Request-Id", "log-test-2")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let mut seen = Vec::new();
    if format == "json" {
        let access = wait_for_line(&lines, &mut seen, |l| {
            l.contains("log-test-1") && l.contains("oxidesk::access")
        });
        let v: Value = serde_json::from_str(&access).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["client.addr"], "127.0.0.1");
        assert_eq!(v["key.id"], 1);
        assert_eq!(v["method"], "POST");
        assert_eq!(v["route"], "/api/{file}");
        assert_eq!(v["status"], 201);
        assert!(v["size_bytes"].as_u64().unwrap() > 0);
        assert!(v["duration_us"].is_u64());
        let warn = wait_for_line(&lines, &mut seen, |l| l.contains("API key refused"));
        let w: Value = serde_json::from_str(&warn).unwrap();
        assert_eq!(w["level"], "WARN");
        assert_eq!(w["client.addr"], "127.0.0.1");
        let denied = wait_for_line(&lines, &mut seen, |l| {
            l.contains("log-test-2") && l.contains("oxidesk::access")
        });
        let d: Value = serde_json::from_str(&denied).unwrap();
        assert_eq!(d["status"], 401);
        assert_eq!(d["reason"], "key_unknown");
    } else {
        let access = wait_for_line(&lines, &mut seen, |l| {
            l.contains("oxidesk::access") && l.contains("log-test-1")
        });
        for field in [
            " INFO ",
            "oxidesk::access",
            "client.addr=127.0.0.1",
            "key.id=1",
            "method=POST",
            "route=\"/api/{file}\"",
            "status=201",
            "request.id=",
            "size_bytes=",
            "duration_us=",
        ] {
            assert!(access.contains(field), "{field} missing from {access}");
        }
        // No colour codes: standard error is a pipe.
        assert!(!access.contains('\u{1b}'), "{access}");
        // The fail2ban filter of the README matches the refusal.
        let warn = wait_for_line(&lines, &mut seen, |l| l.contains("API key refused"));
        assert!(warn.contains(" WARN "), "{warn}");
        assert!(warn.contains("API key refused from 127.0.0.1"), "{warn}");
        let denied = wait_for_line(&lines, &mut seen, |l| {
            l.contains("log-test-2") && l.contains("oxidesk::access")
        });
        assert!(
            denied.contains("status=401") && denied.contains("reason=\"key_unknown\""),
            "{denied}"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    // Everything the server wrote: never a key, valid or not.
    seen.extend(lines.try_iter());
    let all = seen.join("\n");
    assert!(!all.contains(&key), "the key was logged");
    assert!(
        !all.contains("not-a-key-9f8e7d"),
        "a presented key was logged"
    );
    if let Some(name) = pg_name {
        drop_test_database(&name);
    }
}

#[tokio::test]
async fn access_log_text_names_the_request_never_the_key() {
    access_log_test("text").await;
}

#[tokio::test]
async fn access_log_json_names_the_request_never_the_key() {
    access_log_test("json").await;
}

//! `Idempotency-Key` on ticket creation (issue 15, point 5): a retry with
//! the same key and body answers the first `201` without a second ticket,
//! another body under the key is `422`, concurrent duplicates make one
//! ticket (on one server and across two on one database), keys are per
//! API key, and `.email` honours them beside the Message-ID rule.

use std::collections::HashSet;

use reqwest::Method;

use crate::helpers::{
    add_key, cli_key_add, drop_test_database, fixture_config_text, serve_process, spawn_app,
    test_database, ticket,
};

async fn post(
    app: &crate::helpers::TestApp,
    path: &str,
    key: &str,
    idem: Option<&str>,
    body: &str,
) -> crate::helpers::Reply {
    let headers: Vec<(&str, &str)> = idem.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    app.send(
        Method::POST,
        path,
        Some(key),
        body.as_bytes().to_vec(),
        &headers,
    )
    .await
}

#[tokio::test]
async fn a_retried_json_or_xml_create_with_its_key_answers_the_same_number_and_makes_no_second_ticket()
 {
    let app = spawn_app().await;
    let json = ticket("idem-json").to_string();
    let xml = "<ticket><name>X</name><email>idem-xml@example.com</email>\
               <subject>xml</subject><message>m</message></ticket>";
    for (path, body) in [
        ("/api/tickets.json", json.as_str()),
        ("/api/tickets.xml", xml),
    ] {
        let (retry, fresh) = (format!("{path}-1"), format!("{path}-2"));
        let before = app.count("tickets").await;
        let first = post(&app, path, &app.key, Some(&retry), body).await;
        let number = first.number();
        assert!(first.headers.get("idempotent-replayed").is_none());
        for _ in 0..3 {
            let again = post(&app, path, &app.key, Some(&retry), body).await;
            assert_eq!(again.number(), number, "{path}");
            assert_eq!(
                again.headers.get("idempotent-replayed").unwrap(),
                "true",
                "{path}"
            );
        }
        assert_eq!(app.count("tickets").await, before + 1, "{path}");
        // Without a key the same body is a new ticket, as before; and
        // with a new key too.
        let plain = post(&app, path, &app.key, None, body).await;
        assert_ne!(plain.number(), number);
        let other = post(&app, path, &app.key, Some(&fresh), body).await;
        assert_ne!(other.number(), number);
        assert_eq!(app.count("tickets").await, before + 3, "{path}");
        // The first key still answers with its own ticket.
        let used = post(&app, path, &app.key, Some(&retry), body).await;
        assert_eq!(used.number(), number);
        assert_eq!(app.count("tickets").await, before + 3, "{path}");
    }
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_stores_nothing() {
    let app = spawn_app().await;
    let first = post(
        &app,
        "/api/tickets.json",
        &app.key,
        Some("k-422"),
        &ticket("idem-a").to_string(),
    )
    .await;
    first.number();
    let before = app.counts().await;
    for (path, body) in [
        ("/api/tickets.json", ticket("idem-b").to_string()),
        // The same bytes in another format are another request too.
        ("/api/tickets.xml", ticket("idem-a").to_string()),
    ] {
        let r = post(&app, path, &app.key, Some("k-422"), &body).await;
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert!(r.body.contains("Idempotency-Key"), "{}", r.body);
    }
    assert_eq!(app.counts().await, before);
}

#[tokio::test]
async fn a_malformed_key_is_400_before_anything_is_stored() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    for bad in ["", "\"\"", long.as_str(), "caf\u{e9}"] {
        let r = app
            .client
            .post(app.url("/api/tickets.json"))
            .header("X-API-Key", &app.key)
            .header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
            )
            .body(ticket("idem-bad").to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(body.contains("Idempotency-Key"), "{body}");
    }
    assert_eq!(app.count("tickets").await, 0);
    // The draft's structured-field form and a bare key name one key.
    let body = ticket("idem-sf").to_string();
    let quoted = post(&app, "/api/tickets.json", &app.key, Some("\"sf-1\""), &body).await;
    let bare = post(&app, "/api/tickets.json", &app.key, Some("sf-1"), &body).await;
    assert_eq!(quoted.number(), bare.number());
    assert_eq!(app.count("tickets").await, 1);
}

#[tokio::test]
async fn keys_belong_to_their_api_key() {
    let app = spawn_app().await;
    let other = add_key(&app.store, &["127.0.0.1/32"], true, true).await;
    let body = ticket("idem-scope").to_string();
    let a = post(&app, "/api/tickets.json", &app.key, Some("shared"), &body).await;
    let b = post(&app, "/api/tickets.json", &other, Some("shared"), &body).await;
    assert_ne!(a.number(), b.number());
    assert_eq!(app.count("tickets").await, 2);
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_create_one_ticket() {
    let app = spawn_app().await;
    for round in 0..5 {
        let key = format!("race-{round}");
        let body = ticket(&format!("idem-race{round}")).to_string();
        let urls = vec![app.url("/api/tickets.json"); 16];
        let numbers = race(&app.client, &urls, &app.key, &key, &body).await;
        assert_eq!(numbers.len(), 1, "round {round}: {numbers:?}");
        assert_eq!(app.count("tickets").await, round + 1, "round {round}");
    }
}

#[tokio::test]
async fn an_email_with_a_key_and_no_message_id_is_filed_once() {
    let app = spawn_app().await;
    let mail = "From: Kim <kim@example.com>\r\nTo: support@example.com\r\nSubject: No id\r\n\
                Content-Type: text/plain\r\n\r\nsame message\r\n";
    let first = post(&app, "/api/tickets.email", &app.key, Some("mail-1"), mail).await;
    let number = first.number();
    let again = post(&app, "/api/tickets.email", &app.key, Some("mail-1"), mail).await;
    assert_eq!(again.number(), number);
    assert_eq!(app.count("tickets").await, 1);
    assert_eq!(app.count("thread_entries").await, 1);
    // Another message under the key: refused, nothing filed.
    let other = mail.replace("same message", "another message");
    let r = post(&app, "/api/tickets.email", &app.key, Some("mail-1"), &other).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(app.count("thread_entries").await, 1);
    // A follow-up onto the ticket with a key of its own: appended once.
    let follow = format!(
        "From: Kim <kim@example.com>\r\nTo: support@example.com\r\nSubject: Re: [#{number}] No id\r\n\
         Content-Type: text/plain\r\n\r\nmore\r\n"
    );
    let a = post(
        &app,
        "/api/tickets.email",
        &app.key,
        Some("mail-2"),
        &follow,
    )
    .await;
    let b = post(
        &app,
        "/api/tickets.email",
        &app.key,
        Some("mail-2"),
        &follow,
    )
    .await;
    assert_eq!(a.number(), number);
    assert_eq!(b.number(), number);
    assert_eq!(app.count("thread_entries").await, 2);
}

#[tokio::test]
async fn two_instances_on_one_database_honour_one_key_together() {
    let dir = tempfile::tempdir().unwrap();
    let (database, pg_name) = test_database(&dir.path().join("idem.db")).await;
    let config = dir.path().join("idem.toml");
    std::fs::write(
        &config,
        format!("database = \"{database}\"\n{}", fixture_config_text()),
    )
    .unwrap();
    let key = cli_key_add(&config);
    let (servers, addrs): (Vec<_>, Vec<_>) = (0..2)
        .map(|_| serve_process(&config, &[("OXIDESK__MAIL__ENABLED", "false".into())]))
        .unzip();
    let servers = Killed(servers);
    let client = reqwest::Client::new();
    for round in 0..5 {
        let body = ticket(&format!("idem-two{round}")).to_string();
        let urls: Vec<String> = (0..8)
            .map(|i| format!("http://{}/api/tickets.json", addrs[i % 2]))
            .collect();
        let numbers = race(&client, &urls, &key, &format!("two-{round}"), &body).await;
        assert_eq!(numbers.len(), 1, "round {round}: {numbers:?}");
    }
    // Five keys, five tickets.
    drop(servers);
    let cfg = oxidesk::config::Config::load(Some(&config), std::iter::empty()).unwrap();
    let store = oxidesk::cli::open_store(&cfg).await.unwrap();
    let tickets = store.list_tickets(100).await.unwrap();
    assert_eq!(tickets.len(), 5, "{tickets:?}");
    drop(store);
    if let Some(name) = pg_name {
        drop_test_database(&name);
    }
}

/// The same create with one Idempotency-Key sent to every URL at once;
/// every answer must be a 201; the distinct numbers they name.
async fn race(
    client: &reqwest::Client,
    urls: &[String],
    api_key: &str,
    idem: &str,
    body: &str,
) -> HashSet<String> {
    let tasks: Vec<_> = urls
        .iter()
        .map(|url| {
            let request = client
                .post(url)
                .header("X-API-Key", api_key)
                .header("Idempotency-Key", idem)
                .body(body.to_string());
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    let mut numbers = HashSet::new();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        assert_eq!(status, 201, "{idem}: {text}");
        numbers.insert(text);
    }
    numbers
}

/// Child servers, killed when the test ends (a failed assertion too).
struct Killed(Vec<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for s in &mut self.0 {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

use reqwest::Method;
use serde_json::json;

use crate::helpers::{add_key, spawn_app, spawn_app_with, ticket};

#[tokio::test]
async fn missing_unknown_inactive_and_unauthorized_keys_are_401_with_osticket_texts() {
    let app = spawn_app().await;
    let body = ticket("auth").to_string().into_bytes();
    let r = app
        .send(Method::POST, "/api/tickets.json", None, body.clone(), &[])
        .await;
    assert_eq!((r.status, r.body.as_str()), (401, "Valid API key required"));
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some("0123456789ABCDEF"),
            body.clone(),
            &[],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (401, "Valid API key required"));

    let other_ip = add_key(&app.store, &["192.0.2.10/32"], true, false).await;
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&other_ip),
            body.clone(),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, "API key not found/active or source IP not authorized")
    );

    let no_create = add_key(&app.store, &["127.0.0.0/8"], false, false).await;
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&no_create),
            body.clone(),
            &[],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (401, "API key not authorized"));

    let inactive = add_key(&app.store, &["127.0.0.1/32"], true, true).await;
    let id = app.store.list_api_keys().await.unwrap().last().unwrap().id;
    app.store.revoke_api_key(id).await.unwrap();
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&inactive),
            body.clone(),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, "API key not found/active or source IP not authorized")
    );

    // A key that can create but not read cannot use the read API.
    let n = app.post_json(&ticket("auth-ok")).await.number();
    let create_only = add_key(&app.store, &["127.0.0.1/32"], true, false).await;
    let r = app
        .send(
            Method::GET,
            &format!("/api/tickets/{n}.json"),
            Some(&create_only),
            vec![],
            &[],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (401, "API key not authorized"));
    // Nothing but the one good ticket was written.
    assert_eq!(app.count("tickets").await, 1);
}

#[tokio::test]
async fn key_is_checked_before_the_body_and_compared_exactly() {
    let app = spawn_app().await;
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some("FFFF"),
            b"{\"name\": ".to_vec(),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    // The key itself is case-sensitive (stored as a hash of the exact text).
    let swapped: String = app.key.chars().map(|c| c.to_ascii_lowercase()).collect();
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&swapped),
            ticket("case").to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    // Header name is case-insensitive.
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            None,
            ticket("hdr").to_string().into_bytes(),
            &[("x-api-key", &app.key)],
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Loopback is a trusted proxy here: the client is the right-most
    // untrusted X-Forwarded-For entry.
    let app = spawn_app_with("trusted_proxies = [\"127.0.0.0/8\"]").await;
    let bound = add_key(&app.store, &["203.0.113.0/24"], true, true).await;
    let body = ticket("xff").to_string().into_bytes();
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&bound),
            body.clone(),
            &[("X-Forwarded-For", "198.51.100.1, 203.0.113.7, 127.0.0.5")],
        )
        .await;
    let n = r.number();
    let t = app.get_ticket(&n).await;
    assert_eq!(t["ip"], json!("203.0.113.7"));
    // The default key (bound to 127.0.0.1) no longer matches a forwarded client.
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&app.key),
            body.clone(),
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
    assert_eq!(r.status, 401);

    // Without trusted proxies the header is ignored.
    let plain = spawn_app().await;
    let bound = add_key(&plain.store, &["203.0.113.0/24"], true, true).await;
    let r = plain
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&bound),
            body.clone(),
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = plain
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&plain.key),
            body,
            &[("X-Forwarded-For", "203.0.113.7")],
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn key_refusals_use_the_json_envelope_when_asked() {
    let app = spawn_app().await;
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some("0123456789ABCDEF"),
            vec![],
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.body).unwrap(),
        json!({"error": {"status": 401, "message": "Valid API key required", "field": null}})
    );
}

#[tokio::test]
async fn an_unreadable_forwarded_for_from_a_trusted_proxy_is_400_naming_the_header() {
    let app = spawn_app_with("trusted_proxies = [\"127.0.0.0/8\"]").await;
    let forwarded = [("X-Forwarded-For", "garbage")];
    let body = ticket("xff-bad").to_string().into_bytes();
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&app.key),
            body.clone(),
            &forwarded,
        )
        .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "X-Forwarded-For: \"garbage\" is not an IP address")
    );
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            Some(&app.key),
            body,
            &[forwarded[0], ("Accept", "application/json")],
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["field"], json!("X-Forwarded-For"));
    assert_eq!(v["error"]["status"], json!(400));
}

/// Waits up to 3 s for `key` to be refused; the status seen last.
async fn refused_within_3s(app: &crate::helpers::TestApp, key: &str) -> u16 {
    let started = std::time::Instant::now();
    loop {
        let body = serde_json::to_vec(&ticket("revoked")).unwrap();
        let r = app
            .send(Method::POST, "/api/tickets.json", Some(key), body, &[])
            .await;
        if r.status != 201 || started.elapsed() > std::time::Duration::from_secs(3) {
            return r.status;
        }
        // A poll interval while waiting for the refusal (presence, with
        // a deadline): the other process's change reaches this one's key
        // cache asynchronously (PostgreSQL NOTIFY).
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_revoked_by_another_process_while_in_use_is_refused_at_once() {
    let app = spawn_app().await;
    // In use (and so in any cache) before the change.
    for _ in 0..3 {
        assert_eq!(app.post_json(&ticket("in-use")).await.status, 201);
    }
    let id = app.store.list_api_keys().await.unwrap()[0].id;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&app.config_path)
        .args(["key", "revoke", &id.to_string()])
        .env_remove("OXIDESK_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(refused_within_3s(&app, &app.key).await, 401);
}

#[tokio::test]
async fn a_key_changed_by_hand_in_postgresql_is_refused_at_once() {
    let app = spawn_app().await;
    let Some(url) = app.config.database.strip_prefix("postgres") else {
        return; // SQLite: keys are read from the file at every request.
    };
    for _ in 0..3 {
        assert_eq!(app.post_json(&ticket("by-hand")).await.status, 201);
    }
    let status = std::process::Command::new("psql")
        .arg(format!("postgres{url}"))
        .args(["-qc", "UPDATE api_keys SET is_active = false"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(refused_within_3s(&app, &app.key).await, 401);
}

//! Agents and sign-in (STAFF-API.md): sessions over real HTTP, sliding
//! expiry through the store with an explicit clock, the throttle, and
//! `oxidesk agent …` run as the real binary. Runs on PostgreSQL too with
//! `TEST_DATABASE_URL`.

use std::process::{Command, Output, Stdio};

use oxidesk::domain::agents::{Password, TokenKind, hash_password, token_hash};
use oxidesk::domain::staff::AgentId;
use oxidesk::storage::{NewAgent, NewAgentToken};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_env, spawn_app_with};

const PASSWORD: &str = "correct horse battery staple";

/// An agent with a known password, made through the store.
async fn agent_with_password(
    app: &TestApp,
    email: &str,
    admin: bool,
    departments: &[i64],
) -> AgentId {
    app.store
        .add_agent(NewAgent {
            email: email.to_string(),
            name: "Ann Agent".into(),
            password_hash: hash_password(Password::presented(PASSWORD.into()))
                .await
                .unwrap(),
            admin,
            departments: departments.to_vec(),
            created: "2026-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap()
}

async fn sign_in_from(
    app: &TestApp,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Reply {
    app.send(
        Method::POST,
        "/api/v1/session",
        None,
        json!({"email": email, "password": password})
            .to_string()
            .into_bytes(),
        headers,
    )
    .await
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Reply {
    sign_in_from(app, email, password, &[]).await
}

async fn with_token(app: &TestApp, method: Method, path: &str, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    app.send(method, path, None, vec![], &[("Authorization", &bearer)])
        .await
}

fn json_of(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// The token of a `201` sign-in.
fn token_of(r: &Reply) -> String {
    assert_eq!(r.status, 201, "{}", r.body);
    json_of(r)["token"].as_str().unwrap().to_string()
}

fn invalid_sign_in() -> Value {
    json!({"error": {"status": 401, "message": "Invalid email or password", "field": null}})
}

#[tokio::test]
async fn sign_in_opens_a_session_that_names_the_agent() {
    let app = spawn_app().await;
    let id = agent_with_password(&app, "ann@example.com", false, &[2, 1]).await;
    let before = jiff::Timestamp::now().as_second();
    let r = sign_in(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body = json_of(&r);
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("oxd_") && token.len() == 68, "{token}");
    let expires: jiff::Timestamp = body["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    let ttl = expires.as_second() - before;
    assert!((43_200..43_200 + 30).contains(&ttl), "{ttl}");
    let agent = json!({
        "id": id.0,
        "email": "ann@example.com",
        "name": "Ann Agent",
        "admin": false,
        "departments": [{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}],
    });
    assert_eq!(body["agent"], agent);

    let me = with_token(&app, Method::GET, "/api/v1/me", token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(json_of(&me), agent);

    // The address is case-insensitive; each sign-in is a new session.
    let again = token_of(&sign_in(&app, "  ANN@Example.COM ", PASSWORD).await);
    assert_ne!(again, token);
    assert_eq!(app.count("agent_tokens").await, 2);
}

#[tokio::test]
async fn wrong_password_unknown_email_and_no_token_are_401() {
    let app = spawn_app().await;
    agent_with_password(&app, "ann@example.com", true, &[]).await;
    let wrong = sign_in(&app, "ann@example.com", "not the password").await;
    let unknown = sign_in(&app, "nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(json_of(&wrong), invalid_sign_in());
    assert_eq!(wrong.body, unknown.body, "the same answer for both");
    assert_eq!(app.count("agent_tokens").await, 0);

    let none = app.send(Method::GET, "/api/v1/me", None, vec![], &[]).await;
    assert_eq!(none.status, 401, "{}", none.body);
    assert_eq!(json_of(&none)["error"]["status"], 401);
    let forged = with_token(
        &app,
        Method::GET,
        "/api/v1/me",
        &format!("oxd_{}", "0".repeat(64)),
    )
    .await;
    assert_eq!(forged.status, 401);
}

#[tokio::test]
async fn a_disabled_agent_cannot_sign_in_and_their_tokens_stop_working() {
    let app = spawn_app().await;
    let id = agent_with_password(&app, "ann@example.com", false, &[1]).await;
    let session = token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);
    let (bob, personal) = app.add_agent("bob@example.com", false, &[]).await;
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &session)
            .await
            .status,
        200
    );

    app.store.set_agent_active(id, false).await.unwrap();
    app.store.set_agent_active(bob, false).await.unwrap();
    let refused = sign_in(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(refused.status, 401);
    assert_eq!(json_of(&refused), invalid_sign_in());
    for token in [&session, &personal] {
        let r = with_token(&app, Method::GET, "/api/v1/me", token).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }

    // Enabled again: the personal token works again; the session was ended.
    app.store.set_agent_active(id, true).await.unwrap();
    app.store.set_agent_active(bob, true).await.unwrap();
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &personal)
            .await
            .status,
        200
    );
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &session)
            .await
            .status,
        401
    );
    token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);
}

#[tokio::test]
async fn sign_out_ends_the_session_and_a_personal_token_is_not_a_session() {
    let app = spawn_app().await;
    agent_with_password(&app, "ann@example.com", false, &[]).await;
    let first = token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);
    let second = token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);

    let out = with_token(&app, Method::DELETE, "/api/v1/session", &first).await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(out.body.is_empty());
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &first)
            .await
            .status,
        401
    );
    assert_eq!(
        with_token(&app, Method::DELETE, "/api/v1/session", &first)
            .await
            .status,
        401
    );
    // Only that session ended.
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &second)
            .await
            .status,
        200
    );

    let (id, personal) = app.add_agent("bot@example.com", true, &[3]).await;
    let me = with_token(&app, Method::GET, "/api/v1/me", &personal).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(
        json_of(&me),
        json!({"id": id.0, "email": "bot@example.com", "name": "bot", "admin": true,
               "departments": [{"id": 3, "name": "Maintenance"}]})
    );
    let out = with_token(&app, Method::DELETE, "/api/v1/session", &personal).await;
    assert_eq!(out.status, 400, "{}", out.body);
    assert_eq!(json_of(&out)["error"]["field"], "Authorization");
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &personal)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn sessions_expire_unless_used_and_slide_when_used() {
    let app = spawn_app().await;
    let (id, _) = app.add_agent("ann@example.com", false, &[1]).await;
    let t = 1_800_000_000;
    let session = |name: &str| NewAgentToken {
        hash: token_hash(name),
        agent_id: id,
        kind: TokenKind::Session,
        name: "session".into(),
        created: t,
        expires_at: Some(t + 600),
    };
    for name in ["idle", "once", "busy"] {
        app.store.add_agent_token(session(name)).await.unwrap();
    }
    let found = |name: &'static str, now: i64| {
        let store = app.store.clone();
        async move { store.agent_by_token(token_hash(name), now).await.unwrap() }
    };

    // Used within a minute of its start: not written, so it still ends
    // at t + 600 (a slide would have moved it to t + 630).
    let agent = found("idle", t + 30).await.expect("valid at t + 30");
    assert_eq!(agent.id, id);
    assert_eq!(agent.departments, vec![1]);
    assert!(found("idle", t + 600).await.is_none(), "expired");

    // Used at t + 599, more than a minute after its start: it slides to
    // t + 1199, and again when used at t + 1198, to t + 1798.
    assert!(found("once", t + 599).await.is_some());
    assert!(found("once", t + 1198).await.is_some());
    assert!(found("once", t + 1797).await.is_some());
    // (That use slid it to t + 2397.)
    assert!(found("once", t + 2397).await.is_none(), "expired");

    // Used now and then, it lives on; left alone for its lifetime, it ends.
    for now in [t + 500, t + 1000, t + 1500, t + 2000] {
        assert!(found("busy", now).await.is_some(), "at {now}");
    }
    assert!(found("busy", t + 2000 + 599).await.is_some());
    assert!(found("busy", t + 2000 + 599 + 600).await.is_none());

    // A personal token has no expiry.
    let personal = NewAgentToken {
        kind: TokenKind::Personal,
        expires_at: None,
        ..session("personal")
    };
    app.store.add_agent_token(personal).await.unwrap();
    assert!(found("personal", t + 10 * 365 * 86_400).await.is_some());

    // A new session clears the agent's expired ones away.
    assert_eq!(app.count("agent_tokens").await, 5);
    let fresh = NewAgentToken {
        created: t + 4000,
        expires_at: Some(t + 4600),
        ..session("fresh")
    };
    app.store.add_agent_token(fresh).await.unwrap();
    assert_eq!(
        app.count("agent_tokens").await,
        3,
        "two personal, one fresh"
    );
    assert!(found("fresh", t + 4001).await.is_some());
}

#[tokio::test]
async fn the_session_lifetime_comes_from_the_configuration() {
    let app = spawn_app_env("", &[("OXIDESK__STAFF__SESSION_TTL_SECS", "600")]).await;
    agent_with_password(&app, "ann@example.com", false, &[]).await;
    let r = sign_in(&app, "ann@example.com", PASSWORD).await;
    let body = json_of(&r);
    let token = token_of(&r);
    let expires: jiff::Timestamp = body["expires_at"].as_str().unwrap().parse().unwrap();
    let expires = expires.as_second();
    let now = jiff::Timestamp::now().as_second();
    assert!(
        (now + 570..=now + 600).contains(&expires),
        "{expires} {now}"
    );
    let hash = token_hash(&token);
    assert!(
        app.store
            .agent_by_token(hash, expires)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.store
            .agent_by_token(hash, expires - 1)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn repeated_failures_for_an_account_are_throttled_even_with_the_right_password() {
    // Client addresses from X-Forwarded-For: each attempt from another one.
    let app = spawn_app_with("trusted_proxies = [\"127.0.0.0/8\"]").await;
    agent_with_password(&app, "ann@example.com", false, &[]).await;
    for i in 1..=5 {
        let ip = format!("203.0.113.{i}");
        let r = sign_in_from(
            &app,
            "ann@example.com",
            "guess",
            &[("X-Forwarded-For", &ip)],
        )
        .await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    let locked = sign_in_from(
        &app,
        "Ann@example.com",
        PASSWORD,
        &[("X-Forwarded-For", "203.0.113.99")],
    )
    .await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body = json_of(&locked);
    assert_eq!(body["error"]["status"], 429);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many failed sign-ins"),
        "{body}"
    );
    assert_eq!(app.count("agent_tokens").await, 0);

    // Another account from one of those addresses is not locked.
    agent_with_password(&app, "bob@example.com", false, &[]).await;
    let r = sign_in_from(
        &app,
        "bob@example.com",
        PASSWORD,
        &[("X-Forwarded-For", "203.0.113.1")],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn repeated_failures_from_an_address_are_throttled_and_a_success_does_not_reset_them() {
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__STAFF__SIGN_IN_FAILURES_PER_ADDRESS", "3"),
            ("OXIDESK__STAFF__SIGN_IN_FAILURES_PER_ACCOUNT", "100"),
        ],
    )
    .await;
    agent_with_password(&app, "ann@example.com", false, &[]).await;
    for who in ["x1@example.com", "x2@example.com"] {
        assert_eq!(sign_in(&app, who, "guess").await.status, 401);
    }
    // Someone else behind the same address signs in: the count stays.
    token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);
    assert_eq!(sign_in(&app, "x3@example.com", "guess").await.status, 401);
    let locked = sign_in(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert!(locked.headers.contains_key("retry-after"));
    // Tokens already given keep working.
    let (_, token) = app.add_agent("bot@example.com", false, &[]).await;
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &token)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn malformed_sign_in_bodies_are_400_or_422_naming_the_field() {
    let app = spawn_app().await;
    let post = |body: &'static str| {
        app.send(
            Method::POST,
            "/api/v1/session",
            None,
            body.as_bytes().to_vec(),
            &[],
        )
    };
    let r = post("{not json").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(json_of(&r)["error"]["status"], 400);
    assert_eq!(post("[1, 2]").await.status, 400);
    let r = post(r#"{"email": "ann@example.com"}"#).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(json_of(&r)["error"]["field"], "password");
    let r = post(r#"{"email": 5, "password": "x"}"#).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(json_of(&r)["error"]["field"], "email");
    let r = app
        .send(Method::GET, "/api/v1/session", None, vec![], &[])
        .await;
    assert_eq!(r.status, 405, "{}", r.body);
}

// ---- the CLI, as the real binary ----

fn oxidesk(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&app.config_path)
        .args(args)
        .env_remove("OXIDESK_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> (String, String) {
    let (out, err) = (
        String::from_utf8(o.stdout.clone()).unwrap(),
        String::from_utf8(o.stderr.clone()).unwrap(),
    );
    assert!(o.status.success(), "failed: {err}");
    (out, err)
}

fn failed(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The id `agent list` shows for `email`, and its line.
fn listed(app: &TestApp, email: &str) -> (String, String) {
    let (list, _) = ok(&oxidesk(app, &["agent", "list"], None));
    let line = list
        .lines()
        .find(|l| l.contains(email))
        .unwrap_or_else(|| panic!("{email} not in {list}"))
        .to_string();
    (line.split_whitespace().next().unwrap().to_string(), line)
}

#[tokio::test]
async fn agent_add_prints_the_password_once_and_list_shows_the_agent() {
    let app = spawn_app().await;
    let (out, err) = ok(&oxidesk(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "ann@example.com",
            "--name",
            "Ann Agent",
            "--admin",
            "--department",
            "2",
            "--department",
            "1",
        ],
        None,
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let password = lines[0];
    assert!(password.len() >= 32, "{password}");
    assert!(!err.contains(password), "{err}");
    let r = sign_in(&app, "ann@example.com", password).await;
    let body = json_of(&r);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(body["agent"]["admin"], true);
    assert_eq!(body["agent"]["name"], "Ann Agent");
    assert_eq!(
        body["agent"]["departments"],
        json!([{"id": 1, "name": "Support"}, {"id": 2, "name": "Sales"}])
    );

    let (list, _) = ok(&oxidesk(&app, &["agent", "list"], None));
    assert!(!list.contains(password), "{list}");
    let (id, line) = listed(&app, "ann@example.com");
    assert_eq!(id, body["agent"]["id"].to_string());
    assert!(
        line.contains("Ann Agent") && line.contains("Support"),
        "{line}"
    );

    // The same address again (in another case) is refused.
    let err = failed(&oxidesk(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "ANN@example.com",
            "--name",
            "Twin",
        ],
        None,
    ));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(app.count("agents").await, 1);
}

#[tokio::test]
async fn agent_add_reads_a_password_from_stdin_and_refuses_bad_input_writing_nothing() {
    let app = spawn_app().await;
    let err = failed(&oxidesk(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "x@example.com",
            "--name",
            "X",
            "--department",
            "9",
        ],
        None,
    ));
    assert!(err.contains("department 9"), "{err}");
    let err = failed(&oxidesk(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "x@example.com",
            "--name",
            "X",
            "--password-stdin",
        ],
        Some("short\n"),
    ));
    assert!(err.contains("shorter than 12"), "{err}");
    let err = failed(&oxidesk(
        &app,
        &["agent", "add", "--email", "not an address", "--name", "X"],
        None,
    ));
    assert!(err.contains("--email"), "{err}");
    assert_eq!(app.count("agents").await, 0);

    let (out, _) = ok(&oxidesk(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "ann@example.com",
            "--name",
            "Ann",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    assert_eq!(out, "", "nothing to show: the password was given");
    token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);
}

#[tokio::test]
async fn agent_disable_enable_password_and_token() {
    let app = spawn_app().await;
    let (out, _) = ok(&oxidesk(
        &app,
        &[
            "agent",
            "add",
            "--email",
            "ann@example.com",
            "--name",
            "Ann",
        ],
        None,
    ));
    let first = out.lines().next().unwrap().to_string();
    let (id, _) = listed(&app, "ann@example.com");
    let session = token_of(&sign_in(&app, "ann@example.com", &first).await);

    ok(&oxidesk(&app, &["agent", "disable", &id], None));
    let (_, line) = listed(&app, "ann@example.com");
    assert!(line.contains("false"), "{line}");
    assert_eq!(sign_in(&app, "ann@example.com", &first).await.status, 401);
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &session)
            .await
            .status,
        401
    );
    ok(&oxidesk(&app, &["agent", "enable", &id], None));
    let session = token_of(&sign_in(&app, "ann@example.com", &first).await);

    // A new password: printed once, the old one and its sessions are gone.
    let (out, _) = ok(&oxidesk(&app, &["agent", "password", &id], None));
    let second = out.lines().next().unwrap().to_string();
    assert_eq!(out.lines().count(), 1);
    assert_ne!(second, first);
    assert_eq!(sign_in(&app, "ann@example.com", &first).await.status, 401);
    assert_eq!(
        with_token(&app, Method::GET, "/api/v1/me", &session)
            .await
            .status,
        401
    );
    token_of(&sign_in(&app, "ann@example.com", &second).await);
    let (out, _) = ok(&oxidesk(
        &app,
        &["agent", "password", &id, "--password-stdin"],
        Some(PASSWORD),
    ));
    assert_eq!(out, "");
    token_of(&sign_in(&app, "ann@example.com", PASSWORD).await);

    // A personal token: printed once, works as a Bearer token.
    let (out, _) = ok(&oxidesk(
        &app,
        &["agent", "token", &id, "--name", "backup script"],
        None,
    ));
    let token = out.lines().next().unwrap();
    assert!(token.starts_with("oxd_"), "{token}");
    let me = with_token(&app, Method::GET, "/api/v1/me", token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(json_of(&me)["email"], "ann@example.com");

    for args in [
        &["agent", "disable", "999"][..],
        &["agent", "enable", "999"],
        &["agent", "password", "999"],
        &["agent", "token", "999"],
    ] {
        let err = failed(&oxidesk(&app, args, None));
        assert!(err.contains("no agent with id 999"), "{args:?}: {err}");
    }
}

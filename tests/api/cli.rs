//! The admin CLI, run as the real binary against a real database file.

use std::process::{Command, Output};

use serde_json::json;

use crate::helpers::{spawn_app, ticket};

fn oxidesk(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OXIDESK_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[tokio::test]
async fn key_add_prints_the_key_once_list_hides_it_revoke_disables_it() {
    let app = spawn_app().await;
    let out = stdout(&oxidesk(
        &app.config_path,
        &[
            "key",
            "add",
            "--ip",
            "127.0.0.1",
            "--ip",
            "10.0.0.0/8",
            "--can-read",
            "--notes",
            "cli test",
        ],
    ));
    let key = out.lines().next().unwrap().trim().to_string();
    assert_eq!(key.len(), 64, "{out}");
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/tickets.json",
            Some(&key),
            ticket("cli").to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);

    let list = stdout(&oxidesk(&app.config_path, &["key", "list"]));
    assert!(
        !list.contains(&key) && !list.contains(&key[..12]),
        "secret leaked: {list}"
    );
    assert!(
        list.contains("cli test") && list.contains("10.0.0.0/8"),
        "{list}"
    );
    let id = list
        .lines()
        .find(|l| l.contains("cli test"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    stdout(&oxidesk(&app.config_path, &["key", "revoke", &id]));
    // The server caches keys: a change made by another process is seen
    // within a moment (SQLite: 250 ms; PostgreSQL: a notification), not
    // necessarily at the very next request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = app
            .send(
                reqwest::Method::POST,
                "/api/tickets.json",
                Some(&key),
                ticket("cli2").to_string().into_bytes(),
                &[],
            )
            .await;
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 201);
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !oxidesk(&app.config_path, &["key", "revoke", "9999"])
            .status
            .success()
    );
    assert!(
        !oxidesk(&app.config_path, &["key", "add", "--ip", "not-an-ip"])
            .status
            .success()
    );
}

#[tokio::test]
async fn ticket_show_and_list() {
    let app = spawn_app().await;
    let n = app.post_json(&json!({"name": "Show Me", "email": "show@example.com", "subject": "Shown", "message": "Hello there"})).await.number();
    let shown: serde_json::Value = serde_json::from_str(&stdout(&oxidesk(
        &app.config_path,
        &["ticket", "show", &n, "--json"],
    )))
    .unwrap();
    assert_eq!(shown, app.get_ticket(&n).await);
    let text = stdout(&oxidesk(&app.config_path, &["ticket", "show", &n]));
    assert!(
        text.contains("Shown") && text.contains("Hello there") && text.contains("show@example.com"),
        "{text}"
    );
    let list = stdout(&oxidesk(
        &app.config_path,
        &["ticket", "list", "--limit", "5"],
    ));
    assert!(list.contains(&n), "{list}");
    assert!(
        !oxidesk(&app.config_path, &["ticket", "show", "nope"])
            .status
            .success()
    );
}

#[test]
fn config_check_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1\"\n[limits]\nmax_body_size = 1\n",
    )
    .unwrap();
    let out = oxidesk(&path, &["config", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_body_size") && err.contains("line 3"),
        "{err}"
    );
    std::fs::write(&path, "").unwrap();
    assert!(stdout(&oxidesk(&path, &["config", "check"])).contains("ok"));
}

#[test]
fn serve_without_config_uses_defaults_and_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .current_dir(dir.path())
        .env_remove("OXIDESK_CONFIG")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = crate::helpers::listening_address(&mut child);
    let up = std::net::TcpStream::connect(addr).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "server did not accept at {addr}");
    assert!(dir.path().join("oxidesk-data/oxidesk.db").exists());
}

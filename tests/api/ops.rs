//! Running it as a service (issue 15, points 6–9): signals and the drain
//! deadline, the creation rule, the schema-version refusal, osTicket keys,
//! backups, completions, `--version`, the systemd unit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{
    cli_key_add, drop_test_database, exec_sql, listening_address, spawn_app, test_database, ticket,
};

fn oxidesk(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("OXIDESK_CONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A configuration file with `extra` (sections, after the fixture's) on
/// a database of its own (SQLite in `dir`, or a fresh PostgreSQL
/// database with TEST_DATABASE_URL), made by `oxidesk migrate`.
async fn configured(dir: &Path, extra: &str) -> (PathBuf, String, Option<String>) {
    let (database, pg_name) = test_database(&dir.join("oxidesk.db")).await;
    let path = dir.join("oxidesk.toml");
    std::fs::write(
        &path,
        format!(
            "database = \"{database}\"\n{}\n{extra}\n",
            crate::helpers::fixture_config_text()
        ),
    )
    .unwrap();
    let out = oxidesk(&path, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    (path, database, pg_name)
}

/// `oxidesk serve` on port 0 with its log in `log`.
fn serve_logged(config: &Path, log: &Path) -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("OXIDESK_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let addr = listening_address(&mut child);
    (child, addr)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Waits up to `limit` for the child to exit: how long it took, or None.
fn exited_within(child: &mut Child, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A client that sends a 5 MB ticket at 2 KB/s (about 40 minutes) with
/// a valid key; returns once the server is reading its body.
fn slow_client(addr: std::net::SocketAddr, key: &str) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /api/tickets.json HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n"
    )
    .unwrap();
    stream.write_all(&[b' '; 2048]).unwrap();
    std::thread::spawn(move || {
        while stream.write_all(&[b' '; 2048]).is_ok() {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test]
async fn a_slow_client_does_not_keep_the_server_past_its_drain_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _, pg) = configured(dir.path(), "[server]\nshutdown_grace_secs = 2\n").await;
    let key = cli_key_add(&config);
    let log = dir.path().join("serve.log");
    let (mut child, addr) = serve_logged(&config, &log);
    slow_client(addr, &key);
    signal(&child, "TERM");
    let took = exited_within(&mut child, Duration::from_secs(15));
    let text = log_text(&log);
    assert!(took.is_some(), "still running 15 s after SIGTERM:\n{text}");
    assert!(
        took.unwrap() >= Duration::from_millis(1500),
        "did not wait for the slow client: {took:?}"
    );
    assert!(
        text.contains("shutting down") && text.contains("waiting up to 2 s for 1 open connection"),
        "{text}"
    );
    assert!(text.contains("drain deadline"), "{text}");
    // The start named the database's absolute path.
    if pg.is_none() {
        let db = dir.path().join("oxidesk.db");
        assert!(
            text.contains(&format!("database {}", db.display())),
            "{text}"
        );
    }
    pg.iter().for_each(|n| drop_test_database(n));
}

#[tokio::test]
async fn a_second_signal_stops_at_once_and_sighup_does_not_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _, pg) = configured(dir.path(), "[server]\nshutdown_grace_secs = 300\n").await;
    let key = cli_key_add(&config);
    let log = dir.path().join("serve.log");
    let (mut child, addr) = serve_logged(&config, &log);

    // SIGHUP: re-read, logged, and the server keeps answering.
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/tickets.json"))
        .header("X-API-Key", &key)
        .body(ticket("after-hup").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert!(
        log_text(&log).contains("reload: received SIGHUP"),
        "{}",
        log_text(&log)
    );

    slow_client(addr, &key);
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "did not drain");
    signal(&child, "INT");
    let took = exited_within(&mut child, Duration::from_secs(10));
    let text = log_text(&log);
    assert!(took.is_some(), "a second signal did not stop it:\n{text}");
    assert!(text.contains("stopping at once"), "{text}");
    pg.iter().for_each(|n| drop_test_database(n));
}

#[tokio::test]
async fn commands_other_than_serve_and_migrate_refuse_to_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let (database, pg) = test_database(&dir.path().join("absent.db")).await;
    let path = dir.path().join("oxidesk.toml");
    std::fs::write(&path, format!("database = \"{database}\"\n")).unwrap();
    for args in [
        &["key", "list"][..],
        &["key", "add", "--ip", "127.0.0.1"],
        &["agent", "list"],
        &["ticket", "list"],
        &["outbox", "list"],
    ] {
        let out = oxidesk(&path, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        if pg.is_none() {
            let db = dir.path().join("absent.db");
            assert!(
                err.contains(&db.display().to_string()) && err.contains("does not exist"),
                "{args:?}: {err}"
            );
            assert!(!db.exists(), "{args:?} created the database");
        } else {
            assert!(err.contains("no oxidesk tables"), "{args:?}: {err}");
        }
    }
    // `migrate` creates it; then the others work.
    let out = oxidesk(&path, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(oxidesk(&path, &["key", "list"]).status.success());
    pg.iter().for_each(|n| drop_test_database(n));
}

#[tokio::test]
async fn an_older_binary_refuses_a_newer_schema() {
    let app = spawn_app().await;
    let config_path = app.config_path.clone();
    let sql = if app.config.is_postgres() {
        "INSERT INTO schema_migrations (version) VALUES (999)"
    } else {
        "PRAGMA user_version = 999"
    };
    exec_sql(&app.config, sql).await;
    for args in [&["migrate"][..], &["ticket", "list"]] {
        let out = oxidesk(&config_path, args);
        assert!(!out.status.success(), "{args:?} accepted a newer schema");
        let err = stderr(&out);
        assert!(
            err.contains("version 999")
                && err.contains(&format!("newest migration is {}", newest_migration())),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn an_osticket_key_is_kept_and_accepted_in_either_case() {
    let app = spawn_app().await;
    let key = "0123456789abcdef0123456789ABCDEF";
    let out = oxidesk(
        &app.config_path,
        &["key", "add", "--ip", "127.0.0.1", "--secret", key],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(key),
        "the kept key was printed"
    );
    for presented in [
        key.to_string(),
        key.to_ascii_uppercase(),
        key.to_ascii_lowercase(),
    ] {
        let r = app
            .send(
                reqwest::Method::POST,
                "/api/tickets.json",
                Some(&presented),
                ticket("osticket-key").to_string().into_bytes(),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{presented}: {}", r.body);
    }
    // The same key again, and keys of the wrong form, are refused clearly.
    let again = oxidesk(
        &app.config_path,
        &[
            "key",
            "add",
            "--ip",
            "127.0.0.1",
            "--secret",
            &key.to_ascii_uppercase(),
        ],
    );
    assert!(
        !again.status.success() && stderr(&again).contains("already stored"),
        "{}",
        stderr(&again)
    );
    let bad = oxidesk(
        &app.config_path,
        &["key", "add", "--ip", "127.0.0.1", "--secret", "not-a-key"],
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("32 hex characters"),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test]
async fn backup_copies_a_serving_database_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _, pg) = configured(dir.path(), "").await;
    let key = cli_key_add(&config);
    let log = dir.path().join("serve.log");
    let (mut child, addr) = serve_logged(&config, &log);
    let client = reqwest::Client::new();
    let post = move |tag: String| {
        let client = client.clone();
        let key = key.clone();
        async move {
            client
                .post(format!("http://{addr}/api/tickets.json"))
                .header("X-API-Key", key)
                .body(ticket(&tag).to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..5 {
        assert_eq!(post(format!("before{i}")).await, 201);
    }
    // Tickets keep arriving while the copy is made.
    let writer = tokio::spawn({
        let post = post.clone();
        async move {
            for i in 0..20 {
                assert_eq!(post(format!("during{i}")).await, 201);
            }
        }
    });
    let copy = dir.path().join("copy.db");
    let out = oxidesk(&config, &["backup", "--to", copy.to_str().unwrap()]);
    writer.await.unwrap();
    signal(&child, "TERM");
    exited_within(&mut child, Duration::from_secs(15));
    if let Some(name) = pg {
        assert!(!out.status.success());
        assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
        drop_test_database(&name);
        return;
    }
    assert!(out.status.success(), "{}", stderr(&out));
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let tickets: i64 = conn
        .query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))
        .unwrap();
    assert!((5..=25).contains(&tickets), "{tickets} tickets in the copy");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let before = std::fs::read(&copy).unwrap();
    let again = oxidesk(&config, &["backup", "--to", copy.to_str().unwrap()]);
    assert!(
        !again.status.success() && stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "the backup was overwritten"
    );
}

#[test]
fn completions_and_version() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oxidesk"))
            .args(args)
            .env_remove("OXIDESK_CONFIG")
            .output()
            .unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(
        script.contains("_oxidesk") && script.contains("backup"),
        "{script}"
    );
    assert!(!run(&["completions", "tcsh-of-the-future"]).status.success());
    let version = String::from_utf8_lossy(&run(&["--version"]).stdout).into_owned();
    assert!(
        version.starts_with(&format!("oxidesk {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains("commit"), "{version}");
}

#[test]
fn config_check_renders_templates_redacts_secrets_and_names_variables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "database = \"postgres://oxidesk:dbsecret@db.example/oxidesk\"\n\
         [mail]\nsmtp_password = \"smtpsecret\"\n",
    )
    .unwrap();
    let printed = oxidesk(&path, &["config", "check", "--print"]);
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success(), "{}", stderr(&printed));
    assert!(
        !text.contains("smtpsecret") && !text.contains("dbsecret"),
        "{text}"
    );
    assert!(
        text.contains("<redacted>") && text.contains("enabled = false"),
        "{text}"
    );

    std::fs::write(&path, "[mail]\nautoresponse_body = \"Dear {{ nmae }}\"\n").unwrap();
    let out = oxidesk(&path, &["config", "check"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("mail.autoresponse_body"),
        "{}",
        stderr(&out)
    );

    std::fs::write(&path, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&path)
        .args(["config", "check"])
        .env_remove("OXIDESK_CONFIG")
        .env("OXIDESK__LIMITS__MAX_BODY", "5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("OXIDESK__LIMITS__MAX_BODY"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&path)
        .args(["config", "check"])
        .env_remove("OXIDESK_CONFIG")
        .env("OXIDESK_LISTEN", "0.0.0.0:80")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("OXIDESK_LISTEN is ignored")
            && stderr(&out).contains("OXIDESK__LISTEN"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/oxidesk.service");
    let text = std::fs::read_to_string(unit).unwrap();
    for option in [
        "StateDirectory=oxidesk",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(text.contains(option), "the unit lacks {option}");
    }
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: systemd-analyze is not installed, the unit is not verified");
        return;
    }
    // `verify` wants the ExecStart binary to exist: point it at ours.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("oxidesk.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/oxidesk", env!("CARGO_BIN_EXE_oxidesk")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    // `verify` exits 0 past unknown keys and bad values ("…, ignoring"):
    // any line about the unit itself is a failure.
    let err = String::from_utf8_lossy(&out.stderr);
    let own: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("oxidesk.service"))
        .collect();
    assert!(out.status.success() && own.is_empty(), "{err}");
}

/// The highest numbered file in `migrations/sqlite` (`0012_….sql`: 12).
fn newest_migration() -> u32 {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse::<u32>().ok()
        })
        .max()
        .unwrap()
}

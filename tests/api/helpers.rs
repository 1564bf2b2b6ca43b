//! `spawn_app()`: a real oxidesk on 127.0.0.1:0 with a fresh SQLite file.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use oxidesk::app::{AppState, serve};
use oxidesk::config::Config;
use oxidesk::domain::keys::ApiKeySecret;
use oxidesk::mail_out::sender::OutboxSender;
use oxidesk::storage::{NewApiKey, Store};
use serde_json::Value;

pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    /// Can create and read, bound to 127.0.0.1.
    pub key: String,
    pub client: reqwest::Client,
    pub config_path: PathBuf,
    pub _dir: tempfile::TempDir,
    pub config: Config,
    pg_name: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    outbox: Option<oxidesk::app::OutboxHandle>,
}

/// `TEST_DATABASE_URL` (a PostgreSQL server's admin URL) runs every test
/// on PostgreSQL, in a database of its own; else a SQLite file at `path`.
pub async fn test_database(path: &std::path::Path) -> (String, Option<String>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!("oxidesk_test_{}", hex::encode(rand::random::<[u8; 6]>()));
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            (format!("{base}/{name}"), Some(name))
        }
        _ => (format!("sqlite://{}", path.display()), None),
    }
}

/// Drops a test database (best effort; the connections may still close).
pub fn drop_test_database(name: &str) {
    if let Ok(admin) = std::env::var("TEST_DATABASE_URL") {
        let name = name.to_string();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            drop_test_database(&name);
        }
    }
}

pub fn fixture_config_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/oxidesk.toml"
    ))
    .unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

/// `extra` is TOML prepended to the fixture configuration (top-level keys).
pub async fn spawn_app_with(extra: &str) -> TestApp {
    spawn_app_env(extra, &[]).await
}

/// Like `spawn_app_with`, plus `OXIDESK__…` environment overrides. The
/// outbox sender is off unless `OXIDESK__MAIL__ENABLED` says otherwise.
pub async fn spawn_app_env(extra: &str, env: &[(&str, &str)]) -> TestApp {
    spawn_app_full(extra, env, &|t| t.to_string()).await
}

/// The fixture configuration with `Support` alerting `staff@example.com`.
pub fn with_staff_alerts(text: &str) -> String {
    text.replacen(
        "name = \"Support\"",
        "name = \"Support\"\nalert_recipients = [\"staff@example.com\"]",
        1,
    )
}

/// Everything: extra top-level TOML, environment, and an edit of the
/// fixture text.
pub async fn spawn_app_full(
    extra: &str,
    env: &[(&str, &str)],
    edit: &dyn Fn(&str) -> String,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("oxidesk.db");
    let (database, pg_name) = test_database(&db_path).await;
    let config_path = dir.path().join("oxidesk.toml");
    let text = format!(
        "database = \"{database}\"\n{extra}\n{}",
        edit(&fixture_config_text())
    );
    let mut env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !env.iter().any(|(k, _)| k == "OXIDESK__MAIL__ENABLED") {
        env.push(("OXIDESK__MAIL__ENABLED".into(), "false".into()));
    }
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::load(Some(&config_path), env.clone()).unwrap();
    let store: Arc<dyn Store> = oxidesk::cli::open_store(&config).await.unwrap();
    let key = add_key(&store, &["127.0.0.1/32"], true, true).await;
    start(config_path, config, store, key, pg_name, dir).await
}

/// Serves `store` with `config` on a fresh loopback port.
async fn start(
    config_path: std::path::PathBuf,
    config: Config,
    store: Arc<dyn Store>,
    key: String,
    pg_name: Option<String>,
    dir: tempfile::TempDir,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(&config, store.clone());
    let outbox = oxidesk::app::start_outbox(&config, &state).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        addr,
        store,
        key,
        client: reqwest::Client::new(),
        config_path,
        config,
        pg_name,
        _dir: dir,
        shutdown: Some(tx),
        task: Some(task),
        outbox,
    }
}

pub async fn add_key(
    store: &Arc<dyn Store>,
    nets: &[&str],
    can_create: bool,
    can_read: bool,
) -> String {
    let secret = ApiKeySecret::generate();
    store
        .add_api_key(NewApiKey {
            hash: secret.hash(),
            prefix: secret.prefix(),
            addresses: nets.iter().map(|n| n.parse().unwrap()).collect(),
            can_create,
            can_read,
            notes: String::new(),
            created: "2026-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap();
    secret.expose().to_string()
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn number(&self) -> String {
        assert_eq!(
            self.status, 201,
            "expected 201, got {} {}",
            self.status, self.body
        );
        self.body.clone()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path)).body(body);
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        Reply {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap().trim().to_string(),
        }
    }

    pub async fn post_json(&self, body: &Value) -> Reply {
        self.post_raw("/api/tickets.json", body.to_string().into_bytes())
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        self.send(reqwest::Method::POST, path, Some(&self.key), body, &[])
            .await
    }

    pub async fn get_ticket(&self, number: &str) -> Value {
        let r = self
            .send(
                reqwest::Method::GET,
                &format!("/api/tickets/{number}.json"),
                Some(&self.key),
                vec![],
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    pub async fn counts(&self) -> Vec<(String, i64)> {
        self.store.counts().await.unwrap()
    }

    /// Rows of one table.
    pub async fn count(&self, table: &str) -> i64 {
        let counts = self.counts().await;
        counts
            .iter()
            .find(|(t, _)| t == table)
            .unwrap_or_else(|| panic!("no table {table} in {counts:?}"))
            .1
    }

    /// An active agent (`admin`, in `departments`: configuration ids)
    /// made through the store, with a personal access token (no expiry)
    /// to send as `Authorization: Bearer <token>`. The agent's name is
    /// the address's local part; their password is random and unknown.
    pub async fn add_agent(
        &self,
        email: &str,
        admin: bool,
        departments: &[i64],
    ) -> (oxidesk::domain::staff::AgentId, String) {
        use oxidesk::domain::agents::{AgentToken, Password, TokenKind, hash_password};
        let password_hash = hash_password(Password::generate()).await.unwrap();
        let id = self
            .store
            .add_agent(oxidesk::storage::NewAgent {
                email: email.to_string(),
                name: email.split('@').next().unwrap_or(email).to_string(),
                password_hash,
                admin,
                departments: departments.to_vec(),
                created: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
        let token = AgentToken::generate();
        self.store
            .add_agent_token(oxidesk::storage::NewAgentToken {
                hash: token.hash(),
                agent_id: id,
                kind: TokenKind::Personal,
                name: "test".into(),
                created: jiff::Timestamp::now().as_second(),
                expires_at: None,
            })
            .await
            .unwrap();
        (id, token.expose().to_string())
    }

    /// Stops the server and starts a new one on the same database and
    /// configuration (what a restart of the process does).
    pub async fn restart(self) -> TestApp {
        let key = self.key.clone();
        let config_path = self.config_path.clone();
        let (config, pg_name, dir) = self.stop().await;
        let store: Arc<dyn Store> = oxidesk::cli::open_store(&config).await.unwrap();
        start(config_path, config, store, key, pg_name, dir).await
    }

    /// Stops the server; the database stays (its name is returned for a
    /// PostgreSQL run, to drop it when done).
    pub async fn stop(mut self) -> (Config, Option<String>, tempfile::TempDir) {
        if let Some(o) = self.outbox.take() {
            o.stop().await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        (
            self.config.clone(),
            self.pg_name.take(),
            std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap()),
        )
    }
}

/// Runs `oxidesk --config APP'S CONFIG pipe` (another process on the
/// app's database) with `input` on standard input and `env` set: what
/// it exited with and wrote.
pub fn pipe_output(app: &TestApp, input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxidesk"));
    cmd.arg("--config")
        .arg(&app.config_path)
        .arg("pipe")
        .env_remove("OXIDESK_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refusal may come before all of the input is read.
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// [`pipe_output`]: its exit code and standard output.
pub fn pipe(app: &TestApp, input: &[u8], env: &[(&str, &str)]) -> (i32, String) {
    let out = pipe_output(app, input, env);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// A valid minimal ticket with a unique address.
pub fn ticket(tag: &str) -> Value {
    serde_json::json!({
        "name": "Test User",
        "email": format!("{tag}@example.com"),
        "subject": format!("Subject {tag}"),
        "message": format!("Body {tag}"),
    })
}

/// A loopback port nothing listens on (yet): another process may take it
/// before the caller binds it. Only for a port the test itself binds later
/// (an SMTP sink that starts after the mail failed) or one that must stay
/// closed; a child server binds port 0 instead (see [`serve_process`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `oxidesk migrate` with `config`: only it and `serve` create a
/// database, so a test that adds a key before starting a server runs it
/// first, as an admin does.
pub fn cli_migrate(config: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(config)
        .arg("migrate")
        .env_remove("OXIDESK_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oxidesk migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `oxidesk key add --ip 127.0.0.1` with `config` (after `migrate`, which
/// creates the database when it is new): the new key.
pub fn cli_key_add(config: &std::path::Path) -> String {
    cli_migrate(config);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(config)
        .args(["key", "add", "--ip", "127.0.0.1"])
        .env_remove("OXIDESK_CONFIG")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

/// `oxidesk serve` as a process on a free loopback port (it binds port 0
/// itself, so no other process can take the port between a test's choice
/// and the bind), with extra environment; returns once it listens, with
/// its address.
pub fn serve_process(
    config: &std::path::Path,
    env: &[(&str, String)],
) -> (std::process::Child, SocketAddr) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"));
    cmd.arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("OXIDESK_CONFIG")
        .stderr(if std::env::var_os("TEST_SERVER_LOG").is_some() {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let addr = listening_address(&mut child);
    (child, addr)
}

/// Reads a `serve --listen 127.0.0.1:0` child's standard output up to its
/// `listening on ADDR` line (it listens from then on). A child that ends
/// its output without one, or says nothing for 30 s, is killed and the
/// test fails.
pub fn listening_address(child: &mut std::process::Child) -> SocketAddr {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.parse::<SocketAddr>());
                return;
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(Ok(addr)) => addr,
        other => {
            let _ = child.kill();
            let status = child.wait();
            panic!("oxidesk serve did not say where it listens: {other:?}, {status:?}");
        }
    }
}

/// A clock for an [`OutboxSender`] that moves only when the test says.
#[derive(Clone)]
pub struct TestClock(Arc<std::sync::atomic::AtomicI64>);

impl TestClock {
    pub fn at(unix: i64) -> Self {
        Self(Arc::new(unix.into()))
    }

    pub fn set(&self, unix: i64) {
        self.0.store(unix, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn clock(&self) -> oxidesk::mail_out::sender::Clock {
        let t = self.0.clone();
        Arc::new(move || t.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// An outbox sender for `app`'s store and mail configuration that runs
/// only when the test calls `run_once` (start the app with
/// `OXIDESK__MAIL__ENABLED=false`, so that no sender of its own competes),
/// reading the time from `clock`.
pub fn outbox_sender(app: &TestApp, clock: &TestClock) -> Arc<OutboxSender> {
    Arc::new(OutboxSender::with_clock(app.store.clone(), &app.config, clock.clock()).unwrap())
}

/// Runs `sql` (one or more statements, no parameters: test data only)
/// on the database of `config`, beside the store.
pub async fn exec_sql(config: &Config, sql: &str) {
    if let Some(path) = config.database.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn.execute_batch(sql).unwrap();
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&config.database).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// Inserts an active agent (and its departments) straight into the
/// database; returns its id.
pub async fn insert_agent(config: &Config, email: &str, admin: bool, departments: &[i64]) -> i64 {
    let mut sql = format!(
        "INSERT INTO agents (email, name, password_hash, is_admin, is_active, created)
         VALUES ('{email}', 'Agent {email}', 'x', {admin}, TRUE, '2026-01-01T00:00:00Z');"
    );
    for d in departments {
        sql.push_str(&format!(
            "INSERT INTO agent_departments (agent_id, dept_id)
             SELECT id, {d} FROM agents WHERE email = '{email}';"
        ));
    }
    exec_sql(config, &sql).await;
    let id_sql = format!("SELECT id FROM agents WHERE email = '{email}'");
    if let Some(path) = config.database.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(&id_sql, [], |r| r.get(0)).unwrap()
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&config.database).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(id_sql))
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

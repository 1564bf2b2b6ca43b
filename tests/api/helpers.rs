//! `spawn_app()`: a real oxidesk on 127.0.0.1:0 with a fresh SQLite file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use oxidesk::app::{AppState, serve};
use oxidesk::config::Config;
use oxidesk::domain::catalog::Catalog;
use oxidesk::domain::keys::ApiKeySecret;
use oxidesk::storage::sqlite::SqliteStore;
use oxidesk::storage::{NewApiKey, Store};
use serde_json::Value;

pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    /// Can create and read, bound to 127.0.0.1.
    pub key: String,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    pub config_path: PathBuf,
    pub _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    outbox: Option<oxidesk::app::OutboxHandle>,
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
    let config_path = dir.path().join("oxidesk.toml");
    let text = format!(
        "database = \"sqlite://{}\"\n{extra}\n{}",
        db_path.display(),
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
    let catalog = Catalog::new(&config);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&db_path, catalog.numbers.clone()).unwrap());
    let key = add_key(&store, &["127.0.0.1/32"], true, true).await;
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
        db_path,
        config_path,
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

    pub async fn stop(mut self) -> (PathBuf, tempfile::TempDir) {
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
            self.db_path.clone(),
            std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap()),
        )
    }
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

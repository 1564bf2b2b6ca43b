//! The HTTP request path, in process: any method, path, headers and body
//! through the real router (intake, read API, staff API, pages) onto a
//! real SQLite store. With or without a valid API key, so the create path
//! is reached past the key check. Invariants: no panic (axum's
//! catch-panic would turn one into a 500, so a 500 is a finding too), and
//! every answer is a well-formed response.
#![no_main]

#[path = "common.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const PATHS: &[&str] = &[
    "/api/tickets.json",
    "/api/tickets.xml",
    "/api/tickets.email",
    "/api/http.php/tickets.json",
    "/api/tickets/",
    "/api/v1/tickets",
    "/api/v1/session",
    "/api/v1/me",
    "/api/v1/queues",
    "/scp/",
    "/scp/login",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
];

const METHODS: &[Method] = &[
    Method::POST,
    Method::GET,
    Method::HEAD,
    Method::PATCH,
    Method::DELETE,
    Method::PUT,
    Method::OPTIONS,
];

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    path: u8,
    suffix: String,
    with_key: bool,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

struct Server {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    key: String,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let config = common::config();
        let (router, key) = runtime.block_on(async {
            let store = oxidesk::cli::open_store(config).await.expect("the store");
            let secret = oxidesk::domain::keys::ApiKeySecret::generate();
            store
                .add_api_key(oxidesk::storage::NewApiKey {
                    hash: secret.hash(),
                    prefix: secret.prefix(),
                    addresses: vec!["127.0.0.0/8".parse().expect("a net")],
                    can_create: true,
                    can_read: true,
                    notes: String::new(),
                    created: "2026-01-01T00:00:00Z".into(),
                })
                .await
                .expect("a key");
            let state = oxidesk::app::AppState::new(config, store);
            (oxidesk::app::router(state), secret.expose().to_string())
        });
        Server {
            runtime,
            router,
            key,
        }
    })
}

fuzz_target!(|input: Input| {
    let server = server();
    let method = METHODS[usize::from(input.method) % METHODS.len()].clone();
    let path = format!(
        "{}{}",
        PATHS[usize::from(input.path) % PATHS.len()],
        input.suffix
    );
    let mut builder = Request::builder().method(method).uri(path.as_str());
    if input.with_key {
        builder = builder.header("x-api-key", server.key.as_str());
    }
    for (name, value) in input.headers.iter().take(16) {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    // A request the HTTP parser could not have produced is not fuzzed.
    let Ok(mut request) = builder.body(Body::from(input.body)) else {
        return;
    };
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    server.runtime.block_on(async {
        let response = server
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let _ = response.into_body().collect().await;
        assert!(status != 500, "a 500 for {path}");
    });
});

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, ticket};

#[tokio::test]
async fn routes_methods_and_formats() {
    let app = spawn_app().await;
    let body = ticket("routes").to_string().into_bytes();
    let k = Some(app.key.as_str());
    let n = app
        .send(
            Method::POST,
            "/api/http.php/tickets.json",
            k,
            body.clone(),
            &[],
        )
        .await
        .number();
    let r = app
        .send(
            Method::GET,
            &format!("/api/http.php/tickets/{n}.json"),
            k,
            vec![],
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    // The format comes from the path, not the Content-Type.
    let r = app
        .send(
            Method::POST,
            "/api/tickets.json",
            k,
            body.clone(),
            &[("Content-Type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    let r = app
        .send(Method::POST, "/api/tickets.yaml", k, body.clone(), &[])
        .await;
    assert_eq!(r.status, 415);
    let r = app
        .send(Method::GET, "/api/tickets.json", k, vec![], &[])
        .await;
    assert_eq!(
        (r.status, r.headers["allow"].to_str().unwrap()),
        (405, "POST")
    );
    let r = app
        .send(
            Method::DELETE,
            &format!("/api/tickets/{n}.json"),
            k,
            vec![],
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.headers["allow"].to_str().unwrap()),
        (405, "GET, HEAD")
    );
    for path in ["/api/other.json", "/nothing", "/api/tickets/123456.xml"] {
        let r = app.send(Method::POST, path, k, body.clone(), &[]).await;
        assert_eq!(r.status, 404, "{path}");
    }
    let r = app
        .send(Method::GET, "/api/tickets/000000.json", k, vec![], &[])
        .await;
    assert_eq!(r.status, 404);
}

/// The JSON error envelope of `r` (API.md, Responses).
fn envelope(r: &crate::helpers::Reply) -> Value {
    assert_eq!(r.headers["content-type"], "application/json", "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

const ACCEPT_JSON: (&str, &str) = ("Accept", "application/json");

#[tokio::test]
async fn unknown_path_is_404_with_a_readable_body_or_the_json_envelope() {
    let app = spawn_app().await;
    let k = Some(app.key.as_str());
    // Unknown to the router, and unknown to a route's handler.
    for path in ["/nothing", "/api/other.json", "/api/tickets/123456.xml"] {
        let r = app.send(Method::GET, path, k, vec![], &[]).await;
        assert_eq!((r.status, r.body.as_str()), (404, "Not found"), "{path}");
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        let r = app
            .send(Method::POST, path, k, vec![], &[ACCEPT_JSON])
            .await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            envelope(&r),
            json!({"error": {"status": 404, "message": "Not found", "field": null}}),
            "{path}"
        );
    }
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_and_the_json_envelope_when_asked() {
    let app = spawn_app().await;
    let k = Some(app.key.as_str());
    let r = app
        .send(Method::GET, "/api/tickets.json", k, vec![], &[ACCEPT_JSON])
        .await;
    assert_eq!(
        (r.status, r.headers["allow"].to_str().unwrap()),
        (405, "POST")
    );
    assert_eq!(
        envelope(&r),
        json!({"error": {"status": 405, "message": "Method not allowed", "field": null}})
    );
    let r = app
        .send(Method::PUT, "/api/tickets/1.json", None, vec![], &[])
        .await;
    assert_eq!(
        (r.status, r.headers["allow"].to_str().unwrap()),
        (405, "GET, HEAD")
    );
    assert_eq!(r.body, "Method not allowed");
    assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_of_its_own() {
    let app = spawn_app().await;
    let k = Some(app.key.as_str());
    let body = ticket("ids").to_string().into_bytes();
    let replies = [
        app.send(Method::POST, "/api/tickets.json", k, body.clone(), &[])
            .await,
        app.send(Method::POST, "/api/tickets.json", None, body, &[])
            .await,
        app.send(Method::GET, "/api/tickets.json", k, vec![], &[])
            .await,
        app.send(Method::GET, "/nothing", None, vec![], &[]).await,
        app.send(Method::GET, "/nothing", None, vec![], &[]).await,
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 401, 405, 404, 404]);
    let ids: std::collections::BTreeSet<&str> = replies
        .iter()
        .map(|r| r.headers["x-request-id"].to_str().unwrap())
        .collect();
    assert_eq!(ids.len(), replies.len(), "{ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()));
}

#[tokio::test]
async fn a_safe_client_request_id_is_echoed_and_an_unsafe_one_replaced() {
    let app = spawn_app().await;
    let long = "a".repeat(65);
    let longest = "b".repeat(64);
    for (sent, is_kept) in [
        ("proxy-7f3a.19_Z", true),
        (longest.as_str(), true),
        (long.as_str(), false),
        ("two words", false),
        ("a/b", false),
        ("{\"x\":1}", false),
    ] {
        let r = app
            .send(
                Method::GET,
                "/nothing",
                None,
                vec![],
                &[("X-Request-Id", sent)],
            )
            .await;
        let echoed = r.headers["x-request-id"].to_str().unwrap();
        assert_eq!(echoed == sent, is_kept, "{sent} -> {echoed}");
        assert!(
            echoed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{echoed}"
        );
    }
}

/// Serves the product's routes plus `GET /panic`, which panics, behind
/// the product's layers; the address.
async fn serve_with_a_panicking_route(app: &crate::helpers::TestApp) -> std::net::SocketAddr {
    async fn panics() -> &'static str {
        panic!("deliberate test panic")
    }
    let routes = oxidesk::http::routes().route("/panic", axum::routing::get(panics));
    let state = oxidesk::app::AppState::new(&app.config, app.store.clone());
    let router = oxidesk::app::router_with(routes, state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

#[tokio::test]
async fn a_panic_answers_an_opaque_500_naming_the_request_in_json_when_asked() {
    let app = spawn_app().await;
    let addr = serve_with_a_panicking_route(&app).await;
    let client = reqwest::Client::new();
    let get = |accept: &'static str| {
        client
            .get(format!("http://{addr}/panic"))
            .header("Accept", accept)
            .send()
    };

    let r = get("application/json").await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["content-type"], "application/json");
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"error": {
            "status": 500,
            "message": format!("Internal server error (request {id})"),
            "field": null,
        }})
    );

    let r = get("text/plain").await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(
        r.text().await.unwrap(),
        format!("Internal server error (request {id})\n")
    );

    // A route that dispatches by method: axum's 405, with `Allow`, in
    // the same envelope.
    let r = client
        .post(format!("http://{addr}/panic"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET,HEAD");
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["error"]["status"], json!(405));
}

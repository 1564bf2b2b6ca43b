use reqwest::Method;

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

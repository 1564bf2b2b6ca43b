use serde_json::json;

use crate::helpers::{spawn_app, ticket};

#[tokio::test]
async fn body_over_the_limit_is_413_before_parsing() {
    let app = spawn_app().await; // fixture: 10 MiB body
    let before = app.counts().await;
    let mut body = br#"{"name":"x","email":"big@example.com","subject":"s","message":""#.to_vec();
    body.extend(std::iter::repeat_n(b'A', 11 * 1024 * 1024));
    body.extend(br#""}"#);
    let r = app.post_raw("/api/tickets.json", body).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(app.counts().await, before);
}

#[tokio::test]
async fn attachment_over_the_limit_is_413_naming_it_and_nothing_is_kept() {
    let app = spawn_app().await; // fixture: 1 MiB per attachment
    let before = app.counts().await;
    let big = "A".repeat(1024 * 1024 + 1);
    let mut t = ticket("att-big");
    t["attachments"] =
        json!([{"small.txt": "data:,ok"}, {"big.txt": format!("data:text/plain,{big}")}]);
    let r = app.post_json(&t).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("big.txt"), "{}", r.body);
    assert_eq!(app.counts().await, before);
    // Exactly at the limit is fine.
    let exact = "A".repeat(1024 * 1024);
    t["attachments"] = json!([{"exact.txt": format!("data:text/plain,{exact}")}]);
    app.post_json(&t).await.number();
}

#[tokio::test]
async fn too_many_attachments_is_413() {
    let app = spawn_app().await; // default: 64
    let files: Vec<_> = (0..65)
        .map(|i| json!({format!("f{i}.txt"): "data:,x"}))
        .collect();
    let mut t = ticket("many");
    t["attachments"] = json!(files);
    let r = app.post_json(&t).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("attachments"));
}

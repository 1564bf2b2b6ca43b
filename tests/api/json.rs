use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{spawn_app, spawn_app_with, ticket};

#[tokio::test]
async fn documented_example_reads_back_in_api_shape() {
    let app = spawn_app().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAMAAAACCAIAAAASFvFNAAAAEElEQVR42mP4z8DAAMFwFgA72AX7NhGY6gAAAABJRU5ErkJggg==";
    let n = app
        .post_json(&json!({
            "alert": true, "autorespond": true, "source": "API",
            "name": "Angry User", "email": "api@example.com", "phone": "3185558634X123",
            "subject": "Testing API", "ip": "123.211.233.122",
            "message": "data:text/html,MESSAGE <b>HERE</b><script>evil()</script>",
            "attachments": [{"file.txt": "data:text/plain;charset=utf-8,content"},
                            {"image.png": format!("data:image/png;base64,{png}")}]
        }))
        .await
        .number();
    assert!(n.len() == 6 && n.chars().all(|c| c.is_ascii_digit()), "{n}");
    let t = app.get_ticket(&n).await;
    assert_eq!(t["number"], json!(n));
    assert_eq!(t["status"], json!("open"));
    assert_eq!(t["priority"], json!({"id": 2, "name": "Normal"}));
    assert_eq!(t["topic"], Value::Null);
    assert_eq!(t["department"], json!({"id": 1, "name": "Support"}));
    assert_eq!(
        t["user"],
        json!({"name": "Angry User", "email": "api@example.com"})
    );
    assert_eq!(t["ip"], json!("123.211.233.122"));
    assert_eq!(t["fields"], json!({"phone": "3185558634X123"}));
    let e = &t["thread"][0];
    assert_eq!(e["format"], json!("html"));
    assert_eq!(e["body"], json!("MESSAGE <b>HERE</b>"));
    assert_eq!(e["from"]["email"], json!("api@example.com"));
    assert_eq!(e["flags"], json!({"auto_reply": false, "bounce": false}));
    assert_eq!(e["attachments"][0]["size"], json!(7));
    assert_eq!(
        e["attachments"][0]["sha256"],
        json!(hex::encode(Sha256::digest(b"content")))
    );
    assert_eq!(e["attachments"][1]["type"], json!("image/png"));
    assert_eq!(e["attachments"][1]["size"], json!(73));
    let created = t["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && created.parse::<jiff::Timestamp>().is_ok(),
        "{created}"
    );
}

#[tokio::test]
async fn custom_fields_are_normalised_per_type() {
    let app = spawn_app().await;
    let n = app
        .post_json(&json!({
            "name": "Cf", "email": "cf@example.com", "subject": "s", "message": "m",
            "topicId": "20", "serial_number": " SN-1 ", "purchase_date": "05.03.2024",
            "outage_start": "2024-03-05T14:30:00+02:00", "severity": "minor",
            "onsite": "yes", "callback_phone": "+1 (555) 987-6543 x 12", "notes": "line1\nline2"
        }))
        .await
        .number();
    let t = app.get_ticket(&n).await;
    assert_eq!(t["topic"], json!({"id": 20, "name": "Equipment Fault"}));
    assert_eq!(t["priority"]["id"], json!(3));
    assert_eq!(
        t["fields"],
        json!({
            "serial_number": "SN-1", "purchase_date": "2024-03-05",
            "outage_start": "2024-03-05T12:30:00Z", "severity": "sev3", "onsite": true,
            "callback_phone": "15559876543X12", "notes": "line1\nline2"
        })
    );
}

#[tokio::test]
async fn returning_email_keeps_the_stored_name() {
    let app = spawn_app().await;
    let mut first = ticket("same");
    first["name"] = json!("First Name");
    app.post_json(&first).await.number();
    let mut second = ticket("same");
    second["name"] = json!("Other Name");
    second["email"] = json!("SAME@example.com");
    let n = app.post_json(&second).await.number();
    let t = app.get_ticket(&n).await;
    assert_eq!(
        t["user"],
        json!({"name": "First Name", "email": "same@example.com"})
    );
    assert_eq!(app.counts().await[0], ("users".to_string(), 1));
}

#[tokio::test]
async fn identical_attachment_content_is_stored_once() {
    let app = spawn_app().await;
    let mut t = ticket("dedupe");
    t["attachments"] =
        json!([{"a.txt": "data:text/plain,same"}, {"b.txt": "data:text/plain,same"}]);
    app.post_json(&t).await.number();
    let mut t2 = ticket("dedupe2");
    t2["attachments"] = json!([{"c.txt": "data:text/plain;base64,c2FtZQ=="}]);
    app.post_json(&t2).await.number();
    let counts: std::collections::HashMap<_, _> = app.counts().await.into_iter().collect();
    assert_eq!((counts["attachments"], counts["blobs"]), (3, 1));
}

#[tokio::test]
async fn bad_requests_are_400_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let before = app.counts().await;
    let base = ticket("bad");
    let with = |k: &str, v: Value| {
        let mut t = base.clone();
        t[k] = v;
        t
    };
    let without = |k: &str| {
        let mut t = base.clone();
        t.as_object_mut().unwrap().remove(k);
        t
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("email"), "email"),
        (without("name"), "name"),
        (without("subject"), "subject"),
        (without("message"), "message"),
        (with("email", json!("nope")), "email"),
        (with("subject", json!(["a", "b"])), "subject"),
        (with("message", json!({"a": 1})), "message"),
        (with("favourite_colour", json!("blue")), "favourite_colour"),
        (with("asset_tag", json!("AT")), "asset_tag"),
        (with("topicId", json!(99)), "topicId"),
        (with("topicId", json!(20)), "serial_number"),
        (with("priority", json!(42)), "priority"),
        (with("ip", json!("300.1.1.1")), "ip"),
        (with("source", json!("Carrier pigeon")), "source"),
        (with("alert", json!("perhaps")), "alert"),
        (with("phone", json!("call me maybe")), "phone"),
        (with("attachments", json!({"a": "b"})), "attachments"),
        (
            with(
                "attachments",
                json!([{"x.bin": "data:application/octet-stream;base64,%%%"}]),
            ),
            "x.bin",
        ),
        (
            with(
                "attachments",
                json!([{"ok.txt": "data:,fine"}, {"bad.bin": "data:;base64,!!"}]),
            ),
            "bad.bin",
        ),
        (
            with("message", json!("data:text/plain;charset=klingon,x")),
            "message",
        ),
    ];
    for (body, field) in cases {
        let r = app.post_json(&body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(field), "{field} not named in {:?}", r.body);
    }
    for (raw, what) in [
        ("", "empty"),
        ("{\"name\": \"x\",", "truncated"),
        ("[1,2]", "array"),
        ("{\"a\":1,}", "trailing comma"),
    ] {
        let r = app
            .post_raw("/api/tickets.json", raw.as_bytes().to_vec())
            .await;
        assert_eq!(r.status, 400, "{what}: {}", r.body);
    }
    let r = app
        .post_raw("/api/tickets.json", b"{\n\"name\": 1,\n}".to_vec())
        .await;
    assert!(r.body.contains("line 3"), "{}", r.body);
    assert_eq!(
        app.counts().await,
        before,
        "a refused request wrote something"
    );
}

#[tokio::test]
async fn json_error_envelope_on_request() {
    let app = spawn_app().await;
    let mut t = ticket("env");
    t.as_object_mut().unwrap().remove("subject");
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/tickets.json",
            Some(&app.key),
            t.to_string().into_bytes(),
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 400);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["status"], json!(400));
    assert_eq!(v["error"]["field"], json!("subject"));
    assert!(v["error"]["message"].as_str().unwrap().contains("subject"));
}

#[tokio::test]
async fn unknown_fields_can_be_ignored_and_are_named_in_a_header() {
    let app = spawn_app_with("unknown_fields = \"ignore\"").await;
    let mut t = ticket("ign");
    t["favourite_colour"] = json!("blue");
    t["shoe_size"] = json!(44);
    let r = app.post_json(&t).await;
    assert_eq!(r.headers["x-ignored-fields"], "favourite_colour, shoe_size");
    let n = r.number();
    assert_eq!(app.get_ticket(&n).await["fields"], json!({}));
}

//! Issue 16, points 3, 4, 5 and 7 on the JSON and XML intake: caps that
//! hold while a body is parsed, refusals that are the same on SQLite and
//! PostgreSQL, nothing silently dropped, bytes in flight bounded, file
//! names cleaned for download, ticket numbers that never run out. Every
//! test runs on PostgreSQL too with `TEST_DATABASE_URL`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_env, ticket};

/// A refusal: the status, the field named in the JSON envelope, and
/// nothing stored.
async fn refused(app: &TestApp, path: &str, body: Vec<u8>, status: u16, field: &str) -> Reply {
    let before = app.counts().await;
    let r = app
        .send(
            Method::POST,
            path,
            Some(&app.key),
            body,
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, status, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    if field.is_empty() {
        assert!(v["error"]["field"].is_null(), "{}", r.body);
    } else {
        assert_eq!(v["error"]["field"], field, "{}", r.body);
    }
    assert_eq!(
        app.counts().await,
        before,
        "a refused request stored something"
    );
    r
}

fn json_bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn xml_ticket(extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><ticket><name>X</name><email>x@example.com</email>\
         <subject>S</subject><message>M</message>{extra}</ticket>"
    )
}

// ---- point 5: nothing silently dropped

#[tokio::test]
async fn empty_attachment_object_was_silently_dropped_and_is_now_400() {
    let app = spawn_app().await;
    let mut t = ticket("empty-att");
    t["attachments"] = json!([{}]);
    let r = refused(
        &app,
        "/api/tickets.json",
        json_bytes(&t),
        400,
        "attachments",
    )
    .await;
    assert!(r.body.contains("empty object"), "{}", r.body);
    // An empty object among real files is refused too.
    t["attachments"] = json!([{"a.txt": "data:,a"}, {}]);
    refused(
        &app,
        "/api/tickets.json",
        json_bytes(&t),
        400,
        "attachments",
    )
    .await;
}

#[tokio::test]
async fn attachment_count_applies_to_files_inside_one_object() {
    let app = spawn_app().await; // default: 64
    let files: serde_json::Map<String, Value> = (0..65)
        .map(|i| (format!("f{i}.txt"), json!("data:,x")))
        .collect();
    let mut t = ticket("one-object");
    t["attachments"] = json!([files]);
    refused(
        &app,
        "/api/tickets.json",
        json_bytes(&t),
        413,
        "attachments",
    )
    .await;
    // XML: the 65th <file> is refused before it is read.
    let files: String = (0..65)
        .map(|i| format!("<file name=\"f{i}.txt\">x</file>"))
        .collect();
    let xml = xml_ticket(&format!("<attachments>{files}</attachments>"));
    refused(
        &app,
        "/api/tickets.xml",
        xml.into_bytes(),
        413,
        "attachments",
    )
    .await;
}

#[tokio::test]
async fn a_field_sent_twice_is_400_instead_of_keeping_only_the_last() {
    let app = spawn_app().await;
    let body = br#"{"name":"A","email":"twice@example.com","subject":"first","subject":"second","message":"m"}"#;
    refused(&app, "/api/tickets.json", body.to_vec(), 400, "subject").await;
    let xml = xml_ticket("<subject>again</subject>");
    refused(&app, "/api/tickets.xml", xml.into_bytes(), 400, "subject").await;
    let xml = xml_ticket("<message>again</message>");
    refused(&app, "/api/tickets.xml", xml.into_bytes(), 400, "message").await;
}

#[tokio::test]
async fn overlong_name_subject_value_and_file_name_are_400_naming_the_field() {
    let app = spawn_app().await;
    // Defaults (osTicket's columns): name 128, subject 255, file name 255.
    let mut t = ticket("long");
    t["name"] = json!("n".repeat(129));
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "name").await;
    let mut t = ticket("long");
    t["subject"] = json!("s".repeat(256));
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "subject").await;
    let mut t = ticket("long");
    t["notes"] = json!("v".repeat(65_536));
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "notes").await;
    let mut t = ticket("long");
    t["attachments"] = json!([{format!("{}.txt", "f".repeat(252)): "data:,x"}]);
    refused(
        &app,
        "/api/tickets.json",
        json_bytes(&t),
        400,
        "attachments",
    )
    .await;
    let xml = xml_ticket("").replace(
        "<subject>S</subject>",
        &format!("<subject>{}</subject>", "s".repeat(256)),
    );
    refused(&app, "/api/tickets.xml", xml.into_bytes(), 400, "subject").await;

    // Exactly at each limit is stored as sent.
    let mut t = ticket("exact");
    t["name"] = json!("n".repeat(128));
    t["subject"] = json!("é".repeat(255));
    t["attachments"] = json!([{format!("{}.txt", "f".repeat(251)): "data:,x"}]);
    let n = app.post_json(&t).await.number();
    let stored = app.get_ticket(&n).await;
    assert_eq!(stored["subject"], "é".repeat(255));
    assert_eq!(stored["user"]["name"], "n".repeat(128));
}

#[tokio::test]
async fn length_limits_are_configurable() {
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__LIMITS__MAX_SUBJECT_CHARS", "10"),
            ("OXIDESK__LIMITS__MAX_FILE_NAME_CHARS", "8"),
        ],
    )
    .await;
    let mut t = ticket("cfg");
    t["subject"] = json!("eleven chars");
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "subject").await;
    let mut t = ticket("cfg");
    t["subject"] = json!("ten chars!");
    t["attachments"] = json!([{"long.name": "data:,x"}]);
    refused(
        &app,
        "/api/tickets.json",
        json_bytes(&t),
        400,
        "attachments",
    )
    .await;
    t["attachments"] = json!([{"name.txt": "data:,x"}]);
    app.post_json(&t).await.number();
}

// ---- point 4: no poison messages

#[tokio::test]
async fn nul_in_a_json_field_was_a_500_on_postgresql_and_is_400_on_both() {
    let app = spawn_app().await;
    for field in ["subject", "name", "notes"] {
        let mut t = ticket("nul");
        t[field] = json!("before\u{0}after");
        let r = refused(&app, "/api/tickets.json", json_bytes(&t), 400, field).await;
        assert!(r.body.contains("U+0000"), "{}", r.body);
    }
    // Other C0 controls XML 1.0 excludes are refused alike; tab and new
    // lines are text.
    let mut t = ticket("ctl");
    t["subject"] = json!("bell\u{7}");
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "subject").await;
    let mut t = ticket("ctl");
    t["message"] = json!("line\u{0}");
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "message").await;
    // Hidden in a data URL: decoded, then refused.
    let mut t = ticket("ctl");
    t["message"] = json!("data:text/plain;base64,YQBi");
    refused(&app, "/api/tickets.json", json_bytes(&t), 400, "message").await;
    let mut t = ticket("ctl");
    t["attachments"] = json!([{"a\u{0}.txt": "data:,x"}]);
    refused(
        &app,
        "/api/tickets.json",
        json_bytes(&t),
        400,
        "attachments",
    )
    .await;
    let mut t = ticket("ok");
    t["message"] = json!("tab\there\r\nand a new line");
    let n = app.post_json(&t).await.number();
    assert_eq!(
        app.get_ticket(&n).await["thread"][0]["body"],
        "tab\there\r\nand a new line"
    );
    // The bytes of a file are data, not text: a NUL there is stored.
    let mut t = ticket("bin");
    t["attachments"] = json!([{"z.bin": "data:application/octet-stream;base64,AAEA"}]);
    app.post_json(&t).await.number();
}

#[tokio::test]
async fn nul_in_xml_is_400_naming_the_field_on_both_backends() {
    let app = spawn_app().await;
    let xml = xml_ticket("").replace("<subject>S</subject>", "<subject>a\u{0}b</subject>");
    refused(&app, "/api/tickets.xml", xml.into_bytes(), 400, "subject").await;
    let xml = xml_ticket("").replace("<ticket>", "<ticket phone=\"1\u{1}2\">");
    refused(&app, "/api/tickets.xml", xml.into_bytes(), 400, "phone").await;
}

#[tokio::test]
async fn xml_with_invalid_utf8_was_stored_with_replacement_characters_and_is_400() {
    let app = spawn_app().await;
    let mut body = b"<ticket><name>X</name><email>u@example.com</email><subject>Caf".to_vec();
    body.push(0xe9); // Latin-1 é, not UTF-8, with no encoding declared
    body.extend(b"</subject><message>M</message></ticket>");
    let r = refused(&app, "/api/tickets.xml", body.clone(), 400, "").await;
    assert!(r.body.contains("UTF-8"), "{}", r.body);
    // Declared, the same bytes are a café.
    let mut declared = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".to_vec();
    declared.extend(body);
    let n = app.post_raw("/api/tickets.xml", declared).await.number();
    assert_eq!(app.get_ticket(&n).await["subject"], "Café");
}

// ---- point 3: caps while parsing

#[tokio::test]
async fn nine_mib_array_of_empty_objects_stops_at_the_first_with_400() {
    let app = spawn_app().await; // 10 MiB body cap
    let mut body =
        br#"{"name":"A","email":"a@example.com","subject":"s","message":"m","attachments":["#
            .to_vec();
    let n = 3_000_000;
    for i in 0..n {
        body.extend(if i == 0 { &b"{}"[..] } else { &b",{}"[..] });
    }
    body.extend(b"]}");
    assert!(body.len() > 8 * 1024 * 1024);
    refused(&app, "/api/tickets.json", body, 400, "attachments").await;
}

#[tokio::test]
async fn object_of_a_million_keys_is_413_naming_fields() {
    let app = spawn_app().await;
    let mut body = br#"{"name":"A","email":"a@example.com","subject":"s","message":"m""#.to_vec();
    for i in 0..700_000 {
        write!(body, ",\"k{i}\":1").unwrap();
    }
    body.push(b'}');
    let r = refused(&app, "/api/tickets.json", body, 413, "fields").await;
    assert!(r.body.contains("256"), "{}", r.body);
    // A list of a million items counts each item.
    let mut body =
        br#"{"name":"A","email":"a@example.com","subject":"s","message":"m","notes":["#.to_vec();
    for i in 0..1_000_000 {
        body.extend(if i == 0 { &b"1"[..] } else { &b",1"[..] });
    }
    body.extend(b"]}");
    refused(&app, "/api/tickets.json", body, 413, "fields").await;
    // The cap is configurable, and exactly at it is fine (3 fields here:
    // the message is not a field).
    let small = spawn_app_env("", &[("OXIDESK__LIMITS__MAX_FIELDS", "3")]).await;
    small.post_json(&ticket("three")).await.number();
    let mut t = ticket("four");
    t["ip"] = json!("10.0.0.1");
    refused(&small, "/api/tickets.json", json_bytes(&t), 413, "fields").await;
}

#[tokio::test]
async fn xml_with_many_attributes_or_fields_is_413() {
    let app = spawn_app().await;
    let attrs: String = (0..300_000).map(|i| format!(" a{i}=\"\"")).collect();
    let xml = xml_ticket("").replace("<ticket>", &format!("<ticket{attrs}>"));
    refused(
        &app,
        "/api/tickets.xml",
        xml.into_bytes(),
        413,
        "<ticket> attributes",
    )
    .await;
    let attrs: String = (0..300_000).map(|i| format!(" a{i}=\"\"")).collect();
    let xml = xml_ticket(&format!(
        "<attachments><file name=\"x\"{attrs}>x</file></attachments>"
    ));
    refused(
        &app,
        "/api/tickets.xml",
        xml.into_bytes(),
        413,
        "<file> attributes",
    )
    .await;
    let fields: String = (0..300).map(|i| format!("<f{i}>x</f{i}>")).collect();
    let xml = xml_ticket(&fields);
    refused(&app, "/api/tickets.xml", xml.into_bytes(), 413, "fields").await;
}

#[tokio::test]
async fn base64_xml_file_over_the_cap_is_413_with_its_size() {
    let app = spawn_app().await; // 1 MiB per attachment
    use base64::Engine as _;
    let data = vec![7u8; 1024 * 1024 + 10];
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    // Lines of 76 with CRLF, as PHP's chunk_split writes them.
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let xml = xml_ticket(&format!(
        "<attachments><file name=\"big.bin\" encoding=\"base64\">{wrapped}</file></attachments>"
    ));
    let r = refused(&app, "/api/tickets.xml", xml.into_bytes(), 413, "big.bin").await;
    assert!(
        r.body.contains(&(1024 * 1024 + 10).to_string()),
        "{}",
        r.body
    );
    // Within the cap, the wrapped base64 decodes to the same bytes.
    let small = base64::engine::general_purpose::STANDARD.encode(b"hello\x00world");
    let xml = xml_ticket(&format!(
        "<attachments><file name=\"s.bin\" encoding=\"base64\">{}\r\n{}</file></attachments>",
        &small[..8],
        &small[8..]
    ));
    let n = app
        .post_raw("/api/tickets.xml", xml.into_bytes())
        .await
        .number();
    let att = &app.get_ticket(&n).await["thread"][0]["attachments"][0];
    assert_eq!(att["size"], 11, "{att}");
}

// ---- point 3: bytes in flight

/// A request whose headers promise `len` body bytes and which sends only
/// part of them, holding its share of the budget until dropped.
fn hold_budget(app: &TestApp, len: usize) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(app.addr).unwrap();
    write!(
        s,
        "POST /api/tickets.json HTTP/1.1\r\nHost: x\r\nX-API-Key: {}\r\n\
         Content-Length: {len}\r\n\r\n{{\"name\":",
        app.key
    )
    .unwrap();
    s.flush().unwrap();
    s
}

#[tokio::test]
async fn past_the_bytes_in_flight_a_request_waits_then_gets_503_with_retry_after() {
    // Budget = body cap = 10 MiB; a request waits 200 ms for room.
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__LIMITS__MAX_BYTES_IN_FLIGHT", "10485760"),
            ("OXIDESK__LIMITS__BYTES_IN_FLIGHT_WAIT_MS", "200"),
        ],
    )
    .await;
    let holder = hold_budget(&app, 10 * 1024 * 1024);
    // The holder's headers are read at once; until its permit is taken a
    // request may still pass, so ask until the budget is seen full.
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = loop {
        let r = app.post_json(&ticket("while-full")).await;
        if r.status == 503 {
            break r;
        }
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(Instant::now() < deadline, "the budget never filled");
    };
    assert_eq!(busy.headers["retry-after"], "1");
    assert!(busy.body.contains("try again"), "{}", busy.body);
    // The holder goes away: its bytes come back and requests pass again.
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.post_json(&ticket("after")).await;
        if r.status == 201 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(Instant::now() < deadline, "the budget never came back");
    }
    // Many requests in a row each give their bytes back.
    for i in 0..20 {
        app.post_json(&ticket(&format!("seq{i}"))).await.number();
    }
}

#[tokio::test]
async fn a_waiting_request_is_served_when_room_comes_back() {
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__LIMITS__MAX_BYTES_IN_FLIGHT", "10485760"),
            ("OXIDESK__LIMITS__BYTES_IN_FLIGHT_WAIT_MS", "30000"),
        ],
    )
    .await;
    let mut holder = hold_budget(&app, 10 * 1024 * 1024);
    let (addr, key) = (app.addr, app.key.clone());
    // Blocking sockets on the blocking pool: the server shares the
    // test's runtime.
    let waiting = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = ticket("waiter").to_string();
        write!(
            s,
            "POST /api/tickets.json HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    });
    // Finish the holder's body (not a ticket: 400), giving its bytes back.
    let finished = tokio::task::spawn_blocking(move || {
        let rest = 10 * 1024 * 1024 - "{\"name\":".len();
        holder.write_all(&vec![b' '; rest]).unwrap();
        let mut head = [0u8; 12];
        holder.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    assert_eq!(finished.await.unwrap(), "HTTP/1.1 400");
    let answer = waiting.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

// ---- point 5: file names for download

#[tokio::test]
async fn download_name_has_no_path_or_bidi_override_and_the_original_is_kept() {
    let app = spawn_app().await;
    let (_, token) = app.add_agent("files@example.com", true, &[1]).await;
    let original = "../..\\\u{202E}fdp.exe";
    let mut t = ticket("names");
    t["attachments"] = json!([{original: "data:,x"}]);
    let n = app.post_json(&t).await.number();
    // The read API shows the name as sent.
    assert_eq!(
        app.get_ticket(&n).await["thread"][0]["attachments"][0]["name"],
        original
    );
    let auth = format!("Bearer {token}");
    let r = app
        .send(
            Method::GET,
            &format!("/api/v1/tickets/{n}"),
            None,
            vec![],
            &[("Authorization", &auth)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let full: Value = serde_json::from_str(&r.body).unwrap();
    let url = full["thread"][0]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .send(Method::GET, &url, None, vec![], &[("Authorization", &auth)])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"_.._fdp.exe\"; filename*=UTF-8''_.._fdp.exe"
    );
}

// ---- point 7: numbers never run out

#[tokio::test]
async fn two_digit_numbers_widen_instead_of_failing_with_500() {
    // `##` holds 90 numbers: the 100-draw retry used to give up near 90.
    let app = spawn_app_env("", &[("OXIDESK__TICKETS__NUMBER_FORMAT", "##")]).await;
    let mut numbers = std::collections::HashSet::new();
    for i in 0..150 {
        let n = app.post_json(&ticket(&format!("num{i}"))).await.number();
        assert!(
            n.chars().all(|c| c.is_ascii_digit()) && !n.starts_with('0'),
            "{n}"
        );
        assert!(numbers.insert(n.clone()), "{n} given twice");
    }
    let widths: std::collections::BTreeSet<usize> = numbers.iter().map(String::len).collect();
    assert!(widths.contains(&2) && widths.contains(&3), "{widths:?}");
    // At most half of the two-digit numbers were drawn before widening
    // (plus the tickets in flight when the first collision came).
    let two = numbers.iter().filter(|n| n.len() == 2).count();
    assert!(two <= 60, "{two} two-digit numbers");
}

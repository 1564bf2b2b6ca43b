//! Email intake over HTTP and through `oxidesk pipe`.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{TestApp, pipe, spawn_app, spawn_app_env};

fn mail(from: &str, subject: &str, message_id: &str, extra: &[&str], body: &str) -> Vec<u8> {
    let mut lines = vec![
        format!("From: Mail Sender <{from}>"),
        "To: support@example.com".to_string(),
        format!("Subject: {subject}"),
        "Date: Thu, 05 Mar 2026 10:00:00 +0000".to_string(),
        format!("Message-ID: <{message_id}>"),
        "MIME-Version: 1.0".to_string(),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    if !extra.iter().any(|h| h.starts_with("Content-Type")) {
        lines.push("Content-Type: text/plain; charset=UTF-8".into());
    }
    lines.push(String::new());
    lines.push(body.to_string());
    lines.join("\r\n").into_bytes()
}

async fn post_mail(app: &TestApp, raw: Vec<u8>) -> crate::helpers::Reply {
    app.post_raw("/api/tickets.email", raw).await
}

fn count(counts: &[(String, i64)], table: &str) -> i64 {
    counts
        .iter()
        .find(|(t, _)| t == table)
        .map(|(_, n)| *n)
        .unwrap()
}

#[tokio::test]
async fn email_opens_a_ticket_and_keeps_the_raw_message() {
    let app = spawn_app().await;
    let raw = mail(
        "new@example.com",
        "=?ISO-8859-1?Q?Caf=E9?= broken",
        "m1@x",
        &[],
        "The machine is broken.",
    );
    let n = post_mail(&app, raw).await.number();
    let t = app.get_ticket(&n).await;
    assert_eq!(t["source"], json!("Email"));
    assert_eq!(t["subject"], json!("Café broken"));
    assert_eq!(
        t["user"],
        json!({"name": "Mail Sender", "email": "new@example.com"})
    );
    assert_eq!(t["thread"][0]["message_id"], json!("m1@x"));
    assert_eq!(
        t["thread"][0]["flags"],
        json!({"auto_reply": false, "bounce": false})
    );
    assert!(
        t["thread"][0]["body"]
            .as_str()
            .unwrap()
            .contains("The machine is broken.")
    );
    assert_eq!(count(&app.counts().await, "raw_messages"), 1);
}

#[tokio::test]
async fn replies_thread_by_in_reply_to_references_and_subject_number() {
    let app = spawn_app().await;
    let n = post_mail(
        &app,
        mail("owner@example.com", "Problem", "orig@x", &[], "first"),
    )
    .await
    .number();
    let r = post_mail(
        &app,
        mail(
            "owner@example.com",
            "Re: Problem",
            "r1@x",
            &["In-Reply-To: <orig@x>"],
            "second",
        ),
    )
    .await;
    assert_eq!(r.number(), n);
    let r = post_mail(
        &app,
        mail(
            "owner@example.com",
            "Re: Problem",
            "r2@x",
            &["References: <nowhere@y> <r1@x>"],
            "third",
        ),
    )
    .await;
    assert_eq!(r.number(), n);
    let r = post_mail(
        &app,
        mail(
            "OWNER@example.com",
            &format!("Re: [#{n}] Problem"),
            "r3@x",
            &[],
            "fourth",
        ),
    )
    .await;
    assert_eq!(r.number(), n);
    let t = app.get_ticket(&n).await;
    assert_eq!(t["thread"].as_array().unwrap().len(), 4);
    assert_eq!(t["subject"], json!("Problem"));
    // A stranger quoting the number opens a ticket of their own.
    let r = post_mail(
        &app,
        mail(
            "stranger@example.com",
            &format!("Re: [#{n}] Problem"),
            "s1@x",
            &[],
            "hi",
        ),
    )
    .await;
    assert_ne!(r.number(), n);
}

#[tokio::test]
async fn a_message_id_is_processed_once() {
    let app = spawn_app().await;
    let raw = mail("dup@example.com", "Once", "once@x", &[], "body");
    let n = post_mail(&app, raw.clone()).await.number();
    let before = app.counts().await;
    assert_eq!(post_mail(&app, raw).await.number(), n);
    assert_eq!(app.counts().await, before);
}

#[tokio::test]
async fn the_same_message_id_twenty_times_at_once_makes_one_ticket() {
    let app = Arc::new(spawn_app().await);
    let raw = mail("race@example.com", "Race", "race@x", &[], "body");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = app.clone();
            let raw = raw.clone();
            tokio::spawn(async move { post_mail(&app, raw).await.number() })
        })
        .collect();
    let mut numbers = std::collections::HashSet::new();
    for t in tasks {
        numbers.insert(t.await.unwrap());
    }
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    let counts = app.counts().await;
    assert_eq!(
        (count(&counts, "tickets"), count(&counts, "thread_entries")),
        (1, 1)
    );
}

fn bounce(to: &str, message_id: &str, extra: &[&str], returned_id: &str) -> Vec<u8> {
    let mut lines = vec![
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)".to_string(),
        format!("To: {to}"),
        "Subject: Undelivered Mail Returned to Sender".to_string(),
        format!("Message-ID: <{message_id}>"),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines.extend(
        [
            "MIME-Version: 1.0",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"",
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "Could not deliver.",
            "--b",
            "Content-Type: message/delivery-status",
            "",
            "Action: failed",
            "--b",
            "Content-Type: message/rfc822",
            "",
            "From: someone@example.com",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    lines.push(format!("Message-ID: <{returned_id}>"));
    lines.extend(["", "original", "--b--"].iter().map(|s| s.to_string()));
    lines.join("\r\n").into_bytes()
}

#[tokio::test]
async fn bounces_never_open_tickets_but_join_the_one_they_return() {
    let app = spawn_app().await;
    let before = app.counts().await;
    let r = post_mail(&app, bounce("x@example.com", "b1@mx", &[], "unknown@x")).await;
    assert_eq!((r.status, r.body.as_str()), (201, ""));
    assert_eq!(
        count(&app.counts().await, "tickets"),
        count(&before, "tickets")
    );
    // Sent again: still nothing.
    let r = post_mail(&app, bounce("x@example.com", "b1@mx", &[], "unknown@x")).await;
    assert_eq!((r.status, r.body.as_str()), (201, ""));

    let n = post_mail(
        &app,
        mail("orig@example.com", "Hello", "hello@x", &[], "hi"),
    )
    .await
    .number();
    let r = post_mail(&app, bounce("orig@example.com", "b2@mx", &[], "hello@x")).await;
    assert_eq!(r.number(), n);
    let t = app.get_ticket(&n).await;
    assert_eq!(
        t["thread"][1]["flags"],
        json!({"auto_reply": true, "bounce": true})
    );
}

#[tokio::test]
async fn auto_replies_are_flagged() {
    let app = spawn_app().await;
    let n = post_mail(
        &app,
        mail(
            "ooo@example.com",
            "Out of office",
            "ooo@x",
            &["Auto-Submitted: auto-replied"],
            "away",
        ),
    )
    .await
    .number();
    assert_eq!(
        app.get_ticket(&n).await["thread"][0]["flags"]["auto_reply"],
        json!(true)
    );
}

#[tokio::test]
async fn refusals_write_nothing() {
    let app = spawn_app().await;
    let before = app.counts().await;
    let r = post_mail(&app, mail("test@example.com", "spam", "ban@x", &[], "spam")).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("denied"), "{}", r.body);
    assert_eq!(
        post_mail(&app, b"this is not an email message at all".to_vec())
            .await
            .status,
        400
    );
    assert_eq!(
        post_mail(&app, b"To: a@b\r\nSubject: x\r\n\r\nbody".to_vec())
            .await
            .status,
        400
    );
    assert_eq!(app.counts().await, before);
    // The ban list is per channel: the same address may use the JSON API.
    let mut t = crate::helpers::ticket("x");
    t["email"] = json!("test@example.com");
    app.post_json(&t).await.number();
}

#[tokio::test]
async fn priority_headers_count_only_when_enabled() {
    let off = spawn_app().await;
    let n = post_mail(
        &off,
        mail(
            "p1@example.com",
            "Urgent",
            "p1@x",
            &["X-Priority: 1 (Highest)"],
            "x",
        ),
    )
    .await
    .number();
    assert_eq!(off.get_ticket(&n).await["priority"]["id"], json!(2));
    let on = spawn_app_env("", &[("OXIDESK__EMAIL__USE_EMAIL_PRIORITY", "true")]).await;
    let n = post_mail(
        &on,
        mail(
            "p2@example.com",
            "Urgent",
            "p2@x",
            &["X-Priority: 1 (Highest)"],
            "x",
        ),
    )
    .await
    .number();
    assert_eq!(
        on.get_ticket(&n).await["priority"],
        json!({"id": 3, "name": "High"})
    );
    let n = post_mail(
        &on,
        mail("p3@example.com", "Meh", "p3@x", &["Importance: low"], "x"),
    )
    .await
    .number();
    assert_eq!(on.get_ticket(&n).await["priority"]["id"], json!(1));
}

#[tokio::test]
async fn pipe_exit_codes_follow_sysexits() {
    let app = spawn_app().await;
    let raw = mail("piped@example.com", "Piped", "piped@x", &[], "by the MTA");
    let (code, out) = pipe(&app, &raw, &[]);
    assert_eq!(code, 0, "{out}");
    let n = out.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(app.get_ticket(&n).await["subject"], json!("Piped"));
    // Duplicate: exit 0, nothing new; the HTTP endpoint finds the same ticket.
    assert_eq!(pipe(&app, &raw, &[]).0, 0);
    assert_eq!(post_mail(&app, raw).await.number(), n);
    assert_eq!(count(&app.counts().await, "thread_entries"), 1);
    // A piped reply joins the ticket.
    let reply = mail(
        "piped@example.com",
        "Re: Piped",
        "piped-r@x",
        &["In-Reply-To: <piped@x>"],
        "reply",
    );
    assert_eq!(pipe(&app, &reply, &[]).0, 0);
    assert_eq!(
        app.get_ticket(&n).await["thread"].as_array().unwrap().len(),
        2
    );

    assert_eq!(
        pipe(
            &app,
            &mail("test@example.com", "spam", "sp@x", &[], "x"),
            &[]
        )
        .0,
        77
    );
    assert_eq!(pipe(&app, b"definitely not an email", &[]).0, 66);
    assert_eq!(pipe(&app, b"", &[]).0, 66);
    assert_eq!(
        pipe(&app, b"To: a@example.com\nSubject: no sender\n\nx", &[]).0,
        65
    );
    let other = mail("x@example.com", "x", "x@x", &[], "x");
    assert_eq!(
        pipe(&app, &other, &[("OXIDESK__EMAIL__ENABLED", "false")]).0,
        69
    );
    // The database cannot be opened: a fault of ours, the MTA must retry.
    assert_eq!(
        pipe(
            &app,
            &other,
            &[("OXIDESK__DATABASE", "sqlite:///dev/null/no/such.db")]
        )
        .0,
        75
    );
    // None of the refused ones wrote anything.
    assert_eq!(count(&app.counts().await, "tickets"), 1);
}

/// A winmail.dat (MS-OXTNEF) holding `files`.
fn winmail(files: &[(&str, &[u8])]) -> Vec<u8> {
    fn attr(out: &mut Vec<u8>, level: u8, id: u32, value: &[u8]) {
        out.push(level);
        out.extend(id.to_le_bytes());
        out.extend((value.len() as u32).to_le_bytes());
        out.extend(value);
        let sum = value
            .iter()
            .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        out.extend(sum.to_le_bytes());
    }
    let mut out = 0x223E_9F78u32.to_le_bytes().to_vec();
    out.extend([0x01, 0x00]);
    attr(&mut out, 1, 0x0008_9006, &[0, 0, 1, 0]);
    for (name, data) in files {
        attr(&mut out, 2, 0x0006_9002, &[0; 14]);
        attr(&mut out, 2, 0x0001_8010, format!("{name}\0").as_bytes());
        attr(&mut out, 2, 0x0006_800F, data);
    }
    out
}

#[tokio::test]
async fn winmail_dat_is_unpacked_into_its_files() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let tnef = base64::engine::general_purpose::STANDARD.encode(winmail(&[
        ("budget.xls", b"\xd0\xcf\x11\xe0data"),
        ("notes.txt", b"hello"),
    ]));
    let body = format!(
        "--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\n\
         Content-Disposition: attachment; filename=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{tnef}\r\n--b--"
    );
    let raw = mail(
        "outlook@example.com",
        "Budget",
        "tnef@x",
        &["Content-Type: multipart/mixed; boundary=\"b\""],
        &body,
    );
    let n = post_mail(&app, raw).await.number();
    let t = app.get_ticket(&n).await;
    let files: Vec<_> = t["thread"][0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].clone(), a["size"].clone()))
        .collect();
    assert_eq!(
        files,
        vec![
            (json!("budget.xls"), json!(8)),
            (json!("notes.txt"), json!(5))
        ]
    );
}

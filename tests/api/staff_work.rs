//! The staff API on one ticket (STAFF-API.md, Tickets; Mail that the
//! staff side sends and receives): over real HTTP, with a real SMTP sink
//! and the outbox sender driven by `run_once()`, on both backends.

use mail_parser::{MessageParser, MimeHeaders};
use oxidesk::mail_out::IntakeSignal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestApp, TestClock, outbox_sender, spawn_app, spawn_app_full, ticket, with_staff_alerts,
};
use crate::smtp_sink::{Received, SmtpSink};

impl TestApp {
    /// A staff API call with a Bearer token.
    async fn staff(&self, method: Method, path: &str, token: &str, body: Option<&Value>) -> Reply {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.send(method, path, None, body, &headers).await
    }

    async fn staff_json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let r = self.staff(method, path, token, body).await;
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    async fn full_ticket(&self, n: &str, token: &str) -> Value {
        let (status, v) = self
            .staff_json(Method::GET, &format!("/api/v1/tickets/{n}"), token, None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

fn mail(from: &str, subject: &str, message_id: &str, extra: &[&str], body: &str) -> Vec<u8> {
    let mut lines = vec![
        format!("From: {from}"),
        "To: support@example.com".to_string(),
        format!("Subject: {subject}"),
        "Date: Tue, 01 Dec 2026 10:00:00 +0000".to_string(),
        format!("Message-ID: <{message_id}>"),
        "MIME-Version: 1.0".to_string(),
        "Content-Type: text/plain; charset=UTF-8".to_string(),
    ];
    lines.extend(extra.iter().map(|s| s.to_string()));
    lines.push(String::new());
    lines.push(body.to_string());
    lines.join("\r\n").into_bytes()
}

fn types(t: &Value) -> Vec<String> {
    t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_full_ticket_has_events_and_an_etag_and_a_patch_records_each_change() {
    let app = spawn_app().await;
    let (_, admin) = app.add_agent("admin@example.com", true, &[]).await;
    let (other, _) = app.add_agent("sales@example.com", false, &[2]).await;
    let n = app.post_json(&ticket("full")).await.number();

    let r = app
        .staff(Method::GET, &format!("/api/v1/tickets/{n}"), &admin, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let etag = r.headers["etag"].to_str().unwrap().to_string();
    let t: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(t["status"], "open");
    assert_eq!(t["assignee"], Value::Null);
    assert_eq!(t["department"]["id"], 1);
    assert_eq!(types(&t), ["created"]);
    assert_eq!(t["thread"][0]["kind"], "message");

    let patch = json!({"status": "resolved", "assignee_id": other.0, "priority_id": 3,
                       "department_id": 2, "topic_id": 2});
    let r = app
        .staff(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            &admin,
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let t: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(t["status"], "resolved");
    assert_eq!(t["assignee"]["id"], other.0);
    assert_eq!(t["priority"], json!({"id": 3, "name": "High"}));
    assert_eq!(t["department"], json!({"id": 2, "name": "Sales"}));
    assert_eq!(t["topic"]["id"], 2);
    let mut changed = types(&t);
    changed.sort();
    assert_eq!(
        changed,
        [
            "assigned",
            "created",
            "priority_changed",
            "status_changed",
            "topic_changed",
            "transferred"
        ]
    );
    let status = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "status_changed")
        .unwrap();
    assert_eq!(status["detail"], json!({"from": "open", "to": "resolved"}));
    assert_eq!(status["actor"]["kind"], "agent");

    // The same values again change nothing and record nothing.
    let r = app
        .staff(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            &admin,
            Some(&patch),
        )
        .await;
    assert_eq!(r.status, 200);
    let again: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(again["events"].as_array().unwrap().len(), 6);

    // Unknown ids are 422 naming the field; nothing changes.
    for (body, field) in [
        (json!({"department_id": 99}), "department_id"),
        (json!({"assignee_id": 999}), "assignee_id"),
        (json!({"priority_id": 42}), "priority_id"),
        (json!({"topic_id": 77}), "topic_id"),
        (json!({"status": "archived"}), "status"),
    ] {
        let (status, v) = app
            .staff_json(
                Method::PATCH,
                &format!("/api/v1/tickets/{n}"),
                &admin,
                Some(&body),
            )
            .await;
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (422, Some(field)),
            "{v}"
        );
    }
    let (status, v) = app
        .staff_json(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            &admin,
            Some(&json!({"colour": 1})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("colour")),
        "{v}"
    );
    let after = app.full_ticket(&n, &admin).await;
    assert_eq!(after["events"], again["events"]);
    assert_eq!(after["status"], "resolved");
    // The intake read API still reads it.
    assert_eq!(app.get_ticket(&n).await["status"], "resolved");
}

#[tokio::test]
async fn two_agents_patching_with_one_etag_exactly_one_wins_the_other_gets_412() {
    let app = spawn_app().await;
    let (_, a) = app.add_agent("a@example.com", true, &[]).await;
    let (_, b) = app.add_agent("b@example.com", true, &[]).await;
    let n = app.post_json(&ticket("race")).await.number();
    for round in 0..5 {
        let r = app
            .staff(Method::GET, &format!("/api/v1/tickets/{n}"), &a, None)
            .await;
        let etag = r.headers["etag"].to_str().unwrap().to_string();
        let path = format!("/api/v1/tickets/{n}");
        let patch = |token: &str, priority: i64| {
            let body = json!({"priority_id": priority}).to_string().into_bytes();
            let auth = format!("Bearer {token}");
            let etag = etag.clone();
            let app = &app;
            let path = path.clone();
            async move {
                app.send(
                    Method::PATCH,
                    &path,
                    None,
                    body,
                    &[("Authorization", &auth), ("If-Match", &etag)],
                )
                .await
            }
        };
        // Different values each round, so that neither write is a no-op.
        let (ra, rb) = tokio::join!(patch(&a, 1 + (round % 2)), patch(&b, 3 + (round % 2)));
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 412],
            "round {round}: {} / {}",
            ra.body,
            rb.body
        );
        let loser = if ra.status == 412 { &ra } else { &rb };
        let v: Value = serde_json::from_str(&loser.body).unwrap();
        assert_eq!(v["error"]["status"], 412);
    }
    // A stale ETag alone is 412 too, and a missing one is no check.
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            None,
            json!({"status": "closed"}).to_string().into_bytes(),
            &[
                ("Authorization", &format!("Bearer {a}")),
                ("If-Match", "\"1\""),
            ],
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.body);
    let (status, _) = app
        .staff_json(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            &a,
            Some(&json!({"status": "closed"})),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_agent_outside_the_department_who_is_not_the_assignee_gets_404_everywhere() {
    let app = spawn_app().await;
    let (_, admin) = app.add_agent("admin@example.com", true, &[]).await;
    let (support_id, support) = app.add_agent("support@example.com", false, &[1]).await;
    let (sales_id, sales) = app.add_agent("sales@example.com", false, &[2]).await;
    // Department 1 (Support); with a file.
    let n = app
        .post_json(
            &json!({"name": "U", "email": "u@example.com", "subject": "s", "message": "m",
                           "attachments": [{"a.txt": "data:text/plain,hello"}]}),
        )
        .await
        .number();
    let t = app.full_ticket(&n, &admin).await;
    let file = t["thread"][0]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let paths = |n: &str| {
        [
            (Method::GET, format!("/api/v1/tickets/{n}"), None),
            (
                Method::PATCH,
                format!("/api/v1/tickets/{n}"),
                Some(json!({"status": "closed"})),
            ),
            (
                Method::POST,
                format!("/api/v1/tickets/{n}/replies"),
                Some(json!({"body": "x"})),
            ),
            (
                Method::POST,
                format!("/api/v1/tickets/{n}/notes"),
                Some(json!({"body": "x"})),
            ),
            (Method::GET, file.clone(), None),
        ]
    };
    for (method, path, body) in paths(&n) {
        let r = app
            .staff(method.clone(), &path, &sales, body.as_ref())
            .await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["error"]["message"], "Not found");
        // The same as a ticket that does not exist.
        let missing = path.replace(&n, "999999");
        if missing != path {
            let r = app
                .staff(method.clone(), &missing, &sales, body.as_ref())
                .await;
            assert_eq!(r.status, 404);
        }
        // No token or a bad one: 401.
        let r = app.send(method.clone(), &path, None, vec![], &[]).await;
        assert_eq!(r.status, 401, "{path}");
        let r = app
            .staff(method.clone(), &path, "oxd_not_a_token", body.as_ref())
            .await;
        assert_eq!(r.status, 401, "{path}");
    }
    // Nothing was written by the refused calls.
    assert_eq!(
        app.full_ticket(&n, &admin).await["thread"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The department's agent sees it; so does the assignee from elsewhere.
    assert_eq!(app.full_ticket(&n, &support).await["number"], n.as_str());
    let (status, _) = app.staff_json(Method::GET, &file, &support, None).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .staff_json(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            &admin,
            Some(&json!({"assignee_id": sales_id.0})),
        )
        .await;
    assert_eq!(status, 200);
    for (method, path, body) in paths(&n) {
        let r = app
            .staff(method.clone(), &path, &sales, body.as_ref())
            .await;
        assert!(
            r.status == 200 || r.status == 201,
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
    }
    let _ = support_id;
}

#[tokio::test]
async fn a_reply_reaches_the_customer_and_their_answer_threads_back_strips_the_quote_and_reopens() {
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let app = spawn_app_full(
        "",
        &[
            ("OXIDESK__MAIL__ENABLED", "false"),
            ("OXIDESK__MAIL__SMTP_PORT", port.as_str()),
            ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com"),
        ],
        &|t| {
            t.replacen(
                "name = \"Support\"",
                "name = \"Support\"\nemail = \"help@example.com\"",
                1,
            )
        },
    )
    .await;
    // A minute ahead: mail queued later in the test (at the real time,
    // up to a second past a clock truncated now) is due at once.
    let clock = TestClock::at(jiff::Timestamp::now().as_second() + 60);
    let sender = outbox_sender(&app, &clock);
    let pass = || async { sender.run_once(&IntakeSignal::default()).await.unwrap() };
    let (_, token) = app.add_agent("ann@example.com", false, &[1]).await;
    let n = app
        .post_raw(
            "/api/tickets.email",
            mail(
                "Cus Tomer <cus@example.com>",
                "Printer on fire",
                "cust1@x",
                &[],
                "It burns.",
            ),
        )
        .await
        .number();
    assert_eq!(pass().await, 1, "the autoresponse");
    let before = sink.wait_for(1, 10).await.len();

    let reply = json!({
        "body": "<p>Unplug it, <b>then</b> call us.</p><script>alert(1)</script>",
        "format": "html",
        "status": "resolved",
        "attachments": [{"manual é.pdf": "data:application/pdf;base64,JVBERi0xLjQK"}],
    });
    let r = app
        .staff(
            Method::POST,
            &format!("/api/v1/tickets/{n}/replies"),
            &token,
            Some(&reply),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let reply_etag = r.headers["etag"].to_str().unwrap().to_string();
    let entry: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(entry["kind"], "response");
    assert!(
        !entry["body"].as_str().unwrap().contains("script"),
        "{entry}"
    );
    assert_eq!(entry["attachments"][0]["name"], "manual é.pdf");
    // The answer is built from what was written, not read back: it is
    // what a read gives, ids and ETag included.
    let r = app
        .staff(Method::GET, &format!("/api/v1/tickets/{n}"), &token, None)
        .await;
    assert_eq!(r.headers["etag"].to_str().unwrap(), reply_etag);
    let t: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(t["thread"][1], entry);
    let file = app
        .staff(
            Method::GET,
            entry["attachments"][0]["url"].as_str().unwrap(),
            &token,
            None,
        )
        .await;
    assert_eq!((file.status, file.body.trim_end()), (200, "%PDF-1.4"));
    assert_eq!(t["status"], "resolved");
    let agent_name = t["thread"][1]["from"]["name"].as_str().unwrap().to_string();

    assert_eq!(pass().await, 1);
    let mails = sink.wait_for(before + 1, 10).await;
    assert_eq!(mails.len(), before + 1);
    let m: &Received = mails.last().unwrap();
    assert_eq!(m.rcpt, ["cus@example.com"]);
    let head = m.data.split("\r\n\r\n").next().unwrap();
    assert!(head.is_ascii(), "{head}");
    assert_eq!(m.header("MIME-Version").as_deref(), Some("1.0"));
    assert_eq!(
        m.header("Auto-Submitted"),
        None,
        "a person wrote it: {head}"
    );
    assert_eq!(m.header("Precedence"), None, "{head}");
    assert_eq!(m.header("In-Reply-To").as_deref(), Some("<cust1@x>"));
    assert_eq!(m.header("References").as_deref(), Some("<cust1@x>"));
    let p = MessageParser::default().parse(m.data.as_bytes()).unwrap();
    let from = p.from().unwrap().first().unwrap();
    assert_eq!(
        from.address(),
        Some("help@example.com"),
        "the department's address"
    );
    assert_eq!(from.name(), Some(agent_name.as_str()));
    assert_eq!(
        p.subject(),
        Some(format!("Re: [#{n}] Printer on fire").as_str())
    );
    let text = p.body_text(0).unwrap();
    assert!(text.contains("-- reply above this line --"), "{text}");
    assert!(text.contains("Unplug it, then call us."), "{text}");
    let html = p.body_html(0).unwrap();
    assert!(
        html.contains("<b>then</b>") && !html.contains("<script"),
        "{html}"
    );
    let text_part = p.text_part(0).unwrap();
    assert!(
        text_part
            .content_type()
            .unwrap()
            .attribute("charset")
            .unwrap()
            .eq_ignore_ascii_case("utf-8")
    );
    let file = p.attachment(0).expect("the attachment");
    assert_eq!(file.attachment_name(), Some("manual é.pdf"));
    assert_eq!(file.contents(), b"%PDF-1.4\n");
    let ours = p.message_id().unwrap().to_string();
    let t = app.full_ticket(&n, &token).await;
    assert!(types(&t).contains(&"mail_sent".to_string()), "{t}");

    // An out-of-office answer to it joins the ticket but neither reopens
    // it nor alerts anyone.
    let ooo = mail(
        "Cus Tomer <cus@example.com>",
        &format!("Auto: Re: [#{n}] Printer on fire"),
        "ooo1@x",
        &[
            &format!("In-Reply-To: <{ours}>"),
            "Auto-Submitted: auto-replied",
        ],
        "I am away.",
    );
    assert_eq!(app.post_raw("/api/tickets.email", ooo).await.number(), n);
    let t = app.full_ticket(&n, &token).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert_eq!(t["notifications"].as_array().unwrap().len(), 2, "{t}");

    // The customer's answer threads on our Message-ID, loses the quote
    // and reopens the ticket.
    let answer = mail(
        "Cus Tomer <cus@example.com>",
        &format!("Re: [#{n}] Printer on fire"),
        "cust2@x",
        &[
            &format!("In-Reply-To: <{ours}>"),
            &format!("References: <cust1@x> <{ours}>"),
        ],
        "It works again, thanks!\r\n\r\nOn Tue, 1 Dec 2026 at 10:05, Support <help@example.com> wrote:\r\n> -- reply above this line --\r\n>\r\n> Unplug it, then call us.\r\n",
    );
    assert_eq!(app.post_raw("/api/tickets.email", answer).await.number(), n);
    let t = app.full_ticket(&n, &token).await;
    assert_eq!(t["status"], "open", "{t}");
    let last = t["thread"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["body"], "It works again, thanks!");
    assert_eq!(last["kind"], "message");
    let reopened = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["type"] == "status_changed")
        .unwrap();
    assert_eq!(
        reopened["detail"],
        json!({"from": "resolved", "to": "open"})
    );
    assert_eq!(reopened["actor"]["kind"], "user");
}

#[tokio::test]
async fn an_agents_mail_answer_to_an_alert_is_their_response_mailed_to_the_customer() {
    let sink = SmtpSink::start().await;
    let port = sink.port.to_string();
    let app = spawn_app_full(
        "",
        &[
            ("OXIDESK__MAIL__ENABLED", "false"),
            ("OXIDESK__MAIL__SMTP_PORT", port.as_str()),
            ("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com"),
        ],
        &with_staff_alerts,
    )
    .await;
    // A minute ahead: mail queued later in the test (at the real time,
    // up to a second past a clock truncated now) is due at once.
    let clock = TestClock::at(jiff::Timestamp::now().as_second() + 60);
    let sender = outbox_sender(&app, &clock);
    let (agent, token) = app.add_agent("staff@example.com", false, &[1]).await;
    let n = app
        .post_json(
            &json!({"name": "Cus", "email": "cus@example.com", "subject": "Help",
                           "message": "help", "autorespond": false}),
        )
        .await
        .number();
    sender.run_once(&IntakeSignal::default()).await.unwrap();
    let alert = sink
        .wait_for(1, 10)
        .await
        .into_iter()
        .find(|m| m.rcpt == ["staff@example.com"])
        .unwrap();
    let alert_id = alert.header("Message-ID").unwrap();

    let answer = mail(
        "Staff Person <staff@example.com>",
        &format!("Re: Reply [#{n}] Help"),
        "staff1@x",
        &[&format!("In-Reply-To: {alert_id}")],
        "Try turning it off and on.\r\n\r\nOn Tue, 1 Dec 2026, Support wrote:\r\n> New ticket\r\n",
    );
    assert_eq!(app.post_raw("/api/tickets.email", answer).await.number(), n);
    let t = app.full_ticket(&n, &token).await;
    let last = t["thread"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "response", "{t}");
    assert_eq!(last["agent_id"], agent.0);
    assert_eq!(last["body"], "Try turning it off and on.");
    let mails: Vec<&Value> = t["notifications"].as_array().unwrap().iter().collect();
    let response = mails
        .iter()
        .find(|m| m["kind"] == "response")
        .expect("a response mail");
    assert_eq!(response["recipients"], json!(["cus@example.com"]));
    assert_eq!(
        mails.iter().filter(|m| m["kind"] == "alert").count(),
        1,
        "no alert for it: {t}"
    );

    sender.run_once(&IntakeSignal::default()).await.unwrap();
    sink.wait_until("the customer's mail", 10, |s| {
        s.received().iter().any(|m| m.rcpt == ["cus@example.com"])
    })
    .await;
    let to_customer = sink
        .received()
        .into_iter()
        .find(|m| m.rcpt == ["cus@example.com"]);
    let m = to_customer.expect("the customer got the agent's answer");
    assert!(m.body().contains("Try turning it off and on."));
    assert!(!m.body().contains("New ticket"), "the quote was cut");
}

#[tokio::test]
async fn notes_are_never_mailed_nor_shown_on_the_intake_read_api_and_files_download_safely() {
    let app = spawn_app().await;
    let (_, token) = app.add_agent("ann@example.com", true, &[]).await;
    let n = app.post_json(&ticket("notes")).await.number();
    let (status, note) = app
        .staff_json(
            Method::POST,
            &format!("/api/v1/tickets/{n}/notes"),
            &token,
            Some(&json!({"body": "called the customer"})),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["kind"], "note");
    let (status, v) = app
        .staff_json(
            Method::POST,
            &format!("/api/v1/tickets/{n}/notes"),
            &token,
            Some(&json!({"body": "x", "attachments": []})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["field"].as_str()),
        (400, Some("attachments"))
    );
    let (status, v) = app
        .staff_json(
            Method::POST,
            &format!("/api/v1/tickets/{n}/replies"),
            &token,
            Some(&json!({"body": "  "})),
        )
        .await;
    assert_eq!((status, v["error"]["field"].as_str()), (422, Some("body")));
    // A control character (PostgreSQL refuses NUL) in a body or a file
    // name is refused on every backend, as intake refuses it.
    for (body, field) in [
        (json!({"body": "nul\u{0}here"}), "body"),
        (
            json!({"body": "x", "attachments": [{"re\u{0}port.txt": "data:text/plain,hi"}]}),
            "attachments",
        ),
    ] {
        let (status, v) = app
            .staff_json(
                Method::POST,
                &format!("/api/v1/tickets/{n}/replies"),
                &token,
                Some(&body),
            )
            .await;
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (422, Some(field)),
            "{v}"
        );
    }
    let t = app.full_ticket(&n, &token).await;
    assert!(types(&t).contains(&"noted".to_string()));
    assert!(
        t["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["kind"] != "response")
    );
    let public = app.get_ticket(&n).await;
    assert_eq!(public["thread"].as_array().unwrap().len(), 1, "{public}");

    // Files: an image inline, anything else as a download, never sniffed.
    let png = "data:image/png;base64,iVBORw0KGgo=";
    let html = "data:text/html,<script>alert(1)</script>";
    let (status, reply) = app
        .staff_json(
            Method::POST,
            &format!("/api/v1/tickets/{n}/replies"),
            &token,
            Some(&json!({"body": "see files",
                                 "attachments": [{"shot.png": png}, {"page é.html": html}]})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let url = |i: usize| reply["attachments"][i]["url"].as_str().unwrap().to_string();
    let r = app.staff(Method::GET, &url(0), &token, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "image/png");
    assert!(
        r.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let r = app.staff(Method::GET, &url(1), &token, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"page _.html\"; filename*=UTF-8''page%20%C3%A9.html"
    );
    assert_eq!(r.body, "<script>alert(1)</script>");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let r = app
        .staff(Method::GET, "/api/v1/attachments/987654", &token, None)
        .await;
    assert_eq!(r.status, 404);
}

fn oxidesk(app: &TestApp, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oxidesk"))
        .arg("--config")
        .arg(&app.config_path)
        .args(args)
        .env_remove("OXIDESK_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_replies_notes_assigns_closes_and_reopens_as_an_agent() {
    let app = spawn_app().await;
    let (ann, token) = app.add_agent("ann@example.com", false, &[3]).await;
    app.add_agent("bob@example.com", false, &[2]).await;
    let n = app.post_json(&ticket("cli")).await.number();
    let n = n.as_str();

    let (ok, out, err) = oxidesk(
        &app,
        &[
            "ticket",
            "reply",
            n,
            "--as",
            "ann@example.com",
            "--status",
            "resolved",
        ],
        "From the shell.\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("reply"), "{out}");
    let (ok, _, err) = oxidesk(
        &app,
        &[
            "ticket",
            "note",
            n,
            "--as",
            "ann@example.com",
            "--body",
            "internal",
        ],
        "",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = oxidesk(
        &app,
        &[
            "ticket",
            "assign",
            n,
            "--to",
            "ann@example.com",
            "--as",
            "bob@example.com",
        ],
        "",
    );
    assert!(ok, "{err}");
    // Ann (department 3 only) sees it now that it is hers.
    let t = app.full_ticket(n, &token).await;
    assert_eq!(t["assignee"]["id"], ann.0);
    assert_eq!(t["status"], "resolved");
    let kinds: Vec<&str> = t["thread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "response", "note"]);
    assert_eq!(t["thread"][1]["body"], "From the shell.\n");
    assert!(
        t["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "response")
    );
    let (ok, _, err) = oxidesk(&app, &["ticket", "close", n, "--as", "ann@example.com"], "");
    assert!(ok, "{err}");
    assert_eq!(app.full_ticket(n, &token).await["status"], "closed");
    let (ok, _, err) = oxidesk(
        &app,
        &["ticket", "reopen", n, "--as", "ann@example.com"],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(app.full_ticket(n, &token).await["status"], "open");

    // Refusals change nothing and say why.
    let before = app.full_ticket(n, &token).await;
    let (ok, _, err) = oxidesk(
        &app,
        &["ticket", "close", n, "--as", "nobody@example.com"],
        "",
    );
    assert!(
        !ok && err.contains("no active agent nobody@example.com"),
        "{err}"
    );
    let (ok, _, err) = oxidesk(
        &app,
        &[
            "ticket",
            "note",
            "999999",
            "--as",
            "ann@example.com",
            "--body",
            "x",
        ],
        "",
    );
    assert!(!ok && err.contains("no such ticket"), "{err}");
    let (ok, _, err) = oxidesk(
        &app,
        &[
            "ticket",
            "reply",
            n,
            "--as",
            "ann@example.com",
            "--status",
            "done",
        ],
        "x",
    );
    assert!(!ok && err.contains("status"), "{err}");
    assert_eq!(app.full_ticket(n, &token).await["events"], before["events"]);
}

#[tokio::test]
async fn changes_with_and_without_ids_alternate_on_every_pooled_connection() {
    // PostgreSQL keeps a prepared statement's parameter types from its
    // first use: a NULL id bound first must not break a later id (and
    // the reverse), whichever pooled connection a request gets.
    let app = spawn_app().await;
    let (agent, token) = app.add_agent("pool@example.com", true, &[]).await;
    let n = app.post_json(&ticket("pool")).await.number();
    let path = format!("/api/v1/tickets/{n}");
    for round in 0..12 {
        for body in [
            json!({"status": "resolved", "assignee_id": null, "topic_id": 2}),
            json!({"status": "open", "assignee_id": agent.0, "department_id": 2}),
            json!({"assignee_id": null, "department_id": 1, "topic_id": 1}),
        ] {
            let (status, v) = app
                .staff_json(Method::PATCH, &path, &token, Some(&body))
                .await;
            assert_eq!(status, 200, "round {round}, {body}: {v}");
        }
    }
    let t = app.full_ticket(&n, &token).await;
    assert_eq!(t["assignee"], Value::Null);
    assert_eq!(t["department"]["id"], 1);
    let assigned = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "assigned")
        .count();
    assert_eq!(assigned, 24, "{t}");
}

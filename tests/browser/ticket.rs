//! The ticket page: reply with an attachment (mailed by the server's own
//! outbox sender to the SMTP sink), an internal note (mailed to nobody),
//! assign and resolve through `form#controls`, "Reply and resolve".

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

use crate::harness::{DEADLINE, Desk, Page, ticket, wait_until};

fn notifications(t: &Value) -> usize {
    t["notifications"].as_array().map_or(0, |a| a.len())
}

/// Opens ticket `number` from the open queue by its link.
async fn open_from_queue(page: &Page, number: &str) {
    page.goto("/scp/tickets?queue=open").await;
    page.find(&format!(
        "tr.ticket-row[data-number=\"{number}\"] a.ticket-link"
    ))
    .await
    .click()
    .await
    .unwrap();
    page.wait_for("section#ticket-header").await;
    page.wait_loaded().await;
    assert_eq!(page.path().await, format!("/scp/tickets/{number}"));
}

#[tokio::test]
async fn a_reply_with_an_attachment_reaches_the_customer_and_a_note_mails_nobody() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    let (token, _) = desk.staff_session("ann@example.com").await;
    let n = desk
        .create_ticket(&ticket("cus", "Printer on fire", "It burns."))
        .await;
    let page = browser.session(&desk, 1280, 900).await;
    page.sign_in("ann@example.com").await;
    open_from_queue(&page, &n).await;
    assert_eq!(
        page.text("section#ticket-header [data-field=number]")
            .await
            .trim_start_matches('#'),
        n
    );
    let subject = page
        .text("section#ticket-header [data-field=subject]")
        .await;
    assert_eq!(subject, "Printer on fire");
    assert_eq!(
        page.count("section#thread article.entry.entry-message")
            .await,
        1
    );
    assert!(
        page.try_find("ol#events li.event[data-type=created]")
            .await
            .is_some()
    );

    // Whatever the intake mailed (an autoresponse) is out of the way first.
    let before = notifications(&desk.staff_ticket(&token, &n).await);
    let mails_before = desk.wait_mail_settled(&token, &[&n]).await;

    let file = desk.dir.path().join("steps.txt");
    std::fs::write(&file, "1. Unplug it.\n2. Call us.\n").unwrap();
    page.type_into("form#reply textarea[name=body]", "Unplug it, then call us.")
        .await;
    page.find("form#reply input[type=file][name=attachments]")
        .await
        .send_keys(file.display().to_string())
        .await
        .unwrap();
    page.click_and_wait("form#reply button[name=action][value=reply]", ".flash.ok")
        .await;
    let response = page
        .wait_for("section#thread article.entry.entry-response")
        .await;
    let body = response.text().await.unwrap();
    assert!(body.contains("Unplug it, then call us."), "{body}");
    let link = page
        .find("section#thread article.entry-response a.attachment")
        .await;
    assert_eq!(link.text().await.unwrap().trim(), "steps.txt");
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.starts_with("/scp/attachments/"), "{href}");
    assert!(
        page.try_find("ol#events li.event[data-type=replied]")
            .await
            .is_some()
    );

    // The server's outbox sender mails it to the customer, with the file.
    desk.sink
        .wait_until("the reply's mail", 20, |s| {
            s.received().len() > mails_before
        })
        .await;
    let mails = desk.sink.received();
    let reply = mails[mails_before..]
        .iter()
        .find(|m| m.rcpt == ["cus@example.com"])
        .expect("a mail to the customer");
    let parsed = MessageParser::default()
        .parse(reply.data.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some(format!("Re: [#{n}] Printer on fire").as_str())
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("Unplug it, then call us."),
        "{}",
        reply.data
    );
    let attachment = parsed.attachment(0).expect("the attachment");
    assert_eq!(attachment.attachment_name(), Some("steps.txt"));
    assert_eq!(attachment.contents(), b"1. Unplug it.\n2. Call us.\n");
    let after_reply = desk.staff_ticket(&token, &n).await;
    assert_eq!(notifications(&after_reply), before + 1, "{after_reply}");

    // A note: shown as a note, recorded, and mailed to nobody.
    page.type_into("form#note textarea[name=body]", "Customer sounded calm.")
        .await;
    page.click_and_wait("form#note button[type=submit]", ".flash.ok")
        .await;
    let note = page
        .wait_for("section#thread article.entry.entry-note")
        .await;
    assert!(
        note.text()
            .await
            .unwrap()
            .contains("Customer sounded calm.")
    );
    assert!(
        page.try_find("ol#events li.event[data-type=noted]")
            .await
            .is_some()
    );
    let after_note = desk.staff_ticket(&token, &n).await;
    let thread = after_note["thread"].as_array().unwrap();
    assert_eq!(thread.last().unwrap()["kind"], "note", "{after_note}");
    assert_eq!(
        notifications(&after_note),
        notifications(&after_reply),
        "a note queues no mail: {after_note}"
    );
    assert_eq!(desk.sink.received().len(), mails_before + 1);
    page.quit().await;
}

#[tokio::test]
async fn controls_assign_and_resolve_and_reply_and_resolve_resolves() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    let bob = desk
        .add_agent("bob@example.com", "Bob Builder", false)
        .await;
    let (token, _) = desk.staff_session("ann@example.com").await;
    let first = desk
        .create_ticket(&ticket("one", "Laptop battery", "Lasts ten minutes."))
        .await;
    let second = desk
        .create_ticket(&ticket("two", "VPN drops", "Every hour."))
        .await;
    let page = browser.session(&desk, 1280, 900).await;
    page.sign_in("ann@example.com").await;

    // Assign to Bob.
    open_from_queue(&page, &first).await;
    page.select("form#controls select[name=assignee_id]", &bob.to_string())
        .await;
    page.click_and_wait("form#controls button[type=submit]", ".flash.ok")
        .await;
    let assignee = page
        .text("section#ticket-header [data-field=assignee]")
        .await;
    assert!(assignee.contains("Bob Builder"), "{assignee}");
    page.wait_for("ol#events li.event[data-type=assigned]")
        .await;
    let t = desk.staff_ticket(&token, &first).await;
    assert_eq!(t["assignee"]["id"], bob, "{t}");
    assert_eq!(t["status"], "open");

    // Resolve it.
    page.select("form#controls select[name=status]", "resolved")
        .await;
    page.click_and_wait("form#controls button[type=submit]", ".flash.ok")
        .await;
    let status = page.text("section#ticket-header [data-field=status]").await;
    assert!(status.to_lowercase().contains("resolved"), "{status}");
    page.wait_for("ol#events li.event[data-type=status_changed]")
        .await;
    let t = desk.staff_ticket(&token, &first).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert_eq!(t["assignee"]["id"], bob, "the assignee stays: {t}");

    // "Reply and resolve" on the other.
    let mails_before = desk.sink.received().len();
    open_from_queue(&page, &second).await;
    page.type_into("form#reply textarea[name=body]", "Fixed the tunnel.")
        .await;
    page.click_and_wait(
        "form#reply button[name=action][value=reply_resolve]",
        ".flash.ok",
    )
    .await;
    page.wait_for("section#thread article.entry.entry-response")
        .await;
    let status = page.text("section#ticket-header [data-field=status]").await;
    assert!(status.to_lowercase().contains("resolved"), "{status}");
    let t = desk.staff_ticket(&token, &second).await;
    assert_eq!(t["status"], "resolved", "{t}");
    assert_eq!(
        t["thread"].as_array().unwrap().last().unwrap()["kind"],
        "response"
    );
    desk.sink
        .wait_until("the reply to two@example.com", 20, |s| {
            s.received()[mails_before..]
                .iter()
                .any(|m| m.rcpt == ["two@example.com"] && m.body().contains("Fixed the tunnel."))
        })
        .await;

    // Both left the open queue and are in the resolved one.
    page.goto("/scp/tickets?queue=open").await;
    assert_eq!(page.count("tr.ticket-row").await, 0);
    page.goto("/scp/tickets?queue=resolved").await;
    for n in [&first, &second] {
        let row = format!("tr.ticket-row[data-number=\"{n}\"]");
        wait_until(&row, DEADLINE, || page.try_find(&row)).await;
    }
    page.quit().await;
}

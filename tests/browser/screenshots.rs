//! A PNG of each main page at 375 px (a phone) and 1440 px wide under
//! `target/screenshots/`, for people to look at; the test itself checks
//! that nothing sticks out of the screen sideways at either width.

use serde_json::json;

use crate::harness::{Desk, Page, screenshot_dir, ticket};

const WIDTHS: [u32; 2] = [375, 1440];

/// The outermost elements that stick out to the right of the viewport
/// (cut off or scrolling the page sideways), except inside a box that
/// scrolls or clips on purpose (a table wrapper, an ellipsis cell).
const STICKING_OUT: &str = "\
    const w = document.documentElement.clientWidth; \
    const out = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > w + 1; }; \
    const contained = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) { \
        if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; }; \
    return Array.from(document.querySelectorAll('body *')) \
      .filter(e => out(e) && !contained(e) && !(e.parentElement && out(e.parentElement))) \
      .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') \
        + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '') \
        + ' right=' + Math.round(e.getBoundingClientRect().right) + ' (viewport ' + w + ')')";

/// Ticket links (the number, what agents read out on the phone) whose
/// cell cuts them off.
const CUT_NUMBERS: &str = "\
    return Array.from(document.querySelectorAll('tr.ticket-row a.ticket-link')).map(a => { \
        const c = a.closest('td'); const st = getComputedStyle(c); \
        const room = c.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight); \
        const need = a.getBoundingClientRect().width; \
        return need > room + 0.01 ? a.textContent.trim() + ': needs ' + need.toFixed(1) + ' px, has ' + room.toFixed(1) : null; \
      }).filter(x => x)";

/// Saves `name` at every width; notes what sticks out at each.
async fn shoot(page: &Page, name: &str, overflow: &mut Vec<String>) {
    for width in WIDTHS {
        page.set_viewport(width, if width < 600 { 812 } else { 900 })
            .await;
        page.wait_loaded().await;
        let wide = page
            .js("return [document.documentElement.scrollWidth, window.innerWidth]")
            .await;
        if wide[0].as_u64() > wide[1].as_u64() {
            overflow.push(format!("{name} at {width} px scrolls sideways: {wide}"));
        }
        for e in page.js(STICKING_OUT).await.as_array().unwrap() {
            overflow.push(format!(
                "{name} at {width} px: {}",
                e.as_str().unwrap_or_default()
            ));
        }
        for e in page.js(CUT_NUMBERS).await.as_array().unwrap() {
            overflow.push(format!(
                "{name} at {width} px: ticket number cut off: {}",
                e.as_str().unwrap_or_default()
            ));
        }
        let path = page.screenshot(&format!("{name}-{width}"), width).await;
        eprintln!("screenshot: {}", path.display());
    }
}

#[tokio::test]
async fn screenshots_of_each_main_page_at_375_and_1440_px() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    desk.add_agent("bob@example.com", "Bob Builder", false)
        .await;
    let (token, _) = desk.staff_session("ann@example.com").await;
    let subjects = [
        "Printer on fire in the third-floor copy room, please send help quickly",
        "VPN drops every hour",
        "Keyboard missing keys",
    ];
    let mut numbers = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        numbers.push(
            desk.create_ticket(&ticket(
                &format!("customer{i}"),
                s,
                "It started this morning. Nothing helps.\n\nRegards, a customer with a long signature line",
            ))
            .await,
        );
    }
    let n = &numbers[0];
    // A thread with a reply (with an attachment) and a note; the reply's
    // mail is refused by the sink, so the outbox has a failed row.
    let all: Vec<&str> = numbers.iter().map(String::as_str).collect();
    desk.wait_mail_settled(&token, &all).await;
    desk.sink.fail_with(Some(550));
    let client = reqwest::Client::new();
    for (path, body) in [
        (
            "replies",
            json!({"body": "Unplug it, then call us.", "format": "text",
                   "attachments": [{"steps.txt": "data:text/plain;base64,VW5wbHVnIGl0Lgo="}]}),
        ),
        (
            "notes",
            json!({"body": "Customer sounded calm.", "format": "text"}),
        ),
    ] {
        let r = client
            .post(desk.url(&format!("/api/v1/tickets/{n}/{path}")))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut overflow = Vec::new();
    let page = browser.session(&desk, 1440, 800).await;
    page.goto("/scp/login").await;
    shoot(&page, "sign-in", &mut overflow).await;
    page.sign_in("ann@example.com").await;
    page.goto("/scp/tickets?queue=open").await;
    shoot(&page, "queue", &mut overflow).await;
    page.goto(&format!("/scp/tickets/{n}")).await;
    page.wait_for("section#thread article.entry-note").await;
    shoot(&page, "ticket", &mut overflow).await;
    page.goto("/scp/admin/keys").await;
    page.wait_for("table#keys").await;
    shoot(&page, "admin-keys", &mut overflow).await;
    page.goto("/scp/admin/agents").await;
    page.wait_for("table#agents").await;
    shoot(&page, "admin-agents", &mut overflow).await;
    page.goto("/scp/admin/outbox").await;
    page.wait_for("table#outbox").await;
    shoot(&page, "admin-outbox", &mut overflow).await;
    eprintln!("screenshots in {}", screenshot_dir().display());
    assert_eq!(overflow, Vec::<String>::new(), "layout problems");
    page.quit().await;
}

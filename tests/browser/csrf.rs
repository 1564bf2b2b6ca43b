//! A state-changing POST under `/scp/` without its CSRF token is refused
//! (403, `.flash.error`, nothing written) — from the page itself (the
//! browser sends the session cookie) and from outside with the cookie
//! copied; the same requests with the token are accepted (so the refusals
//! are the token's doing, not a malformed request).

use serde_json::{Value, json};

use crate::harness::{Desk, Page};

/// POSTs `fields` (urlencoded) to `path` from the page, with extra
/// `headers`; answers the status (a redirect is 0), the body and the
/// text of its `.flash.error`, if any.
async fn page_post(
    page: &Page,
    path: &str,
    fields: Value,
    headers: Value,
) -> (i64, String, Option<String>) {
    let v = page
        .js_with(
            "const [path, fields, headers] = arguments; \
             return fetch(path, {method: 'POST', credentials: 'same-origin', redirect: 'manual', \
               headers: Object.assign({'Content-Type': 'application/x-www-form-urlencoded'}, headers), \
               body: new URLSearchParams(fields).toString()}) \
             .then(r => r.text().then(t => { \
               const e = new DOMParser().parseFromString(t, 'text/html').querySelector('.flash.error'); \
               return [r.status, t, e ? e.textContent : null]; }))",
            vec![json!(path), fields, headers],
        )
        .await;
    (
        v[0].as_i64().unwrap(),
        v[1].as_str().unwrap_or_default().to_string(),
        v[2].as_str().map(str::to_string),
    )
}

fn notes(t: &Value) -> Vec<String> {
    t["thread"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .map(|e| e["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    let (token, _) = desk.staff_session("ann@example.com").await;
    let n = desk
        .create_ticket(&crate::harness::ticket("cus", "Fax is slow", "Very."))
        .await;
    let page = browser.session(&desk, 1280, 900).await;
    page.sign_in("ann@example.com").await;
    page.goto(&format!("/scp/tickets/{n}")).await;
    let csrf = page
        .find("form#note input[type=hidden][name=csrf]")
        .await
        .value()
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!csrf.is_empty());
    let meta = page
        .find("meta[name=csrf-token]")
        .await
        .attr("content")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!meta.is_empty());
    let version = page
        .find("form#controls input[name=version]")
        .await
        .value()
        .await
        .unwrap()
        .unwrap_or_default();
    let note = format!("/scp/tickets/{n}/note");
    let update = format!("/scp/tickets/{n}/update");

    // Refused: no token, a wrong one, a header with a wrong one.
    for (what, path, fields, headers) in [
        (
            "note without a token",
            &note,
            json!({"body": "sneaky one"}),
            json!({}),
        ),
        (
            "note with a wrong token",
            &note,
            json!({"body": "sneaky two", "csrf": "0123456789abcdef"}),
            json!({}),
        ),
        (
            "note with a wrong header",
            &note,
            json!({"body": "sneaky three"}),
            json!({"X-CSRF-Token": "0123456789abcdef"}),
        ),
        (
            "update without a token",
            &update,
            json!({"status": "closed", "version": version}),
            json!({}),
        ),
    ] {
        let (status, body, flash) = page_post(&page, path, fields, headers).await;
        assert_eq!(status, 403, "{what}: {body}");
        let flash = flash.unwrap_or_else(|| panic!("{what}: no .flash.error in {body}"));
        assert!(
            flash.contains("CSRF token missing or invalid"),
            "{what}: {flash}"
        );
    }
    let t = desk.staff_ticket(&token, &n).await;
    assert_eq!(notes(&t), Vec::<String>::new(), "{t}");
    assert_eq!(t["status"], "open", "{t}");

    // From outside with the session cookie copied from the browser.
    let cookie = page
        .driver()
        .get_named_cookie("oxidesk_session")
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |body: String| {
        client
            .post(desk.url(&note))
            .header("Cookie", format!("oxidesk_session={}", cookie.value))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", desk.url(""))
            .body(body)
            .send()
    };
    let r = post("body=sneaky+four".into()).await.unwrap();
    assert_eq!(r.status(), 403, "cookie without token");
    let t = desk.staff_ticket(&token, &n).await;
    assert_eq!(notes(&t), Vec::<String>::new(), "{t}");

    // The same requests with the token are accepted.
    let r = post(format!("body=with+token&csrf={csrf}")).await.unwrap();
    assert_eq!(r.status(), 303, "cookie with the form's token");
    let (status, body, _) = page_post(
        &page,
        &note,
        json!({"body": "from the page"}),
        json!({"X-CSRF-Token": meta}),
    )
    .await;
    assert!(
        status == 0 || status == 200 || status == 303,
        "header token: {status} {body}"
    );
    let t = desk.staff_ticket(&token, &n).await;
    let written = notes(&t);
    assert_eq!(written.len(), 2, "{t}");
    assert!(written[0].contains("with token"), "{t}");
    assert!(written[1].contains("from the page"), "{t}");
    page.quit().await;
}

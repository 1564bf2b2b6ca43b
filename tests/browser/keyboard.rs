//! Keys (static `app.js`): in the queue `j`/`k` move the selection,
//! `Enter` opens, `/` searches, `?` lists the keys (`Escape` closes); on
//! a ticket `r` goes to the reply, `n` to the note.

use thirtyfour::Key;

use crate::harness::{DEADLINE, Desk, Page, ticket, wait_until};

/// The numbers of the selected rows, checking that each is also
/// `aria-selected="true"`.
async fn selected(page: &Page) -> Vec<String> {
    let v = page
        .js(
            "return Array.from(document.querySelectorAll('tr.ticket-row.selected')) \
               .map(r => [r.dataset.number, r.getAttribute('aria-selected')])",
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p[1], "true", "a selected row is aria-selected: {v}");
            p[0].as_str().unwrap().to_string()
        })
        .collect()
}

async fn wait_selected(page: &Page, number: &str) {
    let what = format!("row {number} selected");
    wait_until(&what, DEADLINE, || async {
        (selected(page).await == [number]).then_some(())
    })
    .await;
}

/// Whether the focused element matches `css`.
async fn focused(page: &Page, css: &str) -> bool {
    page.js_with(
        "return !!document.activeElement && document.activeElement.matches(arguments[0])",
        vec![css.into()],
    )
    .await
        == true
}

async fn wait_focused(page: &Page, css: &str) {
    wait_until(&format!("focus on {css}"), DEADLINE, || async {
        focused(page, css).await.then_some(())
    })
    .await;
}

async fn blur(page: &Page) {
    page.js("if (document.activeElement) document.activeElement.blur()")
        .await;
}

#[tokio::test]
async fn keys_move_open_search_help_reply_and_note() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    for tag in ["a", "b", "c"] {
        desk.create_ticket(&ticket(tag, &format!("Ticket {tag}"), "Body."))
            .await;
    }
    let page = browser.session(&desk, 1280, 900).await;
    page.sign_in("ann@example.com").await;
    page.goto("/scp/tickets?queue=open").await;
    let rows: Vec<String> = page
        .js("return Array.from(document.querySelectorAll('tr.ticket-row')).map(r => r.dataset.number)")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(rows.len(), 3);
    blur(&page).await;

    page.press("j").await;
    wait_selected(&page, &rows[0]).await;
    page.press("j").await;
    wait_selected(&page, &rows[1]).await;
    page.press("j").await;
    wait_selected(&page, &rows[2]).await;
    page.press("k").await;
    wait_selected(&page, &rows[1]).await;

    // `/` focuses the search box (and types nothing into it).
    page.press("/").await;
    wait_focused(&page, "form#search input[name=q]").await;
    let q = page
        .find("form#search input[name=q]")
        .await
        .value()
        .await
        .unwrap();
    assert_eq!(q.as_deref(), Some(""), "the `/` is not typed");
    blur(&page).await;

    // `?` opens the key list, `Escape` closes it.
    page.press("?").await;
    wait_until("#keys-help shown", DEADLINE, || async {
        let help = page.try_find("#keys-help").await?;
        help.is_displayed().await.ok()?.then_some(())
    })
    .await;
    let help = page.text("#keys-help").await;
    for key in ["j", "k", "r", "n", "/", "?"] {
        assert!(help.contains(key), "#keys-help lists {key}: {help}");
    }
    page.press(Key::Escape).await;
    wait_until("#keys-help hidden", DEADLINE, || async {
        let shown = match page.try_find("#keys-help").await {
            Some(h) => h.is_displayed().await.unwrap_or(false),
            None => false,
        };
        (!shown).then_some(())
    })
    .await;

    // `Enter` opens the selected ticket (the second row).
    wait_selected(&page, &rows[1]).await;
    page.press(Key::Enter).await;
    let path = format!("/scp/tickets/{}", rows[1]);
    wait_until(&format!("navigation to {path}"), DEADLINE, || async {
        (page.path().await == path).then_some(())
    })
    .await;
    page.wait_for("section#ticket-header").await;
    page.wait_loaded().await;
    blur(&page).await;

    page.press("r").await;
    wait_focused(&page, "form#reply textarea[name=body]").await;
    let typed = page
        .find("form#reply textarea[name=body]")
        .await
        .value()
        .await
        .unwrap();
    assert_eq!(typed.as_deref(), Some(""), "the `r` is not typed");
    blur(&page).await;
    page.press("n").await;
    wait_focused(&page, "form#note textarea[name=body]").await;
    // In a text box the keys are text, not commands.
    page.press("jr").await;
    let typed = page
        .find("form#note textarea[name=body]")
        .await
        .value()
        .await
        .unwrap();
    assert_eq!(typed.as_deref(), Some("jr"));
    assert!(focused(&page, "form#note textarea[name=body]").await);
    page.quit().await;
}

//! The open queue: live refresh without a reload, counts, search.

use crate::harness::{DEADLINE, Desk, ticket, wait_until};

#[tokio::test]
async fn a_ticket_created_over_the_api_appears_in_the_open_queue_without_a_reload() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    let first = desk
        .create_ticket(&ticket("early", "Printer jammed", "Paper everywhere."))
        .await;
    let page = browser.session(&desk, 1280, 900).await;
    page.sign_in("ann@example.com").await;
    page.goto("/scp/tickets?queue=open").await;
    page.find(&format!("tr.ticket-row[data-number=\"{first}\"]"))
        .await;
    let row_link = page
        .find(&format!(
            "tr.ticket-row[data-number=\"{first}\"] a.ticket-link"
        ))
        .await;
    assert_eq!(
        row_link.attr("href").await.unwrap().as_deref(),
        Some(format!("/scp/tickets/{first}").as_str())
    );
    page.mark().await;

    let second = desk
        .create_ticket(&ticket("late", "Monitor flickers", "It blinks at me."))
        .await;
    let row = format!("tr.ticket-row[data-number=\"{second}\"]");
    wait_until("the new ticket's row", DEADLINE, || async {
        assert!(page.is_marked().await, "the page was navigated or reloaded");
        page.try_find(&row).await
    })
    .await;
    assert!(page.is_marked().await, "the page was navigated or reloaded");
    assert_eq!(page.count("tbody#queue-rows tr.ticket-row").await, 2);
    let text = page.text(&row).await;
    assert!(text.contains("Monitor flickers"), "{text}");
    assert!(text.contains("Customer late"), "{text}");

    // After a reload the side bar counts both.
    page.goto("/scp/tickets?queue=open").await;
    let count = page.text("nav#queues a[data-queue=open] span.count").await;
    assert_eq!(count, "2");
    let unassigned = page
        .text("nav#queues a[data-queue=unassigned] span.count")
        .await;
    assert_eq!(unassigned, "2");
    page.quit().await;
}

#[tokio::test]
async fn search_finds_a_ticket_by_a_word_and_by_its_number() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    let wanted = desk
        .create_ticket(&ticket(
            "zed",
            "Projector in room nine",
            "The zanzibar projector shows only blue.",
        ))
        .await;
    let other = desk
        .create_ticket(&ticket("amy", "Keyboard missing keys", "No letter q."))
        .await;
    let third = desk
        .create_ticket(&ticket("bob", "Mouse is slow", "Very slow mouse."))
        .await;
    let page = browser.session(&desk, 1280, 900).await;
    page.sign_in("ann@example.com").await;
    page.goto("/scp/tickets?queue=open").await;
    assert_eq!(page.count("tr.ticket-row").await, 3);

    for (query, expect) in [("zanzibar", &wanted), (other.as_str(), &other)] {
        page.type_into("form#search input[name=q]", query).await;
        page.find("form#search input[name=q]")
            .await
            .send_keys(thirtyfour::Key::Enter)
            .await
            .unwrap();
        let only = format!("tr.ticket-row[data-number=\"{expect}\"]");
        wait_until(
            &format!("only {expect} listed for {query}"),
            DEADLINE,
            || async {
                let n = page.count("tr.ticket-row").await;
                (n == 1 && page.try_find(&only).await.is_some()).then_some(())
            },
        )
        .await;
        // The search is in the URL (a GET form), or htmx pushed it.
        page.wait_loaded().await;
        let path = page.path().await;
        assert!(path.contains("q="), "the search is not in the URL: {path}");
        let value = page
            .find("form#search input[name=q]")
            .await
            .value()
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some(query), "the box keeps the query");
    }
    assert!(
        page.try_find(&format!("tr.ticket-row[data-number=\"{third}\"]"))
            .await
            .is_none()
    );
    page.quit().await;
}

//! Two agents on one ticket: the second to submit `form#controls` from a
//! page rendered before the first one's change gets `.flash.conflict`,
//! and nothing of theirs is written (the API's 412).

use crate::harness::Desk;

#[tokio::test]
async fn the_second_agent_to_change_a_ticket_gets_the_conflict_message_and_writes_nothing() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", true).await;
    desk.add_agent("cat@example.com", "Cat Agent", true).await;
    let (token, _) = desk.staff_session("ann@example.com").await;
    let n = desk
        .create_ticket(&crate::harness::ticket("cus", "Door sticks", "Front door."))
        .await;
    let path = format!("/scp/tickets/{n}");

    let ann = browser.session(&desk, 1280, 900).await;
    let cat = browser.session(&desk, 1280, 900).await;
    ann.sign_in("ann@example.com").await;
    cat.sign_in("cat@example.com").await;
    ann.goto(&path).await;
    cat.goto(&path).await;
    let version = cat
        .find("form#controls input[name=version]")
        .await
        .value()
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!version.is_empty(), "form#controls carries the version");

    // Ann resolves it first.
    ann.select("form#controls select[name=status]", "resolved")
        .await;
    ann.click_and_wait("form#controls button[type=submit]", ".flash.ok")
        .await;
    assert_eq!(desk.staff_ticket(&token, &n).await["status"], "resolved");

    // Cat, on the page from before, raises the priority and closes it.
    cat.select("form#controls select[name=priority_id]", "3")
        .await;
    cat.select("form#controls select[name=status]", "closed")
        .await;
    let flash = cat
        .click_and_wait("form#controls button[type=submit]", ".flash.conflict")
        .await;
    let text = flash.text().await.unwrap();
    assert!(
        !text.trim().is_empty(),
        "the conflict message says something"
    );
    assert!(cat.try_find(".flash.ok").await.is_none());
    // It shows the current values: Ann's status.
    let status = cat.text("section#ticket-header [data-field=status]").await;
    assert!(status.to_lowercase().contains("resolved"), "{status}");

    let t = desk.staff_ticket(&token, &n).await;
    assert_eq!(t["status"], "resolved", "Cat's status was not written: {t}");
    assert_eq!(
        t["priority"]["id"], 2,
        "Cat's priority was not written: {t}"
    );
    let changes = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "status_changed" || e["type"] == "priority_changed")
        .count();
    assert_eq!(changes, 1, "only Ann's change is recorded: {t}");
    ann.quit().await;
    cat.quit().await;
}

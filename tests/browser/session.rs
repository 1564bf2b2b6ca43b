//! Signing in and out through `form#login` / `form#logout`.

use crate::harness::{Desk, PASSWORD};

#[tokio::test]
async fn a_wrong_password_shows_an_error_and_the_right_one_opens_the_queue() {
    let browser = browser_or_skip!();
    let desk = Desk::start().await;
    desk.add_agent("ann@example.com", "Ann Agent", false).await;
    let page = browser.session(&desk, 1280, 900).await;

    // Without a session the queue sends the browser to the sign-in page,
    // keeping where it was going.
    page.goto("/scp/tickets?queue=open").await;
    let path = page.path().await;
    assert!(path.starts_with("/scp/login"), "{path}");
    assert!(path.contains("next="), "the page asked for is kept: {path}");

    page.submit_login("ann@example.com", "not-the-password")
        .await;
    let flash = page
        .wait_for("form#login ~ .flash.error, .flash.error")
        .await;
    let text = flash.text().await.unwrap();
    assert!(text.contains("Invalid email or password"), "{text}");
    assert!(page.try_find("table#queue").await.is_none());
    let cookies = page.driver().get_all_cookies().await.unwrap();
    assert!(
        !cookies.iter().any(|c| c.name == "oxidesk_session"),
        "no session for a wrong password: {cookies:?}"
    );

    page.submit_login("ann@example.com", PASSWORD).await;
    page.wait_for("table#queue").await;
    page.wait_loaded().await;
    // Back where the browser was going.
    let path = page.path().await;
    assert!(path.starts_with("/scp/tickets"), "{path}");
    assert!(page.try_find("header form#logout").await.is_some());
    assert!(
        page.try_find("nav#queues a[data-queue=open]")
            .await
            .is_some()
    );
    assert!(page.try_find("main#main").await.is_some());
    let cookie = page
        .driver()
        .get_named_cookie("oxidesk_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only, Some(true), "{cookie:?}");
    assert_eq!(cookie.path.as_deref(), Some("/"), "{cookie:?}");
    assert_eq!(
        cookie.same_site,
        Some(thirtyfour::SameSite::Lax),
        "{cookie:?}"
    );
    // Not an admin: no admin links, and the admin pages are not found.
    assert!(page.try_find("a#admin-keys").await.is_none());

    // Signing out ends the session: the queue asks for a sign-in again.
    page.find("form#logout button, form#logout [type=submit]")
        .await
        .click()
        .await
        .unwrap();
    page.wait_for("form#login").await;
    page.goto("/scp/").await;
    let path = page.path().await;
    assert!(path.starts_with("/scp/login"), "{path}");
    page.quit().await;
}

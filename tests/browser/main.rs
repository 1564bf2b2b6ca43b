//! Tests in a real browser (issue 14): headless Chromium over WebDriver
//! against the real `oxidesk` binary, selecting elements only by what
//! `web-contract.md` names. Skipped (with a message) when Debian's
//! `chromium-driver` is not installed, unless `OXIDESK_REQUIRE_BROWSER=1`.

/// The browser for a test, or an early `return` (skip) when there is
/// none (see [`harness::Browser::start`]).
macro_rules! browser_or_skip {
    () => {
        match crate::harness::Browser::start().await {
            Some(browser) => browser,
            None => return,
        }
    };
}

mod harness;
// The SMTP sink is the workspace crate crates/smtp-sink.
use oxidesk_smtp_sink as smtp_sink;

mod conflict;
mod csrf;
mod keyboard;
mod queue;
mod screenshots;
mod session;
mod ticket;
mod xss;

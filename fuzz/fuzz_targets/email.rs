//! A whole message as `.email` and the pipe take it: header repair, the
//! MIME walk, charsets, TNEF and uuencoded parts, loop detection, then
//! the domain's checks.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = oxidesk::domain::email::EmailContext {
        client_ip: None,
        now: jiff::Timestamp::from_second(1_800_000_000).expect("a time"),
    };
    let _ = oxidesk::domain::email::prepare_email(common::catalog(), data, &ctx);
    let _ = oxidesk::intake::email::inspect_email(data);
});

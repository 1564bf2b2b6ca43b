//! JSON intake: decoding, then the domain's checks of the draft.
#![no_main]

use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::document(data, common::Doc::Json);
});

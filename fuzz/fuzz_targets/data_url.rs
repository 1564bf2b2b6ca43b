//! RFC 2397 data URLs (a JSON message or attachment): parsing, then the
//! text or file bytes they carry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxidesk::intake::data_url;

fuzz_target!(|text: &str| {
    if !data_url::is_data_url(text) {
        return;
    }
    if let Ok(url) = data_url::parse(text, "message") {
        if url.is_text() {
            let _ = url.text("message");
        } else {
            let _ = url.into_file_bytes("attachments");
        }
    }
});

//! TNEF (`winmail.dat`), which a message's parts reach only rarely by
//! mutation, fed directly. (uuencoded blocks are reached through the
//! `email` target: a text part with a `begin 644 name` line.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = oxidesk::intake::tnef::unpack(data);
});

//! The JSON Lines decoder on any bytes: the first byte chooses the record
//! limit, the next eight where the input is cut into chunks; the rest is the
//! file. Every invariant of `decoding.rs` must hold.
#![no_main]

#[path = "../../crates/domain/tests/support/decoding.rs"]
mod decoding;

use libfuzzer_sys::fuzz_target;
use sluice_domain::format::{DEFAULT_MAX_RECORD_BYTES, RecordFormat};

fuzz_target!(|input: &[u8]| {
    let Some((&limit, rest)) = input.split_first() else {
        return;
    };
    let max = if limit == 0 {
        DEFAULT_MAX_RECORD_BYTES
    } else {
        usize::from(limit)
    };
    let (cuts, data) = decoding::cuts_and_data(rest);
    decoding::check(RecordFormat::Jsonl, max, data, &cuts, 8);
});

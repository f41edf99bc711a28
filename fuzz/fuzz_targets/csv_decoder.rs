//! The CSV decoder on any bytes: the first two bytes choose the dialect and
//! the record limit, the next eight where the input is cut into chunks; the
//! rest is the file. Every invariant of `decoding.rs` must hold.
#![no_main]

#[path = "../../crates/domain/tests/support/decoding.rs"]
mod decoding;

use libfuzzer_sys::fuzz_target;
use sluice_domain::format::{CsvDialect, DEFAULT_MAX_RECORD_BYTES, RecordFormat};

const DIALECTS: [(u8, u8); 4] = [(b',', b'"'), (b';', b'\''), (b'\t', b'"'), (b'|', b'\'')];

fuzz_target!(|input: &[u8]| {
    let Some((&[how, limit], rest)) = input.split_first_chunk::<2>() else {
        return;
    };
    let (delimiter, quote) = DIALECTS[usize::from(how) % DIALECTS.len()];
    let max = if limit == 0 {
        DEFAULT_MAX_RECORD_BYTES
    } else {
        usize::from(limit)
    };
    let (cuts, data) = decoding::cuts_and_data(rest);
    decoding::check(
        RecordFormat::Csv(CsvDialect { delimiter, quote }),
        max,
        data,
        &cuts,
        8,
    );
});

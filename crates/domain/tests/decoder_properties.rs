//! Property tests of the CSV and JSON Lines decoders (issue 19): for any
//! bytes they never panic, never hold more than their record limit allows,
//! and give the same records at the same offsets whatever the chunking of
//! the input and wherever a reader resumes. The invariants live in
//! `support/decoding.rs`, shared with the fuzz targets of `fuzz/`.

mod support;

use proptest::prelude::*;
use sluice_domain::format::{CsvDialect, RecordFormat};
use support::decoding::{check, decode};
use support::inputs::{cuts, dialect, input, limit};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn csv_records_do_not_depend_on_chunking_or_where_a_read_resumes(
        data in input(), dialect in dialect(), max in limit(), cuts in cuts()
    ) {
        check(RecordFormat::Csv(dialect), max, &data, &cuts, 16);
    }

    #[test]
    fn jsonl_records_do_not_depend_on_chunking_or_where_a_read_resumes(
        data in input(), max in limit(), cuts in cuts()
    ) {
        check(RecordFormat::Jsonl, max, &data, &cuts, 16);
    }
}

#[test]
fn the_invariants_catch_what_they_claim_to() {
    // The checker itself must be able to fail: two different inputs decode
    // differently, and a resumed read at a wrong offset is not the rest.
    let format = RecordFormat::Csv(CsvDialect::default());
    let a = decode(format, 0, 64, &[b"a,b\nc\n"]);
    let b = decode(format, 0, 64, &[b"a,b\nc,d\n"]);
    assert_ne!(a, b);
    let resumed_mid_record = decode(format, 1, 64, &[b",b\nc\n"]);
    assert_ne!(resumed_mid_record, a[..].to_vec());
}

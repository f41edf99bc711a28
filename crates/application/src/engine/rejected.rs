//! The raw form a rejected record is kept in, so that a retry can validate
//! it again against a changed schema.

use sluice_domain::format::{CsvDecoder, CsvDialect, Problem, RecordBody, RecordFormat, Step};
use sluice_domain::validation::encode_canonical_csv;

use crate::ports::RejectedRow;

/// Marks a stored rejected record that could not be decoded at all; such a
/// record keeps its original problem when revisited.
const MALFORMED_MARK: u8 = 0;

/// The raw form kept for a rejected record.
pub(crate) fn raw_of(body: RecordBody<'_>) -> Vec<u8> {
    match body {
        RecordBody::Fields(f) => encode_canonical_csv(f.iter()),
        RecordBody::Json(line) => line.to_vec(),
        RecordBody::Malformed(p) => {
            let mut raw = vec![MALFORMED_MARK];
            raw.extend_from_slice(p.message().as_bytes());
            raw
        }
    }
}

/// Decodes a stored rejected record and passes it to `f`.
pub(crate) fn with_raw<T>(
    format: RecordFormat,
    rejected: &RejectedRow,
    f: impl FnOnce(RecordBody<'_>) -> T,
) -> T {
    if rejected.raw.first() == Some(&MALFORMED_MARK) {
        let problem = if rejected.raw.get(1..) == Some(Problem::RecordTooLong.message().as_bytes())
        {
            Problem::RecordTooLong
        } else {
            Problem::UnbalancedQuote
        };
        return f(RecordBody::Malformed(problem));
    }
    match format {
        RecordFormat::Jsonl => {
            let line = rejected.raw.strip_suffix(b"\n").unwrap_or(&rejected.raw);
            f(RecordBody::Json(line))
        }
        RecordFormat::Csv(_) => {
            let mut decoder = CsvDecoder::new(CsvDialect::default(), 1, usize::MAX);
            let mut input: &[u8] = &rejected.raw;
            match decoder.next(&mut input, true) {
                Step::Record(r) => f(r.body),
                _ => f(RecordBody::Malformed(Problem::UnbalancedQuote)),
            }
        }
    }
}

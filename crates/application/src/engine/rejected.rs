//! The raw form a rejected record is kept in, so that a retry can validate
//! it again against a changed schema.

use sluice_domain::format::{CsvDecoder, CsvDialect, Problem, RecordBody, RecordFormat, Step};
use sluice_domain::validation::{
    CompiledSchema, FieldMapping, RowError, ValidBatch, encode_canonical_csv,
};

use crate::ports::RejectedRow;

/// Marks a stored rejected record that could not be decoded at all; such a
/// record keeps its original problem when revisited.
const MALFORMED_MARK: u8 = 0;

/// The raw form kept for a rejected record; `head` is the first bytes of a
/// record that could not be decoded (kept after its problem).
pub(crate) fn raw_of(body: RecordBody<'_>, head: &[u8]) -> Vec<u8> {
    match body {
        RecordBody::Fields(f) => encode_canonical_csv(f.iter()),
        RecordBody::Json(line) => line.to_vec(),
        RecordBody::Malformed(p) => {
            let mut raw = vec![MALFORMED_MARK];
            raw.extend_from_slice(p.message().as_bytes());
            raw.push(MALFORMED_MARK);
            raw.extend_from_slice(head);
            raw
        }
    }
}

/// Validates one record like [`CompiledSchema::check_record`], giving the
/// error of a record that could not be decoded its first bytes (`head`,
/// invalid UTF-8 replaced) as its value, so a report shows which row it was.
pub(crate) fn check_record(
    schema: &CompiledSchema,
    row: u64,
    body: RecordBody<'_>,
    head: &[u8],
    mapping: &FieldMapping,
    batch: &mut ValidBatch,
    errors: &mut Vec<RowError>,
) -> bool {
    let before = errors.len();
    let ok = schema.check_record(row, body, mapping, batch, errors);
    if matches!(body, RecordBody::Malformed(_)) && !head.is_empty() {
        let value = String::from_utf8_lossy(head);
        for e in errors.iter_mut().skip(before) {
            e.value = RowError::new(e.row, &e.column, &value, "").value;
        }
    }
    ok
}

/// Decodes a stored rejected record and passes it to `f`, with the first
/// bytes of a record that could not be decoded (empty for older rows, which
/// did not keep them).
pub(crate) fn with_raw<T>(
    format: RecordFormat,
    rejected: &RejectedRow,
    f: impl FnOnce(RecordBody<'_>, &[u8]) -> T,
) -> T {
    if let Some(rest) = rejected.raw.strip_prefix(&[MALFORMED_MARK]) {
        let (message, head) = match rest.iter().position(|&b| b == MALFORMED_MARK) {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (rest, &[][..]),
        };
        let problem = if message == Problem::RecordTooLong.message().as_bytes() {
            Problem::RecordTooLong
        } else {
            Problem::UnbalancedQuote
        };
        return f(RecordBody::Malformed(problem), head);
    }
    match format {
        RecordFormat::Jsonl => {
            let line = rejected.raw.strip_suffix(b"\n").unwrap_or(&rejected.raw);
            f(RecordBody::Json(line), &[])
        }
        RecordFormat::Csv(_) => {
            let mut decoder = CsvDecoder::new(CsvDialect::default(), 1, usize::MAX);
            let mut input: &[u8] = &rejected.raw;
            match decoder.next(&mut input, true) {
                Step::Record(r) => f(r.body, &[]),
                _ => f(
                    RecordBody::Malformed(Problem::UnbalancedQuote),
                    &rejected.raw,
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(raw: Vec<u8>) -> RejectedRow {
        RejectedRow {
            row: 3,
            file_index: 0,
            raw,
        }
    }

    #[test]
    fn a_malformed_record_keeps_its_problem_and_first_bytes_when_revisited() {
        let format = RecordFormat::Csv(CsvDialect::default());
        for problem in [Problem::UnbalancedQuote, Problem::RecordTooLong] {
            let raw = raw_of(RecordBody::Malformed(problem), b"2,\"b\xff");
            let (again, head) = with_raw(format, &stored(raw), |body, head| {
                let p = match body {
                    RecordBody::Malformed(p) => Some(p),
                    _ => None,
                };
                (p, head.to_vec())
            });
            assert_eq!(again, Some(problem));
            assert_eq!(head, b"2,\"b\xff");
        }
        // Rows stored before the first bytes were kept: the problem alone.
        let mut old = vec![MALFORMED_MARK];
        old.extend_from_slice(Problem::RecordTooLong.message().as_bytes());
        let (again, head) = with_raw(format, &stored(old), |body, head| {
            (
                matches!(body, RecordBody::Malformed(Problem::RecordTooLong)),
                head.len(),
            )
        });
        assert!(again);
        assert_eq!(head, 0);
    }

    #[test]
    fn the_error_of_a_malformed_record_shows_its_first_bytes() {
        let schema: sluice_domain::schema::Schema = serde_json::from_value(serde_json::json!(
            {"columns": [{"name": "id", "type": "integer"}]}
        ))
        .expect("schema");
        let compiled = CompiledSchema::new(&schema).expect("compiled");
        let mapping = FieldMapping::positional(&schema);
        let (mut batch, mut errors) = (ValidBatch::new(1), Vec::new());
        let body = RecordBody::Malformed(Problem::UnbalancedQuote);
        let ok = check_record(
            &compiled,
            7,
            body,
            b"7,\"open\xff",
            &mapping,
            &mut batch,
            &mut errors,
        );
        assert!(!ok);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].value, "7,\"open\u{fffd}");
        assert_eq!(errors[0].error, "Unbalanced quote");
    }
}

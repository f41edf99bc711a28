//! Encoders of a run's error export, as streams of body chunks: memory stays
//! bounded by one chunk of errors however many the run has.

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use sluice_application::ports::StoreError;
use sluice_application::usecases::ErrorExport;
use sluice_domain::validation::RowError;

/// Most errors encoded into one body chunk (only those already available are
/// taken, so a slow store never delays what is ready).
const ERRORS_PER_CHUNK: usize = 256;

/// The header line of the CSV export (`Row,Column,Value,Error`, as `docs/api.md` shows it).
pub const CSV_HEADER: &str = "Row,Column,Value,Error\r\n";

/// A chunk of the body, or the store error that cut the export short.
pub type Chunk = Result<Bytes, StoreError>;

/// Prefixes a cell that a spreadsheet would read as a formula with `'`.
pub fn neutralise_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn serialise_failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("could not encode an error row: {e}"))
}

/// `{"runId": …, "total": …, "errors": [ … ]}`, written as prefix, elements
/// and suffix.
pub fn json_chunks(export: ErrorExport) -> impl Stream<Item = Chunk> + 'static {
    let prefix = serde_json::to_string(&export.run_id)
        .map(|id| {
            Bytes::from(format!(
                "{{\"runId\":{id},\"total\":{},\"errors\":[",
                export.total
            ))
        })
        .map_err(serialise_failed);
    let mut first = true;
    let elements = export
        .errors
        .ready_chunks(ERRORS_PER_CHUNK)
        .map(move |batch| {
            let mut buf = Vec::new();
            for item in batch {
                if !std::mem::take(&mut first) {
                    buf.push(b',');
                }
                serde_json::to_writer(&mut buf, &item?).map_err(serialise_failed)?;
            }
            Ok(Bytes::from(buf))
        });
    stream::once(async move { prefix })
        .chain(elements)
        .chain(stream::once(async { Ok(Bytes::from_static(b"]}")) }))
}

fn csv_record(writer: &mut csv::Writer<Vec<u8>>, e: &RowError) -> Result<(), StoreError> {
    writer
        .write_record([
            e.row.to_string().as_str(),
            &neutralise_formula(&e.column),
            &neutralise_formula(&e.value),
            &neutralise_formula(&e.error),
        ])
        .map_err(serialise_failed)
}

/// The CSV export: the header line, then one record per error, quoted as
/// RFC 4180 requires and with formulas neutralised.
pub fn csv_chunks(export: ErrorExport) -> impl Stream<Item = Chunk> + 'static {
    let records = export.errors.ready_chunks(ERRORS_PER_CHUNK).map(|batch| {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        for item in batch {
            csv_record(&mut writer, &item?)?;
        }
        writer
            .into_inner()
            .map(Bytes::from)
            .map_err(|e| serialise_failed(e.error()))
    });
    stream::once(async { Ok(Bytes::from_static(CSV_HEADER.as_bytes())) }).chain(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_domain::ids::RunId;

    fn export(errors: Vec<Result<RowError, StoreError>>) -> ErrorExport {
        ErrorExport {
            run_id: RunId::parse("run_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id"),
            total: errors.len() as u64,
            errors: stream::iter(errors).boxed(),
        }
    }

    async fn collect(s: impl Stream<Item = Chunk>) -> Result<String, StoreError> {
        let chunks: Vec<Chunk> = s.collect().await;
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&c?);
        }
        Ok(String::from_utf8(out).expect("utf-8"))
    }

    #[test]
    fn formulas_are_neutralised() {
        for (cell, want) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutralise_formula(cell), want, "{cell:?}");
        }
    }

    #[actix_web::test]
    async fn json_is_one_document_whatever_the_count() {
        for n in [0usize, 1, 2, 600] {
            let errors = (1..=n as u64)
                .map(|r| Ok(RowError::new(r, "age", "abc", "Expected integer")))
                .collect();
            let text = collect(json_chunks(export(errors))).await.expect("body");
            let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(v["total"], n as u64);
            assert_eq!(v["errors"].as_array().map(Vec::len), Some(n));
        }
    }

    #[actix_web::test]
    async fn csv_quotes_and_neutralises() {
        let errors = vec![
            Ok(RowError::new(
                1,
                "email",
                "=HYPERLINK(\"x\")",
                "Invalid email format",
            )),
            Ok(RowError::new(2, "note", "a,b\nc", "Too long")),
        ];
        let text = collect(csv_chunks(export(errors))).await.expect("body");
        assert_eq!(
            text,
            "Row,Column,Value,Error\r\n\
             1,email,\"'=HYPERLINK(\"\"x\"\")\",Invalid email format\r\n\
             2,note,\"a,b\nc\",Too long\r\n"
        );
    }

    #[actix_web::test]
    async fn a_store_error_cuts_the_stream() {
        let errors = vec![
            Ok(RowError::new(1, "a", "b", "c")),
            Err(StoreError::Unavailable("gone".into())),
        ];
        assert!(collect(json_chunks(export(errors))).await.is_err());
    }
}

//! Streaming reads: whole objects, byte offsets, gzip, and the record readers
//! over them.

use bytes::Bytes;
use futures::TryStreamExt;
use sluice_application::ports::{ObjectSource, SourceError};
use sluice_domain::format::{CsvDialect, RecordFormat};
use sluice_domain::run::SourcePosition;

use crate::common::{Fixture, Kind, gz, read_all, read_records, source_file};

/// Bytes that show where they were cut: position-dependent, not periodic
/// within a chunk.
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[(i * 7 + i / 37) % 37])
        .collect()
}

async fn chunk_sizes(source: &dyn ObjectSource, key: &str, offset: u64, gzip: bool) -> Vec<usize> {
    let chunks: Vec<Bytes> = source
        .read(key, offset, gzip)
        .await
        .expect("read")
        .try_collect()
        .await
        .expect("chunks");
    chunks.iter().map(Bytes::len).collect()
}

async fn plain_reads_from_any_offset(kind: Kind) {
    let f = Fixture::new(kind)
        .await
        .with_factory(|x| x.with_read_chunk_bytes(1000));
    let data = patterned(200_000);
    f.put("data.bin", data.clone()).await;
    let source = f.source();
    assert_eq!(
        read_all(source.as_ref(), "data.bin", 0, false).await,
        Ok(data.clone())
    );
    for offset in [1u64, 999, 1000, 123_457, 199_999] {
        let got = read_all(source.as_ref(), "data.bin", offset, false).await;
        assert_eq!(
            got.as_deref(),
            Ok(&data[offset as usize..]),
            "offset {offset}"
        );
    }
    let sizes = chunk_sizes(source.as_ref(), "data.bin", 5, false).await;
    assert!(sizes.iter().all(|&s| s > 0 && s <= 1000), "{sizes:?}");
}

#[tokio::test]
async fn s3_reads_whole_objects_and_from_a_byte_offset() {
    plain_reads_from_any_offset(Kind::S3).await;
}

#[tokio::test]
async fn local_reads_whole_objects_and_from_a_byte_offset() {
    plain_reads_from_any_offset(Kind::Local).await;
}

async fn gzip_offsets_count_decompressed_bytes(kind: Kind) {
    let f = Fixture::new(kind)
        .await
        .with_factory(|x| x.with_read_chunk_bytes(4096));
    let first = patterned(100_000);
    let second = b"second member\n".repeat(5_000);
    // Two members, as `cat a.gz b.gz` makes them.
    let mut file = gz(&first);
    file.extend(gz(&second));
    f.put("two.csv.gz", file).await;
    let source = f.source();
    let whole = [first.clone(), second.clone()].concat();
    assert_eq!(
        read_all(source.as_ref(), "two.csv.gz", 0, true).await,
        Ok(whole.clone())
    );
    for offset in [1u64, 4096, 99_999, 100_000, 100_001, 150_000] {
        let got = read_all(source.as_ref(), "two.csv.gz", offset, true).await;
        assert_eq!(
            got.as_deref(),
            Ok(&whole[offset as usize..]),
            "offset {offset}"
        );
    }
    let sizes = chunk_sizes(source.as_ref(), "two.csv.gz", 0, true).await;
    assert!(sizes.iter().all(|&s| s > 0 && s <= 4096), "{sizes:?}");
}

#[tokio::test]
async fn s3_gunzips_multi_member_files_with_decompressed_offsets() {
    gzip_offsets_count_decompressed_bytes(Kind::S3).await;
}

#[tokio::test]
async fn local_gunzips_multi_member_files_with_decompressed_offsets() {
    gzip_offsets_count_decompressed_bytes(Kind::Local).await;
}

async fn offsets_at_and_past_the_end(kind: Kind) {
    let f = Fixture::new(kind).await;
    f.put("a.csv", "12345").await;
    f.put("a.csv.gz", gz(b"12345")).await;
    f.put("empty.csv", "").await;
    let source = f.source();
    for gzip in [false, true] {
        let key = if gzip { "a.csv.gz" } else { "a.csv" };
        assert_eq!(
            read_all(source.as_ref(), key, 5, gzip).await,
            Ok(Vec::new()),
            "{key}"
        );
        let Err(SourceError::Other(message)) = read_all(source.as_ref(), key, 6, gzip).await else {
            panic!("{key}: reading past the end must fail")
        };
        assert!(message.contains("past the end"), "{message}");
    }
    assert_eq!(
        read_all(source.as_ref(), "empty.csv", 0, false).await,
        Ok(Vec::new())
    );
}

#[tokio::test]
async fn s3_offset_at_the_end_is_empty_and_past_it_an_error() {
    offsets_at_and_past_the_end(Kind::S3).await;
}

#[tokio::test]
async fn local_offset_at_the_end_is_empty_and_past_it_an_error() {
    offsets_at_and_past_the_end(Kind::Local).await;
}

async fn missing_object(kind: Kind) {
    let f = Fixture::new(kind).await;
    let source = f.source();
    for gzip in [false, true] {
        let Err(SourceError::NotFound(message)) =
            source.read("nope.csv", 0, gzip).await.map(|_| ())
        else {
            panic!("NotFound expected")
        };
        assert!(message.contains("nope.csv"), "{message}");
    }
}

#[tokio::test]
async fn s3_reading_a_missing_object_is_not_found() {
    missing_object(Kind::S3).await;
}

#[tokio::test]
async fn local_reading_a_missing_object_is_not_found() {
    missing_object(Kind::Local).await;
}

#[tokio::test]
async fn local_corrupt_gzip_is_a_plain_error() {
    let f = Fixture::local();
    f.put("bad.csv.gz", "this is not gzip").await;
    let Err(SourceError::Other(message)) =
        read_all(f.source().as_ref(), "bad.csv.gz", 0, true).await
    else {
        panic!("error expected")
    };
    assert!(
        message.contains("bad.csv.gz") && message.contains("gzip"),
        "{message}"
    );
}

/// The read chunk of the range tests. The records with a quoted newline are
/// several times longer, so whatever the network's chunking, each of them
/// straddles at least one read-buffer boundary (checked below as well).
const SMALL_CHUNK: usize = 32;

/// CSV rows `first..=last` (header first). Rows in `quoted` carry a quoted
/// field with a newline, a comma and escaped quotes.
fn csv_rows(first: u64, last: u64, quoted: &[u64]) -> String {
    let mut s = String::from("id,name,note\n");
    for i in first..=last {
        if quoted.contains(&i) {
            s.push_str(&format!(
                "{i},name {i},\"line one of {i}\nline two, with \"\"quotes\"\" {}\"\n",
                "and padding ".repeat(10)
            ));
        } else {
            s.push_str(&format!("{i},name {i},plain note {i}\n"));
        }
    }
    s
}

async fn ranged_read_yields_exactly_its_records(kind: Kind) {
    let f = Fixture::new(kind)
        .await
        .with_factory(|x| x.with_read_chunk_bytes(SMALL_CHUNK));
    // Rows 1..=50 in a plain file, 51..=100 in a gzip file; the run's row
    // space spans both, as extraction numbers it.
    f.put("in/part-1.csv", csv_rows(1, 50, &[45])).await;
    f.put(
        "in/part-2.csv.gz",
        gz(csv_rows(51, 100, &[51, 60]).as_bytes()),
    )
    .await;
    let source = f.source();
    let files = vec![
        source_file(0, "in/part-1.csv", false),
        source_file(1, "in/part-2.csv.gz", true),
    ];
    let format = RecordFormat::Csv(CsvDialect::default());

    let origin = SourcePosition {
        file_index: 0,
        byte_offset: 0,
    };
    let all = read_records(source.clone(), files.clone(), format, true, origin, 1, None)
        .await
        .expect("full read");
    assert_eq!(all.len(), 100);
    assert_eq!(
        all.iter().map(|r| r.row).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    assert!(
        all[44].fields[2].contains("\nline two, with \"quotes\""),
        "{:?}",
        all[44]
    );

    // A partition owning rows 31..=70 starts mid-file at row 31's offset.
    let start = SourcePosition {
        file_index: 0,
        byte_offset: all[30].start,
    };
    assert!(start.byte_offset > 0);
    let range = read_records(
        source.clone(),
        files.clone(),
        format,
        true,
        start,
        31,
        Some(70),
    )
    .await
    .expect("ranged read");
    assert_eq!(
        range,
        all[30..70].to_vec(),
        "exactly rows 31..=70, fields and offsets alike"
    );

    // A partition starting inside the gzip file (decompressed offset of row 56).
    let start = SourcePosition {
        file_index: 1,
        byte_offset: all[55].start,
    };
    let tail = read_records(source.clone(), files.clone(), format, true, start, 56, None)
        .await
        .expect("ranged gzip read");
    assert_eq!(tail, all[55..].to_vec());

    // The quoted-newline records really cross a read-buffer boundary: a
    // boundary falls strictly inside each of them.
    for (key, gzip, offset, rec) in [
        ("in/part-1.csv", false, all[30].start, &all[44]),
        ("in/part-2.csv.gz", true, 0, &all[59]),
    ] {
        let mut boundary = offset;
        let mut straddles = false;
        for size in chunk_sizes(source.as_ref(), key, offset, gzip).await {
            boundary += size as u64;
            straddles |= boundary > rec.start && boundary < rec.end;
        }
        assert!(
            straddles,
            "row {} should straddle a chunk boundary",
            rec.row
        );
    }
}

#[tokio::test]
async fn s3_ranged_read_from_mid_file_yields_exactly_its_records() {
    ranged_read_yields_exactly_its_records(Kind::S3).await;
}

#[tokio::test]
async fn local_ranged_read_from_mid_file_yields_exactly_its_records() {
    ranged_read_yields_exactly_its_records(Kind::Local).await;
}

async fn jsonl_records_from_an_offset(kind: Kind) {
    let f = Fixture::new(kind)
        .await
        .with_factory(|x| x.with_read_chunk_bytes(10));
    let lines: String = (1..=20)
        .map(|i| format!("{{\"id\":{i},\"text\":\"value {i}, with \\\"escapes\\\"\"}}\n"))
        .collect();
    f.put("events.jsonl.gz", gz(lines.as_bytes())).await;
    let source = f.source();
    let files = vec![source_file(0, "events.jsonl.gz", true)];
    let origin = SourcePosition {
        file_index: 0,
        byte_offset: 0,
    };
    let all = read_records(
        source.clone(),
        files.clone(),
        RecordFormat::Jsonl,
        false,
        origin,
        1,
        None,
    )
    .await
    .expect("jsonl");
    assert_eq!(all.len(), 20);
    assert_eq!(
        all[6].fields,
        vec![r#"{"id":7,"text":"value 7, with \"escapes\""}"#.to_owned()]
    );
    let start = SourcePosition {
        file_index: 0,
        byte_offset: all[6].start,
    };
    let part = read_records(
        source,
        files,
        RecordFormat::Jsonl,
        false,
        start,
        7,
        Some(12),
    )
    .await
    .expect("jsonl range");
    assert_eq!(part, all[6..12].to_vec());
}

#[tokio::test]
async fn s3_jsonl_records_from_an_offset() {
    jsonl_records_from_an_offset(Kind::S3).await;
}

#[tokio::test]
async fn local_jsonl_records_from_an_offset() {
    jsonl_records_from_an_offset(Kind::Local).await;
}

#[tokio::test]
async fn http_connector_reads_over_plain_http() {
    // The S3 test server serves public-read objects to unsigned GETs, which
    // makes it a plain HTTP file server for the read-only `http` type.
    let f = Fixture::s3().await;
    let client = reqwest::Client::new();
    for (key, body) in [
        ("files/a.csv", b"id\n1\n2\n".to_vec()),
        ("files/a.csv.gz", gz(b"id\n1\n2\n")),
    ] {
        let url = format!("{}/{}/{key}", crate::common::s3_endpoint(), f.place);
        let response = client
            .put(url)
            .header("x-amz-acl", "public-read")
            .body(body)
            .send()
            .await
            .expect("put public object");
        assert!(response.status().is_success(), "{}", response.status());
    }
    let config = sluice_domain::connector::ConnectorConfig {
        url: Some(format!("{}/{}/", crate::common::s3_endpoint(), f.place)),
        ..Default::default()
    };
    let creds = sluice_domain::connector::Credentials::default();
    let connector = crate::common::connector(
        sluice_domain::connector::ConnectorType::Http,
        config,
        &creds,
    );
    use sluice_application::ports::ObjectSourceFactory;
    let source = f.factory.open(&connector, &creds).expect("open http");
    assert_eq!(
        read_all(source.as_ref(), "files/a.csv", 3, false).await,
        Ok(b"1\n2\n".to_vec())
    );
    assert_eq!(
        read_all(source.as_ref(), "files/a.csv.gz", 3, true).await,
        Ok(b"1\n2\n".to_vec())
    );
    let head = source.head("files/a.csv").await.expect("head");
    assert_eq!(head.map(|h| h.size), Some(7));
    assert_eq!(source.head("files/missing.csv").await, Ok(None));
    let Err(SourceError::Other(message)) = source.delete("files/a.csv").await else {
        panic!("http connectors are read-only")
    };
    assert!(message.contains("read-only"), "{message}");
}

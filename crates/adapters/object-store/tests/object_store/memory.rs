//! Reading a 1 GiB (decompressed) gzip CSV from the S3 server through the
//! record reader in bounded memory.
//!
//! The peak is the process's high-water mark of resident memory (`VmHWM`),
//! reset when the test starts and again once the test data is uploaded, so
//! the read's own peak is reported apart from the setup's; both must stay
//! under 64 MiB. Under cargo-nextest every test is its own process, so the
//! figures are this test's alone.

use std::time::Instant;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use sluice_application::reading::{ReadItem, RecordReader};
use sluice_domain::format::{CsvDialect, RecordBody, RecordFormat};
use sluice_domain::run::SourcePosition;

use crate::common::{Fixture, gz, source_file};

const GIB: u64 = 1024 * 1024 * 1024;
const LIMIT_KIB: u64 = 64 * 1024;
const ROWS_PER_BLOCK: u64 = 40_000;

/// Resets the high-water mark to the current resident size.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM via /proc/self/clear_refs");
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"))
}

fn row(i: u64) -> String {
    format!(
        "{i},Acme Trading Company Limited,buyer@example.com,12.50,2024-01-15,\"note, with comma\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_one_gib_gzip_csv_reads_through_record_reader_under_64_mib() {
    reset_peak();
    let baseline = status_kib("VmHWM");
    let f = Fixture::s3().await;
    let key = "big/orders.csv.gz";

    // One block of rows compressed once and appended as many gzip members
    // as it takes to pass 1 GiB: cheap to make, and a real multi-member file.
    let block: String = (0..ROWS_PER_BLOCK).map(row).collect();
    let header_member = gz(b"id,company,email,amount,date,note\n");
    let block_member = gz(block.as_bytes());
    let members = GIB.div_ceil(block.len() as u64);
    let decompressed = 34 + members * block.len() as u64;
    drop(block);

    let started = Instant::now();
    let upload = f
        .raw
        .put_multipart(&ObjectPath::from(key))
        .await
        .expect("multipart");
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
    writer.write(&header_member);
    for _ in 0..members {
        // At most two parts in flight keeps the upload's own memory small.
        writer.wait_for_capacity(2).await.expect("upload part");
        writer.write(&block_member);
    }
    writer.finish().await.expect("complete upload");
    let compressed = header_member.len() as u64 + members * block_member.len() as u64;
    let uploaded_in = started.elapsed();

    // The upload is the test's own doing: note its peak, then measure the
    // read alone from here on.
    let upload_peak = status_kib("VmHWM");
    reset_peak();
    let before_read = status_kib("VmHWM");

    let source = f.source();
    let files = vec![source_file(0, key, true)];
    let format = RecordFormat::Csv(CsvDialect::default());
    let start = SourcePosition {
        file_index: 0,
        byte_offset: 0,
    };
    let mut reader = RecordReader::new(source, files.into(), format, true, start, 1);
    let started = Instant::now();
    let (mut records, mut last_end, mut headers) = (0u64, 0u64, 0u32);
    loop {
        match reader.advance().await.expect("read") {
            ReadItem::Header { .. } => headers += 1,
            ReadItem::Record(meta) => {
                records += 1;
                last_end = meta.end;
                if records % ROWS_PER_BLOCK == 0 {
                    let RecordBody::Fields(fields) = reader.record() else {
                        panic!("row {} is not a CSV record", meta.row)
                    };
                    assert_eq!(fields.len(), 6);
                    assert_eq!(
                        fields.get(0),
                        Some(format!("{}", ROWS_PER_BLOCK - 1).as_bytes())
                    );
                    assert_eq!(fields.get(5), Some(&b"note, with comma"[..]));
                }
            }
            ReadItem::End => break,
        }
    }
    let read_in = started.elapsed();
    let read_peak = status_kib("VmHWM");

    assert_eq!(headers, 1);
    assert_eq!(records, members * ROWS_PER_BLOCK);
    assert_eq!(last_end, decompressed);
    assert!(decompressed >= GIB);
    eprintln!(
        "1 GiB gzip CSV via S3: {decompressed} bytes decompressed ({compressed} compressed, \
         {members} members), {records} records; upload {uploaded_in:?}, read {read_in:?}. \
         Peak RSS (VmHWM): {read_peak} KiB = {:.1} MiB while reading (resident before the \
         read: {before_read} KiB); {upload_peak} KiB = {:.1} MiB from test start through the \
         upload (resident right after the reset at start: {baseline} KiB)",
        read_peak as f64 / 1024.0,
        upload_peak as f64 / 1024.0,
    );
    for (phase, peak) in [("reading", read_peak), ("uploading", upload_peak)] {
        assert!(
            peak < LIMIT_KIB,
            "peak memory while {phase}: {peak} KiB, over {LIMIT_KIB} KiB"
        );
    }
}

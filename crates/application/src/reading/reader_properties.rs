//! Property test of the record reader (issue 19): the rows extraction counts
//! are the rows the loads see. Extraction reads every file from its start and
//! samples record starts; a partition (or a resumed checkpoint) reads from one
//! of those starts with a ranged read. For any bytes, any read chunking and
//! any of those starting points, the reader must give the same rows, with the
//! same numbers and offsets, as the reading from the start did.

use std::sync::Arc;

use proptest::prelude::*;
use sluice_domain::format::{CsvDialect, RecordFormat};
use sluice_domain::run::SourcePosition;

use super::{ReadItem, RecordMeta, RecordReader};
use crate::ports::{ObjectSource, SourceFile};
use crate::testing::InMemorySource;

fn files(source: &InMemorySource, contents: &[Vec<u8>]) -> Arc<[SourceFile]> {
    contents
        .iter()
        .enumerate()
        .map(|(i, content)| {
            let key = format!("in/{i:02}.dat");
            source.put(&key, content.clone());
            SourceFile {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                key,
                size: content.len() as u64,
                etag: None,
                last_modified: None,
                gzip: false,
                header: None,
                first_row: 0,
                row_count: 0,
            }
        })
        .collect()
}

/// Every row from `start` on, as `(row, file, start, end)`.
async fn rows(
    source: Arc<dyn ObjectSource>,
    files: Arc<[SourceFile]>,
    format: RecordFormat,
    header: bool,
    start: SourcePosition,
    first_row: u64,
    max: usize,
) -> Vec<RecordMeta> {
    let mut reader = RecordReader::new(source, files, format, header, start, first_row)
        .with_max_record_bytes(max);
    let mut out = Vec::new();
    loop {
        match reader.advance().await {
            Ok(ReadItem::Record(meta)) => out.push(meta),
            Ok(ReadItem::Header { .. }) => {}
            Ok(ReadItem::End) => return out,
            Err(e) => panic!("an in-memory read failed: {e}"),
        }
    }
}

fn content() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        &b"7"[..],
        b"ab",
        b",",
        b"\"",
        b"\n",
        b"\r\n",
        b"{\"id\": 1}",
        b"\xff",
        b"\xEF\xBB\xBF",
    ]);
    prop_oneof![
        prop::collection::vec(token, 0..120).prop_map(|ts| ts.concat()),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_read_from_any_record_start_sees_the_rows_extraction_counted(
        contents in prop::collection::vec(content(), 1..4),
        chunk in 1usize..64,
        csv in any::<bool>(),
        header in any::<bool>(),
        max in prop_oneof![Just(1usize << 20), 4usize..32],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let memory = InMemorySource::new(chunk);
        let files = files(&memory, &contents);
        let source: Arc<dyn ObjectSource> = Arc::new(memory);
        let format = if csv { RecordFormat::Csv(CsvDialect::default()) } else { RecordFormat::Jsonl };
        runtime.block_on(async {
            let all = rows(source.clone(), files.clone(), format, header, SourcePosition::default(), 1, max).await;
            // Row numbers are dense and in file order: the count is the last one.
            for (i, meta) in all.iter().enumerate() {
                prop_assert_eq!(meta.row, i as u64 + 1);
            }
            let step = (all.len() / 8).max(1);
            for (i, meta) in all.iter().enumerate().step_by(step) {
                let at = SourcePosition { file_index: meta.file_index, byte_offset: meta.start };
                let from_there = rows(source.clone(), files.clone(), format, header, at, meta.row, max).await;
                prop_assert_eq!(&from_there[..], &all[i..], "read from {:?}", at);
            }
            Ok(())
        })?;
    }
}

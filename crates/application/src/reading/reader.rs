//! Reads the records of a run's source in order, across files, in bounded
//! memory: one chunk of the object stream plus one record at a time.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use sluice_domain::format::{Advance, DEFAULT_MAX_RECORD_BYTES, Decoder, RecordBody, RecordFormat};
use sluice_domain::run::SourcePosition;

use crate::ports::{ByteStream, ObjectSource, SourceError, SourceFile};

/// A data record and where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// Global row number (1-based, headers excluded).
    pub row: u64,
    /// Index of its file in the run's file list.
    pub file_index: u32,
    /// Byte offset of the record in its (decompressed) file.
    pub start: u64,
    /// Byte offset just past it: where the next record starts.
    pub end: u64,
}

impl RecordMeta {
    /// The position of the record after this one.
    pub fn next_position(&self) -> SourcePosition {
        SourcePosition {
            file_index: self.file_index,
            byte_offset: self.end,
        }
    }
}

/// What [`RecordReader::advance`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadItem {
    /// The header line of a file (CSV with `header: true`), read with
    /// [`RecordReader::header_fields`]. Not a row.
    Header {
        /// Its file.
        file_index: u32,
    },
    /// A row, read with [`RecordReader::record`].
    Record(RecordMeta),
    /// No more records in the last file.
    End,
}

/// Reads records from `start` onwards through the remaining files.
pub struct RecordReader {
    source: Arc<dyn ObjectSource>,
    files: Arc<[SourceFile]>,
    format: RecordFormat,
    header: bool,
    max_record_bytes: usize,
    file_index: usize,
    offset: u64,
    stream: Option<ByteStream>,
    chunk: Bytes,
    chunk_pos: usize,
    eof: bool,
    decoder: Option<Decoder>,
    header_pending: bool,
    next_row: u64,
}

impl std::fmt::Debug for RecordReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordReader")
            .field("file_index", &self.file_index)
            .field("next_row", &self.next_row)
            .finish_non_exhaustive()
    }
}

impl RecordReader {
    /// A reader starting at `start` (a record boundary found by extraction or
    /// a checkpoint), whose first record is row `first_row`. When `header` is
    /// set, the first line of every file read from offset 0 is a header.
    pub fn new(
        source: Arc<dyn ObjectSource>,
        files: Arc<[SourceFile]>,
        format: RecordFormat,
        header: bool,
        start: SourcePosition,
        first_row: u64,
    ) -> Self {
        Self {
            source,
            files,
            format,
            header: header && matches!(format, RecordFormat::Csv(_)),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            file_index: start.file_index as usize,
            offset: start.byte_offset,
            stream: None,
            chunk: Bytes::new(),
            chunk_pos: 0,
            eof: false,
            decoder: None,
            header_pending: false,
            next_row: first_row,
        }
    }

    /// Overrides the longest record accepted (default 4 MiB).
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// Index of the file being read.
    pub fn file_index(&self) -> usize {
        self.file_index
    }

    /// The row number the next record will get.
    pub fn next_row(&self) -> u64 {
        self.next_row
    }

    async fn open_current(&mut self) -> Result<bool, SourceError> {
        let Some(file) = self.files.get(self.file_index) else {
            return Ok(false);
        };
        self.stream = Some(self.source.read(&file.key, self.offset, file.gzip).await?);
        self.decoder = Some(Decoder::new(
            self.format,
            self.offset,
            self.max_record_bytes,
        ));
        self.header_pending = self.header && self.offset == 0;
        self.chunk = Bytes::new();
        self.chunk_pos = 0;
        self.eof = false;
        Ok(true)
    }

    /// Moves to the next header or record.
    pub async fn advance(&mut self) -> Result<ReadItem, SourceError> {
        loop {
            if self.decoder.is_none() && !self.open_current().await? {
                return Ok(ReadItem::End);
            }
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(ReadItem::End);
            };
            let mut input = self.chunk.get(self.chunk_pos..).unwrap_or_default();
            let before = input.len();
            let step = decoder.advance(&mut input, self.eof);
            self.chunk_pos += before - input.len();
            match step {
                Advance::Record => {
                    let file_index = u32::try_from(self.file_index).unwrap_or(u32::MAX);
                    if self.header_pending {
                        self.header_pending = false;
                        return Ok(ReadItem::Header { file_index });
                    }
                    let rec = decoder.record();
                    let meta = RecordMeta {
                        row: self.next_row,
                        file_index,
                        start: rec.start,
                        end: rec.end,
                    };
                    self.next_row += 1;
                    return Ok(ReadItem::Record(meta));
                }
                Advance::NeedInput => {
                    let next = match self.stream.as_mut() {
                        Some(s) => s.next().await,
                        None => None,
                    };
                    match next {
                        Some(Ok(bytes)) => {
                            self.chunk = bytes;
                            self.chunk_pos = 0;
                        }
                        Some(Err(e)) => return Err(e),
                        None => {
                            self.eof = true;
                            self.chunk = Bytes::new();
                            self.chunk_pos = 0;
                        }
                    }
                }
                Advance::End => {
                    self.decoder = None;
                    self.stream = None;
                    self.file_index += 1;
                    self.offset = 0;
                }
            }
        }
    }

    /// The record found by the last [`RecordReader::advance`].
    pub fn record(&self) -> RecordBody<'_> {
        match &self.decoder {
            Some(d) => d.record().body,
            None => RecordBody::Json(&[]),
        }
    }

    /// The first bytes of the record found by the last
    /// [`RecordReader::advance`] when it could not be decoded.
    pub fn malformed_head(&self) -> &[u8] {
        self.decoder.as_ref().map_or(&[], Decoder::malformed_head)
    }

    /// The header fields after [`ReadItem::Header`] (invalid UTF-8 replaced).
    pub fn header_fields(&self) -> Vec<String> {
        match self.record() {
            RecordBody::Fields(f) => f
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect(),
            _ => Vec::new(),
        }
    }
}

//! Push decoders that turn a byte stream into records, in bounded memory.
//!
//! A decoder never sees a file or a socket: the caller feeds it the bytes it
//! read (in chunks of any size) and pulls records out. Every record carries the
//! byte offsets where it starts and ends in the stream, so a partition can later
//! resume with a ranged read from the offset after its checkpoint.
//!
//! Malformed input (an unbalanced quote, a record longer than the limit) never
//! stops a decoder: it yields a [`RecordBody::Malformed`] record for the bad row
//! and carries on with the next line.

pub mod csv;
pub mod jsonl;

use serde::{Deserialize, Serialize};

pub use self::csv::{CsvDecoder, CsvDialect};
pub use self::jsonl::JsonlDecoder;

/// Default upper bound for one record, in bytes. A longer record becomes a
/// row error and the decoder resynchronises at the next line; this is what
/// keeps memory bounded when a quote is never closed.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 4 * 1024 * 1024;

/// How many of a malformed record's first bytes a decoder keeps
/// ([`Decoder::malformed_head`]): enough to recognise the row in an error
/// report, bounded however long the record.
pub const MALFORMED_HEAD_BYTES: usize = 200;

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// A quoted field was still open at the end of the input.
    UnbalancedQuote,
    /// The record was longer than the configured limit.
    RecordTooLong,
}

impl Problem {
    /// The fixed message stored with the row error.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnbalancedQuote => "Unbalanced quote",
            Self::RecordTooLong => "Record too long",
        }
    }
}

/// The fields of one CSV record, borrowed from the decoder.
#[derive(Debug, Clone, Copy)]
pub struct FieldsRef<'a> {
    buf: &'a [u8],
    ends: &'a [usize],
}

impl<'a> FieldsRef<'a> {
    /// Wraps a buffer and the end offset of every field in it.
    pub fn new(buf: &'a [u8], ends: &'a [usize]) -> Self {
        Self { buf, ends }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True for a record without fields.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The raw bytes of field `i`.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.buf.get(self.range(i)?)
    }

    /// Where field `i` lies in [`FieldsRef::bytes`].
    pub fn range(&self, i: usize) -> Option<std::ops::Range<usize>> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? };
        Some(start..end)
    }

    /// Every field's bytes, one after the other (without separators).
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
            .get(..self.ends.last().copied().unwrap_or(0))
            .unwrap_or_default()
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// What a decoded record holds.
#[derive(Debug, Clone, Copy)]
pub enum RecordBody<'a> {
    /// The fields of a CSV record.
    Fields(FieldsRef<'a>),
    /// One JSON Lines line (not yet parsed).
    Json(&'a [u8]),
    /// A record that could not be decoded.
    Malformed(Problem),
}

/// One record and where it sits in the stream.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// Offset of the record's first byte.
    pub start: u64,
    /// Offset just past the record (and its line terminator): where the next
    /// record starts.
    pub end: u64,
    /// The record itself.
    pub body: RecordBody<'a>,
}

/// One step of a decoder.
#[derive(Debug)]
pub enum Step<'a> {
    /// A record.
    Record(Decoded<'a>),
    /// The input slice is used up; feed more (or call again with `eof = true`).
    NeedInput,
    /// End of input reached and every record emitted.
    End,
}

/// The file format of a pipeline's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// Delimited text.
    Csv(CsvDialect),
    /// One JSON object per line.
    Jsonl,
}

/// The outcome of [`Decoder::advance`], without a borrow of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// A record is ready: read it with [`Decoder::record`].
    Record,
    /// The input slice is used up.
    NeedInput,
    /// End of input reached.
    End,
}

#[derive(Debug, Clone, Copy, Default)]
struct LastRecord {
    start: u64,
    end: u64,
    problem: Option<Problem>,
}

/// Any of the decoders, chosen by [`RecordFormat`], with a two-phase API
/// (`advance`, then `record`) that lets an async caller refill its input
/// between records without holding a borrow across an await.
#[derive(Debug)]
pub struct Decoder {
    inner: Inner,
    last: LastRecord,
}

#[derive(Debug)]
enum Inner {
    Csv(CsvDecoder),
    Jsonl(JsonlDecoder),
}

impl Decoder {
    /// A decoder for `format` whose first input byte sits at `origin` in the
    /// file. At origin 0 a UTF-8 byte-order mark is skipped.
    pub fn new(format: RecordFormat, origin: u64, max_record_bytes: usize) -> Self {
        let inner = match format {
            RecordFormat::Csv(d) => Inner::Csv(CsvDecoder::new(d, origin, max_record_bytes)),
            RecordFormat::Jsonl => Inner::Jsonl(JsonlDecoder::new(origin, max_record_bytes)),
        };
        Self {
            inner,
            last: LastRecord::default(),
        }
    }

    /// Pulls the next record out of `input`, advancing it past consumed bytes.
    pub fn next<'s>(&'s mut self, input: &mut &[u8], eof: bool) -> Step<'s> {
        match &mut self.inner {
            Inner::Csv(d) => d.next(input, eof),
            Inner::Jsonl(d) => d.next(input, eof),
        }
    }

    /// Decodes the next record out of `input`; on [`Advance::Record`] the record
    /// is available from [`Decoder::record`] until the next call.
    pub fn advance(&mut self, input: &mut &[u8], eof: bool) -> Advance {
        let (outcome, last) = match self.next(input, eof) {
            Step::Record(d) => (
                Advance::Record,
                Some(LastRecord {
                    start: d.start,
                    end: d.end,
                    problem: match d.body {
                        RecordBody::Malformed(p) => Some(p),
                        _ => None,
                    },
                }),
            ),
            Step::NeedInput => (Advance::NeedInput, None),
            Step::End => (Advance::End, None),
        };
        if let Some(last) = last {
            self.last = last;
        }
        outcome
    }

    /// The record found by the last [`Decoder::advance`] that returned
    /// [`Advance::Record`].
    pub fn record(&self) -> Decoded<'_> {
        let body = match (self.last.problem, &self.inner) {
            (Some(p), _) => RecordBody::Malformed(p),
            (None, Inner::Csv(d)) => RecordBody::Fields(d.fields()),
            (None, Inner::Jsonl(d)) => RecordBody::Json(d.line()),
        };
        Decoded {
            start: self.last.start,
            end: self.last.end,
            body,
        }
    }

    /// The first bytes (at most [`MALFORMED_HEAD_BYTES`]) of the record last
    /// found, when it was [`RecordBody::Malformed`]: what the error report
    /// shows of a record that could not be decoded.
    pub fn malformed_head(&self) -> &[u8] {
        match &self.inner {
            Inner::Csv(d) => d.malformed_head(),
            Inner::Jsonl(d) => d.malformed_head(),
        }
    }

    /// Offset of the next byte the decoder expects.
    pub fn position(&self) -> u64 {
        match &self.inner {
            Inner::Csv(d) => d.position(),
            Inner::Jsonl(d) => d.position(),
        }
    }
}

/// Strips a UTF-8 byte-order mark if the stream starts at offset 0. Returns
/// the number of bytes skipped from `input` (0 or 3), or `None` when more input
/// is needed to decide.
pub(crate) fn skip_bom(input: &[u8], eof: bool) -> Option<usize> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    if input.len() >= BOM.len() {
        Some(if input.starts_with(BOM) { BOM.len() } else { 0 })
    } else if eof || !BOM.starts_with(input) {
        Some(0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_phase_api_matches_next() {
        let text = b"a,b\n1,\"open\n2,x\n";
        let mut d = Decoder::new(RecordFormat::Csv(CsvDialect::default()), 0, 1 << 20);
        let mut input: &[u8] = text;
        let mut seen = Vec::new();
        loop {
            match d.advance(&mut input, true) {
                Advance::Record => {
                    let r = d.record();
                    let body = match r.body {
                        RecordBody::Fields(f) => format!("{:?}", f.iter().collect::<Vec<_>>()),
                        RecordBody::Malformed(p) => p.message().to_owned(),
                        RecordBody::Json(_) => "json".to_owned(),
                    };
                    seen.push((body, r.start, r.end));
                }
                Advance::NeedInput => unreachable!("eof was signalled"),
                Advance::End => break,
            }
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], ("Unbalanced quote".to_owned(), 4, 12));
        assert_eq!(seen[2].1, 12);
    }
}

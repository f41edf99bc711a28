//! The invariants of the record decoders, checked on any input: shared by the
//! property tests (`tests/decoder_properties.rs`) and the fuzz targets
//! (`fuzz/fuzz_targets/`), which include this file by path.
//!
//! For any bytes, any chunking, any record limit:
//! - decoding never panics and gives the same records at the same offsets
//!   whatever the chunking (so a record never depends on where a network read
//!   happened to end);
//! - records tile the input in order, and no record holds more bytes than the
//!   limit;
//! - decoding again from any record's start or end offset (what a partition
//!   or a resumed checkpoint does with a ranged read) gives exactly the
//!   records from there on, so the rows extraction counts are the rows the
//!   loads see.

#![allow(dead_code)]

use sluice_domain::format::{
    Advance, Decoder, MALFORMED_HEAD_BYTES, Problem, RecordBody, RecordFormat,
};

/// One decoded record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    /// CSV fields.
    Fields(Vec<Vec<u8>>, u64, u64),
    /// One JSON Lines line.
    Json(Vec<u8>, u64, u64),
    /// A record that could not be decoded, with its first bytes.
    Bad(Problem, Vec<u8>, u64, u64),
}

impl Rec {
    /// Where the record starts and ends.
    pub fn span(&self) -> (u64, u64) {
        match self {
            Rec::Fields(_, s, e) | Rec::Json(_, s, e) | Rec::Bad(_, _, s, e) => (*s, *e),
        }
    }

    /// The decoded bytes the record holds.
    pub fn size(&self) -> usize {
        match self {
            Rec::Fields(f, ..) => f.iter().map(Vec::len).sum(),
            Rec::Json(l, ..) => l.len(),
            Rec::Bad(..) => 0,
        }
    }
}

/// Feeds `chunks` (the file's bytes from `origin` on) to a new decoder and
/// collects every record, calling `each` on the way without collecting when
/// `keep` is false (for measuring memory).
pub fn decode(format: RecordFormat, origin: u64, max: usize, chunks: &[&[u8]]) -> Vec<Rec> {
    let mut out = Vec::new();
    run(format, origin, max, chunks, |d| {
        let r = d.record();
        out.push(match r.body {
            RecordBody::Fields(f) => {
                Rec::Fields(f.iter().map(<[u8]>::to_vec).collect(), r.start, r.end)
            }
            RecordBody::Json(l) => Rec::Json(l.to_vec(), r.start, r.end),
            RecordBody::Malformed(p) => Rec::Bad(p, d.malformed_head().to_vec(), r.start, r.end),
        });
    });
    out
}

/// Counts the records of `chunks` without keeping them.
pub fn count(format: RecordFormat, max: usize, chunks: &[&[u8]]) -> usize {
    let mut n = 0;
    run(format, 0, max, chunks, |_| n += 1);
    n
}

fn run(
    format: RecordFormat,
    origin: u64,
    max: usize,
    chunks: &[&[u8]],
    mut each: impl FnMut(&Decoder),
) {
    let mut d = Decoder::new(format, origin, max);
    for chunk in chunks {
        let mut input: &[u8] = chunk;
        loop {
            match d.advance(&mut input, false) {
                Advance::Record => each(&d),
                Advance::NeedInput => break,
                Advance::End => panic!("End before the end of input was signalled"),
            }
        }
        assert!(input.is_empty(), "NeedInput with input left");
    }
    let mut empty: &[u8] = &[];
    loop {
        match d.advance(&mut empty, true) {
            Advance::Record => each(&d),
            Advance::NeedInput => panic!("NeedInput after the end of input"),
            Advance::End => break,
        }
    }
}

/// Splits `data` at `cuts` (any numbers: taken modulo the length, sorted).
pub fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    let mut chunks = Vec::with_capacity(at.len() + 1);
    let mut from = 0;
    for cut in at {
        chunks.push(&data[from..cut]);
        from = cut;
    }
    chunks.push(&data[from..]);
    chunks
}

/// Checks every invariant of the module comment on `data`, chunked at
/// `cuts`; `resumes` bounds how many records are decoded again from their
/// offsets (each costs a decode of the rest of the input).
pub fn check(format: RecordFormat, max: usize, data: &[u8], cuts: &[usize], resumes: usize) {
    let whole = decode(format, 0, max, &[data]);
    let chunked = decode(format, 0, max, &split(data, cuts));
    assert_eq!(chunked, whole, "chunking changed the records");
    if data.len() <= 512 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(decode(format, 0, max, &bytes), whole, "byte by byte");
    }
    let len = data.len() as u64;
    let mut previous_end = 0;
    for rec in &whole {
        let (start, end) = rec.span();
        assert!(start >= previous_end, "records overlap: {rec:?}");
        assert!(
            end > start && end <= len,
            "record outside the input: {rec:?}"
        );
        assert!(rec.size() <= max, "a record over the limit: {rec:?}");
        if let Rec::Bad(_, head, ..) = rec {
            let at = usize::try_from(start).unwrap_or(usize::MAX);
            assert!(
                !head.is_empty() && head.len() <= MALFORMED_HEAD_BYTES,
                "a malformed record keeps its first bytes, boundedly: {rec:?}"
            );
            assert_eq!(
                data.get(at..at + head.len()),
                Some(&head[..]),
                "the head is the record's own first bytes"
            );
        }
        previous_end = end;
    }
    let step = (whole.len() / resumes.max(1)).max(1);
    for (i, rec) in whole.iter().enumerate().step_by(step) {
        let (start, end) = rec.span();
        for (offset, expected) in [(start, &whole[i..]), (end, &whole[i + 1..])] {
            let Ok(at) = usize::try_from(offset) else {
                continue;
            };
            // A record starting at 0 may follow a byte-order mark that only
            // offset 0 skips: resuming there is reading the file afresh.
            if at == 0 {
                continue;
            }
            let again = decode(format, offset, max, &[&data[at..]]);
            assert_eq!(again, expected, "resumed at {offset}");
        }
    }
}

/// Splits a fuzzer's input into eight cut positions (one byte each) and the
/// data they cut; shorter inputs are data without cuts.
pub fn cuts_and_data(input: &[u8]) -> (Vec<usize>, &[u8]) {
    match input.split_first_chunk::<8>() {
        Some((cuts, data)) => (cuts.map(usize::from).to_vec(), data),
        None => (Vec::new(), input),
    }
}

//! A CSV push decoder (RFC 4180 with the usual leniency).
//!
//! Why not `csv-core`: a resumable loader must know, for every record, the exact
//! byte offsets where it starts and ends, and must tell an unbalanced quote at
//! the end of the input apart from a well-formed record, then resynchronise at
//! the next line. `csv-core` exposes neither, so this is a small explicit state
//! machine with the same quoting rules:
//!
//! * a field that starts with the quote character is quoted; inside it a doubled
//!   quote is a literal quote and delimiters and line breaks are data;
//! * a quote inside an unquoted field is a literal character;
//! * text after a closing quote is appended to the field (`"ab"c` reads `abc`);
//! * `\n`, `\r` and `\r\n` end a record; empty lines are skipped;
//! * a UTF-8 byte-order mark at offset 0 is skipped.

use super::{Decoded, FieldsRef, MALFORMED_HEAD_BYTES, Problem, RecordBody, Step};

/// The delimiter and quote characters of a CSV source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    /// Field separator, `,` by default.
    pub delimiter: u8,
    /// Quote character, `"` by default.
    pub quote: u8,
}

impl Default for CsvDialect {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
    /// Discarding the rest of a line whose record grew past the limit.
    Skipping,
}

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Decodes CSV records from bytes fed in chunks of any size.
#[derive(Debug)]
pub struct CsvDecoder {
    dialect: CsvDialect,
    state: State,
    /// Unescaped field bytes of the current record.
    buf: Vec<u8>,
    /// End offset in `buf` of each completed field.
    ends: Vec<usize>,
    /// Raw bytes of the current record, kept to resynchronise after a bad quote.
    raw: Vec<u8>,
    /// Stream offset of the next byte to be read.
    pos: u64,
    /// Stream offset where the current record started.
    record_start: u64,
    max_record_bytes: usize,
    /// Bytes to read again before new input (after a resynchronisation).
    refeed: Vec<u8>,
    refeed_at: usize,
    /// A `\r` ended the last record; a following `\n` belongs to it.
    swallow_lf: bool,
    /// How many bytes of a byte-order mark were matched at offset 0.
    bom_matched: usize,
    check_bom: bool,
    finished: bool,
    /// The first bytes of the last malformed record.
    head: Vec<u8>,
}

impl CsvDecoder {
    /// A decoder whose first input byte is at `origin` in the file.
    pub fn new(dialect: CsvDialect, origin: u64, max_record_bytes: usize) -> Self {
        Self {
            dialect,
            state: State::StartRecord,
            buf: Vec::new(),
            ends: Vec::new(),
            raw: Vec::new(),
            pos: origin,
            record_start: origin,
            max_record_bytes: max_record_bytes.max(1),
            refeed: Vec::new(),
            refeed_at: 0,
            swallow_lf: false,
            bom_matched: 0,
            check_bom: origin == 0,
            finished: false,
            head: Vec::new(),
        }
    }

    /// See [`super::Decoder::malformed_head`].
    pub fn malformed_head(&self) -> &[u8] {
        &self.head
    }

    fn keep_head(&mut self, len: usize) {
        let len = len.min(MALFORMED_HEAD_BYTES).min(self.raw.len());
        self.head.clear();
        self.head
            .extend_from_slice(self.raw.get(..len).unwrap_or_default());
    }

    /// Offset of the next byte the decoder expects.
    pub fn position(&self) -> u64 {
        self.pos - (self.refeed.len() - self.refeed_at) as u64
    }

    /// The fields of the record last returned by [`CsvDecoder::next`].
    pub fn fields(&self) -> FieldsRef<'_> {
        FieldsRef::new(&self.buf, &self.ends)
    }

    fn next_byte(&mut self, input: &mut &[u8]) -> Option<u8> {
        let b = if let Some(&b) = self.refeed.get(self.refeed_at) {
            self.refeed_at += 1;
            if self.refeed_at == self.refeed.len() {
                self.refeed.clear();
                self.refeed_at = 0;
            }
            b
        } else {
            let (&b, rest) = input.split_first()?;
            *input = rest;
            b
        };
        self.pos += 1;
        Some(b)
    }

    /// Puts `bytes` (which end exactly at the current position) back in front
    /// of the unread input.
    fn push_back(&mut self, bytes: &[u8]) {
        let mut refeed = bytes.to_vec();
        refeed.extend_from_slice(self.refeed.get(self.refeed_at..).unwrap_or_default());
        self.refeed = refeed;
        self.refeed_at = 0;
        self.pos -= bytes.len() as u64;
    }

    fn begin_record(&mut self, at: u64) {
        self.record_start = at;
        self.buf.clear();
        self.ends.clear();
        self.raw.clear();
    }

    fn emit(&mut self) -> Step<'_> {
        self.state = State::StartRecord;
        Step::Record(Decoded {
            start: self.record_start,
            end: self.pos,
            body: RecordBody::Fields(FieldsRef::new(&self.buf, &self.ends)),
        })
    }

    fn emit_malformed(&mut self, problem: Problem, end: u64) -> Step<'_> {
        if self.state != State::Skipping {
            // (A skipped record kept its head when skipping began.)
            let len = usize::try_from(end.saturating_sub(self.record_start)).unwrap_or(usize::MAX);
            self.keep_head(len);
        }
        self.state = State::StartRecord;
        Step::Record(Decoded {
            start: self.record_start,
            end,
            body: RecordBody::Malformed(problem),
        })
    }

    /// Ends the current (bad) record at its first line break and reads the
    /// bytes after it again as new records. Returns the end offset of the bad
    /// record, or `None` when the record holds no line break.
    fn resync_at_first_line_break(&mut self) -> Option<u64> {
        let nl = self.raw.iter().position(|&b| b == b'\n' || b == b'\r')?;
        let mut cut = nl + 1;
        if self.raw.get(nl) == Some(&b'\r') && self.raw.get(nl + 1) == Some(&b'\n') {
            cut += 1;
        }
        let tail = self.raw.get(cut..).unwrap_or_default().to_vec();
        self.push_back(&tail);
        Some(self.record_start + cut as u64)
    }

    /// Pulls the next record, consuming bytes from `input`. Returns
    /// [`Step::NeedInput`] only once `input` is empty.
    pub fn next<'s>(&'s mut self, input: &mut &[u8], eof: bool) -> Step<'s> {
        if self.finished {
            return Step::End;
        }
        let CsvDialect { delimiter, quote } = self.dialect;
        loop {
            // Fast path: inside a field, copy the run of ordinary bytes up to
            // the next byte that matters in one go (SIMD search), instead of
            // one state-machine step per byte. Only when no bytes are waiting
            // to be read again and no BOM or `\r\n` decision is pending.
            if self.refeed_at >= self.refeed.len() && !self.check_bom && !self.swallow_lf {
                let next_special = match self.state {
                    State::InField => memchr::memchr3(delimiter, b'\n', b'\r', input),
                    State::InQuoted => memchr::memchr(quote, input),
                    _ => Some(0),
                };
                // Never past the record limit: the byte loop detects overflow.
                let room = self.max_record_bytes.saturating_sub(self.raw.len());
                let run = next_special.unwrap_or(input.len()).min(room);
                if run > 0 {
                    let (ordinary, rest) = input.split_at(run);
                    self.buf.extend_from_slice(ordinary);
                    self.raw.extend_from_slice(ordinary);
                    self.pos += run as u64;
                    *input = rest;
                    continue;
                }
            }
            let at = self.pos;
            let Some(b) = self.next_byte(input) else {
                if !eof {
                    return Step::NeedInput;
                }
                return self.finish();
            };

            if self.check_bom {
                if at < 3
                    && self.state == State::StartRecord
                    && BOM.get(self.bom_matched) == Some(&b)
                {
                    self.bom_matched += 1;
                    if self.bom_matched == BOM.len() {
                        self.check_bom = false;
                    }
                    continue;
                }
                self.check_bom = false;
                if self.bom_matched > 0 {
                    // Not a byte-order mark after all: read those bytes as data.
                    let mut back = BOM.get(..self.bom_matched).unwrap_or_default().to_vec();
                    back.push(b);
                    self.push_back(&back);
                    self.bom_matched = 0;
                    continue;
                }
            }

            if self.swallow_lf {
                self.swallow_lf = false;
                if b == b'\n' {
                    continue;
                }
            }

            if self.state == State::StartRecord {
                if b == b'\n' || b == b'\r' {
                    // An empty line: not a record.
                    self.swallow_lf = b == b'\r';
                    continue;
                }
                self.begin_record(at);
                self.state = State::StartField;
            }

            if self.state != State::Skipping {
                self.raw.push(b);
                if self.raw.len() > self.max_record_bytes {
                    match self.resync_at_first_line_break() {
                        Some(end) => return self.emit_malformed(Problem::RecordTooLong, end),
                        None => {
                            self.keep_head(MALFORMED_HEAD_BYTES);
                            self.state = State::Skipping;
                            self.raw.clear();
                            self.buf.clear();
                            self.ends.clear();
                            continue;
                        }
                    }
                }
            }

            let terminator = b == b'\n' || b == b'\r';
            match self.state {
                State::StartRecord => {}
                State::Skipping => {
                    if terminator {
                        self.swallow_lf = b == b'\r';
                        let end = self.pos;
                        return self.emit_malformed(Problem::RecordTooLong, end);
                    }
                }
                State::StartField => {
                    if b == quote {
                        self.state = State::InQuoted;
                    } else if b == delimiter {
                        self.ends.push(self.buf.len());
                    } else if terminator {
                        self.ends.push(self.buf.len());
                        self.swallow_lf = b == b'\r';
                        return self.emit();
                    } else {
                        self.buf.push(b);
                        self.state = State::InField;
                    }
                }
                State::InField => {
                    if b == delimiter {
                        self.ends.push(self.buf.len());
                        self.state = State::StartField;
                    } else if terminator {
                        self.ends.push(self.buf.len());
                        self.swallow_lf = b == b'\r';
                        return self.emit();
                    } else {
                        self.buf.push(b);
                    }
                }
                State::InQuoted => {
                    if b == quote {
                        self.state = State::QuoteInQuoted;
                    } else {
                        self.buf.push(b);
                    }
                }
                State::QuoteInQuoted => {
                    if b == quote {
                        self.buf.push(b);
                        self.state = State::InQuoted;
                    } else if b == delimiter {
                        self.ends.push(self.buf.len());
                        self.state = State::StartField;
                    } else if terminator {
                        self.ends.push(self.buf.len());
                        self.swallow_lf = b == b'\r';
                        return self.emit();
                    } else {
                        self.buf.push(b);
                        self.state = State::InField;
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Step<'_> {
        if self.check_bom && self.bom_matched > 0 {
            // The input was a lone prefix of a byte-order mark: it is data.
            self.check_bom = false;
            let back = BOM.get(..self.bom_matched).unwrap_or_default().to_vec();
            self.bom_matched = 0;
            self.push_back(&back);
            let mut empty: &[u8] = &[];
            return self.next(&mut empty, true);
        }
        match self.state {
            State::StartRecord => {
                self.finished = true;
                Step::End
            }
            State::Skipping => {
                let end = self.pos;
                self.emit_malformed(Problem::RecordTooLong, end)
            }
            State::StartField | State::InField | State::QuoteInQuoted => {
                self.ends.push(self.buf.len());
                self.emit()
            }
            State::InQuoted => {
                let end = self.resync_at_first_line_break().unwrap_or(self.pos);
                self.emit_malformed(Problem::UnbalancedQuote, end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DEFAULT_MAX_RECORD_BYTES;

    #[derive(Debug, PartialEq)]
    #[allow(dead_code)]
    enum Rec {
        F(Vec<String>, u64, u64),
        Bad(Problem, u64, u64),
    }

    fn decode_chunks(chunks: &[&[u8]], dialect: CsvDialect, origin: u64, max: usize) -> Vec<Rec> {
        let mut d = CsvDecoder::new(dialect, origin, max);
        let mut out = Vec::new();
        let mut i = 0;
        let mut input: &[u8] = chunks.first().copied().unwrap_or_default();
        loop {
            let eof = i + 1 >= chunks.len();
            match d.next(&mut input, eof) {
                Step::Record(r) => out.push(match r.body {
                    RecordBody::Fields(f) => Rec::F(
                        f.iter()
                            .map(|x| String::from_utf8_lossy(x).into_owned())
                            .collect(),
                        r.start,
                        r.end,
                    ),
                    RecordBody::Malformed(p) => Rec::Bad(p, r.start, r.end),
                    RecordBody::Json(_) => unreachable!(),
                }),
                Step::NeedInput => {
                    i += 1;
                    input = chunks.get(i).copied().unwrap_or_default();
                }
                Step::End => break,
            }
        }
        out
    }

    fn decode(text: &str) -> Vec<Rec> {
        decode_chunks(
            &[text.as_bytes()],
            CsvDialect::default(),
            0,
            DEFAULT_MAX_RECORD_BYTES,
        )
    }

    fn fields(text: &str) -> Vec<Vec<String>> {
        decode(text)
            .into_iter()
            .map(|r| match r {
                Rec::F(f, ..) => f,
                Rec::Bad(p, ..) => vec![format!("BAD:{p:?}")],
            })
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn plain_records_with_offsets() {
        assert_eq!(
            decode("a,b\nc,d\n"),
            vec![Rec::F(s(&["a", "b"]), 0, 4), Rec::F(s(&["c", "d"]), 4, 8)]
        );
        // No final newline.
        assert_eq!(
            decode("a,b\nc,d"),
            vec![Rec::F(s(&["a", "b"]), 0, 4), Rec::F(s(&["c", "d"]), 4, 7)]
        );
    }

    #[test]
    fn quotes_escapes_and_embedded_separators() {
        assert_eq!(
            fields("\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\"\n"),
            vec![s(&["a,b", "say \"hi\"", "line\nbreak"])]
        );
        assert_eq!(fields("ab\"c,d\n"), vec![s(&["ab\"c", "d"])]);
        assert_eq!(fields("\"ab\"c,d\n"), vec![s(&["abc", "d"])]);
        assert_eq!(fields(",,\n"), vec![s(&["", "", ""])]);
        assert_eq!(fields("\"\",x\n"), vec![s(&["", "x"])]);
        assert_eq!(fields("a,\n"), vec![s(&["a", ""])]);
    }

    #[test]
    fn crlf_bom_and_empty_lines() {
        assert_eq!(
            decode("\u{feff}a,b\r\n\r\nc,d\r\n"),
            // A record ending in `\r` ends there; the `\n` after it reads as an empty line.
            vec![Rec::F(s(&["a", "b"]), 3, 7), Rec::F(s(&["c", "d"]), 10, 14)]
        );
        assert_eq!(fields("a\rb\r"), vec![s(&["a"]), s(&["b"])]);
        assert_eq!(fields("\n\n\n"), Vec::<Vec<String>>::new());
        // A BOM is only skipped at offset 0.
        let recs = decode_chunks(
            &["\u{feff}x\n".as_bytes()],
            CsvDialect::default(),
            10,
            DEFAULT_MAX_RECORD_BYTES,
        );
        assert_eq!(recs, vec![Rec::F(s(&["\u{feff}x"]), 10, 15)]);
        // Something that only starts like a BOM is data.
        let recs = decode_chunks(&[b"\xEF\xBBz\n"], CsvDialect::default(), 0, 100);
        assert_eq!(
            recs,
            vec![Rec::F(
                vec![String::from_utf8_lossy(b"\xEF\xBBz").into_owned()],
                0,
                4
            )]
        );
    }

    #[test]
    fn other_delimiter_and_quote() {
        let d = CsvDialect {
            delimiter: b';',
            quote: b'\'',
        };
        let recs = decode_chunks(&[b"'a;b';c\n"], d, 0, 100);
        assert_eq!(recs, vec![Rec::F(s(&["a;b", "c"]), 0, 8)]);
    }

    #[test]
    fn any_chunking_gives_the_same_records() {
        let text = "\u{feff}id,name\r\n1,\"multi\nline, \"\"quoted\"\"\"\r\n\r\n2,plain\n3,\"x\"\n";
        let whole = decode(text);
        let bytes = text.as_bytes();
        for size in 1..bytes.len() {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            let got = decode_chunks(&chunks, CsvDialect::default(), 0, DEFAULT_MAX_RECORD_BYTES);
            assert_eq!(got, whole, "chunk size {size}");
        }
    }

    #[test]
    fn resuming_at_an_end_offset_reads_the_following_records() {
        let text = "a,b\r\n\"q\nq\",c\r\nlast,x";
        let all = decode(text);
        for (i, rec) in all.iter().enumerate() {
            let Rec::F(_, _, end) = rec else {
                panic!("unexpected {rec:?}")
            };
            let tail = text
                .as_bytes()
                .get(usize::try_from(*end).unwrap_or(0)..)
                .unwrap_or_default();
            let resumed = decode_chunks(&[tail], CsvDialect::default(), *end, 100);
            assert_eq!(resumed, all[i + 1..].to_vec());
        }
    }

    impl Clone for Rec {
        fn clone(&self) -> Self {
            match self {
                Rec::F(f, a, b) => Rec::F(f.clone(), *a, *b),
                Rec::Bad(p, a, b) => Rec::Bad(*p, *a, *b),
            }
        }
    }

    /// Random inputs made of the bytes that matter: any chunking, including
    /// one byte at a time (which defeats the bulk fast path), and any record
    /// limit give the same records at the same offsets.
    #[test]
    fn random_inputs_decode_the_same_in_any_chunking() {
        let alphabet: &[&[u8]] = &[
            b"a",
            b"bc",
            b",",
            b"\"",
            b"\n",
            b"\r",
            b"\r\n",
            "é".as_bytes(),
            b"\xEF\xBB\xBF",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..2_000 {
            let len = (next() % 40) as usize;
            let mut text = Vec::new();
            for _ in 0..len {
                text.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            for max in [DEFAULT_MAX_RECORD_BYTES, 8] {
                let whole = decode_chunks(&[&text], CsvDialect::default(), 0, max);
                for size in [1, 2, 3, 7] {
                    let chunks: Vec<&[u8]> = text.chunks(size).collect();
                    let got = decode_chunks(&chunks, CsvDialect::default(), 0, max);
                    assert_eq!(
                        got,
                        whole,
                        "case {case}, max {max}, chunk {size}, input {:?}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
    }

    #[test]
    fn unbalanced_quote_is_a_row_error_and_reading_goes_on() {
        let text = "1,\"bob\n2,alice\n3,carol\n";
        assert_eq!(
            decode(text),
            vec![
                Rec::Bad(Problem::UnbalancedQuote, 0, 7),
                Rec::F(s(&["2", "alice"]), 7, 15),
                Rec::F(s(&["3", "carol"]), 15, 23),
            ]
        );
        // On the last line, with no line break left.
        assert_eq!(
            decode("1,ok\n2,\"open"),
            vec![
                Rec::F(s(&["1", "ok"]), 0, 5),
                Rec::Bad(Problem::UnbalancedQuote, 5, 12)
            ]
        );
    }

    #[test]
    fn records_over_the_limit_are_row_errors_in_bounded_memory() {
        // A single overlong line.
        let long = format!("1,{}\n2,b\n", "x".repeat(50));
        let recs = decode_chunks(&[long.as_bytes()], CsvDialect::default(), 0, 16);
        assert_eq!(
            recs,
            vec![
                Rec::Bad(Problem::RecordTooLong, 0, 53),
                Rec::F(s(&["2", "b"]), 53, 57)
            ]
        );
        // An open quote that would swallow the rest of a big input.
        let mut text = String::from("1,\"never closed\n");
        for i in 0..100 {
            text.push_str(&format!("{i},row\n"));
        }
        let recs = decode_chunks(&[text.as_bytes()], CsvDialect::default(), 0, 64);
        assert_eq!(recs.first(), Some(&Rec::Bad(Problem::RecordTooLong, 0, 16)));
        let good = recs.iter().filter(|r| matches!(r, Rec::F(..))).count();
        assert_eq!(good, 100);
    }
}

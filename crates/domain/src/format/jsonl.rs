//! A JSON Lines push decoder: one record per non-blank line.
//!
//! Lines are handed out unparsed; validation parses them against the schema.
//! A `\r` before the `\n` is dropped, blank lines are skipped, a byte-order mark
//! at offset 0 is skipped, and a line longer than the limit becomes a
//! [`Problem::RecordTooLong`] record without ever being held in memory whole.

use super::{Decoded, MALFORMED_HEAD_BYTES, Problem, RecordBody, Step, skip_bom};

/// Decodes JSON Lines records from bytes fed in chunks of any size.
#[derive(Debug)]
pub struct JsonlDecoder {
    line: Vec<u8>,
    pos: u64,
    line_start: u64,
    in_line: bool,
    too_long: bool,
    max_record_bytes: usize,
    check_bom: bool,
    /// Bytes read while deciding about a byte-order mark, not yet decoded.
    held: Vec<u8>,
    held_at: usize,
    finished: bool,
    /// The first bytes of the last line over the limit.
    head: Vec<u8>,
}

impl JsonlDecoder {
    /// A decoder whose first input byte is at `origin` in the file.
    pub fn new(origin: u64, max_record_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            pos: origin,
            line_start: origin,
            in_line: false,
            too_long: false,
            max_record_bytes: max_record_bytes.max(1),
            check_bom: origin == 0,
            held: Vec::new(),
            held_at: 0,
            finished: false,
            head: Vec::new(),
        }
    }

    /// See [`super::Decoder::malformed_head`].
    pub fn malformed_head(&self) -> &[u8] {
        &self.head
    }

    /// Offset of the next byte the decoder expects.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The line of the record last returned by [`JsonlDecoder::next`].
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    fn next_byte(&mut self, input: &mut &[u8]) -> Option<u8> {
        if let Some(&b) = self.held.get(self.held_at) {
            self.held_at += 1;
            return Some(b);
        }
        let (&b, rest) = input.split_first()?;
        *input = rest;
        Some(b)
    }

    /// Pulls the next record, consuming bytes from `input`. Returns
    /// [`Step::NeedInput`] only once `input` is empty.
    pub fn next<'s>(&'s mut self, input: &mut &[u8], eof: bool) -> Step<'s> {
        if self.finished {
            return Step::End;
        }
        if self.check_bom {
            while self.held.len() < 3 {
                let Some((&b, rest)) = input.split_first() else {
                    break;
                };
                *input = rest;
                self.held.push(b);
            }
            match skip_bom(&self.held, eof) {
                None => return Step::NeedInput,
                Some(skip) => {
                    self.check_bom = false;
                    self.held_at = skip;
                    self.pos += skip as u64;
                }
            }
        }
        loop {
            let Some(b) = self.next_byte(input) else {
                if !eof {
                    return Step::NeedInput;
                }
                if self.in_line {
                    self.in_line = false;
                    if self.is_blank() {
                        continue;
                    }
                    let end = self.pos;
                    return self.emit(end);
                }
                self.finished = true;
                return Step::End;
            };
            let at = self.pos;
            self.pos += 1;
            if !self.in_line {
                self.in_line = true;
                self.line_start = at;
                self.line.clear();
                self.too_long = false;
            }
            if b == b'\n' {
                self.in_line = false;
                if self.is_blank() {
                    continue;
                }
                let end = self.pos;
                return self.emit(end);
            }
            if !self.too_long {
                self.line.push(b);
                if self.line.len() > self.max_record_bytes {
                    self.too_long = true;
                    self.head.clear();
                    let head = self.line.get(..MALFORMED_HEAD_BYTES).unwrap_or(&self.line);
                    self.head.extend_from_slice(head);
                    self.line.clear();
                }
            }
        }
    }

    fn is_blank(&mut self) -> bool {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        !self.too_long && self.line.iter().all(u8::is_ascii_whitespace)
    }

    fn emit(&mut self, end: u64) -> Step<'_> {
        let body = if self.too_long {
            RecordBody::Malformed(Problem::RecordTooLong)
        } else {
            RecordBody::Json(&self.line)
        };
        Step::Record(Decoded {
            start: self.line_start,
            end,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_chunks(chunks: &[&[u8]], origin: u64, max: usize) -> Vec<(String, u64, u64)> {
        let mut d = JsonlDecoder::new(origin, max);
        let mut out = Vec::new();
        let mut i = 0;
        let mut input: &[u8] = chunks.first().copied().unwrap_or_default();
        loop {
            let eof = i + 1 >= chunks.len();
            match d.next(&mut input, eof) {
                Step::Record(r) => out.push((
                    match r.body {
                        RecordBody::Json(l) => String::from_utf8_lossy(l).into_owned(),
                        RecordBody::Malformed(p) => format!("BAD:{p:?}"),
                        RecordBody::Fields(_) => unreachable!(),
                    },
                    r.start,
                    r.end,
                )),
                Step::NeedInput => {
                    i += 1;
                    input = chunks.get(i).copied().unwrap_or_default();
                }
                Step::End => break,
            }
        }
        out
    }

    #[test]
    fn lines_blank_lines_crlf_and_bom() {
        let text = "\u{feff}{\"a\":1}\r\n\n  \n{\"a\":2}";
        let want = vec![
            ("{\"a\":1}".to_string(), 3, 12),
            ("{\"a\":2}".to_string(), 16, 23),
        ];
        assert_eq!(decode_chunks(&[text.as_bytes()], 0, 1000), want);
        let bytes = text.as_bytes();
        for size in 1..bytes.len() {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(decode_chunks(&chunks, 0, 1000), want, "chunk size {size}");
        }
    }

    #[test]
    fn short_inputs_and_origin() {
        assert_eq!(decode_chunks(&[b"\n"], 0, 10), vec![]);
        assert_eq!(decode_chunks(&[b"1"], 0, 10), vec![("1".to_string(), 0, 1)]);
        assert_eq!(
            decode_chunks(&[b"\n\n{}\n"], 0, 10),
            vec![("{}".to_string(), 2, 5)]
        );
        assert_eq!(
            decode_chunks(&[b"{}\n"], 40, 10),
            vec![("{}".to_string(), 40, 43)]
        );
    }

    #[test]
    fn overlong_lines_are_row_errors() {
        let text = format!("{{\"a\":\"{}\"}}\n{{}}\n", "x".repeat(100));
        let got = decode_chunks(&[text.as_bytes()], 0, 20);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "BAD:RecordTooLong");
        assert_eq!(got[1].0, "{}");
    }
}

//! `COPY … FROM STDIN` in PostgreSQL's text format (or its binary format,
//! written by [`super::binary`]), streamed in chunks so a batch is never
//! held twice in memory.

use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use tokio_postgres::{CopyInSink, Transaction};

/// Bytes buffered before they are sent to the server.
const CHUNK: usize = 256 * 1024;

/// One running COPY: fields are appended row by row, then [`CopyIn::finish`].
pub(crate) struct CopyIn {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    buf: BytesMut,
    row_started: bool,
    binary: bool,
}

impl CopyIn {
    /// Starts `sql` (a `COPY … FROM STDIN` statement) inside `tx`.
    pub(crate) async fn start(
        tx: &Transaction<'_>,
        sql: &str,
    ) -> Result<Self, tokio_postgres::Error> {
        let sink = tx.copy_in::<_, Bytes>(sql).await?;
        Ok(Self {
            sink: Box::pin(sink),
            buf: BytesMut::with_capacity(CHUNK),
            row_started: false,
            binary: false,
        })
    }

    /// Starts `sql` (a `COPY … FROM STDIN WITH (FORMAT binary)` statement)
    /// inside `tx`; rows are written into [`CopyIn::buffer`] with the
    /// encoders of [`super::binary`], each followed by [`CopyIn::row_done`].
    pub(crate) async fn start_binary(
        tx: &Transaction<'_>,
        sql: &str,
    ) -> Result<Self, tokio_postgres::Error> {
        let mut copy = Self::start(tx, sql).await?;
        copy.binary = true;
        copy.buf.put_slice(super::binary::HEADER);
        Ok(copy)
    }

    /// The buffer a binary row is written into.
    pub(crate) fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// After a binary row: sends a chunk when enough is buffered.
    pub(crate) async fn row_done(&mut self) -> Result<(), tokio_postgres::Error> {
        if self.buf.len() >= CHUNK {
            let chunk = self.buf.split().freeze();
            self.sink.send(chunk).await?;
        }
        Ok(())
    }

    fn separate(&mut self) {
        if self.row_started {
            self.buf.put_u8(b'\t');
        }
        self.row_started = true;
    }

    /// A text field; `None` is SQL NULL.
    pub(crate) fn text(&mut self, value: Option<&str>) {
        self.separate();
        match value {
            None => self.buf.put_slice(b"\\N"),
            Some(v) => escape_into(&mut self.buf, v),
        }
    }

    /// A text field known to hold no byte that needs escaping (see
    /// [`needs_escaping`]).
    pub(crate) fn plain(&mut self, value: Option<&str>) {
        self.separate();
        match value {
            None => self.buf.put_slice(b"\\N"),
            Some(v) => self.buf.put_slice(v.as_bytes()),
        }
    }

    /// An integer field.
    pub(crate) fn int(&mut self, value: i64) {
        use std::fmt::Write as _;
        self.separate();
        // Formats straight into the buffer: no allocation per row.
        let _ = write!(FmtBuf(&mut self.buf), "{value}");
    }

    /// A `bytea` field, in hex form.
    pub(crate) fn bytea(&mut self, value: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.separate();
        // `\\x` in COPY text is `\x` after unescaping: bytea's hex input.
        self.buf.put_slice(b"\\\\x");
        for b in value {
            self.buf.put_u8(HEX[usize::from(b >> 4)]);
            self.buf.put_u8(HEX[usize::from(b & 0x0f)]);
        }
    }

    /// Ends the row; sends a chunk when enough is buffered.
    pub(crate) async fn end_row(&mut self) -> Result<(), tokio_postgres::Error> {
        self.buf.put_u8(b'\n');
        self.row_started = false;
        if self.buf.len() >= CHUNK {
            let chunk = self.buf.split().freeze();
            self.sink.send(chunk).await?;
        }
        Ok(())
    }

    /// Sends the rest and ends the COPY; returns the rows copied.
    pub(crate) async fn finish(mut self) -> Result<u64, tokio_postgres::Error> {
        if self.binary {
            self.buf.put_i16(super::binary::TRAILER);
        }
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.sink.send(chunk).await?;
        }
        self.sink.as_mut().finish().await
    }
}

/// `fmt::Write` into a `BytesMut`.
struct FmtBuf<'a>(&'a mut BytesMut);

impl std::fmt::Write for FmtBuf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Whether `text` holds a byte that [`escape_into`] changes. One SIMD pass
/// over a whole batch lets the writer copy every value as it is when none does.
pub(crate) fn needs_escaping(text: &str) -> bool {
    let b = text.as_bytes();
    memchr::memchr3(b'\\', b'\t', b'\n', b).is_some() || memchr::memchr2(b'\r', 0, b).is_some()
}

/// Escapes a value for COPY text format: backslash, tab, newline and
/// carriage return are escaped; NUL, which PostgreSQL text cannot hold, becomes
/// U+FFFD. Multi-byte UTF-8 sequences never contain these ASCII bytes, so a
/// byte-wise pass is safe.
pub(crate) fn escape_into(buf: &mut BytesMut, value: &str) {
    let mut rest = value.as_bytes();
    // Copy runs of ordinary bytes at once; most values have no special byte.
    while let Some(i) = rest
        .iter()
        .position(|&b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r' | 0))
    {
        let (run, tail) = rest.split_at(i);
        buf.put_slice(run);
        let Some((&special, after)) = tail.split_first() else {
            break;
        };
        match special {
            b'\\' => buf.put_slice(b"\\\\"),
            b'\t' => buf.put_slice(b"\\t"),
            b'\n' => buf.put_slice(b"\\n"),
            b'\r' => buf.put_slice(b"\\r"),
            _ => buf.put_slice("\u{FFFD}".as_bytes()),
        }
        rest = after;
    }
    buf.put_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_copy_specials() {
        let mut buf = BytesMut::new();
        escape_into(&mut buf, "a\\b\tc\nd\re\0f é");
        assert_eq!(&buf[..], "a\\\\b\\tc\\nd\\re\u{FFFD}f é".as_bytes());
    }

    #[test]
    fn plain_values_are_exactly_those_escaping_leaves_alone() {
        for v in [
            "plain", "", "é ü", "a\\b", "a\tb", "a\nb", "a\rb", "a\0b", "\\N",
        ] {
            let mut escaped = BytesMut::new();
            escape_into(&mut escaped, v);
            assert_eq!(needs_escaping(v), &escaped[..] != v.as_bytes(), "{v:?}");
        }
    }

    #[test]
    fn null_marker_is_not_an_escaped_value() {
        let mut buf = BytesMut::new();
        escape_into(&mut buf, "\\N");
        assert_eq!(&buf[..], b"\\\\N");
    }
}

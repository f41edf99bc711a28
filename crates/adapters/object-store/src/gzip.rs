//! Byte-stream plumbing for reads: gunzip on the fly, skip to an offset, and
//! cut chunks to a bounded size.
//!
//! Memory stays bounded by construction: the decoder holds its window and one
//! input chunk, and every output chunk is at most `max_chunk` bytes, however
//! well the data compresses (a 16 KiB network chunk of repeated rows can
//! inflate to 16 MiB). At most [`INFLATED_AHEAD`] output chunks wait for the
//! reader.

use std::io::{self, BufRead, Read};

use bytes::{Buf, Bytes, BytesMut};
use flate2::bufread::MultiGzDecoder;
use futures::StreamExt;
use sluice_application::ports::{ByteStream, SourceError};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// Decompressed chunks that may wait for the reader: inflating runs ahead of
/// the parser by this many chunks (4 × 64 KiB by default), no further.
const INFLATED_AHEAD: usize = 4;

/// Decompresses a gzip stream (every member of a multi-member file, as
/// `gzip -d` and `cat a.gz b.gz` expect) into chunks of at most `max_chunk`.
///
/// Inflating is CPU work: it runs on a blocking thread of its own, which
/// pulls the compressed stream and hands decompressed chunks over a bounded
/// channel, so it overlaps with whatever parses them instead of taking turns
/// with it on one worker thread (an engine with one worker has one). The
/// thread stops when the stream ends, fails, or the reader drops the stream.
pub(crate) fn gunzip(raw: ByteStream, key: &str, max_chunk: usize) -> ByteStream {
    let Ok(runtime) = Handle::try_current() else {
        let e = SourceError::Other(format!("`{key}`: gzip needs a Tokio runtime to read"));
        return futures::stream::iter([Err(e)]).boxed();
    };
    let key = key.to_owned();
    let max = max_chunk.max(1);
    let (tx, rx) = mpsc::channel(INFLATED_AHEAD);
    let blocking = runtime.clone();
    // Not awaited: the thread reports through `tx`, and ends with it.
    drop(blocking.spawn_blocking(move || inflate(raw, &runtime, &tx, max, &key)));
    futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

type Inflated = mpsc::Sender<Result<Bytes, SourceError>>;

/// The blocking thread's loop: fill a chunk, send it, until the end.
fn inflate(raw: ByteStream, runtime: &Handle, out: &Inflated, max: usize, key: &str) {
    let mut decoder = MultiGzDecoder::new(Compressed {
        raw,
        runtime,
        out,
        chunk: Bytes::new(),
        ended: false,
    });
    loop {
        let mut buf = BytesMut::zeroed(max);
        let (filled, result) = fill(&mut decoder, &mut buf);
        if filled > 0 {
            buf.truncate(filled);
            if out.blocking_send(Ok(buf.freeze())).is_err() {
                return; // the reader is gone
            }
        }
        match result {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) if e.get_ref().is_some_and(|i| i.is::<ReaderGone>()) => return,
            Err(e) => {
                let e = match source_error(&e) {
                    // An error of the underlying read, passed through untouched.
                    Some(inner) => inner,
                    None => SourceError::Other(format!("`{key}` is not valid gzip data ({e})")),
                };
                drop(out.blocking_send(Err(e)));
                return;
            }
        }
    }
}

/// Reads into `buf` until it is full (`Ok(true)`: more may follow) or the
/// data ends (`Ok(false)`); answers how many bytes it filled either way.
fn fill(decoder: &mut impl Read, buf: &mut [u8]) -> (usize, io::Result<bool>) {
    let mut filled = 0;
    while filled < buf.len() {
        match decoder.read(&mut buf[filled..]) {
            Ok(0) => return (filled, Ok(false)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(true))
}

/// The reader dropped the stream while the thread waited for input.
#[derive(Debug)]
struct ReaderGone;

impl std::fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reader is gone")
    }
}

impl std::error::Error for ReaderGone {}

/// The compressed stream as a blocking `BufRead`: each network chunk is
/// awaited on the runtime, from the blocking thread, and lent to the decoder
/// as it is (no copy).
struct Compressed<'a> {
    raw: ByteStream,
    runtime: &'a Handle,
    out: &'a Inflated,
    chunk: Bytes,
    ended: bool,
}

impl Read for Compressed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Compressed<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.chunk.is_empty() && !self.ended {
            let Self {
                raw, out, runtime, ..
            } = self;
            let next = runtime.block_on(async {
                tokio::select! {
                    next = raw.next() => Some(next),
                    () = out.closed() => None,
                }
            });
            match next {
                None => return Err(io::Error::other(ReaderGone)),
                Some(None) => self.ended = true,
                Some(Some(Ok(chunk))) => self.chunk = chunk,
                Some(Some(Err(e))) => return Err(io::Error::other(e)),
            }
        }
        Ok(&self.chunk)
    }

    fn consume(&mut self, amount: usize) {
        self.chunk.advance(amount.min(self.chunk.len()));
    }
}

fn source_error(e: &io::Error) -> Option<SourceError> {
    e.get_ref()?.downcast_ref::<SourceError>().cloned()
}

/// Drops the first `offset` bytes of `stream`. Reaching the end exactly at
/// `offset` gives an empty stream; ending before it is an error, since the
/// offset came from an earlier read of the same file and the file must have
/// changed since.
pub(crate) fn skip(stream: ByteStream, offset: u64, key: &str) -> ByteStream {
    if offset == 0 {
        return stream;
    }
    struct State {
        inner: ByteStream,
        remaining: u64,
        key: String,
        done: bool,
    }
    let state = State {
        inner: stream,
        remaining: offset,
        key: key.to_owned(),
        done: false,
    };
    futures::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            match st.inner.next().await {
                Some(Ok(mut chunk)) => {
                    let len = chunk.len() as u64;
                    if st.remaining >= len {
                        st.remaining -= len;
                        continue;
                    }
                    // remaining < len <= usize::MAX, so the cast is lossless.
                    let rest = chunk.split_off(st.remaining as usize);
                    st.remaining = 0;
                    return Some((Ok(rest), st));
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None if st.remaining > 0 => {
                    st.done = true;
                    let err = SourceError::past_end(&st.key, offset);
                    return Some((Err(err), st));
                }
                None => return None,
            }
        }
    })
    .boxed()
}

/// Splits chunks longer than `max_chunk` (zero-copy), so a consumer's read
/// buffer and our memory use do not depend on the network's chunking.
pub(crate) fn rechunk(stream: ByteStream, max_chunk: usize) -> ByteStream {
    let max = max_chunk.max(1);
    stream
        .flat_map(move |item| {
            let pieces: Vec<Result<Bytes, SourceError>> = match item {
                Ok(mut chunk) if chunk.len() > max => {
                    let mut out = Vec::with_capacity(chunk.len().div_ceil(max));
                    while chunk.len() > max {
                        out.push(Ok(chunk.split_to(max)));
                    }
                    out.push(Ok(chunk));
                    out
                }
                other => vec![other],
            };
            futures::stream::iter(pieces)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures::TryStreamExt;

    use super::*;

    fn stream_of(chunks: Vec<&'static [u8]>) -> ByteStream {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
    }

    async fn collect(s: ByteStream) -> Result<Vec<u8>, SourceError> {
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok(parts.concat())
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    #[tokio::test]
    async fn skip_across_chunks_and_to_the_exact_end() {
        let s = skip(stream_of(vec![b"abc", b"def", b"gh"]), 4, "k");
        assert_eq!(collect(s).await, Ok(b"efgh".to_vec()));
        let s = skip(stream_of(vec![b"abc"]), 3, "k");
        assert_eq!(collect(s).await, Ok(Vec::new()));
        let s = skip(stream_of(vec![b"abc"]), 4, "k");
        assert!(collect(s).await.is_err());
    }

    #[tokio::test]
    async fn rechunk_bounds_every_chunk() {
        let s = rechunk(stream_of(vec![b"abcdefg", b"h"]), 3);
        let parts: Vec<Bytes> = s.try_collect().await.expect("collect");
        assert_eq!(parts, vec!["abc", "def", "g", "h"]);
    }

    #[tokio::test]
    async fn gunzip_reads_every_member() {
        let mut data = gz(b"first\n");
        data.extend(gz(b"second\n"));
        let raw = futures::stream::iter(
            data.chunks(5)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let parts: Vec<Bytes> = gunzip(raw, "k", 4).try_collect().await.expect("gunzip");
        assert!(parts.iter().all(|p| p.len() <= 4), "{parts:?}");
        assert_eq!(parts.concat(), b"first\nsecond\n");
    }

    /// Dropping the decompressed stream stops the inflating thread even while
    /// it waits for compressed input that never comes: it drops the
    /// compressed stream (and so the connection under it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_stream_stops_the_inflating_thread() {
        use tokio::sync::oneshot;
        struct Dropped(Option<oneshot::Sender<()>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let (dropped_tx, dropped) = oneshot::channel();
        let (waiting_tx, waiting) = oneshot::channel();
        let guard = Dropped(Some(dropped_tx));
        let mut waiting_tx = Some(waiting_tx);
        let data = gz(b"a,b\n1,2\n");
        let half = Bytes::copy_from_slice(&data[..data.len() / 2]);
        // Half a gzip file, then input that never comes.
        let never = futures::stream::poll_fn(move |_| {
            let _keep = &guard;
            if let Some(tx) = waiting_tx.take() {
                let _ = tx.send(());
            }
            std::task::Poll::Pending
        });
        let raw = futures::stream::iter([Ok(half)]).chain(never).boxed();
        let s = gunzip(raw, "k", 64);
        waiting.await.expect("the thread asks for more input");
        drop(s);
        dropped.await.expect("the compressed stream is dropped");
    }

    #[tokio::test]
    async fn gunzip_reports_bad_data_and_passes_source_errors() {
        let raw = stream_of(vec![b"not gzip at all"]);
        let Err(SourceError::Other(m)) = collect(gunzip(raw, "a.gz", 64)).await else {
            panic!("error expected")
        };
        assert!(m.contains("a.gz"), "{m}");
        let raw = futures::stream::iter(vec![Err(SourceError::Unreachable("gone".into()))]).boxed();
        assert_eq!(
            collect(gunzip(raw, "a.gz", 64)).await,
            Err(SourceError::Unreachable("gone".into()))
        );
    }
}

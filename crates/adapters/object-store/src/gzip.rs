//! Byte-stream plumbing for reads: gunzip on the fly, skip to an offset, and
//! cut chunks to a bounded size.
//!
//! Memory stays bounded by construction: the decoder holds its window and one
//! input chunk, and every output chunk is at most `max_chunk` bytes, however
//! well the data compresses (a 16 KiB network chunk of repeated rows can
//! inflate to 16 MiB).

use std::io;

use async_compression::tokio::bufread::GzipDecoder;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sluice_application::ports::{ByteStream, SourceError};
use tokio_util::io::{ReaderStream, StreamReader};

/// Decompresses a gzip stream (every member of a multi-member file, as
/// `gzip -d` and `cat a.gz b.gz` expect) into chunks of at most `max_chunk`.
pub(crate) fn gunzip(raw: ByteStream, key: &str, max_chunk: usize) -> ByteStream {
    let key = key.to_owned();
    let reader = StreamReader::new(raw.map_err(io::Error::other));
    let mut decoder = GzipDecoder::new(reader);
    decoder.multiple_members(true);
    ReaderStream::with_capacity(decoder, max_chunk.max(1))
        .map_err(move |e| match source_error(&e) {
            // An error of the underlying read, passed through untouched.
            Some(inner) => inner,
            None => SourceError::Other(format!("`{key}` is not valid gzip data ({e})")),
        })
        .boxed()
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
        let out = collect(gunzip(raw, "k", 4)).await.expect("gunzip");
        assert_eq!(out, b"first\nsecond\n");
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

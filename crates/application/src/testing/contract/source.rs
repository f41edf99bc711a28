//! The contract of [`ObjectSource`]: what every implementation promises, run
//! against the in-memory fake here and against the object-store adapter (a
//! local directory and a bucket on the S3 test server) in
//! `sluice-object-store`:
//!
//! ```text
//! sluice_application::source_contract_tests!(async { make_fresh_fixture().await });
//! ```
//!
//! The expression must evaluate to a [`SourceFixture`] on a fresh, empty
//! store. Each contract becomes one `#[tokio::test(flavor = "multi_thread")]`.

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::ports::{ObjectInfo, ObjectSource, SourceError};

/// A store under test, and a way to lay files out in it that does not go
/// through the port (the port cannot write).
#[async_trait]
pub trait SourceFixture: Send + Sync {
    /// The store, through the port, as the engine gets it.
    fn source(&self) -> Arc<dyn ObjectSource>;

    /// Writes (or replaces) the object at `key`.
    async fn put(&self, key: &str, content: Bytes);
}

/// Generates one test per contract, each on a fresh fixture from `$make`.
#[macro_export]
macro_rules! source_contract_tests {
    ($make:expr) => {
        $crate::source_contract_tests!(@tests $make;
            listing_is_in_byte_order_with_sizes_and_etags,
            a_prefix_is_whole_key_segments,
            a_prefix_with_nothing_under_it_lists_nothing,
            a_long_listing_streams_as_it_lists,
            globs_are_relative_to_the_prefix_and_star_stays_in_a_segment,
            an_invalid_glob_is_invalid_config,
            excluded_keys_are_not_listed,
            head_reports_what_list_reports,
            reads_start_at_any_byte_offset,
            gzip_offsets_count_decompressed_bytes,
            invalid_gzip_is_an_error_naming_the_key,
            a_missing_object_is_not_found_none_and_deleted,
            etags_change_with_the_content_and_only_then,
            a_deleted_touch_file_is_gone_and_nothing_else,
            keys_keep_unusual_characters,
            check_passes_on_a_working_store,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $make.await;
                $crate::testing::contract::source::$name(&fixture).await;
            }
        )*
    };
}

async fn put_all(f: &impl SourceFixture, keys: &[&str]) {
    for key in keys {
        f.put(key, Bytes::from(format!("content of {key}\n"))).await;
    }
}

async fn list(
    f: &impl SourceFixture,
    prefix: &str,
    pattern: Option<&str>,
    exclude: &[&str],
) -> Vec<String> {
    let exclude: Vec<String> = exclude.iter().map(|k| (*k).to_owned()).collect();
    let listed = f
        .source()
        .list(prefix, pattern, &exclude)
        .await
        .unwrap_or_else(|e| panic!("list {prefix:?} {pattern:?}: {e}"));
    assert_eq!(
        list_streamed(f, prefix, pattern, &exclude).await,
        Ok(listed.clone()),
        "list_stream {prefix:?} {pattern:?} differs from list"
    );
    listed.into_iter().map(|o| o.key).collect()
}

/// The whole of a streamed listing, whether it fails when it starts or in
/// the stream.
async fn list_streamed(
    f: &impl SourceFixture,
    prefix: &str,
    pattern: Option<&str>,
    exclude: &[String],
) -> Result<Vec<ObjectInfo>, SourceError> {
    f.source()
        .list_stream(prefix, pattern, exclude)
        .await?
        .try_collect()
        .await
}

/// A whole read, whether it fails when it starts or in the stream.
async fn read_all(
    f: &impl SourceFixture,
    key: &str,
    offset: u64,
    gzip: bool,
) -> Result<Vec<u8>, SourceError> {
    let chunks: Vec<Bytes> = f
        .source()
        .read(key, offset, gzip)
        .await?
        .try_collect()
        .await?;
    Ok(chunks.concat())
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// Bytes that show where they were cut (not periodic within a short read).
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[(i * 7 + i / 37) % 37])
        .collect()
}

/// Reading `key` from byte 0, from each of `offsets`, and from the very end
/// yields the rest of `content`; one byte past the end is an error.
async fn reads_from_offsets(
    f: &impl SourceFixture,
    key: &str,
    gzip: bool,
    content: &[u8],
    offsets: &[u64],
) {
    let end = content.len() as u64;
    for &offset in [0].iter().chain(offsets).chain(&[end]) {
        let got = read_all(f, key, offset, gzip).await;
        let rest = content.get(offset as usize..).unwrap_or_default();
        assert_eq!(got.as_deref(), Ok(rest), "{key} from offset {offset}");
    }
    assert_eq!(
        read_all(f, key, end + 1, gzip).await,
        Err(SourceError::past_end(key, end + 1))
    );
}

async fn head(f: &impl SourceFixture, key: &str) -> Option<ObjectInfo> {
    f.source()
        .head(key)
        .await
        .unwrap_or_else(|e| panic!("head {key}: {e}"))
}

/// Files come back in byte order of their keys (upper case before lower,
/// `-` before `/`), whatever order they were written in, each with its size
/// and an ETag.
pub async fn listing_is_in_byte_order_with_sizes_and_etags(f: &impl SourceFixture) {
    put_all(
        f,
        &[
            "in/b.csv",
            "in/a/z.csv",
            "in/a.csv",
            "in/Z.csv",
            "in/a-1.csv",
        ],
    )
    .await;
    let listed = f.source().list("in", None, &[]).await.expect("list");
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "in/Z.csv",
            "in/a-1.csv",
            "in/a.csv",
            "in/a/z.csv",
            "in/b.csv"
        ]
    );
    for o in &listed {
        assert_eq!(o.size, format!("content of {}\n", o.key).len() as u64);
        assert!(o.etag.as_deref().is_some_and(|e| !e.is_empty()), "{o:?}");
    }
}

/// `in` and `in/` both mean the keys under `in/`: never `in.csv`, `inbox/…`
/// or `input`, which merely start with the same letters; a partial segment
/// matches nothing; the empty prefix is the whole store.
pub async fn a_prefix_is_whole_key_segments(f: &impl SourceFixture) {
    put_all(
        f,
        &["in/a.csv", "in/sub/b.csv", "in.csv", "inbox/x.csv", "input"],
    )
    .await;
    let under_in = ["in/a.csv", "in/sub/b.csv"];
    assert_eq!(list(f, "in", None, &[]).await, under_in);
    assert_eq!(list(f, "in/", None, &[]).await, under_in);
    assert_eq!(list(f, "in/sub", None, &[]).await, ["in/sub/b.csv"]);
    assert_eq!(list(f, "in/su", None, &[]).await, Vec::<String>::new());
    assert_eq!(
        list(f, "", None, &[]).await,
        ["in.csv", "in/a.csv", "in/sub/b.csv", "inbox/x.csv", "input"]
    );
}

/// A prefix nothing lies under is an empty listing, not an error.
pub async fn a_prefix_with_nothing_under_it_lists_nothing(f: &impl SourceFixture) {
    put_all(f, &["in/a.csv"]).await;
    assert_eq!(
        f.source().list("nothing-here/", Some("*.csv"), &[]).await,
        Ok(Vec::new())
    );
    assert_eq!(
        list_streamed(f, "nothing-here/", Some("*.csv"), &[]).await,
        Ok(Vec::new())
    );
}

/// A listing longer than a page of S3's (1,000 keys) streams the same
/// files, in the same order, as the whole listing.
pub async fn a_long_listing_streams_as_it_lists(f: &impl SourceFixture) {
    let keys: Vec<String> = (0..1_050).map(|i| format!("many/{i:04}.csv")).collect();
    futures::stream::iter(&keys)
        .for_each_concurrent(16, |key| f.put(key, Bytes::from_static(b"a\n")))
        .await;
    f.put("many/sub/x.csv", Bytes::from_static(b"b\n")).await;
    f.put("many/_READY", Bytes::from_static(b"")).await;
    assert_eq!(list(f, "many", Some("*.csv"), &["many/_READY"]).await, keys);
    let everything = list(f, "many/", None, &[]).await;
    assert_eq!(everything.len(), 1_052);
    assert_eq!(
        everything.first().map(String::as_str),
        Some("many/0000.csv")
    );
    assert_eq!(
        everything.last().map(String::as_str),
        Some("many/sub/x.csv")
    );
}

/// The glob applies to the key relative to the prefix: `*` and `?` stay
/// within one segment, `**` crosses any number (none too), classes and
/// alternatives work, and the whole relative key must match.
pub async fn globs_are_relative_to_the_prefix_and_star_stays_in_a_segment(f: &impl SourceFixture) {
    put_all(
        f,
        &[
            "in/a.csv",
            "in/b.csv",
            "in/c.csv.gz",
            "in/ab.csv",
            "in/sub/d.csv",
            "in/sub/deep/e.csv",
            "in/sub/deep/f.jsonl",
        ],
    )
    .await;
    let none: Vec<String> = Vec::new();
    assert_eq!(
        list(f, "in", Some("*.csv"), &[]).await,
        ["in/a.csv", "in/ab.csv", "in/b.csv"]
    );
    assert_eq!(
        list(f, "in", Some("**/*.csv"), &[]).await,
        [
            "in/a.csv",
            "in/ab.csv",
            "in/b.csv",
            "in/sub/d.csv",
            "in/sub/deep/e.csv"
        ]
    );
    assert_eq!(
        list(f, "in", Some("?.csv"), &[]).await,
        ["in/a.csv", "in/b.csv"]
    );
    assert_eq!(
        list(f, "in", Some("[b-c].csv*"), &[]).await,
        ["in/b.csv", "in/c.csv.gz"]
    );
    assert_eq!(
        list(f, "in", Some("**/*.{gz,jsonl}"), &[]).await,
        ["in/c.csv.gz", "in/sub/deep/f.jsonl"]
    );
    assert_eq!(list(f, "in", Some("sub/*"), &[]).await, ["in/sub/d.csv"]);
    assert_eq!(
        list(f, "in/sub", Some("*.csv"), &[]).await,
        ["in/sub/d.csv"]
    );
    assert_eq!(list(f, "in", Some("a"), &[]).await, none);
    assert_eq!(list(f, "", Some("in/*.gz"), &[]).await, ["in/c.csv.gz"]);
}

/// A pattern that is no glob is the user's configuration error.
pub async fn an_invalid_glob_is_invalid_config(f: &impl SourceFixture) {
    put_all(f, &["in/a.csv"]).await;
    for pattern in ["[a-", "{a,b"] {
        let listed = f.source().list("in", Some(pattern), &[]).await;
        let Err(SourceError::InvalidConfig(message)) = listed else {
            panic!("{pattern}: InvalidConfig expected, got {listed:?}")
        };
        assert!(message.contains(pattern), "{message}");
    }
}

/// The keys in `exclude` (the touch file) are never listed, even when the
/// glob matches them; with no exclusions they are.
pub async fn excluded_keys_are_not_listed(f: &impl SourceFixture) {
    put_all(f, &["in/a.csv", "in/_READY.dat", "in/b.csv"]).await;
    let touch = ["in/_READY.dat"];
    assert_eq!(list(f, "in", None, &touch).await, ["in/a.csv", "in/b.csv"]);
    assert_eq!(
        list(f, "in", Some("*"), &touch).await,
        ["in/a.csv", "in/b.csv"]
    );
    assert_eq!(
        list(f, "in/", Some("_READY.*"), &[]).await,
        ["in/_READY.dat"]
    );
}

/// `head` reports an object as `list` does; a missing key, or a "folder"
/// that other keys sit under, is `None`.
pub async fn head_reports_what_list_reports(f: &impl SourceFixture) {
    put_all(f, &["in/a.csv", "in/sub/b.csv"]).await;
    let listed = f.source().list("in", None, &[]).await.expect("list");
    for o in &listed {
        let found = head(f, &o.key).await.expect("listed, so it exists");
        assert_eq!(
            (&found.key, found.size, &found.etag),
            (&o.key, o.size, &o.etag)
        );
    }
    assert_eq!(head(f, "in/missing.csv").await, None);
    assert_eq!(head(f, "in/sub").await, None);
}

/// A plain read from any byte offset yields exactly the rest of the object:
/// from the very end nothing, past the end an error naming the key.
pub async fn reads_start_at_any_byte_offset(f: &impl SourceFixture) {
    let data = patterned(5_000);
    f.put("data.bin", Bytes::from(data.clone())).await;
    f.put("empty.csv", Bytes::new()).await;
    reads_from_offsets(f, "data.bin", false, &data, &[1, 6, 7, 999, 4_096, 4_999]).await;
    assert_eq!(read_all(f, "empty.csv", 0, false).await, Ok(Vec::new()));
}

/// With `gzip`, every member of a multi-member file is decompressed and the
/// offset counts decompressed bytes, with the same end rules as plain reads.
pub async fn gzip_offsets_count_decompressed_bytes(f: &impl SourceFixture) {
    let first = patterned(3_000);
    let second = b"second member\n".repeat(200);
    // Two members, as `cat a.gz b.gz` makes them.
    let mut file = gz(&first);
    file.extend(gz(&second));
    f.put("two.csv.gz", Bytes::from(file)).await;
    let whole = [first, second].concat();
    let last = whole.len() as u64 - 1;
    reads_from_offsets(
        f,
        "two.csv.gz",
        true,
        &whole,
        &[1, 2_999, 3_000, 3_001, last],
    )
    .await;
    // The same object read without `gzip` is its compressed bytes.
    let raw = read_all(f, "two.csv.gz", 0, false).await.expect("raw read");
    assert_eq!(raw.get(..2), Some(&[0x1f, 0x8b][..]), "gzip magic");
}

/// Reading content that is not gzip with `gzip` fails, naming the key.
pub async fn invalid_gzip_is_an_error_naming_the_key(f: &impl SourceFixture) {
    f.put("bad.csv.gz", Bytes::from_static(b"this is not gzip"))
        .await;
    let Err(SourceError::Other(message)) = read_all(f, "bad.csv.gz", 0, true).await else {
        panic!("an error expected")
    };
    assert!(
        message.contains("bad.csv.gz") && message.contains("gzip"),
        "{message}"
    );
}

/// A missing object: reading it is `NotFound` naming the key (plain or
/// gzip), `head` is `None`, and deleting it is fine.
pub async fn a_missing_object_is_not_found_none_and_deleted(f: &impl SourceFixture) {
    put_all(f, &["in/a.csv"]).await;
    for gzip in [false, true] {
        let Err(SourceError::NotFound(message)) = read_all(f, "in/nope.csv", 0, gzip).await else {
            panic!("NotFound expected (gzip: {gzip})")
        };
        assert!(message.contains("in/nope.csv"), "{message}");
    }
    assert_eq!(head(f, "in/nope.csv").await, None);
    assert_eq!(f.source().delete("in/nope.csv").await, Ok(()));
}

/// An ETag stays the same while the content does, in `head` and `list`
/// alike, and changes when the object is written with other content.
pub async fn etags_change_with_the_content_and_only_then(f: &impl SourceFixture) {
    f.put("in/_READY.dat", Bytes::from_static(b"ready")).await;
    let first = head(f, "in/_READY.dat").await.expect("exists");
    let etag = first.etag.clone().expect("an ETag");
    assert_eq!(
        head(f, "in/_READY.dat").await.and_then(|o| o.etag),
        Some(etag.clone())
    );
    let listed = f.source().list("in", None, &[]).await.expect("list");
    assert_eq!(
        listed.iter().map(|o| o.etag.clone()).collect::<Vec<_>>(),
        [Some(etag.clone())]
    );
    f.put("in/_READY.dat", Bytes::from_static(b"ready again"))
        .await;
    let second = head(f, "in/_READY.dat").await.expect("exists");
    assert_eq!(second.size, 11);
    assert!(second.etag.is_some());
    assert_ne!(second.etag, Some(etag), "new content, new ETag");
}

/// Deleting the touch file removes it and nothing else; deleting it again
/// (another replica finished first) is fine; a new touch file afterwards
/// has an ETag of its own.
pub async fn a_deleted_touch_file_is_gone_and_nothing_else(f: &impl SourceFixture) {
    put_all(f, &["in/_READY.dat", "in/a.csv", "in/_READY.dat.bak"]).await;
    let before = head(f, "in/_READY.dat").await.and_then(|o| o.etag);
    assert!(before.is_some());
    f.source().delete("in/_READY.dat").await.expect("delete");
    assert_eq!(head(f, "in/_READY.dat").await, None);
    assert_eq!(
        list(f, "in", None, &[]).await,
        ["in/_READY.dat.bak", "in/a.csv"]
    );
    f.source()
        .delete("in/_READY.dat")
        .await
        .expect("delete again");
    f.put("in/_READY.dat", Bytes::from_static(b"the next batch"))
        .await;
    let after = head(f, "in/_READY.dat").await.and_then(|o| o.etag);
    assert!(after.is_some());
    assert_ne!(after, before);
}

/// Keys with spaces, `=`, `%`, `+` and non-ASCII letters come back exactly
/// as written, and head and read find them by that key.
pub async fn keys_keep_unusual_characters(f: &impl SourceFixture) {
    let keys = [
        "in/date=2024-01-01/part 1.csv",
        "in/100% real+data.csv",
        "in/café.csv",
    ];
    put_all(f, &keys).await;
    let mut expected = keys.to_vec();
    expected.sort_unstable();
    assert_eq!(list(f, "in", None, &[]).await, expected);
    assert_eq!(
        list(f, "in/date=2024-01-01", Some("*.csv"), &[]).await,
        ["in/date=2024-01-01/part 1.csv"]
    );
    for key in keys {
        assert!(head(f, key).await.is_some(), "{key}");
        assert_eq!(
            read_all(f, key, 0, false).await,
            Ok(format!("content of {key}\n").into_bytes()),
            "{key}"
        );
    }
}

/// The connector test passes on a store that works.
pub async fn check_passes_on_a_working_store(f: &impl SourceFixture) {
    put_all(f, &["in/a.csv"]).await;
    assert_eq!(f.source().check().await.map(|_| ()), Ok(()));
}

//! Touch files: existence with ETag (`head`), and delete.

use crate::common::{Fixture, Kind};

async fn head_and_delete(kind: Kind) {
    let f = Fixture::new(kind).await;
    let source = f.source();
    let touch = "in/_READY.dat";
    assert_eq!(source.head(touch).await, Ok(None));

    f.put(touch, "ready").await;
    let first = source.head(touch).await.expect("head").expect("exists");
    assert_eq!(first.key, touch);
    assert_eq!(first.size, 5);
    let etag = first.etag.clone().expect("an ETag");
    assert!(!etag.is_empty());
    assert_eq!(
        source.head(touch).await.expect("head").and_then(|o| o.etag),
        Some(etag.clone())
    );

    // A new touch file (new content) is a new ETag: polling starts a new run.
    f.put(touch, "ready again").await;
    let second = source.head(touch).await.expect("head").expect("exists");
    assert_ne!(second.etag, Some(etag));

    source.delete(touch).await.expect("delete");
    assert_eq!(source.head(touch).await, Ok(None));
    // Deleting what is already gone is fine (a second replica finished first).
    source.delete(touch).await.expect("delete again");
}

#[tokio::test]
async fn s3_touch_file_head_returns_etag_and_delete_removes_it() {
    head_and_delete(Kind::S3).await;
}

#[tokio::test]
async fn local_touch_file_head_returns_etag_and_delete_removes_it() {
    head_and_delete(Kind::Local).await;
}

#[tokio::test]
async fn local_head_of_a_directory_is_none() {
    let f = Fixture::local();
    std::fs::create_dir_all(f.root().join("in/_READY.dat")).expect("mkdir");
    assert_eq!(f.source().head("in/_READY.dat").await, Ok(None));
}

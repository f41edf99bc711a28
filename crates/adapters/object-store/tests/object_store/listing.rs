//! Listing a pipeline's files: prefix, glob, touch file, directories, order.

use futures::TryStreamExt;
use sluice_application::ports::SourceError;

use crate::common::{Fixture, Kind};

/// Lays out files in an order unrelated to their key order.
async fn layout(f: &Fixture) {
    for key in [
        "in/b.csv",
        "in/sub/deep/e.csv.gz",
        "in/a.csv",
        "in/_READY.dat",
        "in/c.csv.gz",
        "in/sub/d.csv",
        "in/Z.csv",
        "in.csv",
        "inbox/x.csv",
        "other/x.csv",
    ] {
        f.put(key, format!("content of {key}\n")).await;
    }
}

fn keys(v: &[sluice_application::ports::ObjectInfo]) -> Vec<&str> {
    v.iter().map(|o| o.key.as_str()).collect()
}

async fn prefix_glob_touch_file_and_order(kind: Kind) {
    let f = Fixture::new(kind).await;
    layout(&f).await;
    let source = f.source();
    let touch = vec!["in/_READY.dat".to_owned()];

    let top = source
        .list("in/", Some("*.csv"), &touch)
        .await
        .expect("list");
    assert_eq!(
        keys(&top),
        ["in/Z.csv", "in/a.csv", "in/b.csv"],
        "byte order: Z < a"
    );
    assert_eq!(top[1].size, "content of in/a.csv\n".len() as u64);
    assert!(
        top.iter()
            .all(|o| o.etag.is_some() && o.last_modified.is_some())
    );

    let deep = source
        .list("in", Some("**/*.csv.gz"), &touch)
        .await
        .expect("list");
    assert_eq!(keys(&deep), ["in/c.csv.gz", "in/sub/deep/e.csv.gz"]);

    let all = source.list("in/", None, &touch).await.expect("list");
    assert_eq!(
        keys(&all),
        [
            "in/Z.csv",
            "in/a.csv",
            "in/b.csv",
            "in/c.csv.gz",
            "in/sub/d.csv",
            "in/sub/deep/e.csv.gz"
        ]
    );

    let with_touch = source
        .list("in/", Some("_READY.*"), &[])
        .await
        .expect("list");
    assert_eq!(keys(&with_touch), ["in/_READY.dat"]);

    let everything = source.list("", Some("**/x.csv"), &[]).await.expect("list");
    assert_eq!(keys(&everything), ["inbox/x.csv", "other/x.csv"]);
}

#[tokio::test]
async fn s3_lists_prefix_and_glob_without_touch_file_in_key_order() {
    prefix_glob_touch_file_and_order(Kind::S3).await;
}

#[tokio::test]
async fn local_lists_prefix_and_glob_without_touch_file_in_key_order() {
    prefix_glob_touch_file_and_order(Kind::Local).await;
}

async fn missing_prefix_is_an_empty_listing(kind: Kind) {
    let f = Fixture::new(kind).await;
    f.put("in/a.csv", "x\n").await;
    let listed = f.source().list("nothing-here/", Some("*.csv"), &[]).await;
    assert_eq!(listed, Ok(Vec::new()));
}

#[tokio::test]
async fn s3_missing_prefix_is_an_empty_listing() {
    missing_prefix_is_an_empty_listing(Kind::S3).await;
}

#[tokio::test]
async fn local_missing_prefix_is_an_empty_listing() {
    missing_prefix_is_an_empty_listing(Kind::Local).await;
}

#[tokio::test]
async fn s3_folder_markers_are_not_files() {
    let f = Fixture::s3().await;
    f.put("in/a.csv", "x\n").await;
    // The zero-byte "folder/" objects S3 consoles create.
    for marker in ["in/", "in/sub/", "in/empty/"] {
        let url = format!("{}/{}/{marker}", crate::common::s3_endpoint(), f.place);
        let status = reqwest::Client::new()
            .put(url)
            .body("")
            .send()
            .await
            .expect("put marker")
            .status();
        assert!(status.is_success(), "{status}");
    }
    f.put("in/sub/b.csv", "y\n").await;
    // A real object whose key other keys sit under is a directory too.
    f.put("in/sub", "not a file\n").await;
    let listed = f.source().list("in", None, &[]).await.expect("list");
    assert_eq!(keys(&listed), ["in/a.csv", "in/sub/b.csv"]);
    // The paged listing agrees, page by page.
    let streamed: Vec<_> = f
        .source()
        .list_stream("in", None, &[])
        .await
        .expect("list_stream")
        .try_collect()
        .await
        .expect("every page");
    assert_eq!(streamed, listed);
}

#[tokio::test]
async fn local_directories_are_not_files() {
    let f = Fixture::local();
    f.put("in/a.csv", "x\n").await;
    std::fs::create_dir_all(f.root().join("in/empty/nested")).expect("mkdir");
    std::fs::create_dir_all(f.root().join("in/dir.csv")).expect("mkdir");
    let listed = f.source().list("in", Some("**"), &[]).await.expect("list");
    assert_eq!(keys(&listed), ["in/a.csv"]);
}

#[tokio::test]
async fn s3_missing_bucket_is_not_found() {
    let mut f = Fixture::s3().await;
    f.connector.config.bucket = Some(crate::common::unique_name("missing"));
    let Err(SourceError::NotFound(message)) = f.source().list("", None, &[]).await else {
        panic!("NotFound expected")
    };
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test]
async fn local_missing_root_is_not_found() {
    let mut f = Fixture::local();
    let missing = f.tmp().join("not-created-yet");
    f.connector.config.root = Some(missing.display().to_string());
    let Err(SourceError::NotFound(message)) = f.source().list("", None, &[]).await else {
        panic!("NotFound expected")
    };
    assert!(
        message.contains("not-created-yet") && message.contains("does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_glob_is_invalid_config() {
    let f = Fixture::local();
    assert!(matches!(
        f.source().list("", Some("[a-"), &[]).await,
        Err(SourceError::InvalidConfig(_))
    ));
}

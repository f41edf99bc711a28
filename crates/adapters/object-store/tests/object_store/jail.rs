//! `local` connectors stay in their root: `..`, absolute paths and symbolic
//! links that lead out are refused, and so is a root outside the allowed
//! directories.

use std::os::unix::fs::symlink;

use sluice_application::ports::{ObjectSource, ObjectSourceFactory, SourceError};
use sluice_domain::connector::{ConnectorConfig, ConnectorType, Credentials};
use sluice_object_store::ObjectStoreSourceFactory;

use crate::common::{Fixture, connector, read_all};

const SECRET_TEXT: &str = "server-side secret, not data";

/// A local fixture with a file outside the connector's root (but inside the
/// temporary directory) that nothing may reach.
async fn fixture_with_outside_file() -> Fixture {
    let f = Fixture::local();
    std::fs::write(f.tmp().join("secret.txt"), SECRET_TEXT).expect("write");
    std::fs::create_dir_all(f.tmp().join("outside")).expect("mkdir");
    std::fs::write(f.tmp().join("outside/x.csv"), SECRET_TEXT).expect("write");
    f.put("in/a.csv", "id\n1\n").await;
    f
}

/// Asserts that every operation on `key` is refused with `InvalidConfig`
/// whose message contains `why`, and returns one of the messages.
async fn refused_everywhere(source: &dyn ObjectSource, key: &str, why: &str) -> String {
    let mut messages = Vec::new();
    for result in [
        source.read(key, 0, false).await.map(|_| ()),
        source.read(key, 3, true).await.map(|_| ()),
        source.head(key).await.map(|_| ()),
        source.delete(key).await,
        source.list(key, None, &[]).await.map(|_| ()),
    ] {
        match result {
            Err(SourceError::InvalidConfig(m)) => {
                assert!(m.contains(why), "`{key}`: {m}");
                messages.push(m);
            }
            other => panic!("`{key}` must be refused, got {other:?}"),
        }
    }
    messages.swap_remove(0)
}

#[tokio::test]
async fn local_dot_dot_in_keys_and_prefixes_is_refused() {
    let f = fixture_with_outside_file().await;
    let source = f.source();
    for key in [
        "../secret.txt",
        "in/../../secret.txt",
        "..",
        "in/..",
        "../outside/x.csv",
    ] {
        let message = refused_everywhere(source.as_ref(), key, "..").await;
        assert!(
            message.contains("cannot leave the connector's root"),
            "{message}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(f.tmp().join("secret.txt"))
            .ok()
            .as_deref(),
        Some(SECRET_TEXT)
    );
}

#[tokio::test]
async fn local_absolute_paths_are_refused() {
    let f = fixture_with_outside_file().await;
    let source = f.source();
    let outside = f.tmp().join("secret.txt").display().to_string();
    let inside = f.root().join("in/a.csv").display().to_string();
    for key in [outside.as_str(), inside.as_str(), "/etc/passwd", "/"] {
        refused_everywhere(source.as_ref(), key, "absolute path").await;
    }
}

#[tokio::test]
async fn local_symlinks_out_of_the_root_are_refused() {
    let f = fixture_with_outside_file().await;
    symlink(f.tmp().join("secret.txt"), f.root().join("in/leak.csv")).expect("symlink");
    symlink(f.tmp().join("outside"), f.root().join("outdir")).expect("symlink");
    symlink("/etc", f.root().join("etc")).expect("symlink");
    let source = f.source();

    for key in [
        "in/leak.csv",
        "outdir/x.csv",
        "outdir/missing.csv",
        "etc/passwd",
        "etc/nope",
    ] {
        let message = refused_everywhere(source.as_ref(), key, "symbolic link").await;
        assert!(
            message.contains("outside the connector's root"),
            "{message}"
        );
    }
    // A listing that would include a link leading out is refused whole,
    // rather than quietly reading, or quietly dropping, a file.
    for (prefix, pattern) in [("", None), ("in", Some("*.csv")), ("outdir", None)] {
        let Err(SourceError::InvalidConfig(m)) = source.list(prefix, pattern, &[]).await else {
            panic!("listing `{prefix}` must be refused")
        };
        assert!(m.contains("symbolic link"), "{m}");
    }
    // Deleting was refused: the link and its target are both still there.
    assert!(f.root().join("in/leak.csv").exists());
    assert_eq!(
        std::fs::read_to_string(f.tmp().join("secret.txt"))
            .ok()
            .as_deref(),
        Some(SECRET_TEXT)
    );
}

#[tokio::test]
async fn local_symlinks_inside_the_root_are_followed() {
    let f = fixture_with_outside_file().await;
    symlink(f.root().join("in/a.csv"), f.root().join("in/alias.csv")).expect("symlink");
    symlink(f.root().join("in"), f.root().join("in-link")).expect("symlink");
    let source = f.source();
    assert_eq!(
        read_all(source.as_ref(), "in/alias.csv", 0, false).await,
        Ok(b"id\n1\n".to_vec())
    );
    assert_eq!(
        read_all(source.as_ref(), "in-link/a.csv", 3, false).await,
        Ok(b"1\n".to_vec())
    );
    let listed = source.list("", Some("**/*.csv"), &[]).await.expect("list");
    let keys: Vec<_> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "in-link/a.csv",
            "in-link/alias.csv",
            "in/a.csv",
            "in/alias.csv"
        ]
    );
}

fn local_connector(root: &std::path::Path) -> sluice_domain::connector::Connector {
    let config = ConnectorConfig {
        root: Some(root.display().to_string()),
        ..ConnectorConfig::default()
    };
    connector(ConnectorType::Local, config, &Credentials::default())
}

#[tokio::test]
async fn local_root_outside_the_allowed_roots_is_invalid_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let allowed = tmp.path().join("allowed");
    let other = tmp.path().join("other");
    std::fs::create_dir_all(allowed.join("sales")).expect("mkdir");
    std::fs::create_dir_all(&other).expect("mkdir");
    symlink(&other, allowed.join("link-out")).expect("symlink");
    let factory = ObjectStoreSourceFactory::new(vec![allowed.clone()]);
    let none = Credentials::default();

    assert!(
        factory
            .open(&local_connector(&allowed.join("sales")), &none)
            .is_ok()
    );
    assert!(factory.open(&local_connector(&allowed), &none).is_ok());
    for root in [
        other.clone(),
        allowed.join("../other"),
        allowed.join("link-out"),
        tmp.path().to_path_buf(),
        "/".into(),
    ] {
        let Err(SourceError::InvalidConfig(message)) =
            factory.open(&local_connector(&root), &none).map(|_| ())
        else {
            panic!("root {} must be refused", root.display())
        };
        assert!(
            message.contains("SLUICE_LOCAL_ROOTS") || message.contains(".."),
            "{message}"
        );
    }
    // No allowed roots at all: every local connector is refused.
    let closed = ObjectStoreSourceFactory::new(Vec::new());
    assert!(matches!(
        closed
            .open(&local_connector(&allowed.join("sales")), &none)
            .map(|_| ()),
        Err(SourceError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn local_root_swapped_for_a_link_later_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let allowed = tmp.path().join("allowed");
    let other = tmp.path().join("other");
    std::fs::create_dir_all(allowed.join("sales")).expect("mkdir");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("x.csv"), SECRET_TEXT).expect("write");
    let factory = ObjectStoreSourceFactory::new(vec![allowed.clone()]);
    let source = factory
        .open(
            &local_connector(&allowed.join("sales")),
            &Credentials::default(),
        )
        .expect("open");
    assert_eq!(source.list("", None, &[]).await, Ok(Vec::new()));

    std::fs::remove_dir(allowed.join("sales")).expect("rmdir");
    symlink(&other, allowed.join("sales")).expect("symlink");
    let Err(SourceError::InvalidConfig(message)) = source.list("", None, &[]).await else {
        panic!("the swapped root must be refused")
    };
    assert!(message.contains("SLUICE_LOCAL_ROOTS"), "{message}");
    assert!(matches!(
        source.read("x.csv", 0, false).await.map(|_| ()),
        Err(SourceError::InvalidConfig(_))
    ));
}

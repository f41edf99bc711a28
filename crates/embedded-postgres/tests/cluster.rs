//! A real cluster from the machine's PostgreSQL programs: created, stopped,
//! started again with its data, locked against a second supervisor, and
//! kept where the user PostgreSQL runs as can reach it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sluice_embedded_postgres::{Cluster, Error, Options, is_root};

/// A directory everyone may enter (as root, the `postgres` user must).
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn options(data_dir: &Path, fallback: &Path) -> Options {
    let mut o = Options::new(data_dir);
    o.fallback_root = fallback.to_path_buf();
    o
}

/// Runs SQL through the `psql` beside the server programs.
fn psql(cluster: &Cluster, sql: &str) -> String {
    let out = Command::new(cluster.binaries().program("psql"))
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(cluster.url())
        .args(["-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn data_survives_a_stop_and_a_second_supervisor_is_refused() {
    let root = open_dir();
    let data = root.path().join("sluice-data");
    let fallback = open_dir();

    let mut first = Cluster::start(options(&data, fallback.path())).expect("first start");
    assert!(first.initialised());
    assert!(!first.kept_elsewhere());
    assert!(
        first.url().starts_with("postgres://sluice:"),
        "a password protects it"
    );
    psql(
        &first,
        "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')",
    );

    match Cluster::start(options(&data, fallback.path())) {
        Err(e @ Error::InUse { .. }) => {
            let text = e.to_string();
            assert!(text.contains("in use"), "{text}");
            assert!(text.contains(&std::process::id().to_string()), "{text}");
        }
        other => panic!("a second supervisor must be refused, got {other:?}"),
    }
    let running = Cluster::running(&options(&data, fallback.path())).expect("found running");
    assert_eq!(running.port, first.port());
    assert_eq!(running.url, first.url());

    let pid = first.pid();
    first.stop().expect("stop");
    assert!(first.exited().is_some());
    assert!(!is_alive(pid), "the server process is gone");
    drop(first);
    assert!(Cluster::running(&options(&data, fallback.path())).is_none());

    let second = Cluster::start(options(&data, fallback.path())).expect("second start");
    assert!(!second.initialised());
    assert_eq!(psql(&second, "SELECT v FROM kept"), "still here");
    let pid = second.pid();
    drop(second);
    assert!(!is_alive(pid), "dropping stops the server");
}

#[test]
fn a_data_directory_inside_a_private_one_is_served_all_the_same() {
    // Mode 700, as a home directory: as root, the `postgres` user cannot
    // enter it, so the cluster's files go under the fallback root.
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let data = private.path().join("project").join("sluice-data");
    let fallback = open_dir();

    let cluster = Cluster::start(options(&data, fallback.path())).expect("start");
    assert_eq!(cluster.kept_elsewhere(), is_root());
    if is_root() {
        assert!(cluster.pgdata().starts_with(fallback.path()));
        assert_eq!(cluster.service_user(), "postgres");
        let pointer = std::fs::read_to_string(data.join("postgres.location")).unwrap();
        assert_eq!(
            Path::new(pointer.trim()),
            cluster.pgdata().parent().unwrap()
        );
    } else {
        assert!(cluster.pgdata().starts_with(&data));
    }
    psql(&cluster, "CREATE TABLE t (v int); INSERT INTO t VALUES (7)");
    drop(cluster);

    let again = Cluster::start(options(&data, fallback.path())).expect("restart");
    assert_eq!(
        psql(&again, "SELECT v FROM t"),
        "7",
        "the same cluster is found again"
    );
}

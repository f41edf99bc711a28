//! The client is for services that call Sluice, not for running it: its
//! dependency tree holds neither the server's web framework (actix) nor its
//! database layer (diesel, tokio-postgres).

#[test]
fn the_dependency_tree_has_no_actix_and_no_diesel() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--package",
            "sluice-client",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.contains("reqwest"), "{tree}");
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for forbidden in [
        "actix",
        "diesel",
        "tokio-postgres",
        "sluice-postgres",
        "sluice-http",
    ] {
        let found: Vec<&&str> = crates.iter().filter(|c| c.starts_with(forbidden)).collect();
        assert!(
            found.is_empty(),
            "sluice-client depends on {found:?}:\n{tree}"
        );
    }
}

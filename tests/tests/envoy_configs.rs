//! The Envoy configurations we ship load in Envoy 1.40: the standalone
//! sidecar reference, as operators without Istio would use it, and the
//! local stack's templates as `make run` renders them (exercised in full by
//! `stack.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use mesh_auth_tests::{envoy_bin, filter_wasm, repo_root};

#[test]
fn the_standalone_sidecar_reference_validates() {
    let text = std::fs::read_to_string(repo_root().join("envoy/standalone-sidecar.yaml")).unwrap();
    // The one value an operator must change to load it: the module's path.
    let wasm = filter_wasm().unwrap();
    let text = text.replace(
        "/etc/envoy/mesh_auth_filter.wasm",
        &wasm.display().to_string(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("standalone-sidecar.yaml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(envoy_bin().unwrap())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "warning",
            "-c",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "envoy --mode validate failed:\n{log}");
    assert!(log.contains("OK"), "{log}");
}

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

/// Every HTTP connection manager in the configs we ship refuses header
/// names with `_`, so `x_faas_mesh_auth_subject` cannot pose as the
/// filter's `x-faas-mesh-auth-subject` in a runtime that folds `_` into `-`.
#[test]
fn every_connection_manager_refuses_underscores_in_header_names() {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("envoy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(repo_root().join("bench/src/configs.rs"));
    files.push(repo_root().join("tests/src/bootstrap.rs"));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let managers = text
            .matches("http_connection_manager.v3.HttpConnectionManager")
            .count();
        let refusing = text.matches("REJECT_REQUEST").count();
        assert_eq!(
            managers,
            refusing,
            "{}: {managers} connection manager(s), {refusing} with headers_with_underscores_action: REJECT_REQUEST",
            path.display()
        );
    }
}

/// The rendered stack, as `make run` starts it: a client's
/// `x_faas_mesh_auth_subject` is refused (400) at the gateway and at a
/// sidecar reached directly, and a `subject_token` sent in a query string
/// never reaches the gateway's access log.
#[tokio::test]
async fn the_stack_refuses_underscore_headers_and_keeps_tokens_out_of_its_access_log() {
    use std::time::Duration;

    use mesh_auth_tests::stack::{Ports, Stack, StackOpts};
    use mesh_auth_tests::{request, wait_until};

    let state = tempfile::tempdir().unwrap();
    let stack = Stack::start(StackOpts::new(Ports::any(), state.path()))
        .await
        .unwrap();
    let forged = [("x_faas_mesh_auth_subject", "fed:admin")];
    let gateway = format!("{}/function/nodeinfo", stack.gateway_url());
    let sidecar = format!("{}/", stack.sidecar_url("openfaas-fn:env").unwrap());
    for url in [&gateway, &sidecar] {
        let r = request("GET", url, &forged, Vec::new()).await.unwrap();
        assert_eq!(r.status, 400, "{url}: {} {}", r.status, r.body);
    }
    // Without the underscore header, the same request passes the gateway.
    assert_eq!(
        request("GET", &gateway, &[], Vec::new())
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        stack
            .function("openfaas-fn:nodeinfo")
            .unwrap()
            .request_count(),
        1
    );

    // RFC 6749 lets clients put the form in the query string.
    let secret = "SECRET-subject-token-in-the-query";
    let url = format!(
        "{}/oauth/token?grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token={secret}&subject_token_type=urn:ietf:params:oauth:token-type:id_token",
        stack.gateway_url()
    );
    let r = request("POST", &url, &[], Vec::new()).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    let log_path = stack.access_log_path();
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_until(
        Duration::from_secs(20),
        "the exchange in the access log",
        || async { read().contains("POST /oauth/token ") },
    )
    .await
    .unwrap();
    let log = read();
    assert!(!log.contains(secret), "{log}");
    assert!(!log.contains("subject_token"), "{log}");
    stack.stop().await;
}

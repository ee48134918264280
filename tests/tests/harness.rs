//! The harness itself, against a real Envoy without the filter: proxying,
//! port discovery, stats, logs, and servers that really go away.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mesh_auth_tests::testing::TestKey;
use mesh_auth_tests::{
    EchoUpstream, Envoy, JwksServer, SidecarBootstrap, get, request, wait_until,
};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn plain_envoy_proxies_to_the_echo_upstream_and_reports_stats() {
    let echo = EchoUpstream::start().await.unwrap();
    let envoy = SidecarBootstrap::new(echo.addr()).start().await.unwrap();

    let url = format!(
        "{}/function/env?x=1",
        envoy.listener_url("sidecar").unwrap()
    );
    let resp = get(&url, &[("x-test", "one"), ("authorization", "Bearer abc")])
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    let seen = resp.echoed().unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.path, "/function/env?x=1");
    assert_eq!(seen.header("x-test"), Some("one"));
    assert_eq!(seen.header("authorization"), Some("Bearer abc"));
    // Envoy added its own headers on the way.
    assert!(seen.header("x-request-id").is_some(), "{seen:?}");
    assert_eq!(echo.request_count(), 1);

    let post = request("POST", &url, &[("content-type", "text/plain")], "hello")
        .await
        .unwrap();
    assert_eq!(post.echoed().unwrap().body, "hello");

    let n = envoy
        .wait_for_stat("cluster.upstream.upstream_rq_200", T, |n| n >= 2)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(envoy.stat("server.live").await.unwrap(), Some(1));
    assert_eq!(envoy.stat("no.such.stat").await.unwrap(), None);
    assert!(
        envoy
            .admin_get("/server_info")
            .await
            .unwrap()
            .contains("1.40.0")
    );
    assert!(envoy.listener_port("nope").is_err());
}

#[tokio::test]
async fn two_envoys_run_side_by_side_with_their_own_ports() {
    let echo = EchoUpstream::start().await.unwrap();
    let bootstrap = SidecarBootstrap::new(echo.addr()).listener("second", None);
    let a = bootstrap
        .envoy()
        .unwrap()
        .concurrency(2)
        .start()
        .await
        .unwrap();
    let b = bootstrap.start().await.unwrap();
    assert_ne!(a.admin_url().unwrap(), b.admin_url().unwrap());
    assert_ne!(
        a.listener_port("sidecar").unwrap(),
        b.listener_port("sidecar").unwrap()
    );
    for envoy in [&a, &b] {
        for name in ["sidecar", "second"] {
            let resp = get(&envoy.listener_url(name).unwrap(), &[]).await.unwrap();
            assert_eq!(resp.status, 200);
        }
    }
    assert_eq!(echo.request_count(), 4);
}

#[tokio::test]
async fn envoy_stops_on_drop_and_admin_goes_away() {
    let echo = EchoUpstream::start().await.unwrap();
    let mut envoy = SidecarBootstrap::new(echo.addr()).start().await.unwrap();
    let admin = envoy.admin_url().unwrap();
    let pid = envoy.pid();
    assert!(envoy.is_running());
    envoy.stop();
    assert!(!envoy.is_running());
    drop(envoy);
    assert!(get(&format!("{admin}/ready"), &[]).await.is_err());
    // Reaped: no zombie left behind under our pid.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[tokio::test]
async fn a_bad_bootstrap_fails_with_envoys_log() {
    let err = Envoy::builder("static_resources: {listeners: [{name: x}]}\n")
        .start()
        .await
        .err()
        .expect("a listener without an address must be refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(msg.contains("--- envoy log ---"), "{msg}");

    let exit = Envoy::builder("static_resources: {listeners: [{name: x}]}\n")
        .run_to_exit(T)
        .await
        .unwrap();
    assert!(!exit.status.success());
    assert!(!exit.log.is_empty());
}

#[tokio::test]
async fn upstream_down_gives_503_and_the_log_is_readable() {
    let mut echo = EchoUpstream::start().await.unwrap();
    let envoy = SidecarBootstrap::new(echo.addr())
        .envoy()
        .unwrap()
        .log_level("info")
        .start()
        .await
        .unwrap();
    echo.stop().await;
    let resp = get(&envoy.listener_url("sidecar").unwrap(), &[])
        .await
        .unwrap();
    assert_eq!(resp.status, 503);
    envoy
        .wait_for_log("starting main dispatch loop", T)
        .await
        .unwrap();
}

#[tokio::test]
async fn jwks_server_serves_sets_fails_stops_and_restarts() {
    let k1 = TestKey::generate();
    let k2 = TestKey::generate();
    let mut jwks = JwksServer::with_keys(&[&k1]).await.unwrap();

    let resp = get(&jwks.url(), &[]).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.json().unwrap()["keys"][0]["kid"], k1.kid.as_str());

    jwks.set_keys(&[&k1, &k2]);
    let resp = get(&jwks.url(), &[]).await.unwrap();
    assert_eq!(resp.json().unwrap()["keys"].as_array().unwrap().len(), 2);

    jwks.set_status(500);
    assert_eq!(get(&jwks.url(), &[]).await.unwrap().status, 500);
    assert_eq!(jwks.fetch_count(), 3);
    assert_eq!(jwks.requests()[0].path, JwksServer::PATH);

    jwks.stop().await;
    let err = get(&jwks.url(), &[]).await.unwrap_err();
    let refused = err
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
    assert!(
        refused || format!("{err:?}").contains("ConnectionRefused"),
        "{err:?}"
    );

    jwks.set_status(200);
    jwks.restart().await.unwrap();
    wait_until(T, "JWKS server back", || async {
        get(&jwks.url(), &[]).await.is_ok_and(|r| r.status == 200)
    })
    .await
    .unwrap();
    assert_eq!(jwks.fetch_count(), 4);
}

#[tokio::test]
async fn envoy_sees_the_jwks_server_go_away_despite_pooled_connections() {
    let echo = EchoUpstream::start().await.unwrap();
    let mut jwks = JwksServer::start("{\"keys\":[]}").await.unwrap();
    // A second listener routes straight to the jwks cluster, standing in for
    // the filter's call-out over the same connection pool.
    let mut v = SidecarBootstrap::new(echo.addr())
        .jwks(jwks.addr())
        .to_value()
        .unwrap();
    v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]
        ["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "jwks".into();
    let envoy = Envoy::start(serde_json::to_string(&v).unwrap())
        .await
        .unwrap();
    let url = format!(
        "{}{}",
        envoy.listener_url("sidecar").unwrap(),
        JwksServer::PATH
    );

    assert_eq!(get(&url, &[]).await.unwrap().status, 200);
    assert_eq!(get(&url, &[]).await.unwrap().status, 200);
    // Envoy reused its upstream connection.
    assert_eq!(
        envoy.stat("cluster.jwks.upstream_cx_total").await.unwrap(),
        Some(1)
    );
    assert!(jwks.requests()[0].authority().is_some());

    jwks.stop().await;
    assert_eq!(get(&url, &[]).await.unwrap().status, 503);
    jwks.restart().await.unwrap();
    assert_eq!(get(&url, &[]).await.unwrap().status, 200);
    assert_eq!(jwks.fetch_count(), 3);
}

//! The built `.wasm` in a real Envoy 1.40 (V8), proving by real HTTP requests
//! every response the filter documents, key handling across rotation and
//! outages, audit mode, exemptions, node-metadata identity, and that a list
//! of hostile tokens all get 401 without hurting the VM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{Claims as JsClaims, Duration as JsDuration, HS256Key, MACLike};
use mesh_auth_tests::testing::{TestKey, api_claims, b64_json, function_claims, jwks};
use mesh_auth_tests::{
    EchoUpstream, Envoy, HttpResponse, JwksServer, SidecarBootstrap, WasmFilter, get, wait_until,
};
use serde_json::{Value, json};

const ISSUER: &str = "https://gateway.example.com";
const REALM: &str = r#"Bearer realm="IAM function invoke""#;
const T: Duration = Duration::from_secs(15);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn stat_name(name: &str) -> String {
    format!("wasmcustom.faas_mesh_auth.{name}")
}

fn fn_token(key: &TestKey, perms: &[&str]) -> String {
    key.sign(&function_claims(ISSUER, now(), 300, perms))
}

struct Sidecar {
    envoy: Envoy,
    echo: EchoUpstream,
    url: String,
}

impl Sidecar {
    async fn start(
        config: Value,
        jwks: Option<&JwksServer>,
        tweak: impl FnOnce(SidecarBootstrap) -> SidecarBootstrap,
    ) -> Self {
        let echo = EchoUpstream::start().await.unwrap();
        let mut b = SidecarBootstrap::new(echo.addr()).plugin_config(config.to_string());
        if let Some(j) = jwks {
            b = b.jwks(j.addr());
        }
        let envoy = tweak(b).start().await.unwrap();
        let url = envoy.listener_url(SidecarBootstrap::LISTENER).unwrap();
        Sidecar { envoy, echo, url }
    }

    async fn call(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        get(&format!("{}{path}", self.url), headers).await.unwrap()
    }

    async fn with_token(&self, token: &str) -> HttpResponse {
        self.call("/", &[("authorization", &bearer(token))]).await
    }

    /// A filter counter, once the filter has handed it to Envoy (on its
    /// 100 ms tick).
    async fn stat(&self, name: &str) -> u64 {
        self.envoy
            .settled_stat(&stat_name(name), Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap_or(0)
    }

    fn assert_vm_healthy(&self) {
        let log = self.envoy.log();
        assert!(!log.contains("panic"), "the VM panicked:\n{log}");
        assert!(
            !log.contains("Function: proxy_on"),
            "a VM call failed:\n{log}"
        );
    }
}

fn local_config(key: &TestKey) -> Value {
    json!({
        "issuer": ISSUER,
        "local_jwks": jwks(&[key]),
        "function": {"name": "env", "namespace": "openfaas-fn"},
    })
}

fn remote_config(refresh_seconds: u64, min_refetch_seconds: u64) -> Value {
    json!({
        "issuer": ISSUER,
        "jwks": {
            "cluster": SidecarBootstrap::JWKS_CLUSTER,
            "authority": "ext-authz.openfaas",
            "path": "/.well-known/jwks.json",
            "refresh_seconds": refresh_seconds,
            "min_refetch_seconds": min_refetch_seconds,
            "retry_seconds": 1,
            "timeout_ms": 2000,
        },
        "function": {"name": "env", "namespace": "openfaas-fn"},
    })
}

#[tokio::test]
async fn every_documented_response() {
    let key = TestKey::generate();
    let mut config = local_config(&key);
    config["forward_subject"] = json!(true);
    let s = Sidecar::start(config, None, |b| b).await;

    // 200: the token is forwarded, the subject added, forged headers dropped.
    let ok = fn_token(&key, &["openfaas-fn:env"]);
    let r = s
        .call(
            "/echo?x=1",
            &[
                ("authorization", &bearer(&ok)),
                ("x-faas-mesh-auth-subject", "root"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.envoy.log());
    let seen = s.echo.last_request().unwrap();
    assert_eq!(seen.header("authorization"), Some(bearer(&ok).as_str()));
    assert_eq!(
        seen.header("x-faas-mesh-auth-subject"),
        Some("fed:test-user")
    );

    // Lower-case scheme: accepted (RFC 7235 schemes are case-insensitive).
    let r = s
        .call("/", &[("authorization", &format!("bearer {ok}"))])
        .await;
    assert_eq!(r.status, 200);

    // 401 without a token, or with another scheme: the bare realm.
    for headers in [
        vec![],
        vec![("authorization", "Basic dXNlcjpwYXNz")],
        vec![("authorization", "Bearer")],
    ] {
        let r = s.call("/", &headers).await;
        assert_eq!(r.status, 401, "{headers:?}");
        assert_eq!(r.header("www-authenticate"), Some(REALM));
        assert_eq!(r.body, "Bearer must be present in Authorization header\n");
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    }

    // 401 for a bad token, with error="invalid_token" joined by ", ".
    let expired = key.sign(&function_claims(ISSUER, now() - 3600, 300, &["*"]));
    let r = s.with_token(&expired).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="IAM function invoke", error="invalid_token", error_description="expired""#
        )
    );

    // 401 for an API token (no function claim).
    let api = key.sign(&api_claims(ISSUER, now(), 300));
    let r = s.with_token(&api).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );

    // 403 without WWW-Authenticate: permissions or audience do not cover us.
    for perms in [
        &["openfaas-fn:env2"][..],
        &["dev:*"],
        &["*:env2", "openfaas-fn:en"],
    ] {
        let r = s.with_token(&fn_token(&key, perms)).await;
        assert_eq!(r.status, 403, "{perms:?}");
        assert_eq!(r.header("www-authenticate"), None);
        assert_eq!(r.body, "insufficient permissions\n");
    }
    let mut c = function_claims(ISSUER, now(), 300, &["*"]);
    c["function"]["audience"] = json!(["dev:env"]);
    assert_eq!(s.with_token(&key.sign(&c)).await.status, 403);
    c["function"]["audience"] = json!(["openfaas-fn:env"]);
    assert_eq!(s.with_token(&key.sign(&c)).await.status, 200);

    // Exempt paths pass with no token, and without forged headers; near
    // misses do not pass.
    let r = s
        .call(
            "/_/health",
            &[
                ("x-faas-mesh-auth-subject", "root"),
                ("x-faas-mesh-auth-audit", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let seen = s.echo.last_request().unwrap();
    assert_eq!(seen.header("x-faas-mesh-auth-subject"), None);
    assert_eq!(seen.header("x-faas-mesh-auth-audit"), None);
    assert_eq!(s.call("/_/ready?x=1", &[]).await.status, 200);
    assert_eq!(s.call("/_/healthz", &[]).await.status, 401);

    // Only allowed and exempt requests reached the function: 3 + 2.
    assert_eq!(s.echo.request_count(), 5);

    // Counters, and the cache: `ok` was verified once, then hit.
    assert_eq!(s.stat("allowed").await, 3);
    // Three without a usable token, plus /_/healthz.
    assert_eq!(s.stat("denied.missing_token").await, 4);
    assert_eq!(s.stat("denied.expired").await, 1);
    assert_eq!(s.stat("denied.not_function_token").await, 1);
    assert_eq!(s.stat("denied.not_permitted").await, 3);
    assert_eq!(s.stat("denied.outside_audience").await, 1);
    assert_eq!(s.stat("exempt").await, 2);
    assert!(s.stat("cache_hit").await >= 1);
    s.assert_vm_healthy();
}

#[tokio::test]
async fn hostile_tokens_all_get_401_and_the_vm_survives() {
    // Both signature paths: Envoy's native verify_signature, and pure Rust.
    for crypto in ["auto", "wasm"] {
        hostile_tokens(crypto).await;
    }
}

async fn hostile_tokens(crypto: &str) {
    let key = TestKey::generate();
    let mut config = local_config(&key);
    config["crypto"] = json!(crypto);
    let s = Sidecar::start(config, None, |b| b).await;
    let claims = function_claims(ISSUER, now(), 300, &["*"]);
    let good = fn_token(&key, &["*"]);
    let seg: Vec<&str> = good.split('.').collect();

    let hs256 = {
        let hmac = HS256Key::from_bytes(&key.public_sec1()).with_key_id(&key.kid);
        let c = JsClaims::create(JsDuration::from_secs(300))
            .with_issuer(ISSUER)
            .with_audience(ISSUER);
        hmac.authenticate(c).unwrap()
    };
    let mut tampered = claims.clone();
    tampered["function"]["permissions"] = json!(["*", "admin"]);
    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example.com");
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!(["https://evil.example.com"]);
    let mut future = claims.clone();
    future["nbf"] = json!(now() + 3600);
    let expired = function_claims(ISSUER, now() - 7200, 300, &["*"]);

    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64_json(&json!({"alg": "none", "kid": key.kid})),
                seg[1]
            ),
        ),
        (
            "alg none, no kid",
            format!("{}.{}.", b64_json(&json!({"alg": "none"})), seg[1]),
        ),
        ("HS256 keyed with the public key", hs256),
        ("unknown kid", TestKey::generate().sign(&claims)),
        (
            "our key, wrong kid",
            key.clone().with_kid("other").sign(&claims),
        ),
        ("expired", key.sign(&expired)),
        ("nbf in the future", key.sign(&future)),
        ("wrong iss", key.sign(&wrong_iss)),
        ("wrong aud", key.sign(&wrong_aud)),
        (
            "tampered payload",
            format!("{}.{}.{}", seg[0], b64_json(&tampered), seg[2]),
        ),
        ("stripped signature", format!("{}.{}.", seg[0], seg[1])),
        (
            "r = s = 0",
            format!(
                "{}.{}.{}",
                seg[0],
                seg[1],
                URL_SAFE_NO_PAD.encode([0u8; 64])
            ),
        ),
        (
            "non-base64 header",
            format!("{}%.{}.{}", seg[0], seg[1], seg[2]),
        ),
        (
            "non-JSON header",
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("{not json"),
                seg[1],
                seg[2]
            ),
        ),
        (
            "non-JSON payload",
            key.sign_raw(&json!({"alg": "ES256", "kid": key.kid}), &json!("nope")),
        ),
        ("two segments", format!("{}.{}", seg[0], seg[1])),
        ("four segments", format!("{good}.{}", seg[2])),
        ("100 KB", "A".repeat(100 * 1024)),
        (
            "crit header",
            key.sign_raw(
                &json!({"alg": "ES256", "kid": key.kid, "crit": ["exp"]}),
                &claims,
            ),
        ),
        ("jku/x5u to an attacker's key", {
            let evil = TestKey::generate();
            evil.sign_raw(
                    &json!({"alg": "ES256", "kid": evil.kid, "jku": "http://127.0.0.1:1/jwks", "x5u": "http://127.0.0.1:1/x5u", "jwk": evil.jwk()}),
                    &claims,
                )
        }),
    ];
    for (what, token) in &cases {
        let r = s.with_token(token).await;
        assert_eq!(r.status, 401, "{what}: {} {}", r.status, r.body);
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .starts_with(r#"Bearer realm="IAM function invoke", error="invalid_token""#),
            "{what}"
        );
    }
    // Header-level garbage too.
    for value in [
        "Bearer a b c",
        "Bearer ....",
        "Bearer ===",
        "Bearer \u{e9}t\u{e9}",
    ] {
        let r = s.call("/", &[("authorization", value)]).await;
        assert_eq!(r.status, 401, "{value:?}");
    }
    // A jku/x5u pointing at our own key's twin changes nothing: it verifies
    // with the trusted key and no fetch is ever attempted.
    let with_jku = key.sign_raw(
        &json!({"alg": "ES256", "kid": key.kid, "jku": "http://127.0.0.1:1/"}),
        &claims,
    );
    assert_eq!(s.with_token(&with_jku).await.status, 200);

    assert_eq!(s.echo.request_count(), 1);
    // Still serving valid tokens, none of the bad ones cached.
    for _ in 0..3 {
        assert_eq!(s.with_token(&good).await.status, 200);
    }
    // The signatures went where the config said.
    let (native, wasm) = (s.stat("verify_native").await, s.stat("verify_wasm").await);
    match crypto {
        "auto" => assert!(native >= 6 && wasm == 0, "native {native}, wasm {wasm}"),
        _ => assert!(native == 0 && wasm >= 6, "native {native}, wasm {wasm}"),
    }
    s.assert_vm_healthy();
}

#[tokio::test]
async fn a_new_kid_is_fetched_on_its_first_request() {
    let (old, new) = (TestKey::generate(), TestKey::generate());
    let server = JwksServer::with_keys(&[&old]).await.unwrap();
    // No periodic refresh within the test: only the unknown kid can cause
    // the second fetch.
    let s = Sidecar::start(remote_config(3600, 0), Some(&server), |b| b).await;

    // First fetch: requests that arrive before it wait, then pass.
    let r = s.with_token(&fn_token(&old, &["*"])).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.envoy.log());
    let req = server.requests()[0].clone();
    assert_eq!(req.path, "/.well-known/jwks.json");
    assert_eq!(req.authority(), Some("ext-authz.openfaas"));
    assert_eq!(server.fetch_count(), 1);

    // Rotation: a token under a kid the filter has never seen is accepted
    // on its first request, by a refetch, with no restart.
    server.set_keys(&[&old, &new]);
    let r = s.with_token(&fn_token(&new, &["*"])).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.envoy.log());
    assert_eq!(server.fetch_count(), 2);
    assert_eq!(s.stat("jwks_unknown_kid_refetch").await, 1);
    assert_eq!(s.with_token(&fn_token(&old, &["*"])).await.status, 200);
    // A kid nobody publishes: one more look, then 401.
    let r = s.with_token(&fn_token(&TestKey::generate(), &["*"])).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("unknown_kid")
    );
    s.assert_vm_healthy();
}

#[tokio::test]
async fn keys_are_kept_through_an_outage_and_withdrawn_keys_stop_working() {
    let (old, new) = (TestKey::generate(), TestKey::generate());
    let mut server = JwksServer::with_keys(&[&old, &new]).await.unwrap();
    let s = Sidecar::start(remote_config(1, 10), Some(&server), |b| b).await;
    let r = s.with_token(&fn_token(&old, &["*"])).await;
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.envoy.log());

    // Outage: the issuer goes away. Refreshes (every second) fail, and the
    // last good keys keep verifying, old and new alike.
    server.stop().await;
    s.envoy
        .wait_for_stat(&stat_name("jwks_fetch_failed"), T, |v| v >= 2)
        .await
        .unwrap();
    assert_eq!(s.with_token(&fn_token(&old, &["*"])).await.status, 200);
    assert_eq!(s.with_token(&fn_token(&new, &["*"])).await.status, 200);
    assert!(s.envoy.log().contains("keeping the last good keys"));

    // Back again, with the old key withdrawn: it stops working, cache or not.
    server.set_keys(&[&new]);
    server.restart().await.unwrap();
    let old_token = fn_token(&old, &["*"]);
    wait_until(T, "the old key to be withdrawn", || async {
        s.with_token(&old_token).await.status == 401
    })
    .await
    .unwrap();
    assert_eq!(s.with_token(&fn_token(&new, &["*"])).await.status, 200);
    s.assert_vm_healthy();
}

#[tokio::test]
async fn never_reachable_keys_give_503() {
    let key = TestKey::generate();
    // The jwks cluster points at a closed port.
    let s = Sidecar::start(remote_config(300, 10), None, |b| b).await;
    let r = s.with_token(&fn_token(&key, &["*"])).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body, "function token keys are not available\n");
    assert_eq!(s.echo.request_count(), 0);
    // Health checks are not held hostage by the key source.
    assert_eq!(s.call("/_/health", &[]).await.status, 200);
    assert!(s.stat("jwks_fetch_failed").await >= 1);
    s.assert_vm_healthy();
}

#[tokio::test]
async fn one_fetch_serves_all_workers() {
    let key = TestKey::generate();
    let server = JwksServer::with_keys(&[&key]).await.unwrap();
    let echo = EchoUpstream::start().await.unwrap();
    let envoy = SidecarBootstrap::new(echo.addr())
        .plugin_config(remote_config(300, 10).to_string())
        .jwks(server.addr())
        .envoy()
        .unwrap()
        .concurrency(4)
        .start()
        .await
        .unwrap();
    let url = envoy.listener_url(SidecarBootstrap::LISTENER).unwrap();
    let token = fn_token(&key, &["*"]);
    // Many connections, so several workers see traffic.
    let mut handles = Vec::new();
    for _ in 0..16 {
        let (url, auth) = (url.clone(), bearer(&token));
        handles.push(tokio::spawn(async move {
            get(&url, &[("authorization", &auth)]).await.unwrap().status
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    envoy
        .wait_for_stat(&stat_name("jwks_updated"), T, |v| v >= 4)
        .await
        .unwrap();
    assert_eq!(server.fetch_count(), 1, "workers must share one fetch");
}

#[tokio::test]
async fn audit_mode_lets_everything_through_and_counts() {
    let key = TestKey::generate();
    let mut cfg = local_config(&key);
    cfg["mode"] = json!("audit");
    let s = Sidecar::start(cfg, None, |b| b).await;
    assert_eq!(s.call("/", &[]).await.status, 200);
    assert_eq!(
        s.echo
            .last_request()
            .unwrap()
            .header("x-faas-mesh-auth-audit"),
        Some("would-deny 401 missing_token")
    );
    assert_eq!(s.with_token(&fn_token(&key, &["dev:*"])).await.status, 200);
    assert_eq!(s.with_token("x.y.z").await.status, 200);
    assert_eq!(s.with_token(&fn_token(&key, &["*"])).await.status, 200);
    assert_eq!(
        s.echo
            .last_request()
            .unwrap()
            .header("x-faas-mesh-auth-audit"),
        None
    );
    assert_eq!(s.stat("audit_would_deny.missing_token").await, 1);
    assert_eq!(s.stat("audit_would_deny.not_permitted").await, 1);
    assert_eq!(s.stat("audit_would_deny.malformed").await, 1);
    assert_eq!(s.stat("denied.missing_token").await, 0);
    assert!(s.envoy.log().contains("audit: would deny"));
}

/// Two plugins with the same `vm_id` and code share one VM per worker, as
/// several function listeners do in `make run`: each root context keeps its
/// own configuration, and each request is judged by its own listener's.
#[tokio::test]
async fn plugins_sharing_a_vm_each_guard_their_own_function() {
    let key = TestKey::generate();
    let mut dev = local_config(&key);
    dev["function"] = json!({"name": "env", "namespace": "dev"});
    let s = Sidecar::start(local_config(&key), None, |b| {
        b.listener("dev", Some(WasmFilter::new(dev.to_string())))
    })
    .await;
    let dev_url = s.envoy.listener_url("dev").unwrap();
    let at = |url: &str, token: &str| {
        let (url, auth) = (format!("{url}/"), bearer(token));
        async move { get(&url, &[("authorization", &auth)]).await.unwrap().status }
    };
    let for_default = fn_token(&key, &["openfaas-fn:env"]);
    let for_dev = fn_token(&key, &["dev:env"]);
    // Interleaved, so streams of both roots are in the VM together.
    for _ in 0..3 {
        assert_eq!(at(&s.url, &for_default).await, 200);
        assert_eq!(at(&dev_url, &for_default).await, 403);
        assert_eq!(at(&dev_url, &for_dev).await, 200);
        assert_eq!(at(&s.url, &for_dev).await, 403);
    }
    let log = s.envoy.log();
    assert!(log.contains("guarding function openfaas-fn:env"), "{log}");
    assert!(log.contains("guarding function dev:env"), "{log}");
    s.assert_vm_healthy();
}

/// A plugin configuration replaced at run time (a listener update, as
/// istiod pushes when a WasmPlugin changes) takes over with no restart, in
/// the same VM; once Envoy has drained and deleted the old one, the VM
/// forgets it (nothing tells the filter: it looks).
#[tokio::test]
async fn a_replaced_plugin_configuration_takes_over_and_the_old_one_is_forgotten() {
    let key = TestKey::generate();
    let echo = EchoUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lds = dir.path().join("lds.yaml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Listeners from a file Envoy watches (LDS), replaced atomically.
    let publish = |function: &str| {
        let mut cfg = local_config(&key);
        cfg["function"] = json!({"name": "env", "namespace": function});
        let mut boot = SidecarBootstrap::new(echo.addr())
            .plugin_config(cfg.to_string())
            .to_value()
            .unwrap();
        let mut listener = boot["static_resources"]["listeners"][0].take();
        listener["address"]["socket_address"]["port_value"] = json!(port);
        listener["@type"] = json!("type.googleapis.com/envoy.config.listener.v3.Listener");
        let doc = serde_yaml::to_string(&json!({"resources": [listener]})).unwrap();
        let tmp = dir.path().join("lds.yaml.tmp");
        std::fs::write(&tmp, doc).unwrap();
        std::fs::rename(&tmp, &lds).unwrap();
    };
    publish("openfaas-fn");
    let mut boot = SidecarBootstrap::new(echo.addr()).to_value().unwrap();
    boot["static_resources"]["listeners"] = json!([]);
    boot["dynamic_resources"] = json!({"lds_config": {
        "resource_api_version": "V3",
        "path_config_source": {
            "path": lds.to_string_lossy(),
            "watched_directory": {"path": dir.path().to_string_lossy()},
        },
    }});
    let envoy = Envoy::builder(serde_yaml::to_string(&boot).unwrap())
        .arg("--drain-time-s")
        .arg("1")
        .start()
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let status = |ns: &str| {
        let (url, auth) = (
            url.clone(),
            bearer(&fn_token(&key, &[&format!("{ns}:env")])),
        );
        async move {
            get(&url, &[("authorization", &auth), ("connection", "close")])
                .await
                .map_or(0, |r| r.status)
        }
    };
    assert_eq!(status("openfaas-fn").await, 200);
    assert_eq!(status("dev").await, 403);

    publish("dev");
    wait_until(T, "the new configuration to take over", || async {
        status("dev").await == 200
    })
    .await
    .unwrap();
    assert_eq!(status("openfaas-fn").await, 403);
    wait_until(T, "the old configuration to be forgotten", || async {
        envoy
            .log()
            .contains("forgot 1 replaced plugin configuration(s); 1 in this VM")
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", envoy.log()));
    assert_eq!(status("dev").await, 200);
    let log = envoy.log();
    assert!(!log.contains("panic"), "{log}");
}

#[tokio::test]
async fn identity_from_istio_node_metadata_and_fail_closed_without_it() {
    let key = TestKey::generate();
    let mut cfg = local_config(&key);
    cfg.as_object_mut().unwrap().remove("function");
    let s = Sidecar::start(cfg.clone(), None, |b| b.istio_function("dev", "env")).await;
    assert_eq!(
        s.with_token(&fn_token(&key, &["dev:env"])).await.status,
        200
    );
    assert_eq!(
        s.with_token(&fn_token(&key, &["openfaas-fn:env"]))
            .await
            .status,
        403
    );
    assert!(
        s.envoy
            .log()
            .contains("guarding function dev:env (from node metadata)")
    );

    let s = Sidecar::start(cfg, None, |b| b).await;
    let r = s.with_token(&fn_token(&key, &["*"])).await;
    assert_eq!(r.status, 503);
    assert_eq!(s.echo.request_count(), 0);
    assert!(s.envoy.log().contains("function identity unknown"));
}

use mesh_auth_core::testing::{TestKey, api_claims, function_claims, jwks};
use serde_json::json;

use super::*;
use crate::config::{NodeIdentity, compile};
use crate::host::mock::{MockHost, SharedStore};
use crate::keys::SharedState;

const ISS: &str = "https://gw.example.com";
const T0: u64 = 1_800_000_000_000;

fn local_worker(host: &MockHost, key: &TestKey, extra: serde_json::Value) -> Worker {
    let mut cfg = json!({
        "issuer": ISS,
        "local_jwks": jwks(&[key]),
        "function": {"name": "env", "namespace": "openfaas-fn"},
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let c = compile(cfg.to_string().as_bytes(), &NodeIdentity::default()).unwrap();
    Worker::new(host, 1, c)
}

fn remote_worker(host: &MockHost) -> Worker {
    let cfg = json!({
        "issuer": ISS,
        "jwks": {"cluster": "jwks", "authority": "ext-authz", "refresh_seconds": 60, "min_refetch_seconds": 10},
        "function": {"name": "env"},
    });
    let c = compile(cfg.to_string().as_bytes(), &NodeIdentity::default()).unwrap();
    Worker::new(host, 1, c)
}

/// A counter as Envoy would show it, after the worker's tick flushed it.
fn metric(w: &Worker, h: &MockHost, name: &str) -> u64 {
    w.flush_metrics(h);
    h.metric(name)
}

fn token(key: &TestKey, perms: &[&str]) -> String {
    key.sign(&function_claims(ISS, T0 / 1000, 300, perms))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn send(w: &mut Worker, h: &MockHost, ctx: u32, path: &str, auth: Option<&str>) -> Flow {
    let mut headers = vec![(":path", path), (":method", "GET")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    h.request(ctx, &headers);
    w.on_request(h, ctx)
}

#[test]
fn valid_token_passes_with_subject_and_token_forwarded() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({"forward_subject": true}));
    let t = token(&key, &["openfaas-fn:*"]);
    h.request(
        7,
        &[
            (":path", "/"),
            ("authorization", &bearer(&t)),
            (SUBJECT_HEADER, "forged-admin"),
            (AUDIT_HEADER, "forged"),
        ],
    );
    assert_eq!(w.on_request(&h, 7), Flow::Continue);
    assert_eq!(
        h.header_of(7, SUBJECT_HEADER).as_deref(),
        Some("fed:test-user")
    );
    assert_eq!(h.header_of(7, AUDIT_HEADER), None);
    assert_eq!(h.header_of(7, "authorization"), Some(bearer(&t)));
    assert_eq!(metric(&w, &h, "faas_mesh_auth.allowed"), 1);
    assert!(h.responses.borrow().is_empty());
}

#[test]
fn missing_or_non_bearer_gets_the_realm() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    for (ctx, auth) in [
        (1, None),
        (2, Some("Basic dXNlcjpwYXNz")),
        (3, Some("Bearer ")),
        (4, Some("")),
    ] {
        assert_eq!(send(&mut w, &h, ctx, "/", auth), Flow::Pause);
        let r = h.response_for(ctx).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some(r#"Bearer realm="IAM function invoke""#)
        );
        assert_eq!(r.body, "Bearer must be present in Authorization header\n");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
    assert_eq!(metric(&w, &h, "faas_mesh_auth.denied.missing_token"), 4);
}

#[test]
fn lower_case_scheme_is_accepted() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let t = token(&key, &["*"]);
    assert_eq!(
        send(&mut w, &h, 1, "/", Some(&format!("bearer {t}"))),
        Flow::Continue
    );
}

#[test]
fn bad_token_gets_invalid_token() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let expired = key.sign(&function_claims(ISS, T0 / 1000 - 3600, 300, &["*"]));
    assert_eq!(
        send(&mut w, &h, 1, "/", Some(&bearer(&expired))),
        Flow::Pause
    );
    let r = h.last_response().unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(
            r#"Bearer realm="IAM function invoke", error="invalid_token", error_description="expired""#
        )
    );
    assert_eq!(metric(&w, &h, "faas_mesh_auth.denied.expired"), 1);
    assert_eq!(send(&mut w, &h, 2, "/", Some("Bearer x.y.z")), Flow::Pause);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.denied.malformed"), 1);
}

#[test]
fn api_token_gets_401() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let api = key.sign(&api_claims(ISS, T0 / 1000, 300));
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&api))), Flow::Pause);
    let r = h.last_response().unwrap();
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("not_function_token")
    );
}

#[test]
fn insufficient_permissions_get_403_without_challenge() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let t = token(&key, &["dev:*", "openfaas-fn:env2"]);
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&t))), Flow::Pause);
    let r = h.last_response().unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.header("www-authenticate"), None);
    assert_eq!(r.body, "insufficient permissions\n");
    let mut c = function_claims(ISS, T0 / 1000, 300, &["*"]);
    c["function"]["audience"] = json!(["dev:env"]);
    assert_eq!(
        send(&mut w, &h, 2, "/", Some(&bearer(&key.sign(&c)))),
        Flow::Pause
    );
    assert_eq!(h.last_response().unwrap().status, 403);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.denied.outside_audience"), 1);
}

#[test]
fn exempt_paths_pass_untouched() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    assert_eq!(send(&mut w, &h, 1, "/_/health", None), Flow::Continue);
    assert_eq!(send(&mut w, &h, 2, "/_/ready?x=1", None), Flow::Continue);
    assert_eq!(send(&mut w, &h, 3, "/_/healthz", None), Flow::Pause);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.exempt"), 2);
}

#[test]
fn audit_mode_lets_denials_through_and_counts_them() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({"mode": "audit"}));
    assert_eq!(send(&mut w, &h, 1, "/", None), Flow::Continue);
    assert_eq!(
        h.header_of(1, AUDIT_HEADER).as_deref(),
        Some("would-deny 401 missing_token")
    );
    let t = token(&key, &["dev:*"]);
    assert_eq!(send(&mut w, &h, 2, "/", Some(&bearer(&t))), Flow::Continue);
    assert_eq!(
        h.header_of(2, AUDIT_HEADER).as_deref(),
        Some("would-deny 403 not_permitted")
    );
    assert!(h.responses.borrow().is_empty());
    assert_eq!(
        metric(&w, &h, "faas_mesh_auth.audit_would_deny.missing_token"),
        1
    );
    assert_eq!(
        metric(&w, &h, "faas_mesh_auth.audit_would_deny.not_permitted"),
        1
    );
    assert_eq!(metric(&w, &h, "faas_mesh_auth.denied.not_permitted"), 0);
    assert!(h.logged("audit: would deny"));
}

#[test]
fn audit_lines_log_the_path_without_its_query() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({"mode": "audit"}));
    let path = "/report?api_key=s3cret&x=1#frag";
    assert_eq!(send(&mut w, &h, 1, path, None), Flow::Continue);
    let logs = h.logs.borrow();
    let audit: Vec<&String> = logs
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("audit: would deny"))
        .collect();
    assert_eq!(
        audit,
        ["faas-mesh-auth: audit: would deny \"/report\" with 401 missing_token; allowing"]
    );
    assert!(!logs.iter().any(|(_, m)| m.contains("s3cret")), "{logs:?}");
}

#[test]
fn repeat_tokens_hit_the_cache_until_expiry() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let ok = token(&key, &["*"]);
    let forbidden = token(&key, &["dev:*"]);
    for ctx in 0..3 {
        assert_eq!(
            send(&mut w, &h, ctx, "/", Some(&bearer(&ok))),
            Flow::Continue
        );
        assert_eq!(
            send(&mut w, &h, 10 + ctx, "/", Some(&bearer(&forbidden))),
            Flow::Pause
        );
        assert_eq!(h.response_for(10 + ctx).unwrap().status, 403);
    }
    assert_eq!(metric(&w, &h, "faas_mesh_auth.cache_miss"), 2);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.cache_hit"), 4);
    // exp is T0+300 s, leeway 30 s.
    h.advance(331_000);
    assert_eq!(send(&mut w, &h, 20, "/", Some(&bearer(&ok))), Flow::Pause);
    assert!(
        h.last_response()
            .unwrap()
            .header("www-authenticate")
            .unwrap()
            .contains("expired")
    );
}

#[test]
fn bad_tokens_are_never_cached() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let t = token(&key, &["*"]);
    let tampered = format!("{}A", t);
    for ctx in 0..5 {
        send(&mut w, &h, ctx, "/", Some(&bearer(&tampered)));
    }
    assert_eq!(w.cache.len(), 0);
}

#[test]
fn unknown_identity_fails_closed() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let cfg = json!({"issuer": ISS, "local_jwks": jwks(&[&key])});
    let c = compile(cfg.to_string().as_bytes(), &NodeIdentity::default()).unwrap();
    let mut w = Worker::new(&h, 1, c);
    assert!(h.logged("function identity unknown"));
    let t = token(&key, &["*"]);
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&t))), Flow::Pause);
    assert_eq!(h.last_response().unwrap().status, 503);
    // Exempt paths still work: health checks must not flap.
    assert_eq!(send(&mut w, &h, 2, "/_/health", None), Flow::Continue);
}

#[test]
fn identity_from_node_metadata() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let cfg = json!({"issuer": ISS, "local_jwks": jwks(&[&key])});
    let node = NodeIdentity {
        namespace: Some("dev".into()),
        function: Some("env".into()),
    };
    let mut w = Worker::new(&h, 1, compile(cfg.to_string().as_bytes(), &node).unwrap());
    assert_eq!(
        send(
            &mut w,
            &h,
            1,
            "/",
            Some(&bearer(&token(&key, &["dev:env"])))
        ),
        Flow::Continue
    );
    assert_eq!(
        send(
            &mut w,
            &h,
            2,
            "/",
            Some(&bearer(&token(&key, &["openfaas-fn:env"])))
        ),
        Flow::Pause
    );
    assert_eq!(h.last_response().unwrap().status, 403);
}

// ---- remote keys ---------------------------------------------------------

/// Answer the latest call with this JWKS.
fn serve(w: &mut Worker, h: &MockHost, body: Option<&str>, status: Option<u16>) {
    let call = h.calls.borrow().last().cloned().expect("a call");
    w.on_fetch_response(h, call.token, status, body.map(|b| b.as_bytes().to_vec()));
}

#[test]
fn first_request_waits_for_the_first_fetch() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = remote_worker(&h);
    let t = token(&key, &["*"]);
    assert_eq!(send(&mut w, &h, 5, "/", Some(&bearer(&t))), Flow::Pause);
    assert!(h.responses.borrow().is_empty());
    w.on_tick(&h);
    let call = h.calls.borrow()[0].clone();
    assert_eq!(call.cluster, "jwks");
    assert!(
        call.headers
            .contains(&(":path".into(), "/.well-known/jwks.json".into()))
    );
    assert!(
        call.headers
            .contains(&(":authority".into(), "ext-authz".into()))
    );
    assert!(call.headers.contains(&(":method".into(), "GET".into())));
    serve(&mut w, &h, Some(&jwks(&[&key])), Some(200));
    assert_eq!(*h.resumed.borrow(), vec![5]);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.jwks_fetch_ok"), 1);
    // Later requests verify at once.
    assert_eq!(send(&mut w, &h, 6, "/", Some(&bearer(&t))), Flow::Continue);
}

#[test]
fn never_reachable_gives_503_not_a_hang() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = remote_worker(&h);
    let t = token(&key, &["*"]);
    assert_eq!(send(&mut w, &h, 5, "/", Some(&bearer(&t))), Flow::Pause);
    w.on_tick(&h);
    serve(&mut w, &h, None, None);
    let r = h.response_for(5).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.jwks_fetch_failed"), 1);
    assert!(h.logged("no keys yet"));
    // During the backoff a new request is answered at once.
    h.advance(1_000);
    w.on_tick(&h);
    assert_eq!(send(&mut w, &h, 6, "/", Some(&bearer(&t))), Flow::Pause);
    assert_eq!(h.response_for(6).unwrap().status, 503);
    // A non-200 status and garbage bodies are failures too.
    h.advance(5_000);
    w.on_tick(&h);
    serve(&mut w, &h, Some("oops"), Some(500));
    h.advance(10_000);
    w.on_tick(&h);
    serve(&mut w, &h, Some("{\"keys\": 1}"), Some(200));
    assert_eq!(metric(&w, &h, "faas_mesh_auth.jwks_fetch_failed"), 3);
    assert_eq!(h.calls.borrow().len(), 3);
}

#[test]
fn undefined_cluster_is_a_failed_fetch() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    h.call_fails.set(true);
    let mut w = remote_worker(&h);
    assert_eq!(
        send(&mut w, &h, 5, "/", Some(&bearer(&token(&key, &["*"])))),
        Flow::Pause
    );
    w.on_tick(&h);
    assert_eq!(h.response_for(5).unwrap().status, 503);
    assert!(h.logged("is it defined?"));
}

#[test]
fn keys_survive_a_down_issuer() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = remote_worker(&h);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&key])), Some(200));
    // Refresh due after 60 s; the server is gone.
    h.advance(61_000);
    w.on_tick(&h);
    assert_eq!(h.calls.borrow().len(), 2);
    serve(&mut w, &h, None, None);
    assert!(h.logged("keeping the last good keys"));
    let t = key.sign(&function_claims(ISS, h.now_ms.get() / 1000, 300, &["*"]));
    assert_eq!(send(&mut w, &h, 9, "/", Some(&bearer(&t))), Flow::Continue);
}

#[test]
fn rotation_to_an_unknown_kid_refetches_once_and_is_rate_limited() {
    let (h, old, new) = (MockHost::new(T0), TestKey::generate(), TestKey::generate());
    let mut w = remote_worker(&h);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&old])), Some(200));
    h.advance(20_000);
    let t_new = key_token(&new, &h);
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&t_new))), Flow::Pause);
    assert_eq!(send(&mut w, &h, 2, "/", Some(&bearer(&t_new))), Flow::Pause);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.jwks_unknown_kid_refetch"), 1);
    w.on_tick(&h);
    assert_eq!(h.calls.borrow().len(), 2, "one refetch for both waiters");
    serve(&mut w, &h, Some(&jwks(&[&old, &new])), Some(200));
    assert_eq!(*h.resumed.borrow(), vec![1, 2]);
    // A made-up kid right after: within the rate limit (10 s) it is refused
    // at once, not parked until the window opens, and costs no fetch.
    let bogus = TestKey::generate();
    for ctx in [3, 4, 5] {
        assert_eq!(
            send(&mut w, &h, ctx, "/", Some(&bearer(&key_token(&bogus, &h)))),
            Flow::Pause
        );
        let r = h.response_for(ctx).expect("answered at once");
        assert_eq!(r.status, 401);
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("unknown_kid")
        );
    }
    h.advance(10_000);
    w.on_tick(&h);
    assert_eq!(h.calls.borrow().len(), 2, "a flood costs no fetch");
}

#[test]
fn an_unknown_kid_is_never_parked_until_the_rate_limit_allows() {
    // Once, such a request waited up to min_refetch_seconds (10 s): a
    // client with a 5 s timeout got no answer, and an unauthenticated
    // caller could park 512 requests per worker, bodies buffered.
    let (h, old, new) = (MockHost::new(T0), TestKey::generate(), TestKey::generate());
    let mut w = remote_worker(&h);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&old])), Some(200));
    h.advance(2_000);
    w.on_tick(&h);
    assert_eq!(
        send(&mut w, &h, 1, "/", Some(&bearer(&key_token(&new, &h)))),
        Flow::Pause
    );
    assert_eq!(h.response_for(1).expect("at once").status, 401);
    assert!(w.waiters.is_empty());
}

#[test]
fn an_unknown_kid_waits_for_the_fetch_in_flight_and_no_longer() {
    let store: SharedStore = Default::default();
    let (h1, h2, old, new) = (
        MockHost::sharing(T0, &store),
        MockHost::sharing(T0, &store),
        TestKey::generate(),
        TestKey::generate(),
    );
    let mut w1 = remote_worker(&h1);
    let mut w2 = remote_worker(&h2);
    w1.on_tick(&h1);
    serve(&mut w1, &h1, Some(&jwks(&[&old])), Some(200));
    w2.on_tick(&h2);
    // The periodic refresh: worker 1 fetches; worker 2 sees the lease.
    for (h, w) in [(&h1, &mut w1), (&h2, &mut w2)] {
        h.advance(60_000);
        w.on_tick(h);
    }
    assert_eq!(h1.calls.borrow().len(), 2);
    // A new kid during it, within the rate limit's window of that fetch:
    // worker 2 waits for worker 1's fetch rather than refusing.
    h2.advance(50);
    assert_eq!(
        send(&mut w2, &h2, 7, "/", Some(&bearer(&key_token(&new, &h2)))),
        Flow::Pause
    );
    assert!(h2.response_for(7).is_none());
    serve(&mut w1, &h1, Some(&jwks(&[&old, &new])), Some(200));
    h2.advance(TICK_MS);
    w2.on_tick(&h2);
    assert_eq!(*h2.resumed.borrow(), vec![7]);

    // A fetch that never answers: the waiter is answered when that fetch's
    // timeout (5 s) is over, not when the rate limit next allows one.
    for (h, w) in [(&h1, &mut w1), (&h2, &mut w2)] {
        h.advance(60_000);
        w.on_tick(h);
    }
    let bogus = TestKey::generate();
    send(&mut w2, &h2, 8, "/", Some(&bearer(&key_token(&bogus, &h2))));
    let mut waited = 0;
    while h2.response_for(8).is_none() {
        h2.advance(TICK_MS);
        w2.on_tick(&h2);
        waited += TICK_MS;
        assert!(waited <= 5_000 + 3 * TICK_MS, "parked for {waited} ms");
    }
    assert_eq!(h2.response_for(8).unwrap().status, 401);
}

#[test]
fn a_document_whose_record_update_lost_is_still_installed_everywhere() {
    // The document was written before the record; if every CAS of the
    // record lost, the version never moved, and every later fetch found the
    // shared document "unchanged": no other worker ever got those keys.
    let store: SharedStore = Default::default();
    let (h1, h2, a, b) = (
        MockHost::sharing(T0, &store),
        MockHost::sharing(T0, &store),
        TestKey::generate(),
        TestKey::generate(),
    );
    let mut w1 = remote_worker(&h1);
    let mut w2 = remote_worker(&h2);
    w1.on_tick(&h1);
    serve(&mut w1, &h1, Some(&jwks(&[&a])), Some(200));
    w2.on_tick(&h2);
    // Rotation: worker 1 fetches the new set, and its record update loses.
    h1.advance(60_000);
    w1.on_tick(&h1);
    h1.cas_losses.set(4);
    serve(&mut w1, &h1, Some(&jwks(&[&a, &b])), Some(200));
    assert_eq!(h1.cas_losses.get(), 0);
    // Worker 1 uses what it fetched.
    let t_b = key_token(&b, &h1);
    assert_eq!(
        send(&mut w1, &h1, 1, "/", Some(&bearer(&t_b))),
        Flow::Continue
    );
    // The next fetch of the same document records it; worker 2 installs it.
    h1.advance(60_000);
    w1.on_tick(&h1);
    serve(&mut w1, &h1, Some(&jwks(&[&a, &b])), Some(200));
    h2.advance(120_100);
    w2.on_tick(&h2);
    let t_b = key_token(&b, &h2);
    assert_eq!(
        send(&mut w2, &h2, 2, "/", Some(&bearer(&t_b))),
        Flow::Continue
    );
}

fn key_token(key: &TestKey, h: &MockHost) -> String {
    key.sign(&function_claims(ISS, h.now_ms.get() / 1000, 300, &["*"]))
}

#[test]
fn unknown_kid_still_unknown_after_refetch_is_401() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = remote_worker(&h);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&key])), Some(200));
    h.advance(20_000);
    let stranger = TestKey::generate();
    assert_eq!(
        send(&mut w, &h, 1, "/", Some(&bearer(&key_token(&stranger, &h)))),
        Flow::Pause
    );
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&key])), Some(200));
    assert_eq!(h.response_for(1).unwrap().status, 401);
}

#[test]
fn withdrawn_key_stops_working_despite_the_cache() {
    let (h, a, b) = (MockHost::new(T0), TestKey::generate(), TestKey::generate());
    let mut w = remote_worker(&h);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&a, &b])), Some(200));
    let t = key_token(&a, &h);
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&t))), Flow::Continue);
    assert_eq!(send(&mut w, &h, 2, "/", Some(&bearer(&t))), Flow::Continue);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.cache_hit"), 1);
    h.advance(61_000);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&b])), Some(200));
    // Unknown now, and just fetched: 401 at once.
    assert_eq!(send(&mut w, &h, 3, "/", Some(&bearer(&t))), Flow::Pause);
    assert_eq!(h.response_for(3).unwrap().status, 401);
}

#[test]
fn one_fetch_serves_every_worker() {
    let store: SharedStore = Default::default();
    let (h1, h2, key) = (
        MockHost::sharing(T0, &store),
        MockHost::sharing(T0, &store),
        TestKey::generate(),
    );
    let mut w1 = remote_worker(&h1);
    let mut w2 = remote_worker(&h2);
    let t = token(&key, &["*"]);
    assert_eq!(send(&mut w2, &h2, 9, "/", Some(&bearer(&t))), Flow::Pause);
    // Both tick at the same instant: only one takes the lease.
    w1.on_tick(&h1);
    w2.on_tick(&h2);
    assert_eq!(h1.calls.borrow().len() + h2.calls.borrow().len(), 1);
    assert_eq!(h1.calls.borrow().len(), 1);
    serve(&mut w1, &h1, Some(&jwks(&[&key])), Some(200));
    // Worker 2 picks the keys up from shared data on its next tick and
    // resumes its waiting request.
    h2.advance(100);
    w2.on_tick(&h2);
    assert_eq!(*h2.resumed.borrow(), vec![9]);
    assert_eq!(h2.calls.borrow().len(), 0);
    assert_eq!(
        send(&mut w2, &h2, 10, "/", Some(&bearer(&t))),
        Flow::Continue
    );
}

#[test]
fn a_waiter_whose_client_left_is_skipped() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = remote_worker(&h);
    let t = token(&key, &["*"]);
    send(&mut w, &h, 1, "/", Some(&bearer(&t)));
    send(&mut w, &h, 2, "/", Some(&bearer(&t)));
    // The filter is not told when a stream ends (that callback would cost
    // every request a VM entry): a gone stream is found when resumed.
    h.gone.borrow_mut().extend([1, 2]);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&key])), Some(200));
    assert!(h.resumed.borrow().is_empty());
    assert!(h.responses.borrow().is_empty());
}

#[test]
fn waiters_time_out_on_the_tick() {
    let store: SharedStore = Default::default();
    let (h1, h2, key) = (
        MockHost::sharing(T0, &store),
        MockHost::sharing(T0, &store),
        TestKey::generate(),
    );
    let mut w1 = remote_worker(&h1);
    let mut w2 = remote_worker(&h2);
    // Worker 1 takes the lease and then never hears back.
    w1.on_tick(&h1);
    send(&mut w2, &h2, 4, "/", Some(&bearer(&token(&key, &["*"]))));
    h2.advance(3_000);
    w2.on_tick(&h2);
    assert!(h2.responses.borrow().is_empty());
    h2.advance(3_000);
    w2.on_tick(&h2);
    assert_eq!(h2.response_for(4).unwrap().status, 503);
}

#[test]
fn garbage_in_shared_data_is_overwritten() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = remote_worker(&h);
    let state_key = w.keys.state_key().unwrap();
    h.shared
        .borrow_mut()
        .insert(state_key.clone(), (b"junk".to_vec(), 1));
    w.on_tick(&h);
    w.on_tick(&h);
    serve(&mut w, &h, Some(&jwks(&[&key])), Some(200));
    assert!(SharedState::decode(&h.shared.borrow()[&state_key].0).is_some());
}

#[test]
fn signatures_are_checked_natively_when_the_host_can() {
    let (h, key) = (MockHost::new(T0).with_native_verify(), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let t = token(&key, &["openfaas-fn:*"]);
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&t))), Flow::Continue);
    assert_eq!(h.foreign_calls.borrow().len(), 1);
    assert_eq!(metric(&w, &h, "faas_mesh_auth.verify_native"), 1);
    // Cached: no second call.
    assert_eq!(send(&mut w, &h, 2, "/", Some(&bearer(&t))), Flow::Continue);
    assert_eq!(h.foreign_calls.borrow().len(), 1);
    // A forged signature is refused by the host.
    let forged = TestKey::generate()
        .with_kid(&key.kid)
        .sign(&function_claims(ISS, T0 / 1000, 300, &["*"]));
    assert_eq!(
        send(&mut w, &h, 3, "/", Some(&bearer(&forged))),
        Flow::Pause
    );
    let r = h.response_for(3).unwrap();
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("bad_signature")
    );
    assert_eq!(metric(&w, &h, "faas_mesh_auth.verify_wasm"), 0);
}

#[test]
fn crypto_wasm_never_asks_the_host() {
    let (h, key) = (MockHost::new(T0).with_native_verify(), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({"crypto": "wasm"}));
    let t = token(&key, &["*"]);
    assert_eq!(send(&mut w, &h, 1, "/", Some(&bearer(&t))), Flow::Continue);
    assert!(h.foreign_calls.borrow().is_empty());
    assert_eq!(metric(&w, &h, "faas_mesh_auth.verify_wasm"), 1);
}

#[test]
fn a_host_without_the_function_falls_back_once() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    for ctx in 0..3 {
        let t = token(
            &key,
            &[&format!("openfaas-fn:{}", ["*", "env", "e*"][ctx as usize])],
        );
        assert_eq!(
            send(&mut w, &h, ctx, "/", Some(&bearer(&t))),
            Flow::Continue
        );
    }
    assert_eq!(
        h.foreign_calls.borrow().len(),
        1,
        "asked once, then remembered"
    );
    assert_eq!(metric(&w, &h, "faas_mesh_auth.verify_wasm"), 3);
}

#[test]
fn the_subject_is_forwarded_only_when_asked_and_forgeries_never() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({}));
    let t = token(&key, &["*"]);
    h.request(1, &[(":path", "/"), ("authorization", &bearer(&t))]);
    assert_eq!(w.on_request(&h, 1), Flow::Continue);
    assert_eq!(h.header_of(1, SUBJECT_HEADER), None);
    h.request(
        2,
        &[
            (":path", "/"),
            ("authorization", &bearer(&t)),
            (SUBJECT_HEADER, "admin"),
        ],
    );
    assert_eq!(w.on_request(&h, 2), Flow::Continue);
    assert_eq!(h.header_of(2, SUBJECT_HEADER), None);
}

#[test]
fn a_subject_unfit_for_a_header_is_not_forwarded_and_forgeries_are_removed() {
    let (h, key) = (MockHost::new(T0), TestKey::generate());
    let mut w = local_worker(&h, &key, json!({"forward_subject": true}));
    let long = "x".repeat(mesh_auth_core::headers::MAX_FORWARDED_VALUE_BYTES + 1);
    for (ctx, sub) in [(1, " padded"), (2, "padded "), (3, "tab\there"), (4, &long)] {
        let mut c = function_claims(ISS, T0 / 1000, 300, &["*"]);
        c["sub"] = json!(sub);
        h.request(
            ctx,
            &[
                (":path", "/"),
                ("authorization", &bearer(&key.sign(&c))),
                (SUBJECT_HEADER, "forged"),
            ],
        );
        assert_eq!(w.on_request(&h, ctx), Flow::Continue, "{sub:?}");
        assert_eq!(h.header_of(ctx, SUBJECT_HEADER), None, "{sub:?}");
    }
}

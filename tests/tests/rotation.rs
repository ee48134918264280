//! Publish before sign, across replicas: two ext-authz processes whose key
//! directories get the new key seconds apart (as two kubelets deliver a
//! Secret), behind one sidecar Envoy whose filter fetches the JWKS from
//! either, under steady load. Not one request may fail: every token either
//! replica signs verifies at the sidecar and at the other replica.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mesh_auth_tests::soak::faults::utc_stamp;
use mesh_auth_tests::stack::demo_iam;
use mesh_auth_tests::{
    EchoUpstream, ExtAuthz, ExtAuthzOpts, OidcOpts, OidcProvider, PemKey, SidecarBootstrap, get,
    wait_until,
};
use serde_json::{Value, json};

const ISSUER: &str = "https://gateway.example.com";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

/// Exchange `subject` at `authz`; the token, or why not.
async fn exchange(authz: &ExtAuthz, subject: &str, function: bool) -> Result<String, String> {
    let mut fields = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", ID_TOKEN),
    ];
    if function {
        fields.push(("scope", "function"));
    }
    let r = authz
        .token_request(&fields)
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("{} {}", r.status, r.body));
    }
    let v = r.json().map_err(|e| e.to_string())?;
    Ok(v["access_token"].as_str().unwrap_or_default().to_owned())
}

#[derive(Default)]
struct Tally {
    ok: usize,
    failures: Vec<String>,
    kids: std::collections::BTreeSet<String>,
}

#[tokio::test]
async fn two_replicas_rotate_under_load_without_a_failed_request() {
    let idp = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let first = PemKey::generate().unwrap();
    let replica = || {
        let mut opts = ExtAuthzOpts::new(ISSUER)
            .key("2026-01-01.pem", first.clone())
            .arg("--key-publish-delay")
            .arg("3s");
        for (name, yaml) in demo_iam(idp.issuer(), idp.client_id(), None, "30m") {
            opts = opts.iam(&name, yaml);
        }
        ExtAuthz::start(opts)
    };
    let (a, b) = (replica().await.unwrap(), replica().await.unwrap());

    // One sidecar; its JWKS cluster balances over both replicas.
    let echo = EchoUpstream::start().await.unwrap();
    let endpoint = |authz: &ExtAuthz| {
        json!({"endpoint": {"address": {"socket_address": {
            "address": "127.0.0.1", "port_value": authz.http_addr().port()}}}})
    };
    let plugin = json!({
        "issuer": ISSUER,
        "jwks": {"cluster": "replicas", "authority": "ext-authz.openfaas",
                 "refresh_seconds": 2, "timeout_ms": 2000},
        "function": {"name": "env", "namespace": "openfaas-fn"},
    });
    let envoy = SidecarBootstrap::new(echo.addr())
        .plugin_config(plugin.to_string())
        .cluster(json!({
            "name": "replicas",
            "type": "STATIC",
            "connect_timeout": "1s",
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": "replicas",
                "endpoints": [{"lb_endpoints": [endpoint(&a), endpoint(&b)]}]},
        }))
        .start()
        .await
        .unwrap();
    let sidecar = envoy.listener_url(SidecarBootstrap::LISTENER).unwrap();

    let subject = idp.client_credentials_token("email").await.unwrap();
    let (a, b) = (Arc::new(a), Arc::new(b));
    let stop = Arc::new(AtomicBool::new(false));

    // Load: fresh function tokens from each replica, invoked at once; API
    // tokens from one replica exchanged at the other.
    let mut workers = Vec::new();
    for w in 0..4 {
        let (a, b, stop, subject, sidecar) = (
            a.clone(),
            b.clone(),
            stop.clone(),
            subject.clone(),
            sidecar.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let (here, there) = if (round + w).is_multiple_of(2) {
                    (&a, &b)
                } else {
                    (&b, &a)
                };
                let step = async {
                    let fn_token = exchange(here, &subject, true).await?;
                    let kid = kid_of(&fn_token);
                    let r = get(
                        &sidecar,
                        &[("authorization", &format!("Bearer {fn_token}"))],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    if r.status != 200 {
                        return Err(format!("invoke with kid {kid}: {} {}", r.status, r.body));
                    }
                    let api = exchange(here, &subject, false).await?;
                    exchange(there, &api, true).await.map_err(|e| {
                        format!("API token (kid {}) at the other replica: {e}", kid_of(&api))
                    })?;
                    Ok::<_, String>(kid)
                };
                match step.await {
                    Ok(kid) => {
                        tally.ok += 1;
                        tally.kids.insert(kid);
                    }
                    Err(e) => tally.failures.push(e),
                }
            }
            tally
        }));
    }

    // The rotation: the key may sign 8 s from now; replica A's kubelet
    // delivers it at once, B's 3 s later.
    let second = PemKey::generate().unwrap();
    let signs_at = now() + 8;
    let name = format!("{}.pem", utc_stamp(signs_at));
    a.write_key(&name, &second).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.write_key(&name, &second).unwrap();
    // Until both replicas sign with it, and a little after.
    wait_until(Duration::from_secs(20), "both replicas to sign with the new key", || async {
        let (x, y) = (
            exchange(&a, &subject, true).await,
            exchange(&b, &subject, true).await,
        );
        matches!((x, y), (Ok(x), Ok(y)) if kid_of(&x) == second.kid() && kid_of(&y) == second.kid())
    })
    .await
    .unwrap();
    assert!(now() >= signs_at, "a replica signed before the key's time");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = Tally::default();
    for w in workers {
        let t = w.await.unwrap();
        total.ok += t.ok;
        total.failures.extend(t.failures);
        total.kids.extend(t.kids);
    }
    assert!(
        total.failures.is_empty(),
        "{} of {} rounds failed, e.g. {:?}",
        total.failures.len(),
        total.ok + total.failures.len(),
        &total.failures[..total.failures.len().min(5)]
    );
    assert!(total.ok >= 20, "too little load: {}", total.ok);
    assert!(
        total.kids.contains(first.kid()) && total.kids.contains(second.kid()),
        "the load saw both keys: {:?}",
        total.kids
    );
}

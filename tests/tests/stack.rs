//! The whole system, started the way `make run` starts it, driven with the
//! requests the OpenFaaS docs (and `make run`'s walkthrough) make: a real
//! OpenID provider, ext-authz, a gateway Envoy with ext_authz, and sidecar
//! Envoys running the built filter in front of each function.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mesh_auth_tests::stack::{Ports, Stack, StackOpts};
use mesh_auth_tests::{
    HttpResponse, PemKey, form_encode, get, request, wait_for, wait_until, watchdog_check,
};
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

fn header_of(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

async fn start() -> (Stack, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let mut opts = StackOpts::new(Ports::any(), state.path());
    opts.reload_interval = Duration::from_millis(200);
    // A key added while running signs this long after ext-authz first sees
    // it (10 min by default): longer than the filters take to refresh, so
    // they have it before the first token under it.
    opts.jwks_refresh_seconds = 1;
    opts.ext_authz_args = vec!["--key-publish-delay".into(), "3s".into()];
    let stack = Stack::start(opts).await.unwrap();
    (stack, state)
}

/// The docs' exchange, as a form POST to the gateway.
async fn exchange(
    stack: &Stack,
    subject: &str,
    scope: Option<&str>,
    audiences: &[&str],
) -> HttpResponse {
    let mut fields = vec![
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
    ];
    if let Some(s) = scope {
        fields.push(("scope", s));
    }
    for a in audiences {
        fields.push(("audience", a));
    }
    request(
        "POST",
        &format!("{}/oauth/token", stack.gateway_url()),
        &[("content-type", "application/x-www-form-urlencoded")],
        form_encode(&fields).into_bytes(),
    )
    .await
    .unwrap()
}

async fn token(stack: &Stack, subject: &str, scope: Option<&str>, audiences: &[&str]) -> String {
    let r = exchange(stack, subject, scope, audiences).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn invoke(stack: &Stack, path: &str, token: Option<&str>) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    get(&format!("{}{path}", stack.gateway_url()), &headers)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_docs_flow_through_the_whole_stack() {
    let (stack, _state) = start().await;
    let idp_token = stack.oidc.client_credentials_token("email").await.unwrap();

    // Exchange, then invoke as faas-cli does (NAME.NAMESPACE) and as curl
    // users do (the bare name in openfaas-fn).
    let fn_token = token(&stack, &idp_token, Some("function"), &[]).await;
    let claims = claims_of(&fn_token);
    assert_eq!(claims["iss"], stack.gateway_url());
    assert_eq!(claims["sub"], "fed:openfaas-demo");
    assert_eq!(
        claims["function"]["permissions"],
        serde_json::json!(["openfaas-fn:*", "dev:env"])
    );
    for path in [
        "/function/env",
        "/function/env.openfaas-fn",
        "/function/env.dev",
        "/function/env.dev/sub/path?x=1",
    ] {
        let r = invoke(&stack, path, Some(&fn_token)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let seen = r.echoed().unwrap();
        // The function sees its own path, the token, and who called.
        assert!(
            seen.path == "/" || seen.path == "/sub/path?x=1",
            "{}",
            seen.path
        );
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {fn_token}").as_str())
        );
        assert_eq!(
            seen.header("x-faas-mesh-auth-subject"),
            Some("fed:openfaas-demo")
        );
    }
    assert_eq!(stack.function("dev:env").unwrap().request_count(), 2);

    // 401 without a token, with the realm faas-cli retries on.
    let r = invoke(&stack, "/function/env.openfaas-fn", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="IAM function invoke""#)
    );

    // 403 outside the permissions.
    let r = invoke(&stack, "/function/env.staging", Some(&fn_token)).await;
    assert_eq!(r.status, 403);
    assert_eq!(stack.function("staging:env").unwrap().request_count(), 0);

    // A function that has not opted in needs nothing.
    assert_eq!(invoke(&stack, "/function/nodeinfo", None).await.status, 200);

    // audience attenuation: this token may invoke openfaas-fn:env only.
    let env_only = token(&stack, &idp_token, Some("function"), &["openfaas-fn:env"]).await;
    assert_eq!(
        claims_of(&env_only)["function"]["audience"],
        serde_json::json!(["openfaas-fn:env"])
    );
    assert_eq!(
        invoke(&stack, "/function/env", Some(&env_only))
            .await
            .status,
        200
    );
    assert_eq!(
        invoke(&stack, "/function/env.dev", Some(&env_only))
            .await
            .status,
        403
    );
    let r = exchange(&stack, &idp_token, Some("function"), &["staging:env"]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json().unwrap()["error"], "invalid_target");

    // The async path reaches the function with the token passed through.
    let r = invoke(&stack, "/async-function/env.dev", Some(&fn_token)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echoed().unwrap().header("authorization"),
        Some(format!("Bearer {fn_token}").as_str())
    );
    assert_eq!(
        invoke(&stack, "/async-function/env.dev", None).await.status,
        401
    );

    // An API token is refused at a function (401), but works on /system/.
    let api = token(&stack, &idp_token, None, &[]).await;
    assert!(claims_of(&api).get("function").is_none());
    let r = invoke(&stack, "/function/env", Some(&api)).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("not_function_token")
    );
    let r = invoke(
        &stack,
        "/system/functions?namespace=openfaas-fn",
        Some(&api),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.echoed().unwrap().header("x-faas-mesh-auth-subject"),
        Some("fed:openfaas-demo")
    );
    assert_eq!(
        invoke(&stack, "/system/secrets?namespace=openfaas-fn", Some(&api))
            .await
            .status,
        403
    );
    assert_eq!(invoke(&stack, "/system/functions", None).await.status, 401);
    // A function token is not an API token.
    assert_eq!(
        invoke(&stack, "/system/functions", Some(&fn_token))
            .await
            .status,
        401
    );
    assert_eq!(stack.gateway_api.request_count(), 1);

    // Migration: a function still on OpenFaaS's watchdog with jwt_auth=true
    // reads the gateway's discovery document and accepts the same tokens.
    let discovery = format!("{}/.well-known/openid-configuration", stack.gateway_url());
    let d = get(&discovery, &[]).await.unwrap();
    assert_eq!(d.json().unwrap()["issuer"], stack.gateway_url());
    let check = |token: String, ns: &'static str| {
        let discovery = discovery.clone();
        async move { watchdog_check(&discovery, &token, ns, "env").await.unwrap() }
    };
    assert_eq!(
        check(fn_token.clone(), "openfaas-fn").await,
        (200, "ok".into())
    );
    assert_eq!(check(fn_token.clone(), "dev").await, (200, "ok".into()));
    assert_eq!(check(fn_token.clone(), "staging").await.0, 403);
    assert_eq!(check(env_only.clone(), "dev").await.0, 403);
    // No function claim: the watchdog finds no permissions (403; the filter
    // says 401, an API token being the wrong kind of token).
    assert_eq!(check(api.clone(), "openfaas-fn").await.0, 403);
    assert_eq!(check(format!("{fn_token}x"), "openfaas-fn").await.0, 401);
    stack.stop().await;
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_with_no_failed_request() {
    let (stack, _state) = start().await;
    let stack = Arc::new(stack);
    let idp_token = stack.oidc.client_credentials_token("email").await.unwrap();
    let first = token(&stack, &idp_token, Some("function"), &[]).await;
    let old_kid = header_of(&first)["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        invoke(&stack, "/function/env", Some(&first)).await.status,
        200
    );

    // Keep traffic flowing through the rotation: every request must pass.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (stack, stop, ok, failed, idp) = (
            stack.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            idp_token.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // A fresh token each time: after the rotation they carry the
                // new kid, which the filter has never seen.
                let t = token(&stack, &idp, Some("function"), &[]).await;
                let r = invoke(&stack, "/function/env.dev", Some(&t)).await;
                if r.status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!(
                        "failed during rotation: {} {} {:?}",
                        r.status,
                        r.body,
                        r.header("www-authenticate")
                    );
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    // Rotate: a newer key file in ext-authz's key directory.
    let key_dir = stack.ext_authz().key_dir().to_owned();
    let new_key = PemKey::generate().unwrap();
    std::fs::write(key_dir.join("9999-rotated.pem"), &new_key.pem).unwrap();
    let new_token = wait_for(T, "tokens signed with the new key", || async {
        let t = token(&stack, &idp_token, Some("function"), &[]).await;
        Ok((header_of(&t)["kid"] == new_key.kid()).then_some(t))
    })
    .await
    .unwrap();
    // Let traffic run a little past the switch, then stop it.
    let after = ok.load(Ordering::Relaxed);
    wait_until(T, "traffic after the rotation", || async {
        ok.load(Ordering::Relaxed) >= after + 5
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request may fail across a rotation"
    );

    assert_eq!(
        invoke(&stack, "/function/env", Some(&new_token))
            .await
            .status,
        200
    );
    // Tokens from before the rotation still work: the old key is still
    // published.
    assert_eq!(
        invoke(&stack, "/function/env", Some(&first)).await.status,
        200
    );
    let jwks = get(
        &format!("{}/.well-known/jwks.json", stack.gateway_url()),
        &[],
    )
    .await
    .unwrap();
    let kids: Vec<String> = jwks.json().unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, vec![new_key.kid().to_owned(), old_kid]);
    assert!(
        stack.sidecars.log().contains("refetching keys")
            || stack.sidecars.log().contains("trusting keys")
    );
    Arc::try_unwrap(stack).ok().unwrap().stop().await;
}

//! The token exchange end to end, over real HTTP between real processes: a
//! real OpenID provider (npm `oidc-provider`) issues client-credentials JWTs,
//! the ext-authz binary exchanges them for function and API tokens, and the
//! results are verified twice, by our core and by the `jose` npm package.
//! Also: OAuth error bodies, an IdP outage, IAM reloads, key rotation and
//! SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mesh_auth_core::{GatewayClaims, KeySet, Validation, Verified, verify};
use mesh_auth_tests::testing::TestKey;
use mesh_auth_tests::{
    ExtAuthz, ExtAuthzOpts, HttpResponse, JoseCheck, JwksServer, OidcOpts, OidcProvider, PemKey,
    get, jose_verify, request, wait_for,
};
use serde_json::{Value, json};

/// Our issuer: the gateway's public URL.
const GATEWAY: &str = "https://gateway.example.com";
const T: Duration = Duration::from_secs(10);

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---- IAM objects, as function-authentication.md writes them ----

fn jwt_issuer(name: &str, iss: &str, expiry: &str) -> String {
    format!(
        "apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata:
  name: {name}
  namespace: openfaas
spec:
  iss: {iss}
  aud:
    - openfaas
  tokenExpiry: {expiry}
"
    )
}

fn invoke_policy(resources: &[&str]) -> String {
    let resources: String = resources
        .iter()
        .map(|r| format!("      - \"{r}\"\n"))
        .collect();
    format!(
        "apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: invoke-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-invoke-policy
    action:
      - \"Function:Invoke\"
    effect: Allow
    resource:
{resources}"
    )
}

/// The docs' Role, principal inside the condition, for one client of one
/// issuer.
fn docs_role(sub: &str, iss: &str) -> String {
    format!(
        "apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: invoke-role
  namespace: openfaas
spec:
  policy:
  - invoke-policy
  condition:
    principal:
      jwt:sub:
        - {sub}
    StringEqual:
      jwt:iss: [\"{iss}\"]
"
    )
}

/// More grants for the same client, to check the union: another invoke
/// policy, and a policy without Function:Invoke, whose resources must not
/// become function permissions. `spec.principal` written at the top level.
fn extra_grants(sub: &str, iss: &str) -> String {
    format!(
        "apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: staging-invoke
  namespace: openfaas
spec:
  statement:
  - sid: staging
    action: [\"Function:Invoke\", \"Function:Get\"]
    effect: Allow
    resource: [\"staging:*\"]
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: prod-reader
  namespace: openfaas
spec:
  statement:
  - sid: read
    action: [\"Function:List\", \"Function:Get\", \"Function:Logs\"]
    effect: Allow
    resource: [\"prod:*\"]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: extra-role
  namespace: openfaas
spec:
  policy: [staging-invoke, prod-reader]
  principal:
    jwt:sub: [{sub}]
  condition:
    StringEqual:
      jwt:iss: [\"{iss}\"]
"
    )
}

/// The docs' setup for `provider`'s client: tokens last 30 minutes.
fn docs_iam(provider: &OidcProvider) -> ExtAuthzOpts {
    ExtAuthzOpts::new(GATEWAY)
        .iam(
            "issuer.yaml",
            jwt_issuer("provider", provider.issuer(), "30m"),
        )
        .iam("policy.yaml", invoke_policy(&["openfaas-fn:*", "dev:env"]))
        .iam(
            "role.yaml",
            docs_role(provider.client_id(), provider.issuer()),
        )
}

// ---- requests and checks ----

/// The docs' exchange request, field for field, plus `extra`.
async fn exchange(authz: &ExtAuthz, subject: &str, extra: &[(&str, &str)]) -> HttpResponse {
    let mut fields = vec![
        ("subject_token", subject),
        ("subject_token_type", ID_TOKEN),
        ("grant_type", GRANT),
    ];
    fields.extend_from_slice(extra);
    authz.token_request(&fields).await.unwrap()
}

/// A successful exchange: its `access_token`, after checking the response.
fn issued(resp: &HttpResponse, scope: Option<&str>) -> String {
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json().unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN, "{body}");
    assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(body.get("scope").and_then(Value::as_str), scope, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// An OAuth error: checks status, content type, `no-store` and `error`,
/// and returns `error_description`.
fn oauth_error(resp: &HttpResponse, status: u16, error: &str) -> String {
    assert_eq!(resp.status, status, "{}", resp.body);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json().unwrap();
    assert_eq!(body["error"], error, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

fn segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header(token: &str) -> Value {
    segment(token, 0)
}

fn payload(token: &str) -> Value {
    segment(token, 1)
}

/// Verified by our core against ext-authz's published JWKS.
async fn verify_ours(authz: &ExtAuthz, token: &str) -> Verified<GatewayClaims> {
    let jwks = authz.jwks().await.unwrap();
    let (keys, skipped) = KeySet::from_jwks_json(jwks.to_string().as_bytes()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let validation = Validation::new([authz.issuer()], [authz.issuer()]).unwrap();
    verify::<GatewayClaims>(token, &keys, &validation, now())
        .unwrap_or_else(|e| panic!("core refused {token}: {e}"))
}

/// Verified by the `jose` npm package against ext-authz's JWKS URL; its
/// payload.
async fn verify_jose(authz: &ExtAuthz, token: &str) -> Value {
    let url = authz.jwks_url();
    let out = jose_verify(
        token,
        &JoseCheck {
            jwks_url: &url,
            issuer: authz.issuer(),
            audience: authz.issuer(),
            alg: "ES256",
        },
    )
    .await
    .unwrap();
    assert_eq!(out["header"]["alg"], "ES256");
    assert_eq!(out["header"]["typ"], "JWT");
    out["payload"].clone()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn permissions(token: &str) -> BTreeSet<String> {
    strings(&payload(token)["function"]["permissions"])
}

/// A stand-in IdP for tokens the real provider will not mint (expired, for
/// another audience, for an unknown subject). `JwksServer` answers every
/// path with one body, so one JSON object is both the discovery document
/// (`issuer`, `jwks_uri`) and the JWKS (`keys`).
async fn stand_in_idp(key: &TestKey) -> (JwksServer, String) {
    let idp = JwksServer::start("{}").await.unwrap();
    let iss = format!("http://{}", idp.addr());
    idp.set_body(
        json!({
            "issuer": iss,
            "jwks_uri": format!("{iss}/jwks"),
            "keys": [key.jwk()],
        })
        .to_string(),
    );
    (idp, iss)
}

// ---- tests ----

/// function-authentication.md, steps 1 and 2: a client-credentials token
/// from the IdP, exchanged with `scope=function` for a function token.
#[tokio::test]
async fn docs_flow_client_credentials_token_becomes_a_function_token() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let authz = ExtAuthz::start(docs_iam(&provider).iam(
        "extra.yaml",
        extra_grants(provider.client_id(), provider.issuer()),
    ))
    .await
    .unwrap();

    // Step 1, as the docs' curl: a JWT access token, RS256, for `openfaas`,
    // whose subject is the client. jose agrees with the provider's JWKS.
    let idp_token = provider.client_credentials_token("email").await.unwrap();
    assert_eq!(header(&idp_token)["alg"], "RS256");
    let jwks_uri = provider.jwks_uri().await.unwrap();
    let idp_claims = jose_verify(
        &idp_token,
        &JoseCheck {
            jwks_url: &jwks_uri,
            issuer: provider.issuer(),
            audience: "openfaas",
            alg: "RS256",
        },
    )
    .await
    .unwrap();
    assert_eq!(idp_claims["payload"]["sub"], "openfaas-demo");
    assert_eq!(idp_claims["payload"]["client_id"], "openfaas-demo");

    // ext-authz's own discovery document.
    let doc = get(
        &format!("{}/.well-known/openid-configuration", authz.http_url()),
        &[],
    )
    .await
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(doc["issuer"], GATEWAY);
    assert_eq!(doc["token_endpoint"], format!("{GATEWAY}/oauth/token"));
    assert_eq!(doc["jwks_uri"], format!("{GATEWAY}/.well-known/jwks.json"));

    // Step 2, as the docs' curl.
    let resp = exchange(&authz, &idp_token, &[("scope", "function")]).await;
    let token = issued(&resp, Some("function"));
    assert_eq!(resp.json().unwrap()["expires_in"], 1800);

    let h = header(&token);
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["kid"], authz.keys()[0].1.kid());

    let ours = verify_ours(&authz, &token).await;
    let jose = verify_jose(&authz, &token).await;
    assert_eq!(jose, payload(&token));
    assert_eq!(ours.claims.iss.as_deref(), Some(GATEWAY));
    assert_eq!(ours.claims.aud, vec![GATEWAY.to_owned()]);
    assert_eq!(jose["aud"], json!([GATEWAY]));
    assert_eq!(ours.claims.sub.as_deref(), Some("fed:openfaas-demo"));
    let grant = ours.claims.custom.function.clone().unwrap();
    assert_eq!(grant.audience, None);
    assert!(jose["function"].get("audience").is_none(), "{jose}");
    // The union of the Function:Invoke resources of every matched policy;
    // prod-reader's resources are not among them.
    assert_eq!(
        grant.permissions.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["openfaas-fn:*", "dev:env", "staging:*"])
    );
    assert_eq!(ours.claims.custom.policy, None);
    let iat = ours.claims.iat.unwrap();
    assert_eq!(ours.claims.exp - iat, 30 * 60, "tokenExpiry: 30m");
    assert!(iat.abs_diff(now()) <= 5);
    let jti = ours.claims.jti.clone().unwrap();
    assert!(jti.len() >= 16, "{jti}");

    // Every exchange gets its own jti.
    let again = issued(
        &exchange(&authz, &idp_token, &[("scope", "function")]).await,
        Some("function"),
    );
    assert_ne!(payload(&again)["jti"], json!(jti));

    // Audited by jti, and no token is ever logged.
    authz.wait_for_log(&jti, T).await.unwrap();
    let log = authz.log();
    assert!(log.contains("token_exchange"), "{log}");
    assert!(!log.contains(&token) && !log.contains(&idp_token));
    assert!(!log.contains(idp_token.split('.').nth(2).unwrap()));
    assert!(!provider.log().contains("dev-secret"), "{}", provider.log());
}

#[tokio::test]
async fn audience_attenuates_a_function_token_and_outside_audience_is_invalid_target() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let authz = ExtAuthz::start(docs_iam(&provider)).await.unwrap();
    let idp_token = provider.client_credentials_token("email").await.unwrap();

    // Repeated audience, as faas-cli and the go-sdk send it.
    let resp = exchange(
        &authz,
        &idp_token,
        &[
            ("scope", "function"),
            ("audience", "openfaas-fn:env"),
            ("audience", "dev:env"),
        ],
    )
    .await;
    let token = issued(&resp, Some("function"));
    let ours = verify_ours(&authz, &token).await;
    let grant = ours.claims.custom.function.unwrap();
    assert_eq!(
        grant.audience,
        Some(vec!["openfaas-fn:env".to_owned(), "dev:env".to_owned()])
    );
    // Attenuation narrows what the token may call; the grant is unchanged.
    assert_eq!(
        grant.permissions.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["openfaas-fn:*", "dev:env"])
    );
    assert_eq!(
        verify_jose(&authz, &token).await["function"]["audience"],
        json!(["openfaas-fn:env", "dev:env"])
    );

    // A namespace wildcard inside the grant is fine too.
    issued(
        &exchange(
            &authz,
            &idp_token,
            &[("scope", "function"), ("audience", "openfaas-fn:*")],
        )
        .await,
        Some("function"),
    );

    // One audience outside the permissions spoils the request.
    for outside in ["dev:other", "prod:env", "*"] {
        let resp = exchange(
            &authz,
            &idp_token,
            &[
                ("scope", "function"),
                ("audience", "openfaas-fn:env"),
                ("audience", outside),
            ],
        )
        .await;
        let why = oauth_error(&resp, 400, "invalid_target");
        assert!(why.contains(outside), "{outside}: {why}");
    }
    // Not a function at all.
    let why = oauth_error(
        &exchange(
            &authz,
            &idp_token,
            &[("scope", "function"), ("audience", "https://elsewhere")],
        )
        .await,
        400,
        "invalid_target",
    );
    assert!(why.contains("not a function"), "{why}");
    // audience only attenuates function tokens.
    oauth_error(
        &exchange(&authz, &idp_token, &[("audience", "openfaas-fn:env")]).await,
        400,
        "invalid_target",
    );
}

#[tokio::test]
async fn without_scope_function_an_api_token_which_exchanges_again_for_a_function_token() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let authz = ExtAuthz::start(docs_iam(&provider).iam(
        "extra.yaml",
        extra_grants(provider.client_id(), provider.issuer()),
    ))
    .await
    .unwrap();
    let idp_token = provider.client_credentials_token("email").await.unwrap();

    let api = issued(&exchange(&authz, &idp_token, &[]).await, None);
    let ours = verify_ours(&authz, &api).await;
    let jose = verify_jose(&authz, &api).await;
    assert_eq!(ours.claims.sub.as_deref(), Some("fed:openfaas-demo"));
    assert_eq!(ours.claims.aud, vec![GATEWAY.to_owned()]);
    assert_eq!(ours.claims.custom.function, None);
    assert!(jose.get("function").is_none(), "{jose}");
    assert_eq!(jose["fed:iss"], provider.issuer());
    assert_eq!(
        strings(&jose["policy"]),
        set(&["invoke-policy", "staging-invoke", "prod-reader"])
    );
    assert_eq!(ours.claims.exp - ours.claims.iat.unwrap(), 30 * 60);
    assert!(jose["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // faas-cli sends our own API token with the id_token type too.
    let token = issued(
        &exchange(
            &authz,
            &api,
            &[("scope", "function"), ("audience", "staging:env")],
        )
        .await,
        Some("function"),
    );
    let fun = verify_ours(&authz, &token).await;
    assert_eq!(fun.claims.sub.as_deref(), Some("fed:openfaas-demo"));
    let grant = fun.claims.custom.function.unwrap();
    assert_eq!(
        grant.permissions.iter().cloned().collect::<BTreeSet<_>>(),
        set(&["openfaas-fn:*", "dev:env", "staging:*"])
    );
    assert_eq!(grant.audience, Some(vec!["staging:env".to_owned()]));
    assert_ne!(fun.claims.jti, ours.claims.jti);
    verify_jose(&authz, &token).await;

    // A function token is not exchangeable.
    let why = oauth_error(
        &exchange(&authz, &token, &[("scope", "function")]).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("function token"), "{why}");
}

/// The query string is accepted as well as the body, and an ES256 IdP
/// works like an RS256 one.
#[tokio::test]
async fn the_query_string_form_works_too() {
    let provider = OidcProvider::start(OidcOpts {
        alg: "ES256".to_owned(),
        ..OidcOpts::default()
    })
    .await
    .unwrap();
    let authz = ExtAuthz::start(docs_iam(&provider)).await.unwrap();
    let idp_token = provider.client_credentials_token("email").await.unwrap();
    assert_eq!(header(&idp_token)["alg"], "ES256");

    let fields = [
        ("subject_token", idp_token.as_str()),
        ("subject_token_type", ID_TOKEN),
        ("grant_type", GRANT),
        ("scope", "function"),
        ("audience", "dev:env"),
    ];
    let resp = authz.token_request_in_query(&fields).await.unwrap();
    let token = issued(&resp, Some("function"));
    let grant = verify_ours(&authz, &token)
        .await
        .claims
        .custom
        .function
        .unwrap();
    assert_eq!(grant.audience, Some(vec!["dev:env".to_owned()]));

    // Split between the query and the body.
    let url = format!(
        "{}?{}",
        authz.token_url(),
        mesh_auth_tests::form_encode(&[("grant_type", GRANT), ("scope", "function")])
    );
    let body = mesh_auth_tests::form_encode(&[
        ("subject_token", &idp_token),
        ("subject_token_type", ID_TOKEN),
    ]);
    let resp = request(
        "POST",
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
    )
    .await
    .unwrap();
    issued(&resp, Some("function"));
}

#[tokio::test]
async fn refusals_are_oauth_error_bodies() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let stand_in_key = TestKey::generate();
    let (_idp, idp_iss) = stand_in_idp(&stand_in_key).await;
    let authz = ExtAuthz::start(
        docs_iam(&provider)
            .iam("stand-in.yaml", jwt_issuer("stand-in", &idp_iss, "1h"))
            .iam("stand-in-role.yaml", {
                let mut role = docs_role("a-known-client", &idp_iss);
                role = role.replace("name: invoke-role", "name: stand-in-role");
                role
            }),
    )
    .await
    .unwrap();
    let idp_token = provider.client_credentials_token("email").await.unwrap();
    let fn_scope = [("scope", "function")];
    let t = now();

    // The grant type and the required fields.
    let why = oauth_error(
        &authz
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("subject_token", &idp_token),
                ("subject_token_type", ID_TOKEN),
            ])
            .await
            .unwrap(),
        400,
        "unsupported_grant_type",
    );
    assert!(why.contains("client_credentials"), "{why}");
    for (missing, fields) in [
        (
            "grant_type",
            vec![
                ("subject_token", idp_token.as_str()),
                ("subject_token_type", ID_TOKEN),
            ],
        ),
        (
            "subject_token",
            vec![("grant_type", GRANT), ("subject_token_type", ID_TOKEN)],
        ),
        (
            "subject_token_type",
            vec![("grant_type", GRANT), ("subject_token", idp_token.as_str())],
        ),
    ] {
        let why = oauth_error(
            &authz.token_request(&fields).await.unwrap(),
            400,
            "invalid_request",
        );
        assert!(why.contains(&format!("{missing} is required")), "{why}");
    }
    let why = oauth_error(
        &authz.token_request(&[]).await.unwrap(),
        400,
        "invalid_request",
    );
    assert!(why.contains("grant_type"), "{why}");
    let why = oauth_error(
        &exchange(&authz, "not-a-jwt", &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("not a JWT"), "{why}");
    let why = oauth_error(
        &exchange(&authz, &idp_token, &[("grant_type", "other")]).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("more than once"), "{why}");

    // A token from an issuer without a JwtIssuer.
    let untrusted = TestKey::generate().sign(&json!({
        "iss": "https://idp.untrusted.example", "sub": "openfaas-demo",
        "aud": "openfaas", "iat": t, "exp": t + 300,
    }));
    let why = oauth_error(
        &exchange(&authz, &untrusted, &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(
        why.contains("https://idp.untrusted.example") && why.contains("not trusted"),
        "{why}"
    );

    // The real provider's token, tampered with: its signature, then its
    // payload (a different subject under the original signature).
    let parts: Vec<&str> = idp_token.split('.').collect();
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    let mut claims = payload(&idp_token);
    claims["sub"] = json!("someone-else");
    let bad_payload = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    for tampered in [bad_sig, bad_payload] {
        let why = oauth_error(
            &exchange(&authz, &tampered, &fn_scope).await,
            400,
            "invalid_request",
        );
        assert!(why.contains("signature does not verify"), "{why}");
    }

    // Expired an hour ago (well beyond the leeway), from a trusted IdP.
    let expired = stand_in_key.sign(&json!({
        "iss": idp_iss, "sub": "a-known-client", "aud": "openfaas",
        "iat": t - 7200, "exp": t - 3600,
    }));
    let why = oauth_error(
        &exchange(&authz, &expired, &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("expired"), "{why}");
    // For another audience than the JwtIssuer's.
    let elsewhere = stand_in_key.sign(&json!({
        "iss": idp_iss, "sub": "a-known-client", "aud": "not-openfaas",
        "iat": t, "exp": t + 300,
    }));
    let why = oauth_error(
        &exchange(&authz, &elsewhere, &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("audience"), "{why}");
    // Valid, but no Role matches: the description names the subject.
    let stranger = stand_in_key.sign(&json!({
        "iss": idp_iss, "sub": "stranger-7", "aud": "openfaas",
        "iat": t, "exp": t + 300,
    }));
    let why = oauth_error(
        &exchange(&authz, &stranger, &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(
        why.contains("stranger-7") && why.contains("no Role"),
        "{why}"
    );
    // The same IdP's known client is fine: the refusals above were about
    // the tokens, not the IdP.
    let known = stand_in_key.sign(&json!({
        "iss": idp_iss, "sub": "a-known-client", "aud": "openfaas",
        "iat": t, "exp": t + 300,
    }));
    issued(&exchange(&authz, &known, &fn_scope).await, Some("function"));

    // Sizes: the body is capped at 64 KiB, the subject token at 16 KiB.
    let huge = "a".repeat(70 * 1024);
    let why = oauth_error(
        &exchange(&authz, &huge, &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("request body over"), "{why}");
    let big = "a".repeat(20 * 1024);
    let why = oauth_error(
        &exchange(&authz, &big, &fn_scope).await,
        400,
        "invalid_request",
    );
    assert!(why.contains("subject_token is over"), "{why}");

    // Not a form.
    let resp = request(
        "POST",
        &authz.token_url(),
        &[("content-type", "application/json")],
        json!({"grant_type": GRANT, "subject_token": idp_token}).to_string(),
    )
    .await
    .unwrap();
    let why = oauth_error(&resp, 400, "invalid_request");
    assert!(why.contains("x-www-form-urlencoded"), "{why}");
    // Only POST.
    let resp = get(&authz.token_url(), &[]).await.unwrap();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));

    // Every refusal was audited, and none logged a token.
    let log = authz.log();
    assert!(log.contains("refused"), "{log}");
    assert!(
        !log.contains(&idp_token) && !log.contains(&expired),
        "{log}"
    );
}

/// A provider that is down: 503 `temporarily_unavailable` while ext-authz
/// holds no keys for it; a provider whose keys are cached keeps working.
#[tokio::test]
async fn an_unreachable_idp_is_temporarily_unavailable_unless_its_keys_are_cached() {
    let mut cached = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let mut fresh = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let authz = ExtAuthz::start(
        ExtAuthzOpts::new(GATEWAY)
            .iam(
                "issuers.yaml",
                format!(
                    "{}---\n{}",
                    jwt_issuer("cached", cached.issuer(), "30m"),
                    jwt_issuer("fresh", fresh.issuer(), "30m")
                ),
            )
            .iam("policy.yaml", invoke_policy(&["openfaas-fn:*"]))
            .iam(
                "role.yaml",
                docs_role("openfaas-demo", cached.issuer()).replace(
                    &format!("[\"{}\"]", cached.issuer()),
                    &format!("[\"{}\", \"{}\"]", cached.issuer(), fresh.issuer()),
                ),
            )
            .arg("--idp-timeout")
            .arg("2s"),
    )
    .await
    .unwrap();

    let cached_token = cached.client_credentials_token("email").await.unwrap();
    let fresh_token = fresh.client_credentials_token("email").await.unwrap();
    // ext-authz fetches the first provider's keys now, never the second's.
    issued(
        &exchange(&authz, &cached_token, &[("scope", "function")]).await,
        Some("function"),
    );

    // Both stop cleanly on SIGTERM.
    assert!(cached.stop().await.unwrap().success(), "{}", cached.log());
    assert!(fresh.stop().await.unwrap().success(), "{}", fresh.log());
    assert!(get(&format!("{}/jwks", fresh.issuer()), &[]).await.is_err());

    let resp = exchange(&authz, &fresh_token, &[("scope", "function")]).await;
    let why = oauth_error(&resp, 503, "temporarily_unavailable");
    assert!(why.contains(fresh.issuer()), "{why}");

    let token = issued(
        &exchange(&authz, &cached_token, &[("scope", "function")]).await,
        Some("function"),
    );
    verify_ours(&authz, &token).await;
}

/// The IdP rotates its signing key: ext-authz, holding the old key set,
/// refetches it when a token names the new kid; tokens under the old key
/// still work while the IdP publishes it.
#[tokio::test]
async fn a_rotated_idp_key_is_fetched_on_its_unknown_kid() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    // Refetches on unknown kids are rate-limited (30 s by default); the
    // first fetch was a moment ago.
    let authz = ExtAuthz::start(docs_iam(&provider).arg("--idp-min-refetch").arg("0s"))
        .await
        .unwrap();
    let before = provider.client_credentials_token("email").await.unwrap();
    issued(
        &exchange(&authz, &before, &[("scope", "function")]).await,
        Some("function"),
    );

    let kid = provider.rotate_key().await.unwrap();
    let after = provider.client_credentials_token("email").await.unwrap();
    assert_eq!(header(&after)["kid"], kid);
    assert_ne!(header(&before)["kid"], kid);
    issued(
        &exchange(&authz, &after, &[("scope", "function")]).await,
        Some("function"),
    );
    authz.wait_for_log("unknown kid", T).await.unwrap();
    issued(
        &exchange(&authz, &before, &[("scope", "function")]).await,
        Some("function"),
    );
}

/// Roles and Policies change under a running ext-authz; an invalid change
/// is refused, logged with file, object and field, and the last good
/// configuration keeps serving.
#[tokio::test]
async fn iam_changes_apply_without_restart_and_a_bad_change_keeps_the_last_good_config() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let authz = ExtAuthz::start(docs_iam(&provider)).await.unwrap();
    let idp_token = provider.client_credentials_token("email").await.unwrap();
    let current_permissions = || async {
        let resp = exchange(&authz, &idp_token, &[("scope", "function")]).await;
        Ok((resp.status == 200).then(|| permissions(&issued(&resp, Some("function")))))
    };
    assert_eq!(
        current_permissions().await.unwrap().unwrap(),
        set(&["openfaas-fn:*", "dev:env"])
    );

    // A Policy change.
    authz
        .write_iam("policy.yaml", &invoke_policy(&["dev:*"]))
        .unwrap();
    wait_for(T, "the new Policy to apply", || async {
        Ok(current_permissions()
            .await?
            .filter(|p| *p == set(&["dev:*"])))
    })
    .await
    .unwrap();

    // A Role change that no longer covers the client: refused, naming it.
    let moved = docs_role("another-client", provider.issuer());
    authz.write_iam("role.yaml", &moved).unwrap();
    let why = wait_for(T, "the new Role to apply", || async {
        let resp = exchange(&authz, &idp_token, &[("scope", "function")]).await;
        Ok((resp.status == 400).then(|| oauth_error(&resp, 400, "invalid_request")))
    })
    .await
    .unwrap();
    assert!(
        why.contains("openfaas-demo") && why.contains(provider.issuer()),
        "{why}"
    );
    authz
        .write_iam(
            "role.yaml",
            &docs_role(provider.client_id(), provider.issuer()),
        )
        .unwrap();
    wait_for(T, "the Role to be restored", || async {
        current_permissions().await
    })
    .await
    .unwrap();

    // An invalid file: an unknown action in a new Policy.
    let broken = invoke_policy(&["prod:*"])
        .replace("name: invoke-policy", "name: broken-policy")
        .replace("Function:Invoke", "Function:Fly");
    authz.write_iam("broken.yaml", &broken).unwrap();
    authz
        .wait_for_log("IAM configuration change rejected", T)
        .await
        .unwrap();
    let log = authz.log();
    let line = log
        .lines()
        .skip_while(|l| !l.contains("IAM configuration change rejected"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "broken.yaml",
        "broken-policy",
        "spec.statement[0].action[0]",
        "Function:Fly",
    ] {
        assert!(line.contains(needle), "{needle:?} not in:\n{line}");
    }
    // Still serving, with the last good configuration.
    assert!(authz.log().contains("ERROR") || authz.log().contains("error"));
    assert_eq!(
        current_permissions().await.unwrap().unwrap(),
        set(&["dev:*"])
    );
    let metrics = get(&format!("{}/metrics", authz.http_url()), &[])
        .await
        .unwrap();
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("faas_mesh_auth_config_reloads")
                && l.contains("rejected")
                && !l.ends_with(" 0")),
        "{}",
        metrics.body
    );

    // Fixing the file lets the next change through.
    authz.remove_iam("broken.yaml").unwrap();
    authz
        .write_iam("policy.yaml", &invoke_policy(&["dev:env", "prod:env"]))
        .unwrap();
    wait_for(T, "the change after the fix to apply", || async {
        Ok(current_permissions()
            .await?
            .filter(|p| *p == set(&["dev:env", "prod:env"])))
    })
    .await
    .unwrap();
}

/// A newer PEM file in the key directory is published at once and signs
/// once it has been published for `--key-publish-delay`; the JWKS serves
/// both keys, and tokens signed before still verify.
#[tokio::test]
async fn a_newer_key_file_rotates_without_stranding_tokens() {
    let provider = OidcProvider::start(OidcOpts::default()).await.unwrap();
    let first = PemKey::generate().unwrap();
    let mut authz = ExtAuthz::start(
        docs_iam(&provider)
            .key("2026-01-01.pem", first.clone())
            .arg("--key-publish-delay")
            .arg("3s"),
    )
    .await
    .unwrap();
    let idp_token = provider.client_credentials_token("email").await.unwrap();
    let fn_token = || async {
        issued(
            &exchange(&authz, &idp_token, &[("scope", "function")]).await,
            Some("function"),
        )
    };

    let old = fn_token().await;
    assert_eq!(header(&old)["kid"], first.kid());
    assert_eq!(authz.published_kids().await.unwrap(), vec![first.kid()]);

    let second = authz.add_key("2026-02-01.pem").unwrap();
    // Published first, while the old key still signs: verifiers fetch it
    // before they meet a token it signed.
    wait_for(T, "the new key to be published", || async {
        Ok((authz.published_kids().await?.len() == 2).then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(header(&fn_token().await)["kid"], first.kid());
    let new = wait_for(T, "tokens signed with the new key", || async {
        let t = fn_token().await;
        Ok((header(&t)["kid"] == second.kid()).then_some(t))
    })
    .await
    .unwrap();
    // The signing key first, then the rest.
    assert_eq!(
        authz.published_kids().await.unwrap(),
        vec![second.kid(), first.kid()]
    );
    for token in [&old, &new] {
        verify_ours(&authz, token).await;
        verify_jose(&authz, token).await;
    }

    // The file whose name sorts last signs: an older name only publishes.
    let older = authz.add_key("2025-12-01.pem").unwrap();
    wait_for(T, "the older-named key to be published", || async {
        Ok(authz
            .published_kids()
            .await?
            .contains(&older.kid().to_owned())
            .then_some(()))
    })
    .await
    .unwrap();
    assert_eq!(header(&fn_token().await)["kid"], second.kid());

    // Removing the first key's file: it stays published while a token it
    // signed is still valid.
    let reloads = |log: &str| log.matches("signing keys reloaded").count();
    let before = reloads(&authz.log());
    std::fs::remove_file(authz.key_dir().join("2026-01-01.pem")).unwrap();
    wait_for(T, "the key directory to be reloaded", || async {
        Ok((reloads(&authz.log()) > before).then_some(()))
    })
    .await
    .unwrap();
    assert!(
        authz
            .published_kids()
            .await
            .unwrap()
            .contains(&first.kid().to_owned())
    );
    verify_ours(&authz, &old).await;
    verify_jose(&authz, &old).await;

    // A file that is not a key (and would sort last): refused, logged with
    // its name; the current key keeps signing.
    std::fs::write(authz.key_dir().join("zz-broken.pem"), "not a key\n").unwrap();
    authz
        .wait_for_log("signing key change rejected", T)
        .await
        .unwrap();
    assert!(authz.log().contains("zz-broken.pem"), "{}", authz.log());
    assert_eq!(header(&fn_token().await)["kid"], second.kid());

    assert!(authz.sigterm_and_wait().await.unwrap().success());
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let mut authz = ExtAuthz::start(ExtAuthzOpts::new(GATEWAY)).await.unwrap();
    let health = get(&format!("{}/healthz", authz.http_url()), &[])
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    assert!(authz.is_running());

    let status = authz.sigterm_and_wait().await.unwrap();
    assert_eq!(status.code(), Some(0), "{}", authz.log());
    let log = authz.log();
    assert!(log.contains("draining"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(!authz.is_running());
    assert!(
        get(&format!("{}/healthz", authz.http_url()), &[])
            .await
            .is_err()
    );
}

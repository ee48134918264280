use std::time::Duration;

use jwt_simple::prelude::ES256KeyPair;
use jwt_simple::prelude::{Audiences, Duration as JwtDuration, JWTClaims};
use mesh_auth_core::testing::{TestKey, jwks};
use mesh_auth_core::verify::Validation;
use mesh_auth_core::{GatewayClaims, KeySet, verify};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};

use super::*;
use crate::fetch::HttpFetcher;
use crate::http::OAuthError;
use crate::iam_store::IamStore;
use crate::issuers::{IssuerSettings, Issuers};
use crate::json_server::JsonServer;
use crate::signing::{KeySettings, KeyStore};
use crate::state::OwnIssuer;

fn key_settings() -> KeySettings {
    KeySettings {
        leeway: 30,
        publish_delay: Duration::from_secs(600),
    }
}

const GW: &str = "https://gateway.example.com";

struct Fixture {
    idp: JsonServer,
    idp_key: TestKey,
    state: State,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn iam_yaml(iss: &str) -> String {
    format!(
        r#"apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata: {{name: idp, namespace: openfaas}}
spec:
  iss: {iss}
  aud: [openfaas]
  tokenExpiry: 30m
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {{name: invoke-policy, namespace: openfaas}}
spec:
  statement:
  - sid: 1-invoke-policy
    action: ["Function:Invoke"]
    effect: Allow
    resource: ["openfaas-fn:*", "dev:env"]
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {{name: admin-policy, namespace: openfaas}}
spec:
  statement:
  - sid: 1-admin
    action: ["Function:List", "Secret:*"]
    effect: Allow
    resource: ["staging:*"]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {{name: invoke-role, namespace: openfaas}}
spec:
  policy: [invoke-policy]
  condition:
    principal:
      jwt:sub: [alice]
    StringEqual:
      jwt:iss: ["{iss}"]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {{name: admins, namespace: openfaas}}
spec:
  policy: [admin-policy]
  condition:
    ForAnyValue:StringEqual:
      jwt:groups: [admins]
"#
    )
}

async fn fixture() -> Fixture {
    let idp = JsonServer::start().await;
    let idp_key = TestKey::generate();
    idp.serve_oidc(&jwks(&[&idp_key]));
    let iam_dir = tempfile::tempdir().unwrap();
    std::fs::write(iam_dir.path().join("iam.yaml"), iam_yaml(&idp.url())).unwrap();
    let key_dir = tempfile::tempdir().unwrap();
    let secret = p256::SecretKey::from_slice(&ES256KeyPair::generate().to_bytes()).unwrap();
    std::fs::write(
        key_dir.path().join("2026.pem"),
        secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let state = State::new(
        OwnIssuer {
            issuer: GW.into(),
            jwks_uri: format!("{GW}/.well-known/jwks.json"),
            leeway_seconds: 30,
            allow_past_subject_expiry: false,
        },
        IamStore::open(iam_dir.path()).unwrap(),
        KeyStore::open(key_dir.path(), key_settings(), 0).unwrap(),
        Issuers::new(
            HttpFetcher::new(Duration::from_secs(2), None).unwrap(),
            IssuerSettings::default(),
        ),
    )
    .unwrap();
    Fixture {
        idp,
        idp_key,
        state,
        _dirs: (iam_dir, key_dir),
    }
}

impl Fixture {
    fn id_token(&self, sub: &str, ttl: u64, extra: Value) -> String {
        let n = now();
        let mut c =
            json!({"iss": self.idp.url(), "aud": "openfaas", "sub": sub, "iat": n, "exp": n + ttl});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        self.idp_key.sign(&c)
    }

    fn request(&self, token: &str, scope: Option<&str>, audiences: &[&str]) -> ExchangeRequest {
        ExchangeRequest {
            grant_type: Some(GRANT_TOKEN_EXCHANGE.into()),
            subject_token: Some(token.into()),
            subject_token_type: Some(TOKEN_TYPE_ID_TOKEN.into()),
            requested_token_type: None,
            scope: scope.map(str::to_owned),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
        }
    }

    async fn run(&self, req: &ExchangeRequest) -> Result<Issued, OAuthError> {
        self.run_at(req, now()).await
    }

    fn decode(&self, token: &str) -> mesh_auth_core::Claims<GatewayClaims> {
        let set: KeySet = self.state.keys.current().key_set(now());
        verify::<GatewayClaims>(token, &set, &Validation::new([GW], [GW]).unwrap(), now())
            .unwrap()
            .claims
    }
}

#[tokio::test]
async fn id_token_for_a_function_token() {
    let f = fixture().await;
    let issued = f
        .run(&f.request(&f.id_token("alice", 3600, json!({})), Some("function"), &[]))
        .await
        .unwrap();
    assert_eq!(issued.kind, Kind::Function);
    let c = f.decode(&issued.access_token);
    assert_eq!(c.sub.as_deref(), Some("fed:alice"));
    assert_eq!(c.iss.as_deref(), Some(GW));
    assert_eq!(c.aud, vec![GW.to_string()]);
    let grant = c.custom.function.unwrap();
    assert_eq!(grant.permissions, vec!["openfaas-fn:*", "dev:env"]);
    assert_eq!(grant.audience, None);
    assert!(c.jti.is_some());
    // tokenExpiry is 30m; the subject lives an hour.
    assert!(
        (1790..=1800).contains(&issued.expires_in),
        "{}",
        issued.expires_in
    );
    // The header is what the filter expects: ES256, JWT, our kid.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(issued.access_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(
        header["kid"],
        f.state.keys.current().active(now()).kid.as_str()
    );
}

#[tokio::test]
async fn audience_attenuates_and_must_stay_inside_the_permissions() {
    let f = fixture().await;
    let t = f.id_token("alice", 3600, json!({}));
    let issued = f
        .run(&f.request(&t, Some("function"), &["openfaas-fn:env", "dev:env"]))
        .await
        .unwrap();
    let grant = f.decode(&issued.access_token).custom.function.unwrap();
    assert_eq!(
        grant.audience,
        Some(vec!["openfaas-fn:env".into(), "dev:env".into()])
    );
    for outside in ["staging:env", "dev:*", "*", "dev:env2"] {
        let e = f
            .run(&f.request(&t, Some("function"), &[outside]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_target", "{outside}: {e}");
        assert!(e.description().contains(outside));
    }
    let e = f
        .run(&f.request(&t, Some("function"), &["not a function"]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_target");
}

#[tokio::test]
async fn without_scope_function_an_api_token_with_policies() {
    let f = fixture().await;
    let t = f.id_token("bob", 3600, json!({"groups": ["admins", "dev"]}));
    let issued = f.run(&f.request(&t, None, &[])).await.unwrap();
    let c = f.decode(&issued.access_token);
    assert!(c.custom.function.is_none());
    assert_eq!(c.custom.policy, Some(vec!["admin-policy".into()]));
    assert_eq!(c.custom.fed_iss.as_deref(), Some(f.idp.url().as_str()));
    assert_eq!(c.sub.as_deref(), Some("fed:bob"));
    // bob has no Function:Invoke: no function token.
    let e = f
        .run(&f.request(&t, Some("function"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_target");
}

#[tokio::test]
async fn our_api_token_exchanges_for_a_function_token() {
    let f = fixture().await;
    let t = f.id_token("alice", 3600, json!({}));
    let api = f.run(&f.request(&t, None, &[])).await.unwrap();
    let c = f.decode(&api.access_token);
    assert_eq!(c.custom.policy, Some(vec!["invoke-policy".into()]));
    // faas-cli sends id_token as the type even for our API token.
    let issued = f
        .run(&f.request(&api.access_token, Some("function"), &["dev:env"]))
        .await
        .unwrap();
    let c = f.decode(&issued.access_token);
    assert_eq!(c.sub.as_deref(), Some("fed:alice"), "no double fed: prefix");
    assert_eq!(
        c.custom.function.unwrap().permissions,
        vec!["openfaas-fn:*", "dev:env"]
    );
    // Never longer than the API token it came from.
    assert!(issued.expires_in <= api.expires_in);
    // A function token cannot be exchanged again.
    let e = f
        .run(&f.request(&issued.access_token, Some("function"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_request");
}

#[tokio::test]
async fn expiry_never_outlives_the_subject() {
    let f = fixture().await;
    let t = f.id_token("alice", 120, json!({}));
    let issued = f.run(&f.request(&t, Some("function"), &[])).await.unwrap();
    assert!(issued.expires_in <= 120, "{}", issued.expires_in);
}

impl Fixture {
    /// One of our API tokens, as an earlier exchange would have signed it.
    fn api_token(&self, iat: u64, exp: u64, policy: &[&str], fed_iss: &str) -> String {
        let claims = JWTClaims {
            issued_at: Some(JwtDuration::from_secs(iat)),
            expires_at: Some(JwtDuration::from_secs(exp)),
            invalid_before: None,
            issuer: Some(GW.into()),
            subject: Some("fed:alice".into()),
            audiences: Some(Audiences::AsString(GW.into())),
            jwt_id: Some("j".into()),
            nonce: None,
            custom: GatewayClaims {
                function: None,
                policy: Some(policy.iter().map(|p| p.to_string()).collect()),
                fed_iss: Some(fed_iss.into()),
            },
        };
        self.state.keys.current().active(iat).sign(claims).unwrap()
    }

    async fn run_at(&self, req: &ExchangeRequest, at: u64) -> Result<Issued, OAuthError> {
        run(&self.state, req, at)
            .await
            .map_err(|e| OAuthError::from(&e))
    }
}

#[tokio::test]
async fn an_api_token_cannot_renew_itself_past_its_exp() {
    // The verifier allows 30 s of leeway past exp. Exchanging the token for
    // a new one every 25 s used to go on forever: each new token lived as
    // long as its subject, and the subject was accepted past its exp.
    for allow_past in [false, true] {
        let mut f = fixture().await;
        f.state.own.allow_past_subject_expiry = allow_past;
        let t0 = now();
        let exp = t0 + 60;
        let mut token = f.api_token(t0, exp, &["invoke-policy"], &f.idp.url());
        let mut at = t0;
        loop {
            at += 25;
            match f.run_at(&f.request(&token, None, &[]), at).await {
                Ok(issued) => {
                    assert!(at < exp, "issued at {at}, past the chain's exp {exp}");
                    assert!(at + issued.expires_in <= exp, "outlives its subject");
                    token = issued.access_token;
                }
                Err(e) => {
                    assert!(at >= exp && at < exp + 30, "refused at {at}: {e}");
                    assert_eq!(e.code(), "invalid_request");
                    assert!(e.description().contains("expired"), "{e}");
                    break;
                }
            }
        }
    }
}

#[tokio::test]
async fn an_api_token_whose_issuer_or_policies_are_gone_is_refused() {
    let f = fixture().await;
    let n = now();
    let idp = f.idp.url();
    let good = f.api_token(n, n + 600, &["invoke-policy"], &idp);
    assert!(
        f.run(&f.request(&good, Some("function"), &[]))
            .await
            .is_ok()
    );

    // Policies that no longer exist grant nothing and name nobody.
    let gone = f.api_token(n, n + 600, &["deleted-policy"], &idp);
    let e = f.run(&f.request(&gone, None, &[])).await.unwrap_err();
    assert!(e.description().contains("deleted-policy"), "{e}");
    // A token for an issuer we do not (or no longer) trust.
    let stranger = f.api_token(n, n + 600, &["invoke-policy"], "https://idp.example");
    let e = f.run(&f.request(&stranger, None, &[])).await.unwrap_err();
    assert!(e.description().contains("no longer trusted"), "{e}");

    // Deleting the JwtIssuer ends every chain that came from it.
    let dir = f._dirs.0.path();
    let without_issuer = iam_yaml(&idp)
        .split("---\n")
        .skip(1)
        .collect::<Vec<_>>()
        .join("---\n");
    std::fs::write(dir.join("iam.yaml"), without_issuer).unwrap();
    assert_eq!(f.state.iam.reload(), crate::iam_store::Reload::Applied);
    let e = f
        .run(&f.request(&good, Some("function"), &[]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(e.description().contains("no longer trusted"), "{e}");
}

#[tokio::test]
async fn oauth_errors_for_every_failure() {
    let f = fixture().await;
    let good = f.id_token("alice", 3600, json!({}));
    let mut cases: Vec<(ExchangeRequest, &str, &str)> = Vec::new();
    let mut r = f.request(&good, Some("function"), &[]);
    r.grant_type = Some("client_credentials".into());
    cases.push((r, "unsupported_grant_type", "client_credentials"));
    let mut r = f.request(&good, None, &[]);
    r.grant_type = None;
    cases.push((r, "invalid_request", "grant_type is required"));
    let mut r = f.request(&good, None, &[]);
    r.subject_token = None;
    cases.push((r, "invalid_request", "subject_token is required"));
    let mut r = f.request(&good, None, &[]);
    r.subject_token_type = None;
    cases.push((r, "invalid_request", "subject_token_type is required"));
    let mut r = f.request(&good, None, &[]);
    r.subject_token_type = Some("urn:ietf:params:oauth:token-type:saml2".into());
    cases.push((r, "invalid_request", "saml2"));
    cases.push((
        f.request("not-a-jwt", None, &[]),
        "invalid_request",
        "not a JWT",
    ));
    let stranger = TestKey::generate()
        .sign(&json!({"iss": "https://unknown.example.com", "sub": "x", "exp": now() + 60}));
    cases.push((
        f.request(&stranger, None, &[]),
        "invalid_request",
        "not trusted",
    ));
    let forged = TestKey::generate()
        .sign(&json!({"iss": f.idp.url(), "aud": "openfaas", "sub": "alice", "exp": now() + 60}));
    cases.push((
        f.request(&forged, None, &[]),
        "invalid_request",
        "no trusted key",
    ));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[2] = URL_SAFE_NO_PAD.encode([1u8; 64]);
    cases.push((
        f.request(&parts.join("."), None, &[]),
        "invalid_request",
        "signature",
    ));
    let expired = f.id_token(
        "alice",
        0,
        json!({"exp": now() - 3600, "iat": now() - 7200}),
    );
    cases.push((f.request(&expired, None, &[]), "invalid_request", "expired"));
    let wrong_aud = f.id_token("alice", 3600, json!({"aud": "other"}));
    cases.push((
        f.request(&wrong_aud, None, &[]),
        "invalid_request",
        "audience",
    ));
    let nobody = f.id_token("mallory", 3600, json!({}));
    cases.push((
        f.request(&nobody, None, &[]),
        "invalid_request",
        "\"mallory\"",
    ));
    cases.push((
        f.request(&"A".repeat(20_000), None, &[]),
        "invalid_request",
        "bytes",
    ));
    let mut r = f.request(&good, None, &["openfaas-fn:env"]);
    r.scope = None;
    cases.push((r, "invalid_target", "scope=function"));
    for (req, code, needle) in cases {
        let e = f.run(&req).await.unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.description().contains(needle), "{e} lacks {needle:?}");
        assert_eq!(e.status(), 400);
        assert_eq!(e.body()["error"], code);
    }
}

#[tokio::test]
async fn an_unreachable_idp_is_temporarily_unavailable() {
    let f = fixture().await;
    let t = f.id_token("alice", 3600, json!({}));
    let url = f.idp.url();
    drop(f.idp);
    let req = ExchangeRequest {
        grant_type: Some(GRANT_TOKEN_EXCHANGE.into()),
        subject_token: Some(t),
        subject_token_type: Some(TOKEN_TYPE_ID_TOKEN.into()),
        ..Default::default()
    };
    // Only the state is borrowed: the IdP is gone.
    let e = OAuthError::from(&run(&f.state, &req, now()).await.unwrap_err());
    assert_eq!(e.code(), "temporarily_unavailable", "{e:?}");
    assert_eq!(e.status(), 503);
    assert!(e.description().contains(&url));
}

#[test]
fn request_parsing_merges_query_and_body() {
    let r = ExchangeRequest::parse(
        Some("audience=a:b&scope=function"),
        b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=t&audience=c:d&audience=a:b&ignored=1",
    )
    .unwrap();
    assert_eq!(r.grant_type.as_deref(), Some(GRANT_TOKEN_EXCHANGE));
    assert_eq!(r.audiences, vec!["a:b", "c:d"]);
    assert!(r.wants_function_token());
    let e = ExchangeRequest::parse(Some("scope=function"), b"scope=other").unwrap_err();
    assert!(e.to_string().contains("more than once"));
    assert!(ExchangeRequest::parse(Some("scope=function"), b"scope=function").is_ok());
    let many: String = (0..100).map(|i| format!("audience=a:{i}&")).collect();
    assert!(ExchangeRequest::parse(None, many.as_bytes()).is_err());
    assert!(
        ExchangeRequest::parse(None, b"scope=openid%20function")
            .unwrap()
            .wants_function_token()
    );
}

/// `grant` alone: no server, no keys, no clock.
mod pure_grant {
    use super::*;

    fn subject(exp: u64, ours: bool) -> Subject {
        Subject {
            fed_sub: "fed:alice".into(),
            fed_iss: "https://idp".into(),
            exp,
            policy_names: vec!["invoke-policy".into()],
            permissions: vec!["openfaas-fn:*".into(), "dev:env".into()],
            roles: vec!["invoke-role".into()],
            token_expiry: Duration::from_secs(1800),
            ours,
        }
    }

    fn req(scope: Option<&str>, audiences: &[&str]) -> ExchangeRequest {
        ExchangeRequest {
            scope: scope.map(str::to_owned),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            ..ExchangeRequest::default()
        }
    }

    #[test]
    fn the_lifetime_is_the_issuers_and_never_past_the_subject() {
        let now = 1_000;
        let g = grant(&subject(now + 7200, false), &req(None, &[]), now, false).unwrap();
        assert_eq!(g.exp, now + 1800);
        let g = grant(&subject(now + 60, false), &req(None, &[]), now, false).unwrap();
        assert_eq!(g.exp, now + 60);
        // Lifted for an IdP's token when asked, never for one of ours.
        let g = grant(&subject(now + 60, false), &req(None, &[]), now, true).unwrap();
        assert_eq!(g.exp, now + 1800);
        let g = grant(&subject(now + 60, true), &req(None, &[]), now, true).unwrap();
        assert_eq!(g.exp, now + 60);
        // At or past exp: nothing, whatever the leeway elsewhere.
        for ours in [false, true] {
            let e = grant(&subject(now, ours), &req(None, &[]), now, true).unwrap_err();
            assert!(matches!(e, ExchangeError::SubjectExpired(0)), "{e}");
            assert_eq!(e.reason(), "subject_expired");
        }
    }

    #[test]
    fn function_and_api_grants_carry_their_own_claims() {
        let s = subject(5_000, false);
        let f = grant(
            &s,
            &req(Some("openid function"), &["dev:env"]),
            1_000,
            false,
        )
        .unwrap();
        assert_eq!(f.sub, "fed:alice");
        let function = f.claims.function.unwrap();
        assert_eq!(function.permissions, s.permissions);
        assert_eq!(function.audience, Some(vec!["dev:env".to_owned()]));
        assert_eq!(f.claims.policy, None);
        assert_eq!(f.claims.fed_iss.as_deref(), Some("https://idp"));
        let a = grant(&s, &req(None, &[]), 1_000, false).unwrap();
        assert_eq!(a.claims.function, None);
        assert_eq!(a.claims.policy, Some(s.policy_names.clone()));
    }

    #[test]
    fn audiences_must_be_functions_inside_the_permissions() {
        let s = subject(5_000, false);
        let cases: [(&[&str], Option<&str>); 6] = [
            (&["openfaas-fn:env", "openfaas-fn:*", "dev:env"], None),
            (&["dev:other"], Some("audience_outside_permissions")),
            (&["*"], Some("audience_outside_permissions")),
            (&["Dev:env"], Some("audience_not_a_function")),
            (&["dev"], Some("audience_not_a_function")),
            (&["dev:env:x"], Some("audience_not_a_function")),
        ];
        for (audiences, reason) in cases {
            let got = grant(&s, &req(Some("function"), audiences), 1_000, false);
            assert_eq!(
                got.as_ref().err().map(ExchangeError::reason),
                reason,
                "{audiences:?}"
            );
        }
        let e = grant(&s, &req(None, &["dev:env"]), 1_000, false).unwrap_err();
        assert_eq!(e.reason(), "audience_without_function_scope");
        let mut none = s.clone();
        none.permissions.clear();
        let e = grant(&none, &req(Some("function"), &[]), 1_000, false).unwrap_err();
        assert_eq!(e.reason(), "no_invoke_permission");
    }
}

use std::time::Duration;

use mesh_auth_core::iam::IamConfig;
use mesh_auth_core::testing::{TestKey, jwks};
use serde_json::json;

use super::*;
use crate::testutil::JsonServer;

fn issuer(iss: &str, internal: Option<&str>) -> JwtIssuer {
    let internal = internal
        .map(|i| format!("\n  issInternal: {i}"))
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: iam.openfaas.com/v1\nkind: JwtIssuer\nmetadata:\n  name: idp\nspec:\n  iss: {iss}{internal}\n  aud: [openfaas]\n  tokenExpiry: 1h\n"
    );
    let cfg = IamConfig::from_yaml_sources([("idp.yaml", yaml)]).unwrap();
    cfg.issuer(iss).unwrap().clone()
}

fn issuers(settings: IssuerSettings) -> Issuers {
    Issuers::new(
        HttpFetcher::new(Duration::from_secs(2), None).unwrap(),
        settings,
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn id_token(key: &TestKey, iss: &str, aud: &str) -> String {
    let n = now();
    key.sign(&json!({"iss": iss, "aud": aud, "sub": "alice", "iat": n, "exp": n + 300, "groups": ["dev"]}))
}

#[tokio::test]
async fn discovers_fetches_caches_and_verifies() {
    let idp = JsonServer::start().await;
    let key = TestKey::generate();
    idp.serve_oidc(&jwks(&[&key]));
    let iss = issuer(&idp.url(), None);
    let reg = issuers(IssuerSettings::default());
    let v = reg
        .verify(&iss, &id_token(&key, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
    assert_eq!(v.claims.sub.as_deref(), Some("alice"));
    assert_eq!(v.claims.custom["groups"], json!(["dev"]));
    assert_eq!(idp.hits(), 2);
    // Cached: no more requests.
    reg.verify(&iss, &id_token(&key, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn wrong_audience_and_foreign_keys_are_refused() {
    let idp = JsonServer::start().await;
    let key = TestKey::generate();
    idp.serve_oidc(&jwks(&[&key]));
    let iss = issuer(&idp.url(), None);
    let reg = issuers(IssuerSettings::default());
    let err = reg
        .verify(&iss, &id_token(&key, &idp.url(), "someone-else"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SubjectError::Token(TokenError::WrongAudience)),
        "{err}"
    );
    let evil = TestKey::generate();
    let err = reg
        .verify(&iss, &id_token(&evil, &idp.url(), "openfaas"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SubjectError::Token(TokenError::UnknownKid(_))),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_kid_refetches_once_within_the_rate_limit() {
    let idp = JsonServer::start().await;
    let (old, new) = (TestKey::generate(), TestKey::generate());
    idp.serve_oidc(&jwks(&[&old]));
    let iss = issuer(&idp.url(), None);
    let reg = issuers(IssuerSettings {
        min_refetch: Duration::ZERO,
        ..Default::default()
    });
    reg.verify(&iss, &id_token(&old, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
    idp.set("/jwks", 200, jwks(&[&old, &new]));
    reg.verify(&iss, &id_token(&new, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
    assert_eq!(idp.hits(), 4);

    // With a rate limit, a flood of unknown kids costs the IdP one refetch.
    let reg = issuers(IssuerSettings::default());
    reg.verify(&iss, &id_token(&old, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
    let before = idp.hits();
    for _ in 0..5 {
        let stranger = TestKey::generate();
        assert!(
            reg.verify(&iss, &id_token(&stranger, &idp.url(), "openfaas"), now())
                .await
                .is_err()
        );
    }
    assert_eq!(idp.hits(), before + 2, "discovery and JWKS, once");
}

#[tokio::test]
async fn an_idp_that_is_down_fails_fast_and_clearly() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let iss = issuer(&url, None);
    let reg = issuers(IssuerSettings::default());
    let start = Instant::now();
    let err = reg
        .verify(
            &iss,
            &id_token(&TestKey::generate(), &url, "openfaas"),
            now(),
        )
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(matches!(err, SubjectError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("unavailable"), "{err}");
}

#[tokio::test]
async fn an_idp_that_hangs_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accept and never answer.
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            conns.push(s);
        }
    });
    let reg = Issuers::new(
        HttpFetcher::new(Duration::from_millis(300), None).unwrap(),
        IssuerSettings::default(),
    );
    let err = reg
        .verify(
            &issuer(&url, None),
            &id_token(&TestKey::generate(), &url, "openfaas"),
            now(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    hold.abort();
}

#[tokio::test]
async fn discovery_must_name_the_same_issuer_and_a_jwks_uri() {
    let idp = JsonServer::start().await;
    let iss = issuer(&idp.url(), None);
    let reg = issuers(IssuerSettings::default());
    let token = id_token(&TestKey::generate(), &idp.url(), "openfaas");
    idp.set(
        "/.well-known/openid-configuration",
        200,
        json!({"issuer": "https://evil"}).to_string(),
    );
    let err = reg.verify(&iss, &token, now()).await.unwrap_err();
    assert!(err.to_string().contains("names issuer"), "{err}");
    idp.set(
        "/.well-known/openid-configuration",
        200,
        json!({"issuer": idp.url()}).to_string(),
    );
    let err = reg.verify(&iss, &token, now()).await.unwrap_err();
    assert!(err.to_string().contains("no jwks_uri"), "{err}");
    idp.set("/.well-known/openid-configuration", 500, "oops");
    let err = reg.verify(&iss, &token, now()).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}

#[tokio::test]
async fn iss_internal_is_where_keys_come_from() {
    let inside = JsonServer::start().await;
    let key = TestKey::generate();
    let public = "https://idp.example.com/realms/openfaas";
    inside.set(
        "/realms/openfaas/.well-known/openid-configuration",
        200,
        json!({"issuer": public, "jwks_uri": format!("https://idp.example.com/realms/openfaas/certs")}).to_string(),
    );
    inside.set("/realms/openfaas/certs", 200, jwks(&[&key]));
    let iss = issuer(public, Some(&format!("{}/realms/openfaas", inside.url())));
    let reg = issuers(IssuerSettings::default());
    let v = reg
        .verify(&iss, &id_token(&key, public, "openfaas"), now())
        .await
        .unwrap();
    assert_eq!(v.claims.iss.as_deref(), Some(public));
}

#[tokio::test]
async fn a_rotation_right_after_the_first_fetch_is_seen() {
    // The default rate limit must not count the first fetch.
    let idp = JsonServer::start().await;
    let (old, new) = (TestKey::generate(), TestKey::generate());
    idp.serve_oidc(&jwks(&[&old]));
    let iss = issuer(&idp.url(), None);
    let reg = issuers(IssuerSettings::default());
    reg.verify(&iss, &id_token(&old, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
    idp.set("/jwks", 200, jwks(&[&old, &new]));
    reg.verify(&iss, &id_token(&new, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_kid_while_the_idp_is_down_is_unavailable_not_invalid() {
    let idp = JsonServer::start().await;
    let (old, new) = (TestKey::generate(), TestKey::generate());
    idp.serve_oidc(&jwks(&[&old]));
    let url = idp.url();
    let iss = issuer(&url, None);
    let reg = issuers(IssuerSettings::default());
    reg.verify(&iss, &id_token(&old, &url, "openfaas"), now())
        .await
        .unwrap();
    // The IdP fails (dropping the server would not close pooled connections).
    idp.set("/.well-known/openid-configuration", 503, "down");
    let err = reg
        .verify(&iss, &id_token(&new, &url, "openfaas"), now())
        .await
        .unwrap_err();
    assert!(matches!(err, SubjectError::Unavailable { .. }), "{err}");
    // Cached keys still serve tokens they know.
    reg.verify(&iss, &id_token(&old, &url, "openfaas"), now())
        .await
        .unwrap();
}

#[test]
fn origins() {
    assert_eq!(
        origin("https://a.example.com/x/y"),
        Some("https://a.example.com")
    );
    assert_eq!(
        origin("http://127.0.0.1:8080"),
        Some("http://127.0.0.1:8080")
    );
    assert_eq!(origin("nope"), None);
}

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesh_auth_core::iam::IamConfig;
use mesh_auth_core::testing::{TestKey, jwks};
use serde_json::json;

use super::discovery::origin;
use super::*;
use crate::json_server::JsonServer;

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
        matches!(err, IdpError::Token(TokenError::WrongAudience)),
        "{err}"
    );
    let evil = TestKey::generate();
    let err = reg
        .verify(&iss, &id_token(&evil, &idp.url(), "openfaas"), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdpError::Token(TokenError::UnknownKid(_))),
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
    assert!(matches!(err, IdpError::Unavailable { .. }), "{err}");
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
    let (reg, clock) = with_clock(IssuerSettings::default(), Duration::from_secs(2));
    let token = id_token(&TestKey::generate(), &idp.url(), "openfaas");
    // The first error comes from the fetch it waited for; later ones from
    // the retry it started in the background, once the backoff allows.
    let mut first = true;
    let mut error = || {
        let waited = !std::mem::replace(&mut first, false);
        let (reg, iss, token, clock) = (&reg, &iss, &token, &clock);
        async move {
            if waited {
                clock.advance(Duration::from_secs(10));
                let _ = reg.verify(iss, token, now()).await;
                fetch_settled(reg, iss).await;
            }
            reg.verify(iss, token, now()).await.unwrap_err()
        }
    };
    idp.set(
        "/.well-known/openid-configuration",
        200,
        json!({"issuer": "https://evil"}).to_string(),
    );
    let err = error().await;
    assert!(err.to_string().contains("names issuer"), "{err}");
    idp.set(
        "/.well-known/openid-configuration",
        200,
        json!({"issuer": idp.url()}).to_string(),
    );
    let err = error().await;
    assert!(err.to_string().contains("no jwks_uri"), "{err}");
    idp.set("/.well-known/openid-configuration", 500, "oops");
    let err = error().await;
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
    assert!(matches!(err, IdpError::Unavailable { .. }), "{err}");
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

/// A monotonic clock the test moves.
struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        })
    }

    fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Monotonic for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap()
    }
}

fn with_clock(settings: IssuerSettings, timeout: Duration) -> (Issuers, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let reg = Issuers::with_clock(
        HttpFetcher::new(timeout, None).unwrap(),
        settings,
        clock.clone(),
    );
    (reg, clock)
}

/// Until the issuer's background fetch, if any, has ended.
async fn fetch_settled(reg: &Issuers, iss: &JwtIssuer) {
    let entry = reg.entry(iss);
    for _ in 0..500 {
        if !entry.state.lock().unwrap().in_flight {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fetch never ended");
}

#[tokio::test]
async fn keys_past_max_stale_are_never_used_and_are_fetched_again() {
    let idp = JsonServer::start().await;
    let (old, new) = (TestKey::generate(), TestKey::generate());
    idp.serve_oidc(&jwks(&[&old]));
    let iss = issuer(&idp.url(), None);
    let (reg, clock) = with_clock(
        IssuerSettings {
            max_stale: Duration::from_secs(3600),
            ..Default::default()
        },
        Duration::from_secs(2),
    );
    let old_token = || id_token(&old, &idp.url(), "openfaas");
    reg.verify(&iss, &old_token(), now()).await.unwrap();

    // The IdP goes quiet: past refresh, the cached keys still serve.
    idp.set("/.well-known/openid-configuration", 503, "down");
    clock.advance(Duration::from_secs(1800));
    reg.verify(&iss, &old_token(), now()).await.unwrap();
    fetch_settled(&reg, &iss).await;

    // Past max_stale, never: the IdP may have withdrawn that key.
    clock.advance(Duration::from_secs(1801));
    let err = reg.verify(&iss, &old_token(), now()).await.unwrap_err();
    assert!(matches!(err, IdpError::Unavailable { .. }), "{err}");

    // The IdP is back, the old key withdrawn: it is fetched again (once
    // stale keys used to be served for good without a fetch), and the
    // withdrawn key is refused.
    idp.serve_oidc(&jwks(&[&new]));
    clock.advance(Duration::from_secs(60));
    let before = idp.hits();
    let err = reg.verify(&iss, &old_token(), now()).await.unwrap_err();
    fetch_settled(&reg, &iss).await;
    assert!(idp.hits() > before, "no fetch after max_stale");
    let err = match err {
        IdpError::Unavailable { .. } => reg.verify(&iss, &old_token(), now()).await.unwrap_err(),
        e => e,
    };
    assert!(
        matches!(err, IdpError::Token(TokenError::UnknownKid(_))),
        "{err}"
    );
    reg.verify(&iss, &id_token(&new, &idp.url(), "openfaas"), now())
        .await
        .unwrap();
}

/// An IdP that accepts connections and never answers; counts them.
async fn hanging_idp() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            conns.push(s);
        }
    });
    (url, accepted, task)
}

#[tokio::test]
async fn after_a_failed_fetch_exchanges_fail_fast_and_retries_back_off() {
    let (url, accepted, hold) = hanging_idp().await;
    let iss = issuer(&url, None);
    let (reg, clock) = with_clock(IssuerSettings::default(), Duration::from_millis(300));
    let token = id_token(&TestKey::generate(), &url, "openfaas");

    // The first exchange waits for the fetch, which times out.
    let started = Instant::now();
    let err = reg.verify(&iss, &token, now()).await.unwrap_err();
    assert!(matches!(err, IdpError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    // The next ones do not wait for the IdP (they used to, every time).
    for _ in 0..20 {
        let started = Instant::now();
        let err = reg.verify(&iss, &token, now()).await.unwrap_err();
        assert!(err.to_string().contains("no answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_millis(100));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no retry before 1 s");

    // Retries run in the background, 1 s, 2 s, then 4 s apart.
    let mut retried_at = Vec::new();
    for second in 1..=24 {
        clock.advance(Duration::from_secs(1));
        let before = accepted.load(Ordering::SeqCst);
        let started = Instant::now();
        assert!(reg.verify(&iss, &token, now()).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(100));
        fetch_settled(&reg, &iss).await;
        if accepted.load(Ordering::SeqCst) > before {
            retried_at.push(second);
        }
    }
    assert_eq!(retried_at, vec![1, 3, 7, 11, 15, 19, 23]);
    hold.abort();
}

#[tokio::test]
async fn through_an_outage_cached_kids_work_and_a_rotated_key_is_accepted_soon_after() {
    let idp = JsonServer::start().await;
    let (old, new, newer) = (
        TestKey::generate(),
        TestKey::generate(),
        TestKey::generate(),
    );
    idp.serve_oidc(&jwks(&[&old]));
    let url = idp.url();
    let iss = issuer(&url, None);
    let (reg, clock) = with_clock(IssuerSettings::default(), Duration::from_secs(2));
    reg.verify(&iss, &id_token(&old, &url, "openfaas"), now())
        .await
        .unwrap();

    // Down for ten minutes, past the refresh interval.
    idp.set("/.well-known/openid-configuration", 503, "down");
    for _ in 0..60 {
        clock.advance(Duration::from_secs(10));
        reg.verify(&iss, &id_token(&old, &url, "openfaas"), now())
            .await
            .unwrap();
        let started = Instant::now();
        let err = reg
            .verify(&iss, &id_token(&new, &url, "openfaas"), now())
            .await
            .unwrap_err();
        assert!(matches!(err, IdpError::Unavailable { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_millis(100));
        fetch_settled(&reg, &iss).await;
    }

    // Back, with the new key: accepted within the longest backoff.
    idp.serve_oidc(&jwks(&[&old, &new]));
    let mut waited = Duration::ZERO;
    loop {
        let r = reg
            .verify(&iss, &id_token(&new, &url, "openfaas"), now())
            .await;
        if r.is_ok() {
            break;
        }
        fetch_settled(&reg, &iss).await;
        assert!(
            waited <= Duration::from_secs(9),
            "still refused after {waited:?}"
        );
        clock.advance(Duration::from_secs(1));
        waited += Duration::from_secs(1);
    }

    // The outage did not use up the unknown-kid budget: a key rotated in
    // right after is fetched on its first token.
    idp.serve_oidc(&jwks(&[&old, &new, &newer]));
    reg.verify(&iss, &id_token(&newer, &url, "openfaas"), now())
        .await
        .unwrap();
}

#[tokio::test]
async fn subject_tokens_up_to_16_kib_are_accepted() {
    let idp = JsonServer::start().await;
    let key = TestKey::generate();
    idp.serve_oidc(&jwks(&[&key]));
    let iss = issuer(&idp.url(), None);
    let reg = issuers(IssuerSettings::default());
    let n = now();
    let groups: Vec<String> = (0..780).map(|i| format!("group-{i:05}")).collect();
    let big = key.sign(&json!({"iss": idp.url(), "aud": "openfaas", "sub": "alice",
        "iat": n, "exp": n + 300, "groups": groups}));
    assert!(
        big.len() > 12 * 1024 && big.len() < 16 * 1024,
        "{}",
        big.len()
    );
    let v = reg.verify(&iss, &big, n).await.unwrap();
    assert_eq!(v.claims.custom["groups"].as_array().unwrap().len(), 780);
    let groups: Vec<String> = (0..900).map(|i| format!("group-{i:05}")).collect();
    let huge = key.sign(&json!({"iss": idp.url(), "aud": "openfaas", "sub": "alice",
        "iat": n, "exp": n + 300, "groups": groups}));
    let err = reg.verify(&iss, &huge, n).await.unwrap_err();
    assert!(
        matches!(err, IdpError::Token(TokenError::TooLong { .. })),
        "{err}"
    );
}

use std::path::Path;

use mesh_auth_core::jwks::KeySet;

use jwt_simple::prelude::{Claims, Duration, ES256KeyPair, NoCustomClaims};
use mesh_auth_core::verify::{Validation, verify};
use p256::pkcs8::{EncodePrivateKey, LineEnding};

use super::*;

/// What `openssl ecparam -name prime256v1 -genkey` writes: an EC PARAMETERS
/// block, then a SEC1 EC PRIVATE KEY.
fn secret() -> p256::SecretKey {
    p256::SecretKey::from_slice(&ES256KeyPair::generate().to_bytes()).unwrap()
}

fn openssl_style_pem() -> String {
    let secret = secret();
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
        &*sec1
    )
}

fn pkcs8_pem() -> String {
    secret().to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// No other replica: a retired key lives as long as its own last token.
const NO_OVERLAP: Retirement = Retirement {
    leeway: 30,
    max_lifetime: 0,
};

fn key(pem: &str) -> SigningKey {
    SigningKey::from_pem(Path::new("k.pem"), pem).unwrap()
}

#[test]
fn reads_sec1_and_pkcs8() {
    let a = key(&openssl_style_pem());
    let b = key(&pkcs8_pem());
    assert_ne!(a.kid, b.kid);
    assert_eq!(a.jwk()["kid"], a.kid.as_str());
    assert_eq!(a.jwk()["alg"], "ES256");
}

#[test]
fn rejects_other_curves_and_garbage_with_the_file_name() {
    let p384 = "-----BEGIN EC PRIVATE KEY-----\nMIGkAgEBBDBmxpSbu5mLCpBBSaJ0qBf6A8VDPE9RgHw3yBd7lUJJ8b1mv4ufkKcO\nknUNqVxXy+igBwYFK4EEACKhZANiAATKIHEpQFA0wkK9PUxoDVl0YvyUTMBFQeyq\nvAWcxaXjCOVWfQIeqJz5gL0eDqAKFGc3Hvw3UXV2wmpkdRmQM2tb+fMYo9YJDNPP\nQSz4mP14AxqfLGp2/14gxQ2hwS9e5ko=\n-----END EC PRIVATE KEY-----\n";
    for pem in [
        "",
        "hello",
        p384,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ] {
        let err = SigningKey::from_pem(Path::new("/keys/bad.pem"), pem).unwrap_err();
        assert!(err.to_string().starts_with("/keys/bad.pem: "), "{err}");
    }
}

#[test]
fn signed_tokens_verify_with_the_published_keys() {
    let ring = KeyRing::new(vec![key(&pkcs8_pem())]).unwrap();
    let claims = Claims::create(Duration::from_secs(60))
        .with_issuer("https://gw")
        .with_audience("https://gw");
    let now = jwt_simple::prelude::Clock::now_since_epoch().as_secs();
    let token = ring.active(now).sign(claims).unwrap();
    let v = verify::<NoCustomClaims>(
        &token,
        &ring.key_set(now),
        &Validation::new(["https://gw"], ["https://gw"]).unwrap(),
        now,
    )
    .unwrap();
    assert_eq!(v.kid, ring.active(now).kid);
    assert!(ring.active(now).last_exp() >= now + 59);
    // The published JWKS parses back to the same key.
    let (set, skipped) = KeySet::from_jwks_json(ring.jwks(now).to_string().as_bytes()).unwrap();
    assert!(skipped.is_empty());
    assert!(set.get(&ring.active(now).kid).is_some());
}

#[test]
fn the_last_file_signs_and_rotation_retires_keys_after_their_last_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("2026-01.pem"), openssl_style_pem()).unwrap();
    std::fs::write(dir.path().join("..data"), "not a key").unwrap();
    std::fs::write(dir.path().join("README"), "not a key").unwrap();
    let ring = KeyRing::new(load_dir(dir.path()).unwrap()).unwrap();
    let now = 1_800_000_000;
    let first = ring.active(now).kid.clone();
    // Sign with the first key: its last token expires at now + 300.
    let mut claims = Claims::create(Duration::from_secs(1));
    claims.expires_at = Some(Duration::from_secs(now + 300));
    ring.active(now).sign(claims).unwrap();

    // A newer file: it signs (no publish delay here); the old one is
    // still on disk and published.
    std::fs::write(dir.path().join("2026-02.pem"), pkcs8_pem()).unwrap();
    let ring = ring
        .rotate(load_dir(dir.path()).unwrap(), now, 0, NO_OVERLAP)
        .unwrap();
    let second = ring.active(now).kid.clone();
    assert_ne!(first, second);
    assert_eq!(
        ring.jwks(now)["keys"][0]["kid"],
        second.as_str(),
        "active first"
    );
    assert_eq!(ring.kids(now).len(), 2);

    // The old file is removed: still published until its token expires.
    std::fs::remove_file(dir.path().join("2026-01.pem")).unwrap();
    let ring = ring
        .rotate(load_dir(dir.path()).unwrap(), now + 10, 0, NO_OVERLAP)
        .unwrap();
    assert!(ring.kids(now + 10).contains(&first));
    assert!(ring.kids(now + 329).contains(&first));
    assert!(!ring.kids(now + 331).contains(&first));
    // And a later rotation drops it for good once it has expired.
    let ring = ring
        .rotate(load_dir(dir.path()).unwrap(), now + 400, 0, NO_OVERLAP)
        .unwrap();
    assert_eq!(ring.kids(now + 400), vec![second]);
}

#[test]
fn a_key_never_used_is_dropped_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.pem"), pkcs8_pem()).unwrap();
    std::fs::write(dir.path().join("b.pem"), pkcs8_pem()).unwrap();
    let ring = KeyRing::new(load_dir(dir.path()).unwrap()).unwrap();
    std::fs::remove_file(dir.path().join("a.pem")).unwrap();
    let ring = ring
        .rotate(load_dir(dir.path()).unwrap(), 100, 0, NO_OVERLAP)
        .unwrap();
    assert_eq!(ring.kids(100).len(), 1);
}

#[test]
fn empty_or_missing_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(load_dir(dir.path()), Err(KeyError::NoKeys(_))));
    assert!(matches!(
        load_dir(&dir.path().join("nope")),
        Err(KeyError::ReadDir { .. })
    ));
    std::fs::write(dir.path().join("x.pem"), "junk").unwrap();
    assert!(matches!(load_dir(dir.path()), Err(KeyError::Parse { .. })));
}

#[test]
fn the_same_key_twice_is_published_once() {
    let pem = pkcs8_pem();
    let ring = KeyRing::new(vec![
        SigningKey::from_pem(Path::new("a.pem"), &pem).unwrap(),
        SigningKey::from_pem(Path::new("b.pem"), &pem).unwrap(),
    ])
    .unwrap();
    assert_eq!(ring.kids(0).len(), 1);
}

/// A key written by the real `openssl ecparam -name prime256v1 -genkey`
/// (committed fixture; `tests/fixtures/README.md` says how to regenerate).
#[test]
fn reads_a_real_openssl_key() {
    let pem = include_str!("../../../tests/fixtures/openssl-prime256v1.pem");
    let k = key(pem);
    assert_eq!(k.kid.len(), 43);
}

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{
    Claims, Duration, Ed25519KeyPair, EdDSAKeyPairLike, JWTClaims, NoCustomClaims, RS256KeyPair,
    RSAKeyPairLike,
};
use mesh_auth_core::KeySet;
use mesh_auth_core::testing::{TestKey, function_claims, jwks};
use mesh_auth_core::verify::{TokenError, Validation, verify, verify_with};
use serde_json::json;

use super::*;

const ISS: &str = "https://gw";

fn claims() -> JWTClaims<NoCustomClaims> {
    Claims::create(Duration::from_secs(60))
        .with_issuer(ISS)
        .with_audience(ISS)
}

fn now() -> u64 {
    jwt_simple::prelude::Clock::now_since_epoch().as_secs()
}

/// ring and the pure-Rust path agree on every algorithm, good and bad.
#[test]
fn agrees_with_pure_rust() {
    let es = TestKey::generate();
    let rs = RS256KeyPair::generate(2048).unwrap().with_key_id("r");
    let ed = Ed25519KeyPair::generate().with_key_id("e");
    let c = rs.public_key().to_components();
    let doc = json!({"keys": [
        es.jwk(),
        {"kty": "RSA", "kid": "r", "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)},
        {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())},
    ]});
    let (keys, _) = KeySet::from_jwks_json(doc.to_string().as_bytes()).unwrap();
    let v = Validation::new([ISS], [ISS]).unwrap();
    let tokens = [
        es.sign(&function_claims(ISS, now(), 60, &["*"])),
        rs.sign(claims()).unwrap(),
        ed.sign(claims()).unwrap(),
    ];
    for t in &tokens {
        let native = verify_with::<serde_json::Value>(t, &keys, &v, now(), &RingSignatures);
        let soft = verify::<serde_json::Value>(t, &keys, &v, now());
        assert!(native.is_ok(), "{t}: {native:?}");
        assert_eq!(native.unwrap().kid, soft.unwrap().kid);
        // Flip one signature byte.
        let (head, sig) = t.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[5] ^= 1;
        let bad = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&raw));
        assert_eq!(
            verify_with::<serde_json::Value>(&bad, &keys, &v, now(), &RingSignatures).unwrap_err(),
            TokenError::BadSignature
        );
    }
    let _ = jwks(&[&es]);
}

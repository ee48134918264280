use serde_json::json;

use super::*;
use crate::testing::{TestKey, jwks};

#[test]
fn parses_ec_keys_by_kid() {
    let (a, b) = (TestKey::generate(), TestKey::generate());
    let (set, skipped) = KeySet::from_jwks_json(jwks(&[&a, &b]).as_bytes()).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(set.len(), 2);
    let key = set.get(&a.kid).unwrap();
    assert_eq!(key.alg, Algorithm::ES256);
    assert!(set.get("nope").is_none());
}

#[test]
fn kid_is_the_rfc7638_thumbprint() {
    // RFC 7638 section 3.1 uses RSA; this is the P-256 example from RFC 7517
    // appendix A.1, whose thumbprint is well known.
    let x = URL_SAFE_NO_PAD
        .decode("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4")
        .unwrap();
    let y = URL_SAFE_NO_PAD
        .decode("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM")
        .unwrap();
    assert_eq!(
        ec_p256_thumbprint(&x, &y),
        "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
    );
}

#[test]
fn unusable_keys_are_reported_not_dropped_silently() {
    let good = TestKey::generate();
    let mut no_kid = good.jwk();
    no_kid.as_object_mut().unwrap().remove("kid");
    let doc = json!({"keys": [
        good.jwk(),
        no_kid,
        {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "kid": "bad", "x": "AAAA", "y": "AAAA"},
        {"kty": "EC", "crv": "P-256", "kid": "wrongalg", "alg": "HS256", "x": "AA", "y": "AA"},
        good.jwk(),
        "not an object",
    ]});
    let (set, skipped) = KeySet::from_jwks_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    let reasons: Vec<&SkipReason> = skipped.iter().map(|s| &s.reason).collect();
    assert_eq!(skipped.len(), 8, "{skipped:?}");
    assert!(matches!(reasons[0], SkipReason::MissingKid));
    assert!(matches!(reasons[1], SkipReason::Unsupported { .. }));
    assert!(matches!(reasons[2], SkipReason::Unsupported { .. }));
    assert!(matches!(reasons[3], SkipReason::NotForSignatures(_)));
    assert!(matches!(reasons[4], SkipReason::InvalidMaterial(_)));
    assert!(matches!(reasons[5], SkipReason::Unsupported { .. }));
    assert!(matches!(reasons[6], SkipReason::DuplicateKid));
    assert!(matches!(reasons[7], SkipReason::InvalidMaterial(_)));
    assert!(skipped[0].to_string().contains("no kid"));
}

#[test]
fn point_off_the_curve_is_refused() {
    let mut jwk = TestKey::generate().jwk();
    jwk["y"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let doc = json!({"keys": [jwk]}).to_string();
    assert_eq!(
        KeySet::from_jwks_json(doc.as_bytes()).unwrap_err(),
        JwksError::NoUsableKeys { skipped: 1 }
    );
}

#[test]
fn whole_document_errors() {
    assert!(matches!(
        KeySet::from_jwks_json(b"not json"),
        Err(JwksError::NotJwks(_))
    ));
    assert!(matches!(
        KeySet::from_jwks_json(b"{}"),
        Err(JwksError::NotJwks(_))
    ));
    assert!(matches!(
        KeySet::from_jwks_json(br#"{"keys": {}}"#),
        Err(JwksError::NotJwks(_))
    ));
    assert_eq!(
        KeySet::from_jwks_json(br#"{"keys": []}"#).unwrap_err(),
        JwksError::NoUsableKeys { skipped: 0 }
    );
    let big = vec![b' '; DEFAULT_MAX_JWKS_BYTES + 1];
    assert!(matches!(
        KeySet::from_jwks_json(&big),
        Err(JwksError::TooLarge { .. })
    ));
}

/// An RS256 key, an Ed25519 key, and an RSA key too weak to accept.
fn rsa_and_ed25519_jwks() -> String {
    use jwt_simple::prelude::{Ed25519KeyPair, RS256KeyPair};
    let rsa = RS256KeyPair::generate(2048).unwrap();
    let c = rsa.public_key().to_components();
    let ed = Ed25519KeyPair::generate();
    json!({"keys": [
        {"kty": "RSA", "kid": "r", "alg": "RS256", "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)},
        {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())},
        {"kty": "RSA", "kid": "weak", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"},
    ]})
    .to_string()
}

#[cfg(all(feature = "rs256", feature = "eddsa"))]
#[test]
fn rsa_and_ed25519_keys_parse() {
    let (set, skipped) = KeySet::from_jwks_json(rsa_and_ed25519_jwks().as_bytes()).unwrap();
    assert_eq!(set.get("r").unwrap().alg, Algorithm::RS256);
    assert_eq!(set.get("e").unwrap().alg, Algorithm::EdDSA);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].kid.as_deref(), Some("weak"));
}

/// The filter's build (ES256 only): other keys are skipped and named, never
/// an error, so a JWKS that also holds them still serves its EC keys.
#[cfg(not(any(feature = "rs256", feature = "eddsa")))]
#[test]
fn without_the_features_rsa_and_ed25519_keys_are_skipped() {
    let ec = TestKey::generate();
    let mut doc: serde_json::Value = serde_json::from_str(&rsa_and_ed25519_jwks()).unwrap();
    let ec_keys: serde_json::Value = serde_json::from_str(&jwks(&[&ec])).unwrap();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(ec_keys["keys"][0].clone());
    let (set, skipped) = KeySet::from_jwks_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.kids(), [ec.kid.as_str()]);
    let kids: Vec<_> = skipped.iter().map(|s| s.kid.as_deref()).collect();
    assert_eq!(kids, [Some("r"), Some("e"), Some("weak")]);
    assert!(
        skipped
            .iter()
            .all(|s| matches!(s.reason, SkipReason::Unsupported { .. }))
    );
}

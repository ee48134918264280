//! The JWKS parser (`KeySet::from_jwks_json`), which reads documents from
//! the network: the filter's fetch from ext-authz, ext-authz's from IdPs.
//!
//! Properties:
//! * the size cap is exact, and the default-cap entry point agrees with the
//!   limited one;
//! * every key of the document is either in the set or reported skipped,
//!   once, by its index: none is dropped silently;
//! * each key's algorithm matches its material (a P-256 point with its
//!   SPKI, an RSA modulus and exponent, a 32-byte Ed25519 key), and an
//!   ES256 key re-published as a JWK parses back to the same key;
//! * a token under each `kid` goes through the verifier (pure Rust and
//!   ring) without a panic, however odd the key; only a key equal to ours
//!   may accept our signature.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ext_authz::signatures::RingSignatures;
use mesh_auth_core::GatewayClaims;
use mesh_auth_core::jwks::{
    Algorithm, DEFAULT_MAX_JWKS_BYTES, JwksError, KeySet, RawKey, ec_p256_jwk, p256_spki_der,
};
use mesh_auth_core::verify::{SoftwareOnly, verify_with};
use serde_json::{Value, json};

use crate::keys::{AUDIENCES, ISSUERS, NOW, keys, kid_of, sample_signature, sign_es256_raw};

pub fn jwks(data: &[u8]) {
    let limited = KeySet::from_jwks_json_limited(data, data.len());
    let default = KeySet::from_jwks_json(data);
    if data.len() > DEFAULT_MAX_JWKS_BYTES {
        assert!(matches!(default, Err(JwksError::TooLarge { .. })));
    } else {
        assert_eq!(
            summary(&limited),
            summary(&default),
            "the two entry points disagree"
        );
    }
    if let Some(max) = data.len().checked_sub(1) {
        assert!(matches!(
            KeySet::from_jwks_json_limited(data, max),
            Err(JwksError::TooLarge { .. })
        ));
    }
    let Ok((set, skipped)) = limited else {
        return;
    };
    assert!(!set.is_empty(), "an Ok set is never empty");

    // Every key accounted for, once.
    let doc: Value = serde_json::from_slice(data).expect("an accepted JWKS is JSON");
    let listed = doc
        .get("keys")
        .and_then(Value::as_array)
        .expect("an accepted JWKS has a keys array");
    let indexes: HashSet<usize> = skipped.iter().map(|s| s.index).collect();
    assert_eq!(indexes.len(), skipped.len(), "a key skipped twice");
    assert!(indexes.iter().all(|i| *i < listed.len()));
    assert_eq!(
        set.len() + skipped.len(),
        listed.len(),
        "a key neither kept nor reported: {skipped:?}"
    );

    for kid in set.kids() {
        let key = set.get(kid).expect("kids() lists keys of the set");
        assert_eq!(key.kid, kid);
        assert!(!kid.is_empty());
        match (&key.alg, &key.raw) {
            (Algorithm::ES256, RawKey::P256 { point, spki_der }) => {
                assert_eq!(point.len(), 65);
                assert_eq!(point[0], 4);
                assert_eq!(*spki_der, p256_spki_der(point));
                let again = json!({"keys": [ec_p256_jwk(kid, &point[1..33], &point[33..])]});
                let (round, _) = KeySet::from_jwks_json(again.to_string().as_bytes())
                    .expect("a published ES256 key parses back");
                assert_eq!(round.get(kid).map(|k| &k.raw), Some(&key.raw));
            }
            (Algorithm::RS256, RawKey::Rsa { n, e }) => {
                assert!(!n.is_empty() && !e.is_empty());
            }
            (Algorithm::EdDSA, RawKey::Ed25519 { x }) => assert_eq!(x.len(), 32),
            (alg, raw) => panic!("{alg} key with {raw:?}"),
        }
        verify_under(&set, kid, key.alg);
    }
}

/// Ok (key count, skipped) or the error, for comparing two parses.
fn summary(
    r: &Result<(KeySet, Vec<mesh_auth_core::SkippedKey>), JwksError>,
) -> Result<(Vec<String>, Vec<mesh_auth_core::SkippedKey>), JwksError> {
    match r {
        Ok((set, skipped)) => Ok((
            set.kids().into_iter().map(str::to_owned).collect(),
            skipped.clone(),
        )),
        Err(e) => Err(e.clone()),
    }
}

/// Our token under `kid`, for the algorithm the key is bound to: signed
/// with our ES256 key, or carrying a signature of our RSA or Ed25519 key
/// (re-signing for each input would cost more than the parse).
fn verify_under(set: &KeySet, kid: &str, alg: Algorithm) {
    let k = keys();
    let payload = json!({"iss": ISSUERS[1], "aud": AUDIENCES[1], "exp": NOW + 60});
    let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid});
    let token = match alg {
        Algorithm::ES256 => sign_es256_raw(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        ),
        Algorithm::RS256 | Algorithm::EdDSA => format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            sample_signature(alg)
        ),
    };
    let ours = k.set.get(kid_of(alg)).map(|key| &key.raw);
    let same_key = ours == set.get(kid).map(|key| &key.raw);
    for accepted in [
        verify_with::<GatewayClaims>(&token, set, &k.validation, NOW, &SoftwareOnly).is_ok(),
        verify_with::<GatewayClaims>(&token, set, &k.validation, NOW, &RingSignatures).is_ok(),
    ] {
        if accepted {
            assert!(same_key, "a key not ours accepted our signature");
            assert_eq!(
                alg,
                Algorithm::ES256,
                "a signature over other bytes verified"
            );
        }
    }
}

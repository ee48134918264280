//! The token verifier (`mesh_auth_core::verify`), as the filter and
//! ext-authz call it, against the fixed keys of [`crate::keys`].
//!
//! Input: a compact JWS as is; or, when it starts with `{`, a header and a
//! payload separated by a NUL, which the target signs with the ES256 key
//! first, so mutations reach the header rules and claim checks behind the
//! signature. (A real token never starts with `{`.)
//!
//! Properties:
//! * the pure-Rust check, ring's (ext-authz), and ring over the DER form
//!   the filter hands Envoy (`es256_signature_to_der`) accept exactly the
//!   same tokens, for the same reason when they refuse;
//! * an accepted token fits the length cap, has a `kid` of the set and its
//!   algorithm, no `crit`, an `exp` not past (with the leeway), no `nbf` or
//!   `iat` ahead, a trusted `iss`, and an `aud` we accept.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ext_authz::signatures::RingSignatures;
use mesh_auth_core::iam::ClaimMap;
use mesh_auth_core::jwks::{Algorithm, RawKey, VerifyingKey};
use mesh_auth_core::verify::{
    SignatureVerifier, SoftwareOnly, es256_signature_to_der, verify_with,
};
use mesh_auth_core::{GatewayClaims, TokenError, Verified};
use ring::signature::{self, UnparsedPublicKey};

use crate::keys::{AUDIENCES, ISSUERS, LEEWAY, MAX_TOKEN_BYTES, NOW, keys, sign_es256_raw};

/// The filter's native path: the JWS signature as DER, checked by an
/// X.509-style verifier (Envoy's BoringSSL there, ring's ASN.1 form here).
struct DerSignatures;

impl SignatureVerifier for DerSignatures {
    fn verify(&self, key: &VerifyingKey, message: &[u8], sig: &[u8]) -> Option<bool> {
        match (key.alg, &key.raw) {
            (Algorithm::ES256, RawKey::P256 { point, .. }) => {
                let Some(der) = es256_signature_to_der(sig) else {
                    return Some(false);
                };
                Some(
                    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point)
                        .verify(message, &der)
                        .is_ok(),
                )
            }
            _ => None,
        }
    }
}

pub fn verify(data: &[u8]) {
    let signed;
    let token = if data.first() == Some(&b'{') {
        let (header, payload) = crate::split_nul(data);
        signed = sign_es256_raw(header, payload);
        signed.as_str()
    } else {
        match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(_) => return,
        }
    };
    let k = keys();
    let run = |v: &dyn SignatureVerifier| {
        verify_with::<GatewayClaims>(token, &k.set, &k.validation, NOW, v)
    };
    let software = run(&SoftwareOnly);
    let ring = run(&RingSignatures);
    let der = run(&DerSignatures);
    assert_eq!(
        outcome(&software),
        outcome(&ring),
        "pure Rust and ring disagree on {token:?}"
    );
    assert_eq!(
        outcome(&ring),
        outcome(&der),
        "ring and the filter's DER path disagree on {token:?}"
    );
    // ext-authz reads IdP tokens as a bare claims map.
    let idp = verify_with::<ClaimMap>(token, &k.set, &k.validation, NOW, &RingSignatures);
    if let Ok(v) = &idp {
        check_accepted(token, v);
    }
    if let Ok(v) = &software {
        check_accepted(token, v);
    }
}

/// What the caller sees: accepted, or the stable reason code.
fn outcome<C>(r: &Result<Verified<C>, TokenError>) -> Result<(), &'static str> {
    r.as_ref().map(|_| ()).map_err(TokenError::code)
}

fn check_accepted<C>(token: &str, v: &Verified<C>) {
    assert!(token.len() <= MAX_TOKEN_BYTES);
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "accepted {token:?}");
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(segments[0])
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .expect("an accepted token has a JSON header");
    assert!(header.get("crit").is_none(), "accepted a crit header");
    assert_eq!(header.get("kid").and_then(|k| k.as_str()), Some(&*v.kid));
    let key = keys().set.get(&v.kid).expect("the kid is in the set");
    assert_eq!(key.alg, v.alg);
    let c = &v.claims;
    assert!(c.exp + LEEWAY >= NOW, "accepted an expired token");
    assert!(
        c.nbf.is_none_or(|t| t <= NOW + LEEWAY),
        "accepted before nbf"
    );
    assert!(
        c.iat.is_none_or(|t| t <= NOW + LEEWAY),
        "accepted iat ahead"
    );
    assert!(
        c.iss.as_deref().is_some_and(|i| ISSUERS.contains(&i)),
        "accepted iss {:?}",
        c.iss
    );
    assert!(
        c.aud.iter().any(|a| AUDIENCES.contains(&a.as_str())),
        "accepted aud {:?}",
        c.aud
    );
}

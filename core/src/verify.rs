//! Compact-JWS verification in a fixed order, each step cheaper than the next
//! and none trusting the token before its signature is checked: the length
//! cap, three base64url segments, the header (refusing `crit`), the `kid` and
//! the algorithm its key is bound to, the signature, and only then the claims.
//! `jku`, `x5u` and `jwk` headers are never read, let alone fetched.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::Error as JwtError;
#[cfg(feature = "eddsa")]
use jwt_simple::prelude::EdDSAPublicKeyLike;
#[cfg(feature = "rs256")]
use jwt_simple::prelude::RSAPublicKeyLike;
use jwt_simple::prelude::{Duration, ECDSAP256PublicKeyLike, JWTClaims, VerificationOptions};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::claims::Claims;
use crate::clock::UnixSeconds;
use crate::jwks::{Algorithm, KeyMaterial, KeySet, VerifyingKey};

/// Default cap on a token's length. Function tokens are well under 2 KiB; IdP
/// tokens with group claims can be larger.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// What a token must satisfy, compiled once from configuration.
#[derive(Debug, Clone)]
pub struct Validation {
    options: VerificationOptions,
    max_token_bytes: usize,
    leeway_seconds: u64,
}

impl Validation {
    pub fn new<I, A>(issuers: I, audiences: A) -> Result<Self, ValidationError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
        A: IntoIterator,
        A::Item: Into<String>,
    {
        let issuers: HashSet<String> = issuers.into_iter().map(Into::into).collect();
        let audiences: HashSet<String> = audiences.into_iter().map(Into::into).collect();
        if issuers.is_empty() {
            return Err(ValidationError::NoIssuer);
        }
        if audiences.is_empty() {
            return Err(ValidationError::NoAudience);
        }
        let options = VerificationOptions {
            allowed_issuers: Some(issuers),
            allowed_audiences: Some(audiences),
            time_tolerance: Some(Duration::from_secs(DEFAULT_LEEWAY_SECONDS)),
            // Our own cap runs first; this only keeps jwt-simple from
            // applying a different one.
            max_token_length: None,
            ..VerificationOptions::default()
        };
        Ok(Validation {
            options,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
        })
    }

    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway_seconds = seconds;
        self.options.time_tolerance = Some(Duration::from_secs(seconds));
        self
    }

    pub fn with_max_token_bytes(mut self, max: usize) -> Result<Self, ValidationError> {
        if max < 64 {
            return Err(ValidationError::MaxTooSmall);
        }
        self.max_token_bytes = max;
        Ok(self)
    }

    pub fn leeway_seconds(&self) -> u64 {
        self.leeway_seconds
    }

    pub fn max_token_bytes(&self) -> usize {
        self.max_token_bytes
    }
}

/// A signature check the host does natively, faster than pure Rust in wasm
/// (Envoy's BoringSSL through the `verify_signature` foreign function).
pub trait SignatureVerifier {
    /// `Some(valid)` when this verifier handles `key`'s algorithm; `None` to
    /// fall back to the pure-Rust check. `signature` is as in the JWS.
    fn verify(&self, key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Option<bool>;
}

/// Pure Rust only: what runs outside Envoy and wherever the host offers
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftwareOnly;

impl SignatureVerifier for SoftwareOnly {
    fn verify(&self, _: &VerifyingKey, _: &[u8], _: &[u8]) -> Option<bool> {
        None
    }
}

/// A JWS ES256 signature (r || s, 32 bytes each) as the DER
/// `ECDSA-Sig-Value` that X.509-style verifiers expect. None unless it is
/// 64 bytes.
pub fn es256_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
        // Minimal encoding: no leading zeros, but a 0x00 before a high bit.
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let bytes = &bytes[first..];
        let pad = bytes[0] & 0x80 != 0;
        out.push(0x02);
        out.push((bytes.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(bytes);
    }
    let mut body = Vec::with_capacity(72);
    integer(&mut body, &raw[..32]);
    integer(&mut body, &raw[32..]);
    let mut der = Vec::with_capacity(body.len() + 2);
    der.push(0x30);
    der.push(body.len() as u8);
    der.extend_from_slice(&body);
    Some(der)
}

/// A token whose signature and claims have been checked.
#[derive(Debug, Clone)]
pub struct Verified<C> {
    pub kid: String,
    pub alg: Algorithm,
    pub claims: Claims<C>,
}

/// The only header fields we read. Unknown fields (`jku`, `x5u`, `jwk`, ...)
/// are ignored, never acted on.
#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

/// Verify a compact JWS against `keys` at time `now`, in pure Rust.
pub fn verify<C: DeserializeOwned>(
    token: &str,
    keys: &KeySet,
    validation: &Validation,
    now: UnixSeconds,
) -> Result<Verified<C>, TokenError> {
    verify_with(token, keys, validation, now, &SoftwareOnly)
}

/// Verify a compact JWS, letting `signatures` check the signature when it
/// can. Every other step, and the claims, are checked here either way.
pub fn verify_with<C: DeserializeOwned>(
    token: &str,
    keys: &KeySet,
    validation: &Validation,
    now: UnixSeconds,
    signatures: &dyn SignatureVerifier,
) -> Result<Verified<C>, TokenError> {
    // 1. Length first: everything after is proportional to it.
    if token.len() > validation.max_token_bytes {
        return Err(TokenError::TooLong {
            len: token.len(),
            max: validation.max_token_bytes,
        });
    }
    // 2. Exactly three segments of base64url. The signature may be empty
    //    here (a stripped signature) and then fails at step 5.
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated segments"));
    };
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(TokenError::Malformed("empty header or payload segment"));
    }
    if ![header_b64, payload_b64, sig_b64]
        .iter()
        .all(|s| s.bytes().all(is_base64url))
    {
        return Err(TokenError::Malformed("segment is not base64url"));
    }
    // 3. The header.
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    // JSON is UTF-8 (RFC 8259); serde_json does not check the strings it
    // skips, so an unknown member could carry any bytes past it.
    let header_text = std::str::from_utf8(&header_bytes)
        .map_err(|_| TokenError::Malformed("header is not UTF-8"))?;
    let header: Header = serde_json::from_str(header_text)
        .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    if header.crit.is_some() {
        return Err(TokenError::CriticalHeader);
    }
    // RFC 8725 explicit typing: a typ, when present, must name a JWT
    // (`JWT`, `at+jwt`, ...), so a JWE or another JOSE object is never
    // mistaken for one. Checked here so every signature path agrees.
    if let Some(typ) = &header.typ {
        let t = typ.to_ascii_uppercase();
        if t != "JWT" && !t.ends_with("+JWT") {
            return Err(TokenError::Malformed("typ is not JWT"));
        }
    }
    // 4. The key, and the algorithm it is bound to.
    let kid = header.kid.ok_or(TokenError::MissingKid)?;
    let key = keys
        .get(&kid)
        .ok_or_else(|| TokenError::UnknownKid(truncate(&kid)))?;
    let found = header.alg.unwrap_or_default();
    let alg_ok = match key.alg {
        Algorithm::EdDSA => found == "EdDSA" || found == "Ed25519",
        alg => found == alg.as_str(),
    };
    if !alg_ok {
        return Err(TokenError::AlgorithmMismatch {
            expected: key.alg,
            found: truncate(&found),
        });
    }
    // 5. The signature: natively if the host can, else jwt-simple (which
    //    also decodes the claims and checks their times).
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| TokenError::BadSignature)?;
    let jwt: JWTClaims<C> = match signatures.verify(key, signing_input, &signature) {
        Some(false) => return Err(TokenError::BadSignature),
        Some(true) => decode_claims(payload_b64)?,
        None => {
            let mut options = validation.options.clone();
            options.artificial_time = Some(Duration::from_secs(now));
            let result: Result<JWTClaims<C>, JwtError> = match &key.material {
                KeyMaterial::Es256(pk) => pk.verify_token(token, Some(options)),
                #[cfg(feature = "rs256")]
                KeyMaterial::Rs256(pk) => pk.verify_token(token, Some(options)),
                #[cfg(feature = "eddsa")]
                KeyMaterial::EdDsa(pk) => pk.verify_token(token, Some(options)),
            };
            match result.map_err(|e| classify(&e)) {
                // The same claims the native path would read, or none.
                Ok(jwt) => decode_claims::<serde::de::IgnoredAny>(payload_b64).map(|_| jwt)?,
                // jwt-simple checked the signature and then the claims, in
                // its own order: give the reason step 6 gives, the same as
                // the native path would, whenever step 6 refuses too.
                Err(
                    e @ (TokenError::WrongIssuer
                    | TokenError::WrongAudience
                    | TokenError::Expired
                    | TokenError::NotYetValid
                    | TokenError::IssuedInFuture),
                ) => {
                    check_claims(decode_claims::<C>(payload_b64)?, validation, now)?;
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    };
    // 6. The claims, the same way whichever path checked the signature.
    let claims = check_claims(jwt, validation, now)?;
    Ok(Verified {
        kid,
        alg: key.alg,
        claims,
    })
}

/// For explaining decisions offline, without the keys: the length, the
/// shape and every claim check of [`verify_with`] (step 6, the same
/// function), but no header, key or signature check. Never use it to
/// accept a token.
pub fn check_claims_unsigned<C: DeserializeOwned>(
    token: &str,
    validation: &Validation,
    now: UnixSeconds,
) -> Result<Claims<C>, TokenError> {
    if token.len() > validation.max_token_bytes {
        return Err(TokenError::TooLong {
            len: token.len(),
            max: validation.max_token_bytes,
        });
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload_b64), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated segments"));
    };
    check_claims(decode_claims(payload_b64)?, validation, now)
}

/// The payload's claims: base64url, UTF-8, then JSON.
fn decode_claims<C: DeserializeOwned>(payload_b64: &str) -> Result<JWTClaims<C>, TokenError> {
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::MalformedClaims)?;
    let text = std::str::from_utf8(&payload).map_err(|_| TokenError::MalformedClaims)?;
    serde_json::from_str(text).map_err(|_| TokenError::MalformedClaims)
}

/// `iat`, `nbf` and `exp` (required) with the leeway, then `iss` and `aud`.
fn check_claims<C>(
    jwt: JWTClaims<C>,
    v: &Validation,
    now: UnixSeconds,
) -> Result<Claims<C>, TokenError> {
    let leeway = v.leeway_seconds;
    if jwt
        .issued_at
        .is_some_and(|t| t.as_secs() > now.saturating_add(leeway))
    {
        return Err(TokenError::IssuedInFuture);
    }
    if jwt
        .invalid_before
        .is_some_and(|t| t.as_secs() > now.saturating_add(leeway))
    {
        return Err(TokenError::NotYetValid);
    }
    let claims = Claims::from_jwt(jwt).ok_or(TokenError::MissingExpiry)?;
    if claims.exp.saturating_add(leeway) < now {
        return Err(TokenError::Expired);
    }
    let issuer_ok = match (&claims.iss, &v.options.allowed_issuers) {
        (Some(iss), Some(allowed)) => allowed.contains(iss),
        _ => false,
    };
    if !issuer_ok {
        return Err(TokenError::WrongIssuer);
    }
    let audience_ok = match &v.options.allowed_audiences {
        Some(allowed) => claims.aud.iter().any(|a| allowed.contains(a)),
        None => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    Ok(claims)
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Attacker-controlled strings end up in logs: keep them short.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

mod error;

use error::classify;
pub use error::{TokenError, ValidationError};

#[cfg(test)]
mod tests;

//! Minting ES256 tokens by the million: ring's P-256 (about 20 µs a
//! signature) on every core, written to files wrk reads one line per
//! request. The claims are those ext-authz puts in a function token; only
//! the `jti` differs, so every token is distinct.

use anyhow::{Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mesh_auth_core::jwks::{ec_p256_jwk, ec_p256_thumbprint};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// A P-256 key that signs tokens, with its RFC 7638 `kid`.
pub struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    pub kid: String,
    x: Vec<u8>,
    y: Vec<u8>,
    header_b64: String,
}

impl Signer {
    pub fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| anyhow!("generating a P-256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("loading the P-256 key"))?;
        let point = pair.public_key().as_ref();
        let (x, y) = (point[1..33].to_vec(), point[33..65].to_vec());
        let kid = ec_p256_thumbprint(&x, &y);
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        Ok(Signer {
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            pair,
            rng,
            kid,
            x,
            y,
        })
    }

    pub fn jwk(&self) -> Value {
        ec_p256_jwk(&self.kid, &self.x, &self.y)
    }

    /// The public key as X.509 SubjectPublicKeyInfo DER (what Envoy's
    /// `verify_signature` takes).
    pub fn spki_der(&self) -> Vec<u8> {
        let mut point = vec![4u8];
        point.extend_from_slice(&self.x);
        point.extend_from_slice(&self.y);
        mesh_auth_core::jwks::p256_spki_der(&point)
    }

    /// `{"keys": [this key]}`
    pub fn jwks(&self) -> String {
        json!({"keys": [self.jwk()]}).to_string()
    }

    /// A signed token with these claims.
    pub fn sign(&self, claims: &str) -> Result<String> {
        let mut token = self.unsigned(claims);
        let sig = self
            .pair
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| anyhow!("signing a token"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
        Ok(token)
    }

    /// A token with these claims whose signature is 64 bytes of noise: well
    /// formed, a known `kid`, and only the ECDSA check itself can refuse it.
    pub fn forge(&self, claims: &str, noise: &mut SplitMix) -> String {
        let mut token = self.unsigned(claims);
        let mut sig = [0u8; 64];
        for chunk in sig.chunks_mut(8) {
            chunk.copy_from_slice(&noise.next_u64().to_le_bytes());
        }
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        token
    }

    fn unsigned(&self, claims: &str) -> String {
        let mut token = String::with_capacity(600);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.as_bytes(), &mut token);
        token
    }
}

/// A small, fast, seeded generator for forged signatures (not for keys).
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Function-token claims as ext-authz issues them (the shape of
/// `mesh_auth_core::testing::function_claims`), `jti` numbered.
pub fn function_claims(issuer: &str, now: u64, ttl: u64, permission: &str, jti: &str) -> String {
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        r#"{{"iss":{iss},"sub":"fed:bench-user","aud":[{iss}],"iat":{now},"nbf":{now},"exp":{exp},"jti":"{jti}","function":{{"permissions":[{perm}]}}}}"#,
        iss = Value::from(issuer),
        exp = now + ttl,
        perm = Value::from(permission),
    );
    s
}

/// An IdP's token (the subject of a token exchange).
pub fn idp_claims(issuer: &str, sub: &str, aud: &str, now: u64, ttl: u64, jti: &str) -> String {
    json!({
        "iss": issuer,
        "sub": sub,
        "aud": aud,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
    })
    .to_string()
}

/// What one minted file holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Valid,
    /// Valid claims, a random signature.
    Forged,
}

/// `count` distinct tokens, minted on every core; `claims(i)` gives token
/// i's claims.
pub fn mint(
    signer: &Signer,
    count: usize,
    kind: Kind,
    claims: &(dyn Fn(usize) -> String + Sync),
) -> Result<Vec<String>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = count.div_ceil(threads.max(1)).max(1);
    let chunks: Vec<Result<Vec<String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (start, end) = ((t * per).min(count), ((t + 1) * per).min(count));
                scope.spawn(move || -> Result<Vec<String>> {
                    let mut out = Vec::with_capacity(end - start);
                    let mut noise = SplitMix::new(0x5EED ^ (start as u64));
                    for i in start..end {
                        let c = claims(i);
                        out.push(match kind {
                            Kind::Valid => signer.sign(&c)?,
                            Kind::Forged => signer.forge(&c, &mut noise),
                        });
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a minting thread panicked")))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(count);
    for chunk in chunks {
        all.extend(chunk?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mesh_auth_core::claims::GatewayClaims;
    use mesh_auth_core::{KeySet, TokenError, Validation, verify};

    fn keyset(signer: &Signer) -> KeySet {
        KeySet::from_jwks_json(signer.jwks().as_bytes()).unwrap().0
    }

    #[test]
    fn minted_tokens_verify_and_forged_ones_do_not() {
        let signer = Signer::generate().unwrap();
        let iss = "https://gateway.example.com";
        let now = 1_800_000_000;
        let claims = function_claims(iss, now, 600, "openfaas-fn:bench", "t-1");
        let validation = Validation::new([iss], [iss]).unwrap();
        let keys = keyset(&signer);

        let token = signer.sign(&claims).unwrap();
        let v = verify::<GatewayClaims>(&token, &keys, &validation, now).unwrap();
        assert_eq!(v.claims.sub.as_deref(), Some("fed:bench-user"));

        let forged = signer.forge(&claims, &mut SplitMix::new(1));
        assert!(matches!(
            verify::<GatewayClaims>(&forged, &keys, &validation, now),
            Err(TokenError::BadSignature)
        ));
    }

    #[test]
    fn minting_gives_distinct_tokens() {
        let signer = Signer::generate().unwrap();
        for kind in [Kind::Valid, Kind::Forged] {
            let tokens = mint(&signer, 101, kind, &|i| {
                function_claims("i", 1, 1, "a:b", &i.to_string())
            })
            .unwrap();
            let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
            assert_eq!(distinct.len(), 101);
        }
    }
}

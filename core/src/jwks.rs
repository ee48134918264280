//! JSON Web Key Sets: parsing untrusted JWKS documents into verification keys.
//!
//! Each key carries its algorithm, fixed by the key type and curve (and the
//! JWK's own `alg` when present). A token's header `alg` must equal it; the
//! header never chooses how a signature is checked.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::ES256PublicKey;
#[cfg(feature = "eddsa")]
use jwt_simple::prelude::Ed25519PublicKey;
#[cfg(feature = "rs256")]
use jwt_simple::prelude::RS256PublicKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The signature algorithms a key may be bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    ES256,
    RS256,
    EdDSA,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public key usable for one algorithm, for the pure-Rust check. RS256
/// and EdDSA are features (on by default): the filter leaves them out, since
/// function tokens are ES256, and Envoy's V8 compiles every function of a
/// module it loads, so unused code still costs each VM memory.
#[derive(Clone)]
pub enum KeyMaterial {
    Es256(ES256PublicKey),
    // Boxed: an RSA key is several times the size of the others.
    #[cfg(feature = "rs256")]
    Rs256(Box<RS256PublicKey>),
    #[cfg(feature = "eddsa")]
    EdDsa(Ed25519PublicKey),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            KeyMaterial::Es256(_) => "Es256",
            #[cfg(feature = "rs256")]
            KeyMaterial::Rs256(_) => "Rs256",
            #[cfg(feature = "eddsa")]
            KeyMaterial::EdDsa(_) => "EdDsa",
        };
        f.write_str(kind)
    }
}

#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub kid: String,
    pub alg: Algorithm,
    pub material: KeyMaterial,
    /// The key's bytes, for native verifiers (Envoy's BoringSSL, ring).
    /// Built once, here, not per token.
    pub raw: RawKey,
}

/// A public key as native crypto libraries take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKey {
    /// An uncompressed point (0x04 || x || y) and its DER SubjectPublicKeyInfo.
    P256 {
        point: Vec<u8>,
        spki_der: Vec<u8>,
    },
    /// Big-endian modulus and exponent.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

impl RawKey {
    /// A P-256 key from its uncompressed point.
    pub fn p256(point: &[u8]) -> Self {
        RawKey::P256 {
            point: point.to_vec(),
            spki_der: p256_spki_der(point),
        }
    }
}

/// DER SubjectPublicKeyInfo prefix for an uncompressed P-256 point:
/// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 0x00 || point }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The SPKI DER of an uncompressed P-256 point (0x04 || x || y).
pub fn p256_spki_der(point: &[u8]) -> Vec<u8> {
    let mut der = Vec::with_capacity(P256_SPKI_PREFIX.len() + point.len());
    der.extend_from_slice(&P256_SPKI_PREFIX);
    der.extend_from_slice(point);
    der
}

/// Why a whole JWKS document was refused. The caller keeps its last good set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("JWKS is not a JSON object with a \"keys\" array: {0}")]
    NotJwks(String),
    #[error("JWKS has no usable signing key ({skipped} skipped)")]
    NoUsableKeys { skipped: usize },
}

/// Why one key of a set was left out. Reported, never dropped silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("it has no kid")]
    MissingKid,
    #[error("its \"use\" is {0:?}, not \"sig\"")]
    NotForSignatures(String),
    #[error("kty {kty:?} crv {crv:?} alg {alg:?} is not supported")]
    Unsupported {
        kty: String,
        crv: Option<String>,
        alg: Option<String>,
    },
    #[error("its kid repeats an earlier key")]
    DuplicateKid,
    #[error("its key material is invalid: {0}")]
    InvalidMaterial(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Index in the document's `keys` array.
    pub index: usize,
    pub kid: Option<String>,
    pub reason: SkipReason,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(
                f,
                "key #{} (kid {kid:?}) skipped: {}",
                self.index, self.reason
            ),
            None => write!(f, "key #{} skipped: {}", self.index, self.reason),
        }
    }
}

/// Verification keys by `kid`. Immutable once built.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

/// Largest JWKS document accepted by default: far above any real key set.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    // RSA's; read only with the rs256 feature.
    #[cfg_attr(not(feature = "rs256"), allow(dead_code))]
    n: Option<String>,
    #[cfg_attr(not(feature = "rs256"), allow(dead_code))]
    e: Option<String>,
}

impl KeySet {
    /// Parse a JWKS document. Unusable keys are skipped and returned, so the
    /// caller can log them; a set with no usable key at all is an error.
    pub fn from_jwks_json(bytes: &[u8]) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
        Self::from_jwks_json_limited(bytes, DEFAULT_MAX_JWKS_BYTES)
    }

    pub fn from_jwks_json_limited(
        bytes: &[u8],
        max: usize,
    ) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
        if bytes.len() > max {
            return Err(JwksError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        let doc: JwksDoc =
            serde_json::from_slice(bytes).map_err(|e| JwksError::NotJwks(e.to_string()))?;
        let mut keys = HashMap::with_capacity(doc.keys.len());
        let mut skipped = Vec::new();
        for (index, value) in doc.keys.into_iter().enumerate() {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            let parsed = serde_json::from_value::<Jwk>(value)
                .map_err(|_| SkipReason::InvalidMaterial("not a JWK object"))
                .and_then(parse_jwk);
            match parsed {
                Ok(key) if keys.contains_key(&key.kid) => skipped.push(SkippedKey {
                    index,
                    kid,
                    reason: SkipReason::DuplicateKid,
                }),
                Ok(key) => {
                    keys.insert(key.kid.clone(), key);
                }
                Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                skipped: skipped.len(),
            });
        }
        Ok((KeySet { keys }, skipped))
    }

    /// Build a set from keys already in hand (ext-authz's own public keys).
    pub fn from_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> KeySet {
        KeySet {
            keys: keys.into_iter().map(|k| (k.kid.clone(), k)).collect(),
        }
    }

    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Key ids, sorted, for logs.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

fn b64(field: &Option<String>, what: &'static str) -> Result<Vec<u8>, SkipReason> {
    let s = field.as_deref().ok_or(SkipReason::InvalidMaterial(what))?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| SkipReason::InvalidMaterial(what))
}

fn parse_jwk(jwk: Jwk) -> Result<VerifyingKey, SkipReason> {
    if let Some(u) = &jwk.use_
        && u != "sig"
    {
        return Err(SkipReason::NotForSignatures(u.clone()));
    }
    let kid = match jwk.kid.as_deref() {
        Some(k) if !k.is_empty() => k.to_owned(),
        _ => return Err(SkipReason::MissingKid),
    };
    let unsupported = || SkipReason::Unsupported {
        kty: jwk.kty.clone(),
        crv: jwk.crv.clone(),
        alg: jwk.alg.clone(),
    };
    let alg_is = |want: &[&str]| jwk.alg.as_deref().is_none_or(|a| want.contains(&a));
    let (alg, material, raw) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some("P-256")) if alg_is(&["ES256"]) => {
            let x = b64(&jwk.x, "EC x is not base64url")?;
            let y = b64(&jwk.y, "EC y is not base64url")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(SkipReason::InvalidMaterial(
                    "EC P-256 coordinates are not 32 bytes",
                ));
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let pk = ES256PublicKey::from_bytes(&point)
                .map_err(|_| SkipReason::InvalidMaterial("EC point is not on P-256"))?;
            (
                Algorithm::ES256,
                KeyMaterial::Es256(pk),
                RawKey::p256(&point),
            )
        }
        #[cfg(feature = "rs256")]
        ("RSA", _) if alg_is(&["RS256"]) => {
            let n = b64(&jwk.n, "RSA n is not base64url")?;
            let e = b64(&jwk.e, "RSA e is not base64url")?;
            let pk = RS256PublicKey::from_components(&n, &e).map_err(|_| {
                SkipReason::InvalidMaterial("RSA modulus must be 2048-4096 bits, exponent 65537")
            })?;
            (
                Algorithm::RS256,
                KeyMaterial::Rs256(Box::new(pk)),
                RawKey::Rsa { n, e },
            )
        }
        #[cfg(feature = "eddsa")]
        ("OKP", Some("Ed25519")) if alg_is(&["EdDSA", "Ed25519"]) => {
            let x = b64(&jwk.x, "OKP x is not base64url")?;
            let pk = Ed25519PublicKey::from_bytes(&x)
                .map_err(|_| SkipReason::InvalidMaterial("Ed25519 key is not 32 valid bytes"))?;
            (
                Algorithm::EdDSA,
                KeyMaterial::EdDsa(pk),
                RawKey::Ed25519 { x },
            )
        }
        _ => return Err(unsupported()),
    };
    Ok(VerifyingKey {
        kid,
        alg,
        material,
        raw,
    })
}

/// The RFC 7638 thumbprint of an EC P-256 public key, given its affine
/// coordinates: base64url(SHA-256 of the canonical JWK members).
pub fn ec_p256_thumbprint(x: &[u8], y: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The public JWK of an EC P-256 key, as published in a JWKS.
pub fn ec_p256_jwk(kid: &str, x: &[u8], y: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    })
}

#[cfg(test)]
mod tests;

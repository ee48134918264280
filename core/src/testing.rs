//! Test keys and token minting, for this crate's tests and others'. Tokens
//! are built by hand so tests can also make the broken ones an attacker would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::ES256KeyPair;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

use crate::jwks::{ec_p256_jwk, ec_p256_thumbprint};

/// A P-256 signing key with its RFC 7638 `kid`.
#[derive(Clone)]
pub struct TestKey {
    signing: SigningKey,
    pub kid: String,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl TestKey {
    pub fn generate() -> Self {
        let pair = ES256KeyPair::generate();
        Self::from_pair(&pair)
    }

    /// A key from a PKCS#8 PEM (`openssl pkcs8 -topk8 -nocrypt` output).
    pub fn from_pem(pem: &str) -> Option<Self> {
        ES256KeyPair::from_pem(pem)
            .ok()
            .map(|p| Self::from_pair(&p))
    }

    fn from_pair(pair: &ES256KeyPair) -> Self {
        let signing = SigningKey::from_slice(&pair.to_bytes()).expect("a P-256 scalar");
        let point = signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let (x, y) = (bytes[1..33].to_vec(), bytes[33..65].to_vec());
        TestKey {
            signing,
            kid: ec_p256_thumbprint(&x, &y),
            x,
            y,
        }
    }

    /// The private key as `openssl ecparam -name prime256v1 -genkey` writes
    /// it: an `EC PARAMETERS` block, then a SEC1 `EC PRIVATE KEY`.
    pub fn sec1_pem(&self) -> String {
        use p256::pkcs8::LineEnding;
        let secret = p256::SecretKey::from(self.signing.as_nonzero_scalar());
        let sec1 = secret
            .to_sec1_pem(LineEnding::LF)
            .expect("a P-256 key encodes");
        format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            &*sec1
        )
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.to_owned();
        self
    }

    pub fn jwk(&self) -> Value {
        ec_p256_jwk(&self.kid, &self.x, &self.y)
    }

    /// The raw public point, 0x04 || x || y.
    pub fn public_sec1(&self) -> Vec<u8> {
        let mut v = vec![4u8];
        v.extend_from_slice(&self.x);
        v.extend_from_slice(&self.y);
        v
    }

    /// Sign an arbitrary header and payload: `b64(h).b64(p).b64(sig)`.
    pub fn sign_raw(&self, header: &Value, payload: &Value) -> String {
        self.sign_bytes(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        )
    }

    /// Sign header and payload bytes as they are, valid JSON or not.
    pub fn sign_bytes(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig: Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// A well-formed ES256 token with our `kid` and `typ: JWT`.
    pub fn sign(&self, payload: &Value) -> String {
        self.sign_raw(
            &json!({"alg": "ES256", "typ": "JWT", "kid": self.kid}),
            payload,
        )
    }
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

pub fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
}

/// Function-token claims as ext-authz issues them.
pub fn function_claims(issuer: &str, now: u64, ttl: u64, permissions: &[&str]) -> Value {
    json!({
        "iss": issuer,
        "sub": "fed:test-user",
        "aud": [issuer],
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": format!("test-{now}-{}", permissions.join("+")),
        "function": {"permissions": permissions},
    })
}

/// API-token claims: no `function` claim.
pub fn api_claims(issuer: &str, now: u64, ttl: u64) -> Value {
    json!({
        "iss": issuer,
        "sub": "fed:test-user",
        "aud": [issuer],
        "iat": now,
        "exp": now + ttl,
        "jti": "api-1",
        "fed:iss": "https://idp.example.com",
        "policy": ["admin"],
    })
}

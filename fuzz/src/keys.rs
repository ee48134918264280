//! The fixed keys, issuers and clock every target verifies against. Fixed
//! so that the tokens in a committed corpus keep their valid signatures
//! from one run to the next. Test keys, trusted nowhere else; made with
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`,
//! `openssl genpkey -algorithm ED25519` and
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::ES256KeyPair;
use mesh_auth_core::jwks::{Algorithm, KeySet, ec_p256_jwk};
use mesh_auth_core::verify::Validation;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

pub const ES256_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJ7asEL9WLva31aRm\nkDvebMPO/CUTHNSj2wt5ctOUuBChRANCAASIwi4ojyTr6uDJdZ7MA+jvQkhlrY1Z\nSzZOLsLdnnFYuZ0nCT5dfIicqHLgf0/KsApSzXGmQD5b2nRS3Gi2ALzI\n-----END PRIVATE KEY-----";
pub const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID5PgHLp1w0SkiSA0jIoX41s5DUGZOOKPMIhHv4LVSf1\n-----END PRIVATE KEY-----";
pub const RS256_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCz4XhBjanXnG5P\nPiD7VsJJGUogkDbargsGox0h5PffPd/Uqc2tqtAcV1aGPTtrV+W7JJT/TiOrxoOx\nGCjhYt6B8rTrFPWHovYjGk05XUQiVKBf+VINJu6RJuMIl2GKVoX9dwRBgBhBS9j4\nUnReD3q4RIq2ZZbgDZW2veMlhrsR0KJJkRAoLUnOvX0RwY4UrXalzjWH1VngZ2tD\nYBvBaqm5JT4D8+2zEsyT18rt67A7zEYceC66tAWRh016dQbbkT0/+O3sFWTtgFaG\nL3NeZXLVM3aDwhB8znAseiOg1ljw3K7uN+56PolokA7U1y2qeB3W6OPyo4oxm9JF\nA9S3BXJfAgMBAAECggEABtCtELbAT5Xyq/frofoohEJ8B33PRju/2TGG4gjdx0x9\n1X3VeBX3qos4kP9y5989qfh52K5qNZDg3m3O5rMrQPskFaAGqWvoLW5KrLi24yIX\nrWsxy6PE+CTkByhNHsOmcfL3a0/iG183Sjk9hW7KtH6MTtrMe5KoMHNDTuGq5sLT\nkH604J/VAr+PXlpfDVYypXrhddgTf4wofA9+ejpc7m6wSkc5maf8H2btfzDw2x0d\n0qBrUpG3wyxT2a+PKsfp6wzwejkdhiQVDPJ/np0e0kinWehKISSYc3P+qiuUXBgo\nkBjD/mCVV19jFxluCNX+OwKgixZgaUQEcLbL8HOsgQKBgQDWxPnxEGCdthrP8sOG\nFZ8plw4sAmD3pdcF4Z/8A5JVNtGVRAggY2L/YMJ9YzAvLe22hf+rsmlMnxDbeDm8\nWemBInoCv2VBOlNdRDt5QyWsMO2bredLizn6CYggVopbwA2MJu4jSyn+JYu5eYPh\nzMA4XSk8CJC8HRS9Zf82FzGdnwKBgQDWadv0YAAN4Ru0c0CyJKl4SknJUVVQoyTb\nuCbB2FvEf3qo9ZVqcxfada5rHqMq2yWAQJAGLZw9wKfUDnVaJIvtteTUyO2dIGZ7\n/JzMUWdszIlSEMMnxeS3Spfj7jPPCPVr9DTa1y26y8HJFtAI7RPbD+DmhrE4T6nb\nXlLOVaJzQQKBgFlQNPjQ7LzpXCEaPcFnAHeVP+mBW73hE5h4icWN3q7dSy8dyZte\neW7mWDs4onMcUHzVIMvQOAYLKEF8r9XqNjbjlYXK/lqv3LcuhuUYzXPcLRPOsB80\nWPnoONnp40PgjEG6dtHqkh4EkySgqf2e3lkSNPGoRjhUh6lz3zwpTRLVAoGAdkyb\n5h4diYrdHVfFp0RhGJRsV53/Y2lQCcZ149f68dSgGZ6+HKh5zbfGTyXtQtT8wOFe\nVXpOzSeBsZd0mhK1/aaxJdHigCIDSX9cB8MWPEoxrcy/0C74fUSzvzeK8DzyI+ju\nTJwSiBCpz8g9ad9caC4/mRFRsE8L2ZQWPe+znMECgYASgDPuTDinewYOZ5LeT/ER\ns3Ratgn7mekTlaGphOPcPRQ4KNmqkfWK2Vc8NpSwhQ2BbM29Ri/31mUsyNyLSqR8\n9jWH3PgRPHV3MviRU07a2O6TPvAA42mS9Rv/d7vqKw6xbX1pwBvBvmj/UuUKxmNs\nQdBwIcgbu+6Z8q+lwqx+SA==\n-----END PRIVATE KEY-----";

/// `kid`s of the keys above in [`jwks`].
pub const ES256_KID: &str = "es256-a";
pub const ED25519_KID: &str = "ed25519-a";
pub const RS256_KID: &str = "rs256-a";

/// The clock every target runs at (2023-11-14T22:13:20Z).
pub const NOW: u64 = 1_700_000_000;
pub const LEEWAY: u64 = 30;
/// ext-authz's cap on subject tokens.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
pub const ISSUERS: [&str; 2] = ["https://gateway.example.com", "https://idp.example.com"];
pub const AUDIENCES: [&str; 2] = ["https://gateway.example.com", "openfaas"];

pub struct Keys {
    pub es256: SigningKey,
    pub ed25519: Ed25519KeyPair,
    pub rs256: RsaKeyPair,
    /// The public JWKS of the three.
    pub jwks: String,
    pub set: KeySet,
    pub validation: Validation,
}

/// Built once per process: key parsing costs more than most inputs.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(build)
}

fn build() -> Keys {
    let es = ES256KeyPair::from_pem(ES256_PEM).expect("ES256 test key");
    let es256 = SigningKey::from_slice(&es.to_bytes()).expect("a P-256 scalar");
    let point = es256.verifying_key().to_sec1_point(false);
    let point = point.as_bytes();
    let (x, y) = (&point[1..33], &point[33..65]);
    let ed25519 =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pem_der(ED25519_PEM)).expect("Ed25519 key");
    let rs256 = RsaKeyPair::from_pkcs8(&pem_der(RS256_PEM)).expect("RSA key");
    let rsa = RsaPublicKeyComponents::<Vec<u8>>::from(rs256.public());
    let jwks = json!({"keys": [
        ec_p256_jwk(ES256_KID, x, y),
        {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": ED25519_KID,
         "x": URL_SAFE_NO_PAD.encode(ed25519.public_key().as_ref())},
        {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": RS256_KID,
         "n": URL_SAFE_NO_PAD.encode(&rsa.n), "e": URL_SAFE_NO_PAD.encode(&rsa.e)},
    ]})
    .to_string();
    let (set, skipped) = KeySet::from_jwks_json(jwks.as_bytes()).expect("the test JWKS parses");
    assert!(skipped.is_empty(), "test keys skipped: {skipped:?}");
    let validation = Validation::new(ISSUERS, AUDIENCES)
        .expect("issuers and audiences")
        .with_leeway(LEEWAY)
        .with_max_token_bytes(MAX_TOKEN_BYTES)
        .expect("a sane cap");
    Keys {
        es256,
        ed25519,
        rs256,
        jwks,
        set,
        validation,
    }
}

/// `b64(header).b64(payload).b64(ES256 signature)` over raw bytes, so a
/// target can sign headers and payloads that are not even JSON.
pub fn sign_es256_raw(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig: p256::ecdsa::Signature = keys().es256.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// The header of an ES256 token under our key.
pub fn es256_header_json() -> Value {
    json!({"alg": "ES256", "typ": "JWT", "kid": ES256_KID})
}

/// The `kid` our key of `alg` has in [`Keys::jwks`].
pub fn kid_of(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => ES256_KID,
        Algorithm::RS256 => RS256_KID,
        Algorithm::EdDSA => ED25519_KID,
    }
}

/// The signature segment of a token our `alg` key signed (over `{}`):
/// the right length and shape for that key, valid over nothing else.
pub fn sample_signature(alg: Algorithm) -> &'static str {
    static SIGS: OnceLock<[String; 3]> = OnceLock::new();
    let sigs = SIGS.get_or_init(|| {
        let last = |alg| {
            let t = sign_with(alg, &json!({}));
            t.rsplit('.').next().unwrap_or_default().to_owned()
        };
        [
            last(Algorithm::ES256),
            last(Algorithm::RS256),
            last(Algorithm::EdDSA),
        ]
    });
    match alg {
        Algorithm::ES256 => &sigs[0],
        Algorithm::RS256 => &sigs[1],
        Algorithm::EdDSA => &sigs[2],
    }
}

/// A token our `alg` key signs over `claims`, with its `kid`, as an IdP
/// would make one.
pub fn sign_with(alg: Algorithm, claims: &Value) -> String {
    let header = json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid_of(alg)});
    let (header, claims) = (header.to_string(), claims.to_string());
    if alg == Algorithm::ES256 {
        return sign_es256_raw(header.as_bytes(), claims.as_bytes());
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let k = keys();
    let sig = if alg == Algorithm::RS256 {
        let mut sig = vec![0; k.rs256.public().modulus_len()];
        k.rs256
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RS256 signs");
        sig
    } else {
        k.ed25519.sign(input.as_bytes()).as_ref().to_vec()
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The DER inside a one-block PEM.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM base64")
}

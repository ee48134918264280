//! ES256 signing keys from PEM files, as a Kubernetes Secret mounts them.
//!
//! Every `*.pem` (or `*.key`) file in the key directory is a P-256 private
//! key, SEC1 (`openssl ecparam -name prime256v1 -genkey`) or PKCS#8, and
//! `kid` is its RFC 7638 thumbprint. Which key signs when, and how long a
//! key stays published, is [`KeyRing`]'s job: publish before you sign.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{ES256PublicKey, JWTClaims};
use mesh_auth_core::jwks::{
    Algorithm, KeyMaterial, RawKey, VerifyingKey, ec_p256_jwk, ec_p256_thumbprint,
};
use p256::pkcs8::DecodePrivateKey as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key directory {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {problem}")]
    Parse {
        file: PathBuf,
        problem: &'static str,
    },
    #[error("no signing key (*.pem) in {0}")]
    NoKeys(PathBuf),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// One P-256 key pair. Signing is ring's (native, constant-time).
pub struct SigningKey {
    pub kid: String,
    pub file: PathBuf,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// `base64url({"alg":"ES256","typ":"JWT","kid":...})`, the same for
    /// every token this key signs.
    header_b64: String,
    x: Vec<u8>,
    y: Vec<u8>,
    /// Latest `exp` of any token this key signed, for retiring it.
    last_exp: AtomicU64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("file", &self.file)
            .finish()
    }
}

impl SigningKey {
    pub fn from_pem(file: &Path, pem: &str) -> Result<Self, KeyError> {
        let bad = |problem| KeyError::Parse {
            file: file.to_owned(),
            problem,
        };
        let secret = match (
            pem_block(pem, "EC PRIVATE KEY"),
            pem_block(pem, "PRIVATE KEY"),
        ) {
            (Some(der), _) => p256::SecretKey::from_sec1_der(&der)
                .map_err(|_| bad("EC PRIVATE KEY is not a P-256 (prime256v1) key"))?,
            (None, Some(der)) => p256::SecretKey::from_pkcs8_der(&der)
                .map_err(|_| bad("PRIVATE KEY is not a PKCS#8 P-256 (prime256v1) key"))?,
            (None, None) => return Err(bad("no \"EC PRIVATE KEY\" or \"PRIVATE KEY\" PEM block")),
        };
        let scalar = secret.to_bytes();
        Self::from_scalar(file, scalar.as_slice())
    }

    fn from_scalar(file: &Path, scalar: &[u8]) -> Result<Self, KeyError> {
        let invalid = || KeyError::Parse {
            file: file.to_owned(),
            problem: "invalid P-256 scalar",
        };
        let point = p256::ecdsa::SigningKey::from_slice(scalar)
            .map_err(|_| invalid())?
            .verifying_key()
            .to_sec1_point(false);
        let bytes = point.as_bytes();
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            bytes,
            &rng,
        )
        .map_err(|_| invalid())?;
        let (x, y) = (bytes[1..33].to_vec(), bytes[33..65].to_vec());
        let kid = ec_p256_thumbprint(&x, &y);
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(SigningKey {
            kid,
            file: file.to_owned(),
            pair,
            rng,
            header_b64,
            x,
            y,
            last_exp: AtomicU64::new(0),
        })
    }

    pub fn jwk(&self) -> Value {
        ec_p256_jwk(&self.kid, &self.x, &self.y)
    }

    pub(crate) fn verifying_key(&self) -> Option<VerifyingKey> {
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(&self.x);
        point.extend_from_slice(&self.y);
        let pk = ES256PublicKey::from_bytes(&point).ok()?;
        Some(VerifyingKey {
            kid: self.kid.clone(),
            alg: Algorithm::ES256,
            material: KeyMaterial::Es256(pk),
            raw: RawKey::p256(&point),
        })
    }

    /// Sign claims as a compact JWS with `alg: ES256`, `typ: JWT` and our kid.
    pub fn sign<C: Serialize>(&self, claims: JWTClaims<C>) -> Result<String, KeyError> {
        if let Some(exp) = claims.expires_at {
            self.last_exp.fetch_max(exp.as_secs(), Ordering::Relaxed);
        }
        let payload = serde_json::to_vec(&claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self
            .pair
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| KeyError::Sign("ECDSA signing failed".into()))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }

    pub fn last_exp(&self) -> u64 {
        self.last_exp.load(Ordering::Relaxed)
    }
}

/// The body of the first PEM block with this label.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

/// Read every key file in `dir`, sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<SigningKey>, KeyError> {
    let files =
        crate::dir_fingerprint::read_files(dir, |n| n.ends_with(".pem") || n.ends_with(".key"))
            .map_err(|source| KeyError::ReadDir {
                dir: dir.to_owned(),
                source,
            })?;
    if files.is_empty() {
        return Err(KeyError::NoKeys(dir.to_owned()));
    }
    files
        .into_iter()
        .map(|(file, bytes)| {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            not_before_of(&name).map_err(|problem| KeyError::Parse {
                file: file.clone(),
                problem,
            })?;
            let pem = String::from_utf8(bytes).map_err(|_| KeyError::Parse {
                file: file.clone(),
                problem: "not a PEM text file",
            })?;
            SigningKey::from_pem(&file, &pem)
        })
        .collect()
}

mod keyring;
pub use keyring::{KeyRing, Retirement, not_before_of};

#[cfg(test)]
mod tests;

/// How keys are scheduled: see [`KeyRing`].
#[derive(Debug, Clone, Copy)]
pub struct KeySettings {
    /// Clock leeway verifiers allow past `exp`, in seconds.
    pub leeway: u64,
    /// A key added while running signs no sooner than this after it was
    /// first seen, whatever its name says: every replica and every filter
    /// must have fetched it first.
    pub publish_delay: std::time::Duration,
}

/// The live key ring, reloaded when the key directory changes. A change
/// that does not load (a bad file, an empty directory) is logged with the
/// file at fault and ignored: the last good ring keeps signing.
pub struct KeyStore {
    dir: PathBuf,
    ring: std::sync::RwLock<Arc<KeyRing>>,
    tracker: std::sync::Mutex<crate::dir_fingerprint::ChangeTracker>,
    settings: KeySettings,
    /// The signing kid last logged, to log each switch once.
    signing: std::sync::Mutex<String>,
}

impl KeyStore {
    /// Load at startup: any error is fatal.
    pub fn open(dir: &Path, settings: KeySettings, now: u64) -> Result<Self, KeyError> {
        let print = key_fingerprint(dir)?;
        let ring = KeyRing::new(load_dir(dir)?).ok_or_else(|| KeyError::NoKeys(dir.to_owned()))?;
        let signing = ring.active(now).kid.clone();
        Ok(KeyStore {
            dir: dir.to_owned(),
            ring: std::sync::RwLock::new(Arc::new(ring)),
            tracker: std::sync::Mutex::new(crate::dir_fingerprint::ChangeTracker::new(print)),
            settings,
            signing: std::sync::Mutex::new(signing),
        })
    }

    pub fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reload if the directory changed; true when a new ring took effect.
    /// `max_lifetime` is the longest token lifetime we issue: a key that
    /// leaves the directory stays published that long after it stopped
    /// signing, for tokens other replicas signed with it.
    pub fn reload(&self, now: u64, max_lifetime: u64) -> bool {
        let print = match key_fingerprint(&self.dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("signing keys: {e}; keeping the current keys");
                return false;
            }
        };
        let changed = self
            .tracker
            .lock()
            .map(|mut t| t.changed(print))
            .unwrap_or(true);
        if !changed {
            return false;
        }
        let next = load_dir(&self.dir).and_then(|keys| {
            let retire = Retirement {
                leeway: self.settings.leeway,
                max_lifetime,
            };
            self.current()
                .rotate(keys, now, self.settings.publish_delay.as_secs(), retire)
                .ok_or_else(|| KeyError::NoKeys(self.dir.clone()))
        });
        match next {
            Ok(ring) => {
                tracing::info!(
                    signing = %ring.active(now).kid,
                    published = ?ring.kids(now),
                    schedule = %ring.schedule(now),
                    "signing keys reloaded"
                );
                if let Ok(mut r) = self.ring.write() {
                    *r = Arc::new(ring);
                }
                self.tick(now);
                true
            }
            Err(e) => {
                tracing::error!("signing key change rejected; keeping the current keys: {e}");
                false
            }
        }
    }

    /// Time passing without a directory change: a scheduled key starts
    /// signing (logged once), and retired keys whose last token has expired
    /// are forgotten.
    pub fn tick(&self, now: u64) {
        let ring = self.current();
        let kid = &ring.active(now).kid;
        if let Ok(mut last) = self.signing.lock()
            && *last != *kid
        {
            tracing::info!(signing = %kid, previous = %last, "signing with a new key");
            *last = kid.clone();
        }
        if let Some(pruned) = ring.without_expired(now)
            && let Ok(mut w) = self.ring.write()
        {
            *w = Arc::new(pruned);
        }
    }
}

fn key_fingerprint(dir: &Path) -> Result<[u8; 32], KeyError> {
    crate::dir_fingerprint::read_files(dir, |n| n.ends_with(".pem") || n.ends_with(".key"))
        .map(|files| crate::dir_fingerprint::fingerprint(&files))
        .map_err(|source| KeyError::ReadDir {
            dir: dir.to_owned(),
            source,
        })
}

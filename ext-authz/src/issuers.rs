//! Trusted external issuers (JwtIssuer objects): OIDC discovery, their JWKS,
//! and verification of the subject tokens they sign.
//!
//! Keys are fetched on first use from `<iss or issInternal>/.well-known/
//! openid-configuration` → `jwks_uri`, refreshed when older than `refresh`,
//! refetched when a token names an unknown `kid` (at most once per
//! `min_refetch`), and never used when older than `max_stale`: a key the
//! IdP has withdrawn must not live on forever because the IdP went quiet.
//! If a refresh fails, the cached keys serve until `max_stale`. One fetch
//! at a time per issuer, however many requests wait on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use mesh_auth_core::iam::JwtIssuer;
use mesh_auth_core::jwks::KeySet;
use mesh_auth_core::verify::{TokenError, Validation, Verified, verify_with};

use crate::crypto::RingSignatures;
use serde_json::{Map, Value};

use crate::fetch::{FetchError, HttpFetcher};

/// A subject token's full claims, as the IAM engine reads them.
pub type ClaimMap = Map<String, Value>;

#[derive(Debug, Clone, Copy)]
pub struct IssuerSettings {
    pub refresh: Duration,
    pub min_refetch: Duration,
    pub max_stale: Duration,
    pub leeway_seconds: u64,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        IssuerSettings {
            refresh: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            leeway_seconds: 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("discovery document at {url} has no jwks_uri")]
    NoJwksUri { url: String },
    #[error("discovery document at {url} names issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("JWKS at {url}: {source}")]
    Jwks {
        url: String,
        #[source]
        source: mesh_auth_core::JwksError,
    },
}

/// Why a subject token from an external issuer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// The IdP could not be reached or answered nonsense, and we hold no
    /// usable keys for it.
    #[error("identity provider {iss} is unavailable: {source}")]
    Unavailable {
        iss: String,
        #[source]
        source: DiscoveryError,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
}

struct Cached {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

#[derive(Default)]
struct Entry {
    cached: RwLock<Option<Arc<Cached>>>,
    /// Last fetch of any kind: a down IdP is not retried on every request.
    last_attempt: Mutex<Option<Instant>>,
    /// Last refetch caused by an unknown `kid`: the rate limit applies to
    /// these only, so a rotation right after the first fetch still works.
    last_kid_refetch: Mutex<Option<Instant>>,
    fetch_lock: tokio::sync::Mutex<()>,
}

fn elapsed_since(slot: &Mutex<Option<Instant>>, min: Duration) -> bool {
    slot.lock()
        .map(|t| t.is_none_or(|t| t.elapsed() >= min))
        .unwrap_or(true)
}

impl Entry {
    fn cached(&self) -> Option<Arc<Cached>> {
        self.cached.read().ok().and_then(|c| c.clone())
    }

    fn may_retry(&self, min: Duration) -> bool {
        elapsed_since(&self.last_attempt, min)
    }

    /// Claim the right to an unknown-kid refetch, if the rate limit allows.
    fn claim_kid_refetch(&self, min: Duration) -> bool {
        match self.last_kid_refetch.lock() {
            Ok(mut t) if t.is_none_or(|t| t.elapsed() >= min) => {
                *t = Some(Instant::now());
                true
            }
            Ok(_) => false,
            Err(_) => true,
        }
    }
}

pub struct Issuers {
    fetcher: HttpFetcher,
    settings: IssuerSettings,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl Issuers {
    pub fn new(fetcher: HttpFetcher, settings: IssuerSettings) -> Self {
        Issuers {
            fetcher,
            settings,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, iss: &str) -> Arc<Entry> {
        match self.entries.lock() {
            Ok(mut map) => map.entry(iss.to_owned()).or_default().clone(),
            // A poisoned map only means another thread panicked mid-insert;
            // a fresh entry is always safe.
            Err(_) => Arc::new(Entry::default()),
        }
    }

    /// Verify `token` as issued by `issuer`: signature with its current
    /// keys, `iss`, `aud` against the JwtIssuer's `aud`, `exp`/`nbf`/`iat`.
    pub async fn verify(
        &self,
        issuer: &JwtIssuer,
        token: &str,
        now: u64,
    ) -> Result<Verified<ClaimMap>, SubjectError> {
        let validation = Validation::new([issuer.iss()], issuer.aud().iter().cloned())
            .map_err(|_| TokenError::WrongAudience)?
            .with_leeway(self.settings.leeway_seconds);
        let entry = self.entry(issuer.iss());
        let keys = self.keys(issuer, &entry).await?;
        match verify_with::<ClaimMap>(token, &keys, &validation, now, &RingSignatures) {
            Err(TokenError::UnknownKid(kid))
                if entry.claim_kid_refetch(self.settings.min_refetch) =>
            {
                tracing::info!(
                    iss = issuer.iss(),
                    kid,
                    "subject token names an unknown kid; refetching the issuer's keys"
                );
                let seen = entry.cached().map(|c| c.fetched_at);
                // With the IdP down the kid cannot be checked either way:
                // that is "try again later", not "bad token".
                let keys = self.refresh(issuer, &entry, seen).await.map_err(|source| {
                    SubjectError::Unavailable {
                        iss: issuer.iss().to_owned(),
                        source,
                    }
                })?;
                Ok(verify_with::<ClaimMap>(
                    token,
                    &keys,
                    &validation,
                    now,
                    &RingSignatures,
                )?)
            }
            other => Ok(other?),
        }
    }

    /// Usable keys: cached if fresh, else refreshed; stale-but-bounded keys
    /// cover a failed refresh.
    async fn keys(&self, issuer: &JwtIssuer, entry: &Entry) -> Result<Arc<KeySet>, SubjectError> {
        let s = self.settings;
        let cached = entry
            .cached()
            .filter(|c| c.fetched_at.elapsed() < s.max_stale);
        match cached {
            Some(c) if c.fetched_at.elapsed() < s.refresh => Ok(c.keys.clone()),
            Some(c) if !entry.may_retry(s.min_refetch) => Ok(c.keys.clone()),
            Some(c) => match self.refresh(issuer, entry, Some(c.fetched_at)).await {
                Ok(keys) => Ok(keys),
                Err(e) => {
                    tracing::warn!(iss = issuer.iss(), error = %e, "issuer key refresh failed; using cached keys");
                    Ok(c.keys.clone())
                }
            },
            None => self.refresh(issuer, entry, None).await.map_err(|source| {
                SubjectError::Unavailable {
                    iss: issuer.iss().to_owned(),
                    source,
                }
            }),
        }
    }

    /// Fetch once, even when many callers ask at the same time: whoever
    /// waited for the lock finds the keys a peer just fetched.
    async fn refresh(
        &self,
        issuer: &JwtIssuer,
        entry: &Entry,
        seen: Option<Instant>,
    ) -> Result<Arc<KeySet>, DiscoveryError> {
        let _guard = entry.fetch_lock.lock().await;
        if let Some(c) = entry.cached()
            && seen.is_none_or(|s| c.fetched_at > s)
        {
            return Ok(c.keys.clone());
        }
        if let Ok(mut t) = entry.last_attempt.lock() {
            *t = Some(Instant::now());
        }
        let keys = Arc::new(self.fetch(issuer).await?);
        tracing::info!(iss = issuer.iss(), kids = ?keys.kids(), "fetched issuer keys");
        if let Ok(mut c) = entry.cached.write() {
            *c = Some(Arc::new(Cached {
                keys: keys.clone(),
                fetched_at: Instant::now(),
            }));
        }
        Ok(keys)
    }

    async fn fetch(&self, issuer: &JwtIssuer) -> Result<KeySet, DiscoveryError> {
        let base = issuer.discovery_base().trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let doc = self.fetcher.get_json(&url).await?;
        let found = doc
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if found != issuer.iss() {
            return Err(DiscoveryError::IssuerMismatch {
                url,
                expected: issuer.iss().to_owned(),
                found: found.to_owned(),
            });
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| DiscoveryError::NoJwksUri { url: url.clone() })?;
        let jwks_uri = internal_jwks_uri(issuer, jwks_uri);
        let jwks = self.fetcher.get_json(&jwks_uri).await?;
        let (set, skipped) =
            KeySet::from_jwks_json(jwks.to_string().as_bytes()).map_err(|source| {
                DiscoveryError::Jwks {
                    url: jwks_uri.clone(),
                    source,
                }
            })?;
        for s in skipped {
            tracing::debug!(iss = issuer.iss(), "{s}");
        }
        Ok(set)
    }
}

/// With `issInternal`, the discovery document still advertises public
/// URLs. A `jwks_uri` on the public issuer's origin is fetched from the
/// internal origin instead; any other `jwks_uri` is used as given.
fn internal_jwks_uri(issuer: &JwtIssuer, jwks_uri: &str) -> String {
    let Some(internal) = issuer.iss_internal() else {
        return jwks_uri.to_owned();
    };
    match (origin(issuer.iss()), origin(internal)) {
        (Some(public), Some(inside)) if jwks_uri.starts_with(public) => {
            format!("{inside}{}", &jwks_uri[public.len()..])
        }
        _ => jwks_uri.to_owned(),
    }
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    Some(&url[..end])
}

#[cfg(test)]
mod tests;

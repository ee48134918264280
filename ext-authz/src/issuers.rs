//! Trusted external issuers (JwtIssuer objects): OIDC discovery, their JWKS,
//! and verification of the subject tokens they sign.
//!
//! Keys are fetched from `<iss or issInternal>/.well-known/
//! openid-configuration` → `jwks_uri`, once per issuer however many
//! exchanges ask, in a task of its own (a client that leaves does not
//! cancel it). What a request waits for, and what it does not:
//!
//! * Cached keys younger than `max_stale` serve at once. When they are older
//!   than `refresh`, a refresh starts in the background.
//! * Keys older than `max_stale` are never used: a key the IdP withdrew must
//!   not live on because the IdP went quiet. The next exchange fetches.
//! * A token naming an unknown `kid` waits for one refetch, at most one per
//!   `min_refetch` (only refetches that reached the IdP count).
//! * After a failed fetch, nothing waits for the IdP: exchanges that need it
//!   fail fast as unavailable, and retries run in the background, backing
//!   off from `retry_min` to `retry_max`. Tokens whose `kid` is cached keep
//!   working throughout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesh_auth_core::iam::JwtIssuer;
use mesh_auth_core::jwks::KeySet;
use mesh_auth_core::verify::{TokenError, Validation, Verified, verify_with};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::fetch::{FetchError, HttpFetcher};
use crate::signatures::RingSignatures;

/// A subject token's full claims, as the IAM engine reads them.
pub type ClaimMap = Map<String, Value>;

/// IdP tokens carrying large `groups` claims are common: twice the cap on
/// our own tokens.
pub const MAX_SUBJECT_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct IssuerSettings {
    pub refresh: Duration,
    pub min_refetch: Duration,
    pub max_stale: Duration,
    pub leeway_seconds: u64,
    /// First retry after a failed fetch; doubles per failure up to
    /// `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        IssuerSettings {
            refresh: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 3600),
            leeway_seconds: 30,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(4),
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
    #[error("the fetch did not finish")]
    Abandoned,
}

/// Why a subject token from an external issuer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// The IdP could not be reached or answered nonsense, and we hold no
    /// usable keys for it (or not the token's key).
    #[error("identity provider {iss} is unavailable: {source}")]
    Unavailable {
        iss: String,
        #[source]
        source: Arc<DiscoveryError>,
    },
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The time the cache runs on; tests move it by hand.
pub trait Monotonic: Send + Sync {
    fn now(&self) -> Instant;
}

/// The process's monotonic clock.
pub struct SystemMonotonic;

impl Monotonic for SystemMonotonic {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Clone)]
struct Cached {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

/// One issuer's keys and fetch state. Locked briefly, never across an
/// await.
#[derive(Default)]
struct State {
    cached: Option<Cached>,
    in_flight: bool,
    /// Consecutive failed fetches, the last one's error, and no fetch
    /// before `retry_at`.
    failures: u32,
    last_error: Option<Arc<DiscoveryError>>,
    retry_at: Option<Instant>,
    /// Last unknown-kid refetch that reached the IdP: the rate limit.
    last_kid_refetch: Option<Instant>,
}

struct Entry {
    state: Mutex<State>,
    /// Bumped when a fetch ends, for those waiting on it.
    done: watch::Sender<u64>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            state: Mutex::new(State::default()),
            done: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    /// The JwtIssuer's `iss`.
    issuer: String,
    /// `ok` or `error`.
    result: &'static str,
}

/// What a request does about the keys.
enum Plan {
    Use(Arc<KeySet>),
    Wait(watch::Receiver<u64>),
    Fail(Arc<DiscoveryError>),
}

pub struct Issuers {
    fetcher: HttpFetcher,
    settings: IssuerSettings,
    clock: Arc<dyn Monotonic>,
    /// By `iss` and where its keys come from.
    entries: Mutex<HashMap<(String, String), Arc<Entry>>>,
    /// Key fetches by issuer and result; shared cells, registered by
    /// [`Issuers::register_metrics`].
    fetches: Family<FetchLabels, Counter>,
}

impl Issuers {
    pub fn new(fetcher: HttpFetcher, settings: IssuerSettings) -> Self {
        Self::with_clock(fetcher, settings, Arc::new(SystemMonotonic))
    }

    pub fn with_clock(
        fetcher: HttpFetcher,
        settings: IssuerSettings,
        clock: Arc<dyn Monotonic>,
    ) -> Self {
        Issuers {
            fetcher,
            settings,
            clock,
            entries: Mutex::new(HashMap::new()),
            fetches: Family::default(),
        }
    }

    /// Count key fetches in `registry`:
    /// `faas_mesh_auth_idp_key_fetches_total{issuer,result}`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "faas_mesh_auth_idp_key_fetches",
            "Identity providers' key fetches (discovery and JWKS), by issuer and result",
            self.fetches.clone(),
        );
    }

    fn entry(&self, issuer: &JwtIssuer) -> Arc<Entry> {
        let key = (issuer.iss().to_owned(), issuer.discovery_base().to_owned());
        match self.entries.lock() {
            Ok(mut map) => map.entry(key).or_default().clone(),
            // Poisoned: another thread panicked mid-insert; a fresh entry
            // is always safe.
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
    ) -> Result<Verified<ClaimMap>, IdpError> {
        let validation = Validation::new([issuer.iss()], issuer.aud().iter().cloned())
            .map_err(|_| TokenError::WrongAudience)?
            .with_leeway(self.settings.leeway_seconds)
            .with_max_token_bytes(MAX_SUBJECT_TOKEN_BYTES)
            .map_err(|_| TokenError::WrongAudience)?;
        let entry = self.entry(issuer);
        let unavailable = |source| IdpError::Unavailable {
            iss: issuer.iss().to_owned(),
            source,
        };
        let plan = self.plan_for_any(issuer, &entry);
        let keys = self
            .settle(issuer, &entry, plan)
            .await
            .map_err(unavailable)?;
        match verify_with::<ClaimMap>(token, &keys, &validation, now, &RingSignatures) {
            Err(TokenError::UnknownKid(kid)) => {
                let Some(plan) = self.plan_for_unknown_kid(issuer, &entry) else {
                    return Err(TokenError::UnknownKid(kid).into());
                };
                tracing::info!(
                    iss = issuer.iss(),
                    kid,
                    "subject token names an unknown kid; refetching the issuer's keys"
                );
                // With the IdP down the kid cannot be checked either way:
                // that is "try again later", not "bad token".
                let keys = self
                    .settle(issuer, &entry, plan)
                    .await
                    .map_err(unavailable)?;
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

    /// Keys for a token whose kid we may know.
    fn plan_for_any(&self, issuer: &JwtIssuer, entry: &Arc<Entry>) -> Plan {
        let s = self.settings;
        let now = self.clock.now();
        let Ok(mut st) = entry.state.lock() else {
            return Plan::Fail(Arc::new(DiscoveryError::Abandoned));
        };
        let usable = st
            .cached
            .clone()
            .filter(|c| now.duration_since(c.fetched_at) < s.max_stale);
        if let Some(c) = usable {
            if now.duration_since(c.fetched_at) >= s.refresh && self.may_start(&st, now) {
                self.start(issuer, entry, &mut st, false);
            }
            return Plan::Use(c.keys);
        }
        self.fetch_or_fail(issuer, entry, &mut st, now, false)
    }

    /// After an unknown kid: a refetch to wait for, or None when the rate
    /// limit says the kid is simply unknown.
    fn plan_for_unknown_kid(&self, issuer: &JwtIssuer, entry: &Arc<Entry>) -> Option<Plan> {
        let now = self.clock.now();
        let Ok(mut st) = entry.state.lock() else {
            return Some(Plan::Fail(Arc::new(DiscoveryError::Abandoned)));
        };
        let budget = st
            .last_kid_refetch
            .is_none_or(|t| now.duration_since(t) >= self.settings.min_refetch);
        // A fetch already under way (or failing) is not the kid's to pay for.
        if !budget && !st.in_flight && st.failures == 0 {
            return None;
        }
        Some(self.fetch_or_fail(issuer, entry, &mut st, now, true))
    }

    /// Wait for a fetch while the IdP is believed healthy; after a failure,
    /// fail fast and let the retry run in the background.
    fn fetch_or_fail(
        &self,
        issuer: &JwtIssuer,
        entry: &Arc<Entry>,
        st: &mut State,
        now: Instant,
        for_kid: bool,
    ) -> Plan {
        if st.failures > 0 {
            if self.may_start(st, now) {
                self.start(issuer, entry, st, for_kid);
            }
            let e = st.last_error.clone();
            return Plan::Fail(e.unwrap_or_else(|| Arc::new(DiscoveryError::Abandoned)));
        }
        // Subscribed under the lock: the fetch cannot end unseen.
        let rx = entry.done.subscribe();
        if !st.in_flight {
            self.start(issuer, entry, st, for_kid);
        }
        Plan::Wait(rx)
    }

    fn may_start(&self, st: &State, now: Instant) -> bool {
        !st.in_flight && st.retry_at.is_none_or(|t| now >= t)
    }

    /// Start a fetch in a task of its own; it records its outcome.
    fn start(&self, issuer: &JwtIssuer, entry: &Arc<Entry>, st: &mut State, for_kid: bool) {
        st.in_flight = true;
        let (fetcher, issuer, entry) = (self.fetcher.clone(), issuer.clone(), entry.clone());
        let (clock, s) = (self.clock.clone(), self.settings);
        let fetches = self.fetches.clone();
        tokio::spawn(async move {
            let result = fetch(&fetcher, &issuer).await;
            let labels = FetchLabels {
                issuer: issuer.iss().to_owned(),
                result: if result.is_ok() { "ok" } else { "error" },
            };
            fetches.get_or_create(&labels).inc();
            let now = clock.now();
            if let Ok(mut st) = entry.state.lock() {
                st.in_flight = false;
                match result {
                    Ok(keys) => {
                        tracing::info!(iss = issuer.iss(), kids = ?keys.kids(), "fetched issuer keys");
                        if st.failures > 0 {
                            tracing::info!(
                                iss = issuer.iss(),
                                failures = st.failures,
                                "identity provider reachable again"
                            );
                        }
                        st.cached = Some(Cached {
                            keys: Arc::new(keys),
                            fetched_at: now,
                        });
                        st.failures = 0;
                        st.last_error = None;
                        st.retry_at = None;
                        if for_kid {
                            st.last_kid_refetch = Some(now);
                        }
                    }
                    Err(e) => {
                        st.failures = st.failures.saturating_add(1);
                        let backoff = s
                            .retry_min
                            .saturating_mul(1 << (st.failures - 1).min(16))
                            .min(s.retry_max.max(s.retry_min));
                        st.retry_at = Some(now + backoff);
                        let kept = match &st.cached {
                            Some(c) if now.duration_since(c.fetched_at) < s.max_stale => {
                                "cached keys keep serving"
                            }
                            _ => "exchanges for it fail until it answers",
                        };
                        tracing::warn!(
                            iss = issuer.iss(),
                            error = %e,
                            failures = st.failures,
                            retry_in = ?backoff,
                            "identity provider key fetch failed; {kept}"
                        );
                        st.last_error = Some(Arc::new(e));
                    }
                }
            }
            entry.done.send_modify(|g| *g += 1);
        });
    }

    /// The keys a plan leads to.
    async fn settle(
        &self,
        issuer: &JwtIssuer,
        entry: &Entry,
        plan: Plan,
    ) -> Result<Arc<KeySet>, Arc<DiscoveryError>> {
        let mut rx = match plan {
            Plan::Use(keys) => return Ok(keys),
            Plan::Fail(e) => return Err(e),
            Plan::Wait(rx) => rx,
        };
        // Two GETs, each bounded by the fetcher's timeout.
        let bound = self.fetcher.timeout() * 2 + Duration::from_secs(1);
        if !matches!(tokio::time::timeout(bound, rx.changed()).await, Ok(Ok(()))) {
            tracing::error!(iss = issuer.iss(), "issuer key fetch never finished");
            return Err(Arc::new(DiscoveryError::Abandoned));
        }
        let now = self.clock.now();
        let st = entry
            .state
            .lock()
            .map_err(|_| Arc::new(DiscoveryError::Abandoned))?;
        match (&st.last_error, &st.cached) {
            (Some(e), _) if st.failures > 0 => Err(e.clone()),
            (_, Some(c)) if now.duration_since(c.fetched_at) < self.settings.max_stale => {
                Ok(c.keys.clone())
            }
            _ => Err(Arc::new(DiscoveryError::Abandoned)),
        }
    }
}

mod discovery;
use discovery::fetch;

#[cfg(test)]
mod tests;

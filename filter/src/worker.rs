//! One root context's state and the per-request state machine. Everything
//! here talks to Envoy only through [`Host`], so it runs under unit tests.
//!
//! A request ends in exactly one place, [`Worker::apply`]: continue, or
//! answer 401/403/503 locally. A request whose token names an unknown `kid`
//! (or that arrives before any keys) may instead wait, paused, for a JWKS
//! fetch; the fetch's completion (or a timeout on the tick) resolves it.

use std::rc::Rc;
use std::sync::Arc;

use mesh_auth_core::bearer::bearer_token;
use mesh_auth_core::claims::GatewayClaims;
use mesh_auth_core::invoke::authorize_invoke;
use mesh_auth_core::jwks::KeySet;
use mesh_auth_core::verify::{TokenError, verify_with};
use mesh_auth_core::{FunctionId, InvokeDenial};

use crate::cache::{Outcome, TokenCache};
use crate::config::{Compiled, Crypto, IdentitySource, KeySource, Mode, RemoteJwks};
use crate::host::{Host, LogLevel};
use crate::keys::{FetchError, FetchResult, SharedState};
use crate::metrics::{Counter, Metrics};
use crate::signatures::{HostSignatures, Native};

/// Headers this filter sets. Stripped from every incoming request first, so
/// a client can never forge them.
pub const SUBJECT_HEADER: &str = "x-faas-mesh-auth-subject";
pub const AUDIT_HEADER: &str = "x-faas-mesh-auth-audit";

/// How often the root context ticks: the latency of noticing another
/// worker's fetch, and of starting an unknown-kid refetch.
pub const TICK_MS: u64 = 100;
/// Paused requests per worker; beyond this they are answered at once. A
/// waiter whose client left stays until its fetch settles or its deadline.
const MAX_WAITERS: usize = 512;
/// Largest JWKS response read from the host.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// What a stream should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// A final answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { subject: Option<Rc<str>> },
    Deny(InvokeDenial),
    Unavailable(Unavailable),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NoKeys,
    NoIdentity,
}

impl Unavailable {
    fn code(self) -> &'static str {
        match self {
            Unavailable::NoKeys => "no_keys",
            Unavailable::NoIdentity => "no_identity",
        }
    }
}

enum Verdict {
    Final(Decision),
    /// Pause until the keys settle: a fetch that starts by `fetch_by_ms`.
    Wait {
        fetch_by_ms: u64,
    },
}

#[derive(Debug)]
struct Waiter {
    context: u32,
    token: String,
    /// The fetch that settles this waiter starts at or after this time.
    fetch_by_ms: u64,
    deadline_ms: u64,
}

pub struct Worker {
    root_context: u32,
    cfg: Rc<Compiled>,
    keys: Option<Arc<KeySet>>,
    /// Version of the shared document `keys` came from.
    key_version: u64,
    /// The shared record as last read.
    shared: SharedState,
    cache: TokenCache,
    waiters: Vec<Waiter>,
    /// Our own JWKS call in flight, if any.
    in_flight: Option<u32>,
    refetch_wanted: bool,
    metrics: Metrics,
    /// Whether the host verifies signatures natively.
    native: std::cell::Cell<Native>,
    /// The host's clock as of the last tick; 0 before the first.
    clock_ms: std::cell::Cell<u64>,
}

impl Worker {
    pub fn new(host: &dyn Host, root_context: u32, cfg: Compiled) -> Self {
        let native = match cfg.crypto {
            Crypto::Wasm => Native::Unavailable,
            Crypto::Auto => Native::Unknown,
        };
        let keys = match &cfg.keys {
            KeySource::Local(set) => Some(set.clone()),
            KeySource::Remote(_) => None,
        };
        let worker = Worker {
            root_context,
            cache: TokenCache::new(cfg.cache_entries),
            cfg: Rc::new(cfg),
            keys,
            key_version: 0,
            shared: SharedState::default(),
            waiters: Vec::new(),
            in_flight: None,
            refetch_wanted: false,
            metrics: Metrics::define(host),
            native: std::cell::Cell::new(native),
            clock_ms: std::cell::Cell::new(0),
        };
        worker.log_startup(host);
        worker.init_shared(host);
        worker
    }

    /// Does this worker need ticks (it fetches keys)?
    fn remote(&self) -> Option<&RemoteJwks> {
        match &self.cfg.keys {
            KeySource::Remote(r) => Some(r),
            KeySource::Local(_) => None,
        }
    }

    fn log_startup(&self, host: &dyn Host) {
        let keys = match &self.cfg.keys {
            KeySource::Local(set) => format!("local_jwks ({} keys)", set.len()),
            KeySource::Remote(r) => format!(
                "cluster {:?} {}{} every {}s",
                r.cluster,
                r.authority,
                r.path,
                r.refresh_ms / 1000
            ),
        };
        let mode = match self.cfg.mode {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        };
        match &self.cfg.function {
            Ok((id, source)) => {
                let from = match source {
                    IdentitySource::Config => "config",
                    IdentitySource::NodeMetadata => "node metadata",
                };
                host.log(
                    LogLevel::Info,
                    &format!("faas-mesh-auth: guarding function {id} (from {from}); keys from {keys}; mode {mode}"),
                );
            }
            Err(e) => host.log(
                LogLevel::Error,
                &format!(
                    "faas-mesh-auth: function identity unknown, every request will get 503: {e}"
                ),
            ),
        }
    }

    // ---- requests ------------------------------------------------------

    /// `on_http_request_headers` for stream `context`.
    pub fn on_request(&mut self, host: &dyn Host, context: u32) -> Flow {
        // One hostcall for every header we need, and for whether the client
        // sent any of ours.
        let map = host.request_header_map();
        let mut path: Option<&[u8]> = None;
        let mut auth: Option<&[u8]> = None;
        let mut own = OwnHeaders::default();
        for (name, value) in crate::headers::pairs(&map) {
            match name {
                b":path" => path = Some(value),
                b"authorization" if auth.is_none() => auth = Some(value),
                n if n == SUBJECT_HEADER.as_bytes() => own.subject = true,
                n if n == AUDIT_HEADER.as_bytes() => own.audit = true,
                _ => {}
            }
        }
        if let Some(path) = path.and_then(|p| std::str::from_utf8(p).ok())
            && self.cfg.is_exempt(path)
        {
            self.metrics.inc(Counter::Exempt);
            own.remove(host);
            return Flow::Continue;
        }
        let token = match auth
            .and_then(|a| std::str::from_utf8(a).ok())
            .map(bearer_token)
        {
            Some(Ok(t)) => t,
            _ => return self.apply(host, Decision::Deny(InvokeDenial::MissingToken), own),
        };
        let now = self.now_ms(host);
        match self.evaluate(host, token, now, true) {
            Verdict::Final(d) => self.apply(host, d, own),
            Verdict::Wait { fetch_by_ms } => {
                self.waiters.push(Waiter {
                    context,
                    token: token.to_owned(),
                    fetch_by_ms,
                    deadline_ms: fetch_by_ms
                        + self.remote().map_or(0, |r| r.timeout_ms)
                        + 2 * TICK_MS,
                });
                Flow::Pause
            }
        }
    }

    /// Wall-clock time as of the last tick (at most [`TICK_MS`] old), or
    /// from the host before the first one: one hostcall fewer per request.
    /// Verification reads the host's clock itself.
    fn now_ms(&self, host: &dyn Host) -> u64 {
        match self.clock_ms.get() {
            0 => host.now_ms(),
            t => t,
        }
    }

    fn evaluate(&mut self, host: &dyn Host, token: &str, now_ms: u64, can_wait: bool) -> Verdict {
        let cfg = Rc::clone(&self.cfg);
        let id: &FunctionId = match &cfg.function {
            Ok((id, _)) => id,
            Err(_) => return Verdict::Final(Decision::Unavailable(Unavailable::NoIdentity)),
        };
        let now = now_ms / 1000;
        if let Some(outcome) = self.cache.get(token, now) {
            self.metrics.inc(Counter::CacheHit);
            return Verdict::Final(match outcome {
                Outcome::Allow { subject } => Decision::Allow {
                    subject: subject.clone(),
                },
                Outcome::Denied(d) => Decision::Deny(d.clone()),
            });
        }
        // A miss is about to cost a signature check: read the host's clock
        // rather than the tick's.
        let now_ms = host.now_ms();
        let now = now_ms / 1000;
        let Some(keys) = self.keys.clone() else {
            // Before the first keys: wait for a fetch that is running or
            // about to, otherwise fail closed at once.
            if can_wait && self.waiters.len() < MAX_WAITERS {
                if let Some(started) = self.running_fetch(now_ms) {
                    return Verdict::Wait {
                        fetch_by_ms: started,
                    };
                }
                if self.remote().is_some() && now_ms >= self.shared.next_fetch_ms {
                    return Verdict::Wait {
                        fetch_by_ms: now_ms,
                    };
                }
            }
            return Verdict::Final(Decision::Unavailable(Unavailable::NoKeys));
        };
        self.metrics.inc(Counter::CacheMiss);
        let signatures = HostSignatures::new(host, &self.native);
        let verified =
            verify_with::<GatewayClaims>(token, &keys, &cfg.validation, now, &signatures);
        match verified {
            // Tokens refused before the signature step count as neither.
            Err(
                TokenError::TooLong { .. } | TokenError::Malformed(_) | TokenError::CriticalHeader,
            )
            | Err(
                TokenError::MissingKid
                | TokenError::UnknownKid(_)
                | TokenError::AlgorithmMismatch { .. },
            ) => {}
            _ if signatures.answered.get() => self.metrics.inc(Counter::VerifyNative),
            _ => self.metrics.inc(Counter::VerifyWasm),
        }
        match verified {
            Ok(v) => {
                let outcome = match authorize_invoke(&v.claims, id) {
                    Ok(()) => Outcome::Allow {
                        subject: v
                            .claims
                            .sub
                            .as_deref()
                            .filter(|s| header_safe(s))
                            .map(Rc::from),
                    },
                    Err(d) => Outcome::Denied(d),
                };
                let valid_until = v.claims.exp.saturating_add(cfg.validation.leeway_seconds());
                self.cache.insert(token, outcome.clone(), valid_until, now);
                Verdict::Final(match outcome {
                    Outcome::Allow { subject } => Decision::Allow { subject },
                    Outcome::Denied(d) => Decision::Deny(d),
                })
            }
            Err(TokenError::UnknownKid(kid)) if can_wait => match self.refetch_start(now_ms) {
                Some(fetch_by_ms) if fetch_by_ms < now_ms => Verdict::Wait { fetch_by_ms },
                Some(fetch_by_ms) => {
                    if !self.refetch_wanted {
                        host.log(
                            LogLevel::Info,
                            &format!(
                                "faas-mesh-auth: token names unknown kid {kid:?}; refetching keys"
                            ),
                        );
                        self.metrics.inc(Counter::UnknownKidRefetch);
                    }
                    self.refetch_wanted = true;
                    Verdict::Wait { fetch_by_ms }
                }
                None => Verdict::Final(Decision::Deny(InvokeDenial::Token(
                    TokenError::UnknownKid(kid),
                ))),
            },
            Err(e) => Verdict::Final(Decision::Deny(InvokeDenial::Token(e))),
        }
    }

    /// The fetch an unknown kid waits for, by when it starts: the one in
    /// flight (here or in another worker), else one that starts on the next
    /// tick if the rate limit allows. None: refuse it at once. So a request
    /// waits for at most one fetch, bounded by `jwks.timeout_ms`; a flood
    /// of made-up kids costs one fetch per `min_refetch_seconds` and parks
    /// requests only while that fetch runs. A key ext-authz signs with is
    /// published long before (publish before sign), so rotation costs no
    /// request either way.
    fn refetch_start(&self, now_ms: u64) -> Option<u64> {
        let remote = self.remote()?;
        if self.waiters.len() >= MAX_WAITERS {
            return None;
        }
        if let Some(started) = self.running_fetch(now_ms) {
            return Some(started);
        }
        self.shared
            .refetch_allowed(now_ms, remote.min_refetch_ms)
            .then_some(now_ms)
    }

    /// When the fetch in flight (here or in another worker) started.
    fn running_fetch(&self, now_ms: u64) -> Option<u64> {
        self.fetch_running(now_ms)
            .then_some(self.shared.last_attempt_ms.min(now_ms))
    }

    /// A fetch is in flight here or in another worker.
    fn fetch_running(&self, now_ms: u64) -> bool {
        self.in_flight.is_some() || !self.shared.lease_free(now_ms)
    }

    /// The one place a decision becomes a response. `own` says which of
    /// our headers the client sent: every request that goes on has them
    /// written by us or removed.
    fn apply(&self, host: &dyn Host, decision: Decision, own: OwnHeaders) -> Flow {
        let (code, status, challenge, body) = match decision {
            Decision::Allow { subject } => {
                self.metrics.inc(Counter::Allowed);
                let forward = subject.as_deref().filter(|_| self.cfg.forward_subject);
                match forward {
                    // Setting replaces whatever the client sent.
                    Some(s) => host.set_request_header(SUBJECT_HEADER, Some(s)),
                    None if own.subject => host.set_request_header(SUBJECT_HEADER, None),
                    None => {}
                }
                if own.audit {
                    host.set_request_header(AUDIT_HEADER, None);
                }
                return Flow::Continue;
            }
            Decision::Deny(d) => {
                let body: &str = match &d {
                    InvokeDenial::MissingToken => {
                        "Bearer must be present in Authorization header\n"
                    }
                    InvokeDenial::NotPermitted(_) | InvokeDenial::OutsideAudience(_) => {
                        "insufficient permissions\n"
                    }
                    InvokeDenial::NotAFunctionToken => "invalid token: not a function token\n",
                    InvokeDenial::Token(_) => "invalid token\n",
                };
                (d.code(), u32::from(d.status()), d.www_authenticate(), body)
            }
            Decision::Unavailable(u) => {
                let body = match u {
                    Unavailable::NoKeys => "function token keys are not available\n",
                    Unavailable::NoIdentity => "function identity is not configured\n",
                };
                (u.code(), 503, None, body)
            }
        };
        if self.cfg.mode == Mode::Audit {
            self.metrics.denied(code, true);
            let path = host.request_header(":path").unwrap_or_default();
            host.log(
                LogLevel::Info,
                &format!(
                    "faas-mesh-auth: audit: would deny {path:?} with {status} {code}; allowing"
                ),
            );
            if own.subject {
                host.set_request_header(SUBJECT_HEADER, None);
            }
            host.set_request_header(AUDIT_HEADER, Some(&format!("would-deny {status} {code}")));
            return Flow::Continue;
        }
        self.metrics.denied(code, false);
        host.log(LogLevel::Debug, &format!("faas-mesh-auth: {status} {code}"));
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-store"),
        ];
        if let Some(c) = &challenge {
            headers.push(("www-authenticate", c));
        }
        host.send_response(status, &headers, body.as_bytes());
        Flow::Pause
    }

    /// Answer every waiter that `ready` selects, from the root context.
    fn resolve_waiters(&mut self, host: &dyn Host, ready: impl Fn(&Waiter) -> bool) {
        if self.waiters.is_empty() {
            return;
        }
        let (ready, keep): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| ready(w));
        self.waiters = keep;
        let now = host.now_ms();
        for w in ready {
            if !host.set_effective_context(w.context) {
                continue;
            }
            let decision = match self.evaluate(host, &w.token, now, false) {
                Verdict::Final(d) => d,
                Verdict::Wait { .. } => Decision::Unavailable(Unavailable::NoKeys),
            };
            // We did not look at this request's headers: assume the worst.
            if self.apply(host, decision, OwnHeaders::ANY) == Flow::Continue {
                host.resume_request();
            }
        }
        host.set_effective_context(self.root_context);
        if self.waiters.is_empty() {
            self.refetch_wanted = false;
        }
    }

    // ---- keys ------------------------------------------------------------

    fn state_key(&self) -> Option<String> {
        self.remote()
            .map(|r| format!("{}state", r.shared_key_prefix()))
    }

    fn jwks_key(&self) -> Option<String> {
        self.remote()
            .map(|r| format!("{}jwks", r.shared_key_prefix()))
    }

    /// Create the shared record if nobody has. Racing creators are harmless:
    /// the lease is only ever taken with a CAS on an existing record.
    fn init_shared(&self, host: &dyn Host) {
        if let Some(key) = self.state_key()
            && host.shared_get(&key).0.is_none()
        {
            host.shared_set(&key, SharedState::default().encode().as_bytes(), None);
        }
    }

    fn read_state(&self, host: &dyn Host, key: &str) -> (Option<SharedState>, Option<u32>) {
        let (bytes, cas) = host.shared_get(key);
        (bytes.and_then(|b| SharedState::decode(&b)), cas)
    }

    /// Hand the counts to Envoy now (the tick does this too).
    pub fn flush_metrics(&self, host: &dyn Host) {
        self.metrics.flush(host);
    }

    /// The root context's tick, every [`TICK_MS`]: hand counts to Envoy,
    /// refresh the clock, and run the key lifecycle.
    pub fn on_tick(&mut self, host: &dyn Host) {
        self.metrics.flush(host);
        let now = host.now_ms();
        self.clock_ms.set(now);
        let (Some(remote), Some(state_key)) = (self.remote().cloned(), self.state_key()) else {
            return;
        };
        let (state, cas) = self.read_state(host, &state_key);
        let Some(state) = state else {
            // Absent or unreadable: (re)create it, fetch on a later tick.
            host.shared_set(&state_key, SharedState::default().encode().as_bytes(), None);
            return;
        };
        self.shared = state;
        if state.version != 0 && state.version != self.key_version {
            self.load_shared_keys(host, state.version);
        }
        if self.in_flight.is_none()
            && state.fetch_due(now, self.refetch_wanted, remote.min_refetch_ms)
        {
            let leased = state.leased(now, remote.timeout_ms);
            if host.shared_set(&state_key, leased.encode().as_bytes(), cas) {
                self.shared = leased;
                self.start_fetch(host, &remote, now);
            }
        }
        // Waiters settle when the fetch they wait for is over (done by any
        // worker), or when they time out.
        let shared = self.shared;
        let fetch_running = self.fetch_running(now);
        self.resolve_waiters(host, |w| {
            now >= w.deadline_ms || (!fetch_running && shared.last_attempt_ms >= w.fetch_by_ms)
        });
    }

    fn start_fetch(&mut self, host: &dyn Host, remote: &RemoteJwks, now: u64) {
        let headers = [
            (":method", "GET"),
            (":path", remote.path.as_str()),
            (":authority", remote.authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "faas-mesh-auth-filter"),
        ];
        match host.http_call(&remote.cluster, &headers, remote.timeout_ms) {
            Some(token) => self.in_flight = Some(token),
            None => {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "faas-mesh-auth: cannot call cluster {:?} for JWKS (is it defined?)",
                        remote.cluster
                    ),
                );
                self.finish_fetch(host, now, Err(FetchError::NoResponse));
            }
        }
    }

    /// `on_http_call_response` on the root context.
    pub fn on_fetch_response(
        &mut self,
        host: &dyn Host,
        token: u32,
        status: Option<u16>,
        body: Option<Vec<u8>>,
    ) {
        if self.in_flight != Some(token) {
            return;
        }
        self.in_flight = None;
        let result = match (status, body) {
            (Some(200), Some(body)) => {
                match KeySet::from_jwks_json_limited(&body, MAX_JWKS_BYTES) {
                    Ok((set, skipped)) => {
                        for s in skipped {
                            host.log(LogLevel::Warn, &format!("faas-mesh-auth: JWKS {s}"));
                        }
                        Ok((set, body))
                    }
                    Err(e) => Err(FetchError::Body(e)),
                }
            }
            (Some(200), None) => Err(FetchError::Body(mesh_auth_core::JwksError::NotJwks(
                "empty body".into(),
            ))),
            (Some(s), _) => Err(FetchError::Status(s)),
            (None, _) => Err(FetchError::NoResponse),
        };
        let now = host.now_ms();
        self.finish_fetch(host, now, result);
    }

    fn finish_fetch(
        &mut self,
        host: &dyn Host,
        now: u64,
        result: Result<(KeySet, Vec<u8>), FetchError>,
    ) {
        let (Some(remote), Some(state_key), Some(jwks_key)) =
            (self.remote().cloned(), self.state_key(), self.jwks_key())
        else {
            return;
        };
        let (outcome, fresh) = match result {
            Ok((set, body)) => {
                self.metrics.inc(Counter::JwksFetchOk);
                // Against the recorded digest, not the shared document: a
                // document written by a worker whose record update lost
                // would otherwise compare equal for ever, and no worker
                // would install it.
                let digest = crate::keys::digest(&body);
                let recorded = self.read_state(host, &state_key).0;
                if recorded.is_some_and(|s| s.version != 0 && s.digest == digest) {
                    (FetchResult::Unchanged, None)
                } else {
                    host.shared_set(&jwks_key, &body, None);
                    (FetchResult::Changed { digest }, Some(set))
                }
            }
            Err(e) => {
                self.metrics.inc(Counter::JwksFetchFailed);
                let kept = if self.keys.is_some() {
                    "keeping the last good keys"
                } else {
                    "no keys yet: requests get 503"
                };
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "faas-mesh-auth: JWKS fetch from cluster {:?} failed: {e}; {kept}",
                        remote.cluster
                    ),
                );
                (FetchResult::Failed, None)
            }
        };
        // Publish the outcome; retry a few times if another worker wrote
        // the record meanwhile.
        let mut written = None;
        for _ in 0..4 {
            let (state, cas) = self.read_state(host, &state_key);
            let next = state.unwrap_or_default().after_fetch(
                now,
                outcome,
                remote.refresh_ms,
                remote.retry_ms,
            );
            if host.shared_set(&state_key, next.encode().as_bytes(), cas) {
                written = Some(next);
                break;
            }
        }
        if let Some(next) = written {
            self.shared = next;
        }
        if let Some(set) = fresh {
            // Ours to use even if the record update lost: the next fetch
            // records it (its digest is not the recorded one).
            let version = written.map_or(self.key_version, |n| n.version);
            self.install(host, Arc::new(set), version);
        }
        self.resolve_waiters(host, |_| true);
    }

    fn load_shared_keys(&mut self, host: &dyn Host, version: u64) {
        let Some(jwks_key) = self.jwks_key() else {
            return;
        };
        let Some(bytes) = host.shared_get(&jwks_key).0 else {
            return;
        };
        match KeySet::from_jwks_json_limited(&bytes, MAX_JWKS_BYTES) {
            Ok((set, _)) => {
                self.install(host, Arc::new(set), version);
                self.resolve_waiters(host, |_| true);
            }
            Err(e) => host.log(
                LogLevel::Warn,
                &format!("faas-mesh-auth: shared JWKS is unusable ({e}); keeping current keys"),
            ),
        }
    }

    fn install(&mut self, host: &dyn Host, set: Arc<KeySet>, version: u64) {
        host.log(
            LogLevel::Info,
            &format!(
                "faas-mesh-auth: trusting keys {:?} (version {version})",
                set.kids()
            ),
        );
        self.metrics.inc(Counter::JwksUpdated);
        self.keys = Some(set);
        self.key_version = version;
        // A withdrawn key must stop working at once.
        self.cache.clear();
    }
}

/// Which of our headers a request arrived with. A client must never pass
/// them off as the filter's.
#[derive(Debug, Clone, Copy, Default)]
struct OwnHeaders {
    subject: bool,
    audit: bool,
}

impl OwnHeaders {
    const ANY: OwnHeaders = OwnHeaders {
        subject: true,
        audit: true,
    };

    fn remove(self, host: &dyn Host) {
        if self.subject {
            host.set_request_header(SUBJECT_HEADER, None);
        }
        if self.audit {
            host.set_request_header(AUDIT_HEADER, None);
        }
    }
}

/// Only plain printable ASCII is copied into a header.
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests;

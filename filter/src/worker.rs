//! One root context's state and the per-request state machine. Everything
//! here talks to Envoy only through [`Host`], so it runs under unit tests.
//!
//! A request ends in exactly one place, [`Worker::apply`]: continue, or
//! answer 401/403/503 locally. A request whose token names an unknown `kid`
//! (or that arrives before any keys) may instead wait, paused, for a JWKS
//! fetch; the fetch's completion (or a timeout on the tick) resolves it.

mod decision;

use std::rc::Rc;

use mesh_auth_core::bearer::bearer_token;
use mesh_auth_core::claims::GatewayClaims;
use mesh_auth_core::headers::{DENIAL_HEADERS, SUBJECT_HEADER, is_forwardable};
use mesh_auth_core::invoke::authorize_invoke;
use mesh_auth_core::verify::{TokenError, verify_with};
use mesh_auth_core::{FunctionId, InvokeDenial};

use crate::cache::{Outcome, TokenCache};
use crate::config::{Compiled, Crypto, IdentitySource, KeySource, Mode};
use crate::host::{Host, LogLevel};
use crate::keys::{Change, Keys};
use crate::metrics::{Counter, Metrics};
use crate::signatures::{HostSignatures, Native};

use decision::Refusal;
pub use decision::{Decision, Unavailable};

/// Says what audit mode would have refused. Like [`SUBJECT_HEADER`], only
/// the filter sets it: a client's copy is removed or replaced.
pub const AUDIT_HEADER: &str = "x-faas-mesh-auth-audit";

/// How often the root context ticks: the latency of noticing another
/// worker's fetch, and of starting an unknown-kid refetch.
pub const TICK_MS: u64 = 100;
/// Paused requests per worker; beyond this they are answered at once. A
/// waiter whose client left stays until its fetch settles or its deadline.
const MAX_WAITERS: usize = 512;

/// What a stream should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
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
    /// The keys, and their fetch when they come from a cluster.
    keys: Keys,
    cache: TokenCache,
    waiters: Vec<Waiter>,
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
        let metrics = Metrics::define(host);
        log_startup(host, &cfg);
        Worker {
            root_context,
            cache: TokenCache::new(cfg.cache_entries),
            keys: Keys::new(host, &cfg.keys),
            cfg: Rc::new(cfg),
            waiters: Vec::new(),
            metrics,
            native: std::cell::Cell::new(native),
            clock_ms: std::cell::Cell::new(0),
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
                    deadline_ms: fetch_by_ms + self.keys.fetch_timeout_ms() + 2 * TICK_MS,
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
        let Some(keys) = self.keys.current() else {
            // Before the first keys: wait for a fetch that is running or
            // about to, otherwise fail closed at once.
            if can_wait
                && self.waiters.len() < MAX_WAITERS
                && let Some(fetch_by_ms) = self.keys.first_fetch_by(now_ms)
            {
                return Verdict::Wait { fetch_by_ms };
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
                            .filter(|s| is_forwardable(s))
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
            Err(TokenError::UnknownKid(kid)) if can_wait => {
                let wait = if self.waiters.len() < MAX_WAITERS {
                    self.keys.await_kid(host, &self.metrics, &kid, now_ms)
                } else {
                    None
                };
                match wait {
                    Some(fetch_by_ms) => Verdict::Wait { fetch_by_ms },
                    None => Verdict::Final(Decision::Deny(InvokeDenial::Token(
                        TokenError::UnknownKid(kid),
                    ))),
                }
            }
            Err(e) => Verdict::Final(Decision::Deny(InvokeDenial::Token(e))),
        }
    }

    /// The one place a decision becomes a response. `own` says which of
    /// our headers the client sent: every request that goes on has them
    /// written by us or removed.
    fn apply(&self, host: &dyn Host, decision: Decision, own: OwnHeaders) -> Flow {
        let Refusal {
            code,
            status,
            challenge,
            body,
        } = match decision {
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
            Decision::Deny(d) => Refusal::from(&d),
            Decision::Unavailable(u) => Refusal::from(u),
        };
        if self.cfg.mode == Mode::Audit {
            self.metrics.denied(code, true);
            let path = host.request_header(":path").unwrap_or_default();
            // Without the query: it may carry secrets (tokens, keys) that
            // have no place in proxy logs.
            let path = path.split(['?', '#']).next().unwrap_or_default();
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
        let mut headers: Vec<(&str, &str)> = DENIAL_HEADERS.to_vec();
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
            self.keys.refetch_served();
        }
    }

    /// Act on what a step of the key lifecycle changed.
    fn settle(&mut self, host: &dyn Host, change: Change) {
        match change {
            Change::None => {}
            Change::FetchEnded => self.resolve_waiters(host, |_| true),
            Change::NewKeys => {
                // A withdrawn key must stop working at once.
                self.cache.clear();
                self.resolve_waiters(host, |_| true);
            }
        }
    }

    // ---- the root context ------------------------------------------------

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
        let Some((snapshot, change)) = self.keys.read_shared(host, &self.metrics) else {
            return;
        };
        // Waiters answered here no longer ask for a fetch below.
        self.settle(host, change);
        let change = self.keys.fetch_if_due(host, &self.metrics, now, snapshot);
        self.settle(host, change);
        // Waiters settle when the fetch they wait for is over (done by any
        // worker), or when they time out.
        let settled = self.keys.settled_through(now);
        self.resolve_waiters(host, |w| {
            now >= w.deadline_ms || settled.is_some_and(|t| t >= w.fetch_by_ms)
        });
    }

    /// `on_http_call_response` on the root context.
    pub fn on_fetch_response(
        &mut self,
        host: &dyn Host,
        token: u32,
        status: Option<u16>,
        body: Option<Vec<u8>>,
    ) {
        let change = self
            .keys
            .on_response(host, &self.metrics, token, status, body);
        self.settle(host, change);
    }
}

/// One line at configure: what this root guards, with which keys, how.
fn log_startup(host: &dyn Host, cfg: &Compiled) {
    let keys = match &cfg.keys {
        KeySource::Local(set) => format!("local_jwks ({} keys)", set.len()),
        KeySource::Remote(r) => format!(
            "cluster {:?} {}{} every {}s",
            r.cluster,
            r.authority,
            r.path,
            r.refresh_ms / 1000
        ),
    };
    let mode = match cfg.mode {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
    };
    match &cfg.function {
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
            &format!("faas-mesh-auth: function identity unknown, every request will get 503: {e}"),
        ),
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

#[cfg(test)]
mod tests;

//! The JWKS lifecycle of one root context: the keys requests are verified
//! with and, when they come from a cluster, fetching them, sharing one fetch
//! among Envoy's workers, backing off, and refetching early for an unknown
//! `kid`. The worker asks [`Keys`] for the keys and whether a request may
//! wait for a fetch; the tick and the call's response drive the rest, and
//! each step returns the [`Change`] the worker must act on.
//!
//! Each worker runs its own VM, so without coordination N workers would
//! fetch N times. Workers instead agree through proxy-wasm shared data:
//! - `<prefix>jwks` holds the last good JWKS document;
//! - `<prefix>state` holds a small record ([`SharedState`]): the document's
//!   version, when the next refresh is due, a fetch lease, and when the last
//!   fetch started.
//!
//! A worker takes the lease with a compare-and-swap before fetching, so one
//! fetch serves all. Everyone polls the small record on its tick and reloads
//! the document only when the version moves. A failed fetch keeps the last
//! good document.

mod fetch;
mod shared;

use std::rc::Rc;
use std::sync::Arc;

use mesh_auth_core::jwks::KeySet;

use crate::config::{KeySource, RemoteJwks};
use crate::host::{Host, LogLevel};
use crate::metrics::{Counter, Metrics};

pub use fetch::FetchError;
pub use shared::SharedState;

/// Largest JWKS response read from the host: the core parser's own cap.
pub const MAX_JWKS_BYTES: usize = mesh_auth_core::jwks::DEFAULT_MAX_JWKS_BYTES;

/// What a step of the lifecycle changed, for the worker to act on.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing a request waits for.
    None,
    /// A fetch ended without new keys: its waiters can be answered.
    FetchEnded,
    /// New keys are in use: cached verdicts are void, and waiters can be
    /// answered.
    NewKeys,
}

/// The shared record as one tick read it: the lease is taken only if no
/// worker wrote the record since.
#[must_use]
#[derive(Debug)]
pub struct Snapshot {
    state: SharedState,
    cas: Option<u32>,
}

/// A cluster to fetch from, and the names of its entries in shared data.
#[derive(Debug)]
struct Remote {
    source: RemoteJwks,
    state_key: String,
    jwks_key: String,
}

/// One root context's keys and, when they are fetched, where that stands.
pub struct Keys {
    /// What requests are verified with; None until the first fetch.
    current: Option<Arc<KeySet>>,
    /// None for `local_jwks`: nothing to fetch.
    remote: Option<Rc<Remote>>,
    /// Version of the shared document `current` came from.
    version: u64,
    /// The shared record as last read.
    shared: SharedState,
    /// Our own JWKS call in flight, if any.
    in_flight: Option<u32>,
    /// A request waits for a kid no key has: fetch before the refresh is due.
    refetch_wanted: bool,
}

impl Keys {
    pub fn new(host: &dyn Host, source: &KeySource) -> Self {
        let (current, remote) = match source {
            KeySource::Local(set) => (Some(set.clone()), None),
            KeySource::Remote(r) => {
                let prefix = r.shared_key_prefix();
                let remote = Remote {
                    source: r.clone(),
                    state_key: format!("{prefix}state"),
                    jwks_key: format!("{prefix}jwks"),
                };
                (None, Some(Rc::new(remote)))
            }
        };
        let keys = Keys {
            current,
            remote,
            version: 0,
            shared: SharedState::default(),
            in_flight: None,
            refetch_wanted: false,
        };
        keys.init_shared(host);
        keys
    }

    /// Create the shared record if nobody has. Racing creators are harmless:
    /// the lease is only ever taken with a CAS on an existing record.
    fn init_shared(&self, host: &dyn Host) {
        if let Some(remote) = &self.remote
            && host.shared_get(&remote.state_key).0.is_none()
        {
            host.shared_set(
                &remote.state_key,
                SharedState::default().encode().as_bytes(),
                None,
            );
        }
    }

    /// The keys to verify with now; None before the first fetch.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.clone()
    }

    /// How long a fetch may run (0 for local keys): bounds a waiter.
    pub fn fetch_timeout_ms(&self) -> u64 {
        self.remote.as_ref().map_or(0, |r| r.source.timeout_ms)
    }

    // ---- may a request wait? ---------------------------------------------

    /// Before the first keys: when the fetch a request may wait for starts,
    /// one running or due now. None: fail closed at once.
    pub fn first_fetch_by(&self, now_ms: u64) -> Option<u64> {
        if let Some(started) = self.running_fetch(now_ms) {
            return Some(started);
        }
        (self.remote.is_some() && now_ms >= self.shared.next_fetch_ms).then_some(now_ms)
    }

    /// A token names `kid`, which no key has: when the fetch its request may
    /// wait for starts. The one in flight (here or in another worker), else
    /// one that starts on the next tick if the rate limit allows. None:
    /// refuse it at once. So a request waits for at most one fetch, bounded
    /// by `jwks.timeout_ms`; a flood of made-up kids costs one fetch per
    /// `min_refetch_seconds` and parks requests only while that fetch runs.
    /// A key ext-authz signs with is published long before (publish before
    /// sign), so rotation costs no request either way.
    pub fn await_kid(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
        kid: &str,
        now_ms: u64,
    ) -> Option<u64> {
        let remote = self.remote.as_ref()?;
        let fetch_by_ms = match self.running_fetch(now_ms) {
            Some(started) => started,
            None => self
                .shared
                .refetch_allowed(now_ms, remote.source.min_refetch_ms)
                .then_some(now_ms)?,
        };
        if fetch_by_ms < now_ms {
            return Some(fetch_by_ms);
        }
        if !self.refetch_wanted {
            host.log(
                LogLevel::Info,
                &format!("faas-mesh-auth: token names unknown kid {kid:?}; refetching keys"),
            );
            metrics.inc(Counter::UnknownKidRefetch);
        }
        self.refetch_wanted = true;
        Some(fetch_by_ms)
    }

    /// No request waits any more: no early fetch is wanted.
    pub fn refetch_served(&mut self) {
        self.refetch_wanted = false;
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

    /// Every fetch that started by the returned time is over, in whichever
    /// worker ran it; None while one runs.
    pub fn settled_through(&self, now_ms: u64) -> Option<u64> {
        (!self.fetch_running(now_ms)).then_some(self.shared.last_attempt_ms)
    }

    // ---- the tick ----------------------------------------------------------

    /// The tick's first half: read the shared record and take up keys
    /// another worker fetched. None: nothing more this tick (local keys, or
    /// a record that was missing or unreadable and is written afresh).
    pub fn read_shared(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
    ) -> Option<(Snapshot, Change)> {
        let remote = self.remote.clone()?;
        let (state, cas) = read_state(host, &remote.state_key);
        let Some(state) = state else {
            // Absent or unreadable: (re)create it, fetch on a later tick.
            host.shared_set(
                &remote.state_key,
                SharedState::default().encode().as_bytes(),
                None,
            );
            return None;
        };
        self.shared = state;
        let change = if state.version != 0 && state.version != self.version {
            self.load_shared_keys(host, metrics, &remote, state.version)
        } else {
            Change::None
        };
        Some((Snapshot { state, cas }, change))
    }

    fn load_shared_keys(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
        remote: &Remote,
        version: u64,
    ) -> Change {
        let Some(bytes) = host.shared_get(&remote.jwks_key).0 else {
            return Change::None;
        };
        match KeySet::from_jwks_json_limited(&bytes, MAX_JWKS_BYTES) {
            Ok((set, _)) => {
                self.install(host, metrics, Arc::new(set), version);
                Change::NewKeys
            }
            Err(e) => {
                host.log(
                    LogLevel::Warn,
                    &format!("faas-mesh-auth: shared JWKS is unusable ({e}); keeping current keys"),
                );
                Change::None
            }
        }
    }

    fn install(&mut self, host: &dyn Host, metrics: &Metrics, set: Arc<KeySet>, version: u64) {
        host.log(
            LogLevel::Info,
            &format!(
                "faas-mesh-auth: trusting keys {:?} (version {version})",
                set.kids()
            ),
        );
        metrics.inc(Counter::JwksUpdated);
        self.current = Some(set);
        self.version = version;
    }

    /// The shared record's key, for tests that corrupt it.
    #[cfg(test)]
    pub fn state_key(&self) -> Option<String> {
        self.remote.as_ref().map(|r| r.state_key.clone())
    }
}

fn read_state(host: &dyn Host, key: &str) -> (Option<SharedState>, Option<u32>) {
    let (bytes, cas) = host.shared_get(key);
    (bytes.and_then(|b| SharedState::decode(&b)), cas)
}

#[cfg(test)]
mod tests;

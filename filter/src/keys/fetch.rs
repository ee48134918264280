//! One JWKS fetch, start to end: taking the lease, the call, reading its
//! answer, and publishing the outcome for the other workers.

use std::sync::Arc;

use mesh_auth_core::jwks::{JwksError, KeySet};

use super::shared::{self, FetchResult};
use super::{Change, Keys, MAX_JWKS_BYTES, Remote, Snapshot, read_state};
use crate::host::{Host, LogLevel};
use crate::metrics::{Counter, Metrics};

/// Why a fetched JWKS was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The call itself failed (no healthy upstream, timeout, reset).
    #[error("no response (connection failed or timed out)")]
    NoResponse,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("{0}")]
    Body(JwksError),
}

impl Keys {
    /// The tick's second half: if a fetch is due, take the lease and start
    /// it.
    pub fn fetch_if_due(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
        now: u64,
        snapshot: Snapshot,
    ) -> Change {
        let Some(remote) = self.remote.clone() else {
            return Change::None;
        };
        let Snapshot { state, cas } = snapshot;
        if self.in_flight.is_none()
            && state.fetch_due(now, self.refetch_wanted, remote.source.min_refetch_ms)
        {
            let leased = state.leased(now, remote.source.timeout_ms);
            if host.shared_set(&remote.state_key, leased.encode().as_bytes(), cas) {
                self.shared = leased;
                return self.start_fetch(host, metrics, &remote, now);
            }
        }
        Change::None
    }

    fn start_fetch(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
        remote: &Remote,
        now: u64,
    ) -> Change {
        let source = &remote.source;
        let headers = [
            (":method", "GET"),
            (":path", source.path.as_str()),
            (":authority", source.authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "faas-mesh-auth-filter"),
        ];
        match host.http_call(&source.cluster, &headers, source.timeout_ms) {
            Some(token) => {
                self.in_flight = Some(token);
                Change::None
            }
            None => {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "faas-mesh-auth: cannot call cluster {:?} for JWKS (is it defined?)",
                        source.cluster
                    ),
                );
                self.finish_fetch(host, metrics, remote, now, Err(FetchError::NoResponse))
            }
        }
    }

    /// `on_http_call_response` on the root context.
    pub fn on_response(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
        token: u32,
        status: Option<u16>,
        body: Option<Vec<u8>>,
    ) -> Change {
        if self.in_flight != Some(token) {
            return Change::None;
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
            (Some(200), None) => Err(FetchError::Body(JwksError::NotJwks("empty body".into()))),
            (Some(s), _) => Err(FetchError::Status(s)),
            (None, _) => Err(FetchError::NoResponse),
        };
        let now = host.now_ms();
        let Some(remote) = self.remote.clone() else {
            return Change::None;
        };
        self.finish_fetch(host, metrics, &remote, now, result)
    }

    fn finish_fetch(
        &mut self,
        host: &dyn Host,
        metrics: &Metrics,
        remote: &Remote,
        now: u64,
        result: Result<(KeySet, Vec<u8>), FetchError>,
    ) -> Change {
        let (outcome, fresh) = match result {
            Ok((set, body)) => {
                metrics.inc(Counter::JwksFetchOk);
                // Against the recorded digest, not the shared document: a
                // document written by a worker whose record update lost
                // would otherwise compare equal for ever, and no worker
                // would install it.
                let digest = shared::digest(&body);
                let recorded = read_state(host, &remote.state_key).0;
                if recorded.is_some_and(|s| s.version != 0 && s.digest == digest) {
                    (FetchResult::Unchanged, None)
                } else {
                    host.shared_set(&remote.jwks_key, &body, None);
                    (FetchResult::Changed { digest }, Some(set))
                }
            }
            Err(e) => {
                metrics.inc(Counter::JwksFetchFailed);
                let kept = if self.current.is_some() {
                    "keeping the last good keys"
                } else {
                    "no keys yet: requests get 503"
                };
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "faas-mesh-auth: JWKS fetch from cluster {:?} failed: {e}; {kept}",
                        remote.source.cluster
                    ),
                );
                (FetchResult::Failed, None)
            }
        };
        // Publish the outcome; retry a few times if another worker wrote
        // the record meanwhile.
        let mut written = None;
        for _ in 0..4 {
            let (state, cas) = read_state(host, &remote.state_key);
            let next = state.unwrap_or_default().after_fetch(
                now,
                outcome,
                remote.source.refresh_ms,
                remote.source.retry_ms,
            );
            if host.shared_set(&remote.state_key, next.encode().as_bytes(), cas) {
                written = Some(next);
                break;
            }
        }
        if let Some(next) = written {
            self.shared = next;
        }
        match fresh {
            Some(set) => {
                // Ours to use even if the record update lost: the next fetch
                // records it (its digest is not the recorded one).
                let version = written.map_or(self.version, |n| n.version);
                self.install(host, metrics, Arc::new(set), version);
                Change::NewKeys
            }
            None => Change::FetchEnded,
        }
    }
}

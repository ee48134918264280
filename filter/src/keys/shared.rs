//! The record all Envoy workers share for one key source, in proxy-wasm
//! shared data: its encoding, and the pure decisions made on it (is a
//! fetch due, taking the lease, what the end of a fetch writes).

/// The shared record. Encoded as short text so it is cheap to copy on every
/// tick and readable in a debugger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedState {
    /// Bumped whenever `jwks` changes. 0: no document yet.
    pub version: u64,
    /// When the next periodic fetch is due (ms since the epoch).
    pub next_fetch_ms: u64,
    /// A fetch is in flight until this time; 0 when free.
    pub lease_until_ms: u64,
    /// When the last fetch started, for rate-limiting unknown-kid refetches.
    pub last_attempt_ms: u64,
    /// Consecutive failures, for the log and backoff.
    pub failures: u32,
    /// Digest of the document `version` names. A fetch is "unchanged" only
    /// when it matches this, never the shared document itself: that may
    /// have been written by a worker whose record update then lost.
    pub digest: u64,
}

impl SharedState {
    pub fn encode(&self) -> String {
        format!(
            "v2 {} {} {} {} {} {:x}",
            self.version,
            self.next_fetch_ms,
            self.lease_until_ms,
            self.last_attempt_ms,
            self.failures,
            self.digest
        )
    }

    /// None for anything this version did not write; the caller then treats
    /// the record as absent and overwrites it.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut it = text.split(' ');
        if it.next()? != "v2" {
            return None;
        }
        let mut num = || it.next()?.parse::<u64>().ok();
        let (version, next_fetch_ms, lease_until_ms, last_attempt_ms) =
            (num()?, num()?, num()?, num()?);
        let failures = u32::try_from(num()?).ok()?;
        let digest = u64::from_str_radix(it.next()?, 16).ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(SharedState {
            version,
            next_fetch_ms,
            lease_until_ms,
            last_attempt_ms,
            failures,
            digest,
        })
    }

    pub fn lease_free(&self, now_ms: u64) -> bool {
        self.lease_until_ms <= now_ms
    }

    /// Should a fetch start now? Periodic refresh, or an unknown `kid` seen
    /// and the rate limit allows another look.
    pub fn fetch_due(&self, now_ms: u64, refetch_wanted: bool, min_refetch_ms: u64) -> bool {
        self.lease_free(now_ms)
            && (now_ms >= self.next_fetch_ms
                || (refetch_wanted && self.refetch_allowed(now_ms, min_refetch_ms)))
    }

    pub fn refetch_allowed(&self, now_ms: u64, min_refetch_ms: u64) -> bool {
        now_ms >= self.last_attempt_ms.saturating_add(min_refetch_ms)
    }

    /// The record with the lease taken.
    pub fn leased(&self, now_ms: u64, timeout_ms: u64) -> Self {
        SharedState {
            // The lease outlives the call's own timeout, so a worker that
            // dies mid-fetch only delays the next one.
            lease_until_ms: now_ms + timeout_ms + 1_000,
            last_attempt_ms: now_ms,
            ..*self
        }
    }

    /// The record after a fetch: the lease released and the next fetch set.
    pub fn after_fetch(
        &self,
        now_ms: u64,
        result: FetchResult,
        refresh_ms: u64,
        retry_ms: u64,
    ) -> Self {
        match result {
            FetchResult::Changed { digest } => SharedState {
                version: self.version + 1,
                next_fetch_ms: now_ms + refresh_ms,
                lease_until_ms: 0,
                failures: 0,
                digest,
                ..*self
            },
            FetchResult::Unchanged => SharedState {
                next_fetch_ms: now_ms + refresh_ms,
                lease_until_ms: 0,
                failures: 0,
                ..*self
            },
            FetchResult::Failed => {
                let failures = self.failures.saturating_add(1);
                // Back off 1x, 2x, 4x... the retry interval, never past the
                // refresh interval.
                let backoff = retry_ms.saturating_mul(1 << (failures - 1).min(6));
                SharedState {
                    next_fetch_ms: now_ms + backoff.min(refresh_ms.max(retry_ms)),
                    lease_until_ms: 0,
                    failures,
                    ..*self
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// A document other than the one `version` names, with its digest.
    Changed {
        digest: u64,
    },
    Unchanged,
    Failed,
}

/// FNV-1a: a digest to tell JWKS documents apart, not a defence (the
/// document comes from our own cluster and is verified as a JWKS).
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests;

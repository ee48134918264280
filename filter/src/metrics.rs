//! Envoy counters. Envoy shows wasm metrics with a `wasmcustom.` prefix, so
//! these appear as e.g. `wasmcustom.faas_mesh_auth.allowed`.

use std::cell::Cell;

use mesh_auth_core::TokenError;

use crate::host::Host;

pub const PREFIX: &str = "faas_mesh_auth";

/// Every reason a request can be refused, beyond the token errors.
pub const DENIAL_CODES: [&str; 6] = [
    "missing_token",
    "not_function_token",
    "not_permitted",
    "outside_audience",
    "no_keys",
    "no_identity",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Allowed,
    Exempt,
    CacheHit,
    CacheMiss,
    JwksFetchOk,
    JwksFetchFailed,
    JwksUpdated,
    UnknownKidRefetch,
    VerifyNative,
    VerifyWasm,
}

impl Counter {
    const ALL: [Counter; 10] = [
        Counter::Allowed,
        Counter::Exempt,
        Counter::CacheHit,
        Counter::CacheMiss,
        Counter::JwksFetchOk,
        Counter::JwksFetchFailed,
        Counter::JwksUpdated,
        Counter::UnknownKidRefetch,
        Counter::VerifyNative,
        Counter::VerifyWasm,
    ];

    fn name(self) -> &'static str {
        match self {
            Counter::Allowed => "allowed",
            Counter::Exempt => "exempt",
            Counter::CacheHit => "cache_hit",
            Counter::CacheMiss => "cache_miss",
            Counter::JwksFetchOk => "jwks_fetch_ok",
            Counter::JwksFetchFailed => "jwks_fetch_failed",
            Counter::JwksUpdated => "jwks_updated",
            Counter::UnknownKidRefetch => "jwks_unknown_kid_refetch",
            Counter::VerifyNative => "verify_native",
            Counter::VerifyWasm => "verify_wasm",
        }
    }
}

/// One Envoy counter and what this worker has counted since the last flush.
#[derive(Debug)]
struct Slot {
    id: Option<u32>,
    pending: Cell<u64>,
}

impl Slot {
    fn new(id: Option<u32>) -> Self {
        Slot {
            id,
            pending: Cell::new(0),
        }
    }
}

/// Counter ids, defined once per root context. Counts stay in the VM and
/// reach Envoy on the root context's tick ([`Metrics::flush`]): a hostcall
/// per count would cost the hot path more than everything else it does.
#[derive(Debug, Default)]
pub struct Metrics {
    fixed: Vec<Slot>,
    denied: Vec<(&'static str, Slot)>,
    would_deny: Vec<(&'static str, Slot)>,
}

impl Metrics {
    pub fn define(host: &dyn Host) -> Self {
        let fixed = Counter::ALL
            .iter()
            .map(|c| Slot::new(host.define_counter(&format!("{PREFIX}.{}", c.name()))))
            .collect();
        let codes = || TokenError::CODES.iter().chain(DENIAL_CODES.iter()).copied();
        let denied = codes()
            .map(|c| {
                (
                    c,
                    Slot::new(host.define_counter(&format!("{PREFIX}.denied.{c}"))),
                )
            })
            .collect();
        let would_deny = codes()
            .map(|c| {
                (
                    c,
                    Slot::new(host.define_counter(&format!("{PREFIX}.audit_would_deny.{c}"))),
                )
            })
            .collect();
        Metrics {
            fixed,
            denied,
            would_deny,
        }
    }

    pub fn inc(&self, counter: Counter) {
        let index = Counter::ALL.iter().position(|c| *c == counter);
        if let Some(slot) = index.and_then(|i| self.fixed.get(i)) {
            slot.pending.set(slot.pending.get() + 1);
        }
    }

    pub fn denied(&self, code: &str, audit: bool) {
        let table = if audit {
            &self.would_deny
        } else {
            &self.denied
        };
        if let Some((_, slot)) = table.iter().find(|(c, _)| *c == code) {
            slot.pending.set(slot.pending.get() + 1);
        }
    }

    /// Hand the counts to Envoy.
    pub fn flush(&self, host: &dyn Host) {
        let slots = self
            .fixed
            .iter()
            .chain(self.denied.iter().map(|(_, s)| s))
            .chain(self.would_deny.iter().map(|(_, s)| s));
        for slot in slots {
            let n = slot.pending.replace(0);
            if let (Some(id), true) = (slot.id, n > 0) {
                host.increment(id, n);
            }
        }
    }
}

//! Envoy counters. Envoy shows wasm metrics with a `wasmcustom.` prefix, so
//! these appear as e.g. `wasmcustom.faas_mesh_auth.allowed`.

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

/// Counter ids, defined once per root context.
#[derive(Debug, Default)]
pub struct Metrics {
    fixed: Vec<Option<u32>>,
    denied: Vec<(&'static str, Option<u32>)>,
    would_deny: Vec<(&'static str, Option<u32>)>,
}

impl Metrics {
    pub fn define(host: &dyn Host) -> Self {
        let fixed = Counter::ALL
            .iter()
            .map(|c| host.define_counter(&format!("{PREFIX}.{}", c.name())))
            .collect();
        let codes = || TokenError::CODES.iter().chain(DENIAL_CODES.iter()).copied();
        let denied = codes()
            .map(|c| (c, host.define_counter(&format!("{PREFIX}.denied.{c}"))))
            .collect();
        let would_deny = codes()
            .map(|c| {
                (
                    c,
                    host.define_counter(&format!("{PREFIX}.audit_would_deny.{c}")),
                )
            })
            .collect();
        Metrics {
            fixed,
            denied,
            would_deny,
        }
    }

    pub fn inc(&self, host: &dyn Host, counter: Counter) {
        let index = Counter::ALL.iter().position(|c| *c == counter);
        if let Some(Some(id)) = index.and_then(|i| self.fixed.get(i)) {
            host.increment(*id);
        }
    }

    pub fn denied(&self, host: &dyn Host, code: &str, audit: bool) {
        let table = if audit {
            &self.would_deny
        } else {
            &self.denied
        };
        if let Some((_, Some(id))) = table.iter().find(|(c, _)| *c == code) {
            host.increment(*id);
        }
    }
}

//! faas-mesh-auth's Envoy filter: in a function pod's sidecar, verify each
//! request's OpenFaaS function token locally (ES256 against cached JWKS,
//! `exp`/`nbf`/`iss`/`aud`, and `function.permissions` covering this
//! function) and answer 401/403 before the request reaches the watchdog.
//!
//! The logic lives in host-independent modules driven through [`host::Host`];
//! `wasm` is the thin proxy-wasm adapter, compiled only for wasm32.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cache;
pub mod config;
pub mod headers;
pub mod host;
pub mod keys;
pub mod metrics;
pub mod roots;
pub mod signatures;
pub mod worker;

#[cfg(target_arch = "wasm32")]
mod wasm;

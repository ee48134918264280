//! faas-mesh-auth's Envoy filter: in a function pod's sidecar, verify each
//! request's OpenFaaS function token locally (ES256 against cached JWKS,
//! `exp`/`nbf`/`iss`/`aud`, and `function.permissions` covering this
//! function) and answer 401/403 before the request reaches the watchdog.
//!
//! The logic lives in host-independent modules driven through [`host::Host`];
//! `wasm` is the thin proxy-wasm adapter, compiled only for wasm32.
//!
//! # Layout
//! * [`worker`]: the request state machine of one plugin configuration:
//!   read the token, decide (cache, then verify), wait for keys when
//!   allowed, and apply the decision (`worker/decision.rs` is its wire
//!   form). It asks [`keys`] for keys and never fetches itself.
//! * [`keys`]: the JWKS lifecycle: the fetch lease shared by the workers of
//!   one Envoy, fetch and backoff (`keys/fetch.rs`), the unknown-kid
//!   refetch, and installing keys from the shared record (`keys/shared.rs`).
//! * [`config`]: the plugin configuration, parsed (`config/wire.rs`) then
//!   compiled. [`cache`]: verified tokens. [`roots`]: which plugin a stream
//!   belongs to. [`signatures`]: the host's signature check for the core
//!   verifier. [`headers`]: the serialized header map. [`metrics`].
//! * What the filter shares with ext-authz (the subject header, denial
//!   bodies, the Bearer challenge) comes from `mesh_auth_core`.
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

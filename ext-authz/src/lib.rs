//! ext-authz: the token-exchange server (RFC 8693), the publisher of the
//! keys the sidecar filter trusts, and the Envoy ext_authz gRPC service that
//! guards the gateway's `/system/` API with IAM actions. One tokio process,
//! two servers, one shutdown path.
//!
//! # Layout
//! * [`state`]: the one live state (IAM objects, signing keys, trusted
//!   issuers), reloaded in one place, with the one check of our own tokens.
//!   Both servers read it; [`server`] builds it and runs the servers.
//! * A token exchange, from the form to the signed token:
//!   [`http::token`] (read the form, map the outcome to HTTP once) →
//!   [`exchange`] (`run`: check the parameters, verify the subject, decide
//!   the [`exchange::grant`], sign) → [`exchange::subject`] (who the subject
//!   is: an IdP's token through [`issuers`], or one of ours through
//!   [`state`]). Each file calls only the ones after it.
//! * A Check, from the gRPC request to the `CheckResponse`:
//!   [`authz`]'s service → `authz/check.rs` (`decide` → `Decision` →
//!   `respond`) → [`authz::routes`] (the action and resource of a
//!   `/system/` route) → the [`authz::Policy`] the [`state`] implements.
//! * Below them: [`signing`] (our keys, publish before sign), [`issuers`]
//!   (IdP discovery and JWKS cache), [`iam_store`] and [`dir_fingerprint`]
//!   (mounted directories that change), [`fetch`] (outbound HTTPS),
//!   [`signatures`] (ring's signature checks for the core verifier),
//!   [`config`] (flags and environment).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod authz;
pub mod config;
pub mod dir_fingerprint;
pub mod exchange;
pub mod fetch;
pub mod http;
pub mod iam_store;
pub mod issuers;
pub mod server;
pub mod signatures;
pub mod signing;
pub mod state;

#[cfg(test)]
mod json_server;

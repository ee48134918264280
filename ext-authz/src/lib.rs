//! ext-authz: the token-exchange server (RFC 8693), the publisher of the
//! keys the sidecar filter trusts, and the Envoy ext_authz gRPC service that
//! guards the gateway's `/system/` API with IAM actions. One tokio process,
//! two servers, one shutdown path.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod authz;
pub mod config;
pub mod crypto;
pub mod exchange;
pub mod fetch;
pub mod http;
pub mod iam_store;
pub mod issuers;
pub mod metrics;
pub mod server;
pub mod signing;
pub mod watch;

#[cfg(test)]
mod testutil;

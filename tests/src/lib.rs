//! Harness for integration tests against real processes: a real Envoy (with
//! or without the built filter), and in-process upstreams and JWKS servers.
//!
//! Everything binds `127.0.0.1:0`; nothing leaves loopback. Every process and
//! server stops when its handle is dropped. Waiting is done by polling with
//! [`wait_until`] / [`wait_for`], never with fixed sleeps.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mesh_auth_tests::{EchoUpstream, Envoy, SidecarBootstrap, get};
//! let echo = EchoUpstream::start().await?;
//! let envoy = Envoy::start(SidecarBootstrap::new(echo.addr()).render()?).await?;
//! let resp = get(&envoy.listener_url("sidecar")?, &[("x-test", "1")]).await?;
//! assert_eq!(resp.status, 200);
//! # Ok(()) }
//! ```

mod bootstrap;
mod client;
mod echo;
mod envoy;
mod jwks_server;
mod paths;
mod server;
mod wait;

pub use bootstrap::{SidecarBootstrap, WasmFilter};
pub use client::{HttpResponse, get, request};
pub use echo::{EchoUpstream, Echoed};
pub use envoy::{Envoy, EnvoyBuilder, EnvoyExit};
pub use jwks_server::{JwksRequest, JwksServer};
pub use paths::{
    CLI_BIN_ENV, ENVOY_BIN_ENV, FILTER_WASM_ENV, cli_bin, envoy_bin, filter_wasm, repo_root,
};
pub use server::CLOSED_PORT;
pub use wait::{wait_for, wait_until};

/// Re-exported so tests mint keys and tokens without naming the core crate.
pub use mesh_auth_core::testing;

// The ext-authz binary and a real OpenID provider, for the token exchange.
mod ext_authz;
mod oidc;

pub use ext_authz::{
    EXT_AUTHZ_BIN_ENV, ExtAuthz, ExtAuthzOpts, PemKey, ext_authz_bin, form_encode,
};
pub use oidc::{
    JoseCheck, NODE_BIN_ENV, OidcOpts, OidcProvider, jose_verify, oidc_dir, watchdog_check,
};

// Network faults between two processes (the soak's IdP outage).
mod fault_proxy;

pub use fault_proxy::{FaultMode, FaultProxy};

// The whole system on one machine: `make run` and the end-to-end test.
pub mod stack;

// `make soak`: the stack under load and faults, for minutes.
pub mod soak;

//! The Envoy ext_authz gRPC service (`envoy.service.auth.v3.Authorization`)
//! that guards the OpenFaaS gateway.
//!
//! For every request Envoy's `envoy.filters.http.ext_authz` filter forwards,
//! [`AuthzService`] decides:
//!
//! * `/system/...`: the gateway's REST API. The caller must present one of
//!   our **API tokens** (`Authorization: Bearer`, no `function` claim). The
//!   route gives an IAM action and a resource ([`routes`]), and the token's
//!   `policy` names must allow that action on that resource ([`Policy`]).
//! * `/function/...` and `/async-function/...`: invocations, for gateways that
//!   want central enforcement. Exactly the sidecar filter's rule: a function
//!   token whose `function.permissions` (and audience) cover the function.
//! * Anything else is denied: no route is allowed by default. Public routes
//!   (`/oauth/token`, `/.well-known/jwks.json`, health) must not be sent here;
//!   disable the filter for them per route (`ExtAuthzPerRoute.disabled`).
//!
//! A denial is an `Ok(CheckResponse)` carrying a `DeniedHttpResponse` (401,
//! 403, 400 or 413, with `WWW-Authenticate` on 401s). `Err(Status)` is only
//! returned for real faults (the live state is not ready), which Envoy handles
//! per `failure_mode_allow`. An allow sets `x-faas-mesh-auth-subject` to the
//! token's `sub`, replacing any copy the client sent.
//!
//! Every decision is logged once on the `audit` target and counted
//! ([`AuthzMetrics`]). `grpc.health.v1` is served next to the service and
//! flips to `NOT_SERVING` when the server starts draining ([`serve`]).
//!
//! # Envoy configuration this service expects
//! ```yaml
//! - name: envoy.filters.http.ext_authz
//!   typed_config:
//!     "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
//!     transport_api_version: V3
//!     grpc_service: {envoy_grpc: {cluster_name: ext-authz}, timeout: 1s}
//!     failure_mode_allow: false        # a fault must not let requests through
//!     with_request_body:               # deploy, delete, scale and secrets carry
//!       max_request_bytes: 1048576     # their namespace in the JSON body
//!       allow_partial_message: false
//!       pack_as_bytes: true            # bodies need not be UTF-8
//! ```
//! Without `with_request_body`, requests whose namespace or object name is in
//! the body are denied (403 `body_not_forwarded`) rather than guessed.

use std::future::Future;
use std::sync::Arc;

use mesh_auth_core::{Claims, GatewayClaims, TokenError, Verified};

mod check;
mod gojson;
mod metrics;
pub mod routes;
mod service;

#[cfg(test)]
mod fixtures;

pub use check::{Allow, CheckError, Decision, Denial, SUBJECT_HEADER, Who, decide};
pub use metrics::AuthzMetrics;
pub use routes::{Action, Resource, RouteError};
pub use service::{AuthzService, DrainHandle, GrpcServices, ServeError};

/// What the Check service needs from ext-authz's live state.
pub trait Policy: Send + Sync + 'static {
    /// Verify one of our tokens (signature with our current public keys,
    /// `iss`, `aud`, `exp`...).
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError>;

    /// May the holder of this verified API token perform `action` on
    /// `resource`? (Looks up the token's `policy` names in the current IAM
    /// config.) `action` is never `Function:Invoke`, which function tokens
    /// decide.
    ///
    /// A statement resource grants it when, as an anchored glob, it matches
    /// the resource's string form (`*`, `ns:*` or `ns:name`):
    /// `openfaas-fn:*` matches `openfaas-fn:env` and also the literal
    /// `openfaas-fn:*`, whereas `openfaas-fn:env` or `openfaas-fn:e*` do not
    /// match `openfaas-fn:*`. Listing a namespace therefore needs a grant on
    /// the whole namespace.
    fn allows(&self, claims: &Claims<GatewayClaims>, action: Action, resource: &Resource) -> bool;

    /// Can the state decide at all (keys and IAM configuration loaded)? When
    /// it cannot, Check answers `Err(UNAVAILABLE)` and Envoy applies
    /// `failure_mode_allow`. Defaults to ready.
    fn ready(&self) -> bool {
        true
    }
}

/// Serve the ext_authz and health services on `listener` until `shutdown`
/// resolves. On shutdown, health flips to `NOT_SERVING` first; then the
/// server stops accepting connections and finishes the calls in flight.
/// Bound the wait with a timeout around this future: an open health `Watch`
/// stream counts as in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    policy: Arc<dyn Policy>,
    metrics: AuthzMetrics,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let services = GrpcServices::new(AuthzService::new(policy, metrics)).await;
    services.serve(listener, shutdown).await
}

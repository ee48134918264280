//! The tonic services: `envoy.service.auth.v3.Authorization` and
//! `grpc.health.v1.Health`, served together with one drain path.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use tonic::server::NamedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use super::Policy;
use super::check::{self, CheckError, Decision};
use super::metrics::AuthzMetrics;

/// The ext_authz Check service over the live [`Policy`].
#[derive(Clone)]
pub struct AuthzService {
    policy: Arc<dyn Policy>,
    metrics: AuthzMetrics,
}

impl std::fmt::Debug for AuthzService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzService").finish_non_exhaustive()
    }
}

impl AuthzService {
    pub fn new(policy: Arc<dyn Policy>, metrics: AuthzMetrics) -> Self {
        AuthzService { policy, metrics }
    }
}

#[tonic::async_trait]
impl Authorization for AuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let decision = check::decide(self.policy.as_ref(), request.get_ref());
        audit(&decision);
        self.metrics.record(&decision);
        check::respond(&decision.outcome).map(Response::new)
    }
}

/// One audit line per decision, on the `audit` target. Never the token.
/// Attacker-controlled strings are logged with `Debug` (quoted, escaped).
fn audit(d: &Decision) {
    let who = d.who.clone().unwrap_or_default();
    let dash = || "-".to_owned();
    let (allowed, denied_why) = match &d.outcome {
        Ok(_) => (true, String::new()),
        Err(CheckError::Denied(denial)) => (false, denial.to_string()),
        Err(CheckError::NotReady) => (false, CheckError::NotReady.to_string()),
    };
    tracing::info!(
        target: "audit",
        allowed,
        status = d.http_status(),
        reason = d.reason(),
        sub = ?who.sub.unwrap_or_else(dash),
        fed_iss = ?who.fed_iss.unwrap_or_else(dash),
        jti = ?who.jti.unwrap_or_else(dash),
        method = ?d.method,
        path = ?d.path,
        action = d.action.unwrap_or("-"),
        resource = ?d.resource.clone().unwrap_or_else(dash),
        detail = ?denied_why,
        "ext_authz decision"
    );
}

/// Flips the health of the served services. Cloneable: the process's
/// shutdown path may flip it before it stops the server.
#[derive(Debug, Clone)]
pub struct DrainHandle {
    reporter: HealthReporter,
}

impl DrainHandle {
    /// Report the server (`""`) and the Authorization service as serving.
    pub async fn serving(&self) {
        self.set(ServingStatus::Serving).await;
    }

    /// Report them as not serving: load balancers stop sending checks here.
    pub async fn not_serving(&self) {
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        for name in [
            "",
            <AuthorizationServer<AuthzService> as NamedService>::NAME,
        ] {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// Failure to run the gRPC server (the listener failed).
#[derive(Debug, thiserror::Error)]
#[error("ext_authz gRPC server failed")]
pub struct ServeError(#[source] tonic::transport::Error);

/// The gRPC services, ready to add to a tonic server, and their drain handle.
pub struct GrpcServices {
    pub authz: AuthorizationServer<AuthzService>,
    pub health: HealthServer<HealthService>,
    pub drain: DrainHandle,
}

impl std::fmt::Debug for GrpcServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServices").finish_non_exhaustive()
    }
}

impl GrpcServices {
    /// Build both services, with health reporting `SERVING`.
    pub async fn new(service: AuthzService) -> Self {
        let reporter = HealthReporter::new();
        let drain = DrainHandle {
            reporter: reporter.clone(),
        };
        drain.serving().await;
        GrpcServices {
            authz: AuthorizationServer::new(service),
            health: HealthServer::new(HealthService::from_health_reporter(reporter)),
            drain,
        }
    }

    /// Serve on `listener` until `shutdown` resolves; then flip health to
    /// `NOT_SERVING`, stop accepting, and finish the calls in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let GrpcServices {
            authz,
            health,
            drain,
        } = self;
        let addr = listener.local_addr().ok();
        tracing::info!(?addr, "ext_authz gRPC server listening");
        let signal = async move {
            shutdown.await;
            drain.not_serving().await;
            tracing::info!("ext_authz gRPC server draining: health is NOT_SERVING");
        };
        // Envoy keeps its ext_authz connections for days: find dead peers
        // (a node gone without a FIN) instead of holding them for ever.
        let incoming = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .add_service(health)
            .add_service(authz)
            .serve_with_incoming_shutdown(incoming, signal)
            .await
            .map_err(ServeError)?;
        tracing::info!("ext_authz gRPC server stopped; calls in flight finished");
        Ok(())
    }
}

#[cfg(test)]
mod tests;

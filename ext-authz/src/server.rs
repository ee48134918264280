//! The process's life: load the live state from [`Settings`], serve HTTP and
//! gRPC until the shutdown signal, then drain both at once.
//!
//! The grace period starts when the signal arrives and bounds only the work
//! in flight after it: before the signal, nothing times the servers out. A
//! server that stops on its own before the signal is a fault: the other is
//! drained too and [`run`] returns an error, so the process exits and its
//! supervisor restarts it instead of leaving half a server running.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mesh_auth_core::{Clock, SystemClock};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::authz::{self, AuthzMetrics, Policy};
use crate::config::Settings;
use crate::http::{HttpContext, HttpMetrics};
use crate::iam_store::Reload;
use crate::state::State;

/// Why the process stops with an error.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    /// Bad settings or configuration at startup: exit 64.
    #[error("{0}")]
    Config(String),
    /// A listen address cannot be bound: exit 69.
    #[error("{0}")]
    Bind(String),
    /// A server stopped before the shutdown signal.
    #[error("{0}")]
    Served(String),
}

/// Where the servers listen, once bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub http: SocketAddr,
    pub grpc: SocketAddr,
}

/// Everything the servers share, built from settings.
pub struct Parts {
    pub state: Arc<State>,
    pub http: Arc<HttpContext>,
    pub authz_metrics: AuthzMetrics,
    pub reloads: ReloadMetrics,
}

/// The live state from settings (IAM objects, signing keys, trusted
/// issuers) and the metrics registry all three report to.
pub fn build(settings: &Settings) -> Result<Parts, Fatal> {
    let state = Arc::new(State::open(settings).map_err(|e| Fatal::Config(e.to_string()))?);
    let mut registry = Registry::default();
    let http_metrics = HttpMetrics::register(&mut registry);
    let authz_metrics = AuthzMetrics::register(&mut registry);
    let reloads = ReloadMetrics::register(&mut registry);
    state.issuers.register_metrics(&mut registry);
    let http = Arc::new(HttpContext::new(state.clone(), http_metrics, registry));
    Ok(Parts {
        state,
        http,
        authz_metrics,
        reloads,
    })
}

async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, Fatal> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Fatal::Bind(format!("cannot listen for {what} on {addr}: {e}")))
}

/// Serve until `shutdown` resolves, then drain. `listening` is told the
/// bound addresses once both servers accept connections.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    listening: impl FnOnce(Listening),
) -> Result<(), Fatal> {
    let parts = build(&settings)?;
    let http_listener = bind("HTTP", settings.http_addr).await?;
    let grpc_listener = bind("gRPC", settings.grpc_addr).await?;
    let addr = |l: &TcpListener| l.local_addr().map_err(|e| Fatal::Bind(e.to_string()));
    let bound = Listening {
        http: addr(&http_listener)?,
        grpc: addr(&grpc_listener)?,
    };
    let now = SystemClock.now();
    tracing::info!(
        issuer = parts.state.own.issuer,
        http_addr = %bound.http,
        grpc_addr = %bound.grpc,
        active_kid = %parts.state.keys.current().active(now).kid,
        issuers = parts.state.iam.current().issuers().len(),
        roles = parts.state.iam.current().roles().len(),
        "ext-authz started"
    );

    let (drain_tx, drain_rx) = watch::channel(false);
    let drained = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|d| *d).await;
    };
    let reloader = tokio::spawn(reload_loop(
        parts.state.clone(),
        parts.reloads,
        settings.reload_interval,
        drained(drain_rx.clone()),
    ));
    let mut http = tokio::spawn(crate::http::serve(
        http_listener,
        parts.http.clone(),
        drained(drain_rx.clone()),
    ));
    let policy: Arc<dyn Policy> = parts.state.clone();
    let mut grpc = tokio::spawn(authz::serve(
        grpc_listener,
        policy,
        parts.authz_metrics,
        drained(drain_rx.clone()),
    ));
    listening(bound);

    // Until the signal, a server that stops is a fault.
    let (mut http_open, mut grpc_open) = (true, true);
    let mut fault = None;
    tokio::select! {
        () = shutdown => tracing::info!("shutdown signal: draining"),
        r = &mut http => {
            http_open = false;
            fault = Some(format!("HTTP server stopped: {}", outcome(r)));
        }
        r = &mut grpc => {
            grpc_open = false;
            fault = Some(format!("gRPC server stopped: {}", outcome(r)));
        }
    }
    if let Some(f) = &fault {
        tracing::error!("{f}; draining the other server and exiting");
    }
    parts.http.draining.store(true, Ordering::Relaxed);
    let _ = drain_tx.send(true);
    let deadline = tokio::time::Instant::now() + settings.shutdown_grace;
    let grace = settings.shutdown_grace;
    tokio::join!(
        finish("HTTP", http_open.then_some(http), deadline, grace),
        finish("gRPC", grpc_open.then_some(grpc), deadline, grace),
    );
    let _ = reloader.await;
    tracing::info!("ext-authz stopped");
    match fault {
        Some(f) => Err(Fatal::Served(f)),
        None => Ok(()),
    }
}

fn outcome<E: std::fmt::Display>(r: Result<Result<(), E>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Ok(())) => "without error".into(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    }
}

/// Wait for a draining server until the shared deadline; past it, stop it.
/// `None`: it already stopped (and was reported).
async fn finish<E: std::fmt::Display>(
    what: &str,
    task: Option<JoinHandle<Result<(), E>>>,
    deadline: tokio::time::Instant,
    grace: Duration,
) {
    let Some(mut task) = task else { return };
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(Ok(Ok(()))) => tracing::info!("{what} server drained"),
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "{what} server failed while draining"),
        Ok(Err(e)) => tracing::error!(error = %e, "{what} server task failed"),
        Err(_) => {
            tracing::warn!(
                ?grace,
                "{what} server: work still in flight after the grace period; closing"
            );
            task.abort();
        }
    }
}

async fn reload_loop(
    state: Arc<State>,
    metrics: ReloadMetrics,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        let state = state.clone();
        // File reads and YAML parsing are blocking work.
        if let Ok(done) = tokio::task::spawn_blocking(move || state.reload(SystemClock.now())).await
        {
            metrics.record(done);
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    what: &'static str,
    result: &'static str,
}

/// `faas_mesh_auth_config_reloads_total{what,result}`, and
/// `faas_mesh_auth_iam_reload_rejected`: a rejection is counted once per
/// change, but its state lasts until a change is applied.
#[derive(Clone)]
pub struct ReloadMetrics(Family<ReloadLabels, Counter>, Gauge);

impl ReloadMetrics {
    fn register(registry: &mut Registry) -> Self {
        let family = Family::default();
        registry.register(
            "faas_mesh_auth_config_reloads",
            "Reloads of the IAM configuration and the signing keys, by result",
            family.clone(),
        );
        let rejected = Gauge::default();
        registry.register(
            "faas_mesh_auth_iam_reload_rejected",
            "1 while the IAM files' last change was rejected (the last good configuration serves)",
            rejected.clone(),
        );
        ReloadMetrics(family, rejected)
    }

    fn record(&self, done: crate::state::Reloaded) {
        let count = |what, result| {
            self.0.get_or_create(&ReloadLabels { what, result }).inc();
        };
        match done.iam {
            Reload::Applied => {
                count("iam", "applied");
                self.1.set(0);
            }
            Reload::Rejected => {
                count("iam", "rejected");
                self.1.set(1);
            }
            Reload::Unchanged => {}
        }
        if done.keys {
            count("keys", "applied");
        }
    }
}

#[cfg(test)]
mod tests;

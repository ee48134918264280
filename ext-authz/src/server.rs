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

use mesh_auth_core::iam::DEFAULT_TOKEN_EXPIRY;
use mesh_auth_core::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::authz::{self, AuthzMetrics, Policy};
use crate::config::Settings;
use crate::exchange::{ExchangeSettings, Exchanger};
use crate::fetch::HttpFetcher;
use crate::iam_store::{IamStore, Reload};
use crate::issuers::{IssuerSettings, Issuers};
use crate::metrics::Metrics;
use crate::signing::{KeySettings, KeyStore};

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

/// The live state from settings: IAM objects, signing keys, trusted issuers.
pub fn build_app(settings: &Settings) -> Result<(Arc<App>, AuthzMetrics), Fatal> {
    let leeway = settings.clock_skew.as_secs();
    let config = |e: &dyn std::fmt::Display| Fatal::Config(e.to_string());
    let iam = IamStore::open(&settings.iam_dir).map_err(|e| config(&e))?;
    let key_settings = KeySettings {
        leeway,
        publish_delay: settings.key_publish_delay,
    };
    let keys = KeyStore::open(&settings.signing_key_dir, key_settings, SystemClock.now())
        .map_err(|e| config(&e))?;
    let fetcher = HttpFetcher::new(settings.idp_timeout, settings.idp_ca_file.as_deref())
        .map_err(|e| config(&e))?;
    let issuers = Issuers::new(
        fetcher,
        IssuerSettings {
            refresh: settings.idp_jwks_refresh,
            min_refetch: settings.idp_min_refetch,
            max_stale: settings.idp_keys_max_age,
            leeway_seconds: leeway,
            ..IssuerSettings::default()
        },
    );
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let authz_metrics = AuthzMetrics::register(&mut registry);
    let exchanger = Exchanger {
        settings: ExchangeSettings {
            issuer: settings.issuer.clone(),
            jwks_uri: settings.jwks_uri.clone(),
            leeway_seconds: leeway,
            allow_past_subject_expiry: settings.allow_past_subject_expiry,
        },
        iam: Arc::new(iam),
        issuers: Arc::new(issuers),
        keys: Arc::new(keys),
    };
    let app = App::new(exchanger, metrics, registry).map_err(|e| config(&e))?;
    Ok((Arc::new(app), authz_metrics))
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
    let (app, authz_metrics) = build_app(&settings)?;
    let http_listener = bind("HTTP", settings.http_addr).await?;
    let grpc_listener = bind("gRPC", settings.grpc_addr).await?;
    let addr = |l: &TcpListener| l.local_addr().map_err(|e| Fatal::Bind(e.to_string()));
    let bound = Listening {
        http: addr(&http_listener)?,
        grpc: addr(&grpc_listener)?,
    };
    let now = SystemClock.now();
    tracing::info!(
        issuer = app.issuer(),
        http_addr = %bound.http,
        grpc_addr = %bound.grpc,
        active_kid = %app.exchanger.keys.current().active(now).kid,
        issuers = app.exchanger.iam.current().issuers().len(),
        roles = app.exchanger.iam.current().roles().len(),
        "ext-authz started"
    );

    let (drain_tx, drain_rx) = watch::channel(false);
    let drained = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|d| *d).await;
    };
    let reloader = tokio::spawn(reload_loop(
        app.clone(),
        settings.reload_interval,
        drained(drain_rx.clone()),
    ));
    let mut http = tokio::spawn(crate::http::serve(
        http_listener,
        app.clone(),
        drained(drain_rx.clone()),
    ));
    let policy: Arc<dyn Policy> = app.clone();
    let mut grpc = tokio::spawn(authz::serve(
        grpc_listener,
        policy,
        authz_metrics,
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
    app.draining.store(true, Ordering::Relaxed);
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

async fn reload_loop(app: Arc<App>, every: Duration, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        let a = app.clone();
        // File reads and YAML parsing are blocking work.
        let _ = tokio::task::spawn_blocking(move || {
            let now = SystemClock.now();
            match a.exchanger.iam.reload() {
                Reload::Applied => a.metrics.reload("iam", "applied"),
                Reload::Rejected => a.metrics.reload("iam", "rejected"),
                Reload::Unchanged => {}
            }
            // Keys that leave the directory stay published this long after
            // they stop signing: other replicas' tokens may still be live.
            let max_lifetime = a
                .exchanger
                .iam
                .current()
                .issuers()
                .map(|i| i.token_expiry())
                .chain([DEFAULT_TOKEN_EXPIRY])
                .max()
                .unwrap_or(DEFAULT_TOKEN_EXPIRY)
                .as_secs();
            if a.exchanger.keys.reload(now, max_lifetime) {
                a.metrics.reload("keys", "applied");
            }
            a.exchanger.keys.tick(now);
        })
        .await;
    }
}

#[cfg(test)]
mod tests;

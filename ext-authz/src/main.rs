//! The ext-authz binary: settings, then both servers until SIGTERM/SIGINT,
//! then one drain for both. Exit codes: 0 after a clean stop, 64 for bad
//! settings or configuration (the message names the flag, file or field),
//! 69 when a listen address cannot be bound.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use ext_authz::app::App;
use ext_authz::authz::{self, AuthzMetrics, Policy};
use ext_authz::config::{Args, LogFormat, ProcessEnv, Settings};
use ext_authz::exchange::{ExchangeSettings, Exchanger};
use ext_authz::fetch::HttpFetcher;
use ext_authz::iam_store::{IamStore, Reload};
use ext_authz::issuers::{IssuerSettings, Issuers};
use ext_authz::metrics::Metrics;
use ext_authz::signing::KeyStore;
use mesh_auth_core::{Clock, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;

enum Fatal {
    Config(String),
    Bind(String),
}

fn main() -> ExitCode {
    let settings = match Settings::resolve(Args::parse(), &ProcessEnv) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ext-authz: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    init_logging(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ext-authz: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal::Config(msg)) => {
            tracing::error!("{msg}");
            eprintln!("ext-authz: {msg}");
            ExitCode::from(EX_USAGE)
        }
        Err(Fatal::Bind(msg)) => {
            tracing::error!("{msg}");
            eprintln!("ext-authz: {msg}");
            ExitCode::from(EX_UNAVAILABLE)
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

async fn bind(what: &str, addr: std::net::SocketAddr) -> Result<TcpListener, Fatal> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Fatal::Bind(format!("cannot listen for {what} on {addr}: {e}")))
}

async fn run(settings: Settings) -> Result<(), Fatal> {
    let leeway = settings.clock_skew.as_secs();
    let iam = IamStore::open(&settings.iam_dir).map_err(|e| Fatal::Config(e.to_string()))?;
    let keys = KeyStore::open(&settings.signing_key_dir, leeway)
        .map_err(|e| Fatal::Config(e.to_string()))?;
    let fetcher = HttpFetcher::new(settings.idp_timeout, settings.idp_ca_file.as_deref())
        .map_err(|e| Fatal::Config(e.to_string()))?;
    let issuers = Issuers::new(
        fetcher,
        IssuerSettings {
            refresh: settings.idp_jwks_refresh,
            min_refetch: settings.idp_min_refetch,
            max_stale: settings.idp_keys_max_age,
            leeway_seconds: leeway,
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
    let app =
        Arc::new(App::new(exchanger, metrics, registry).map_err(|e| Fatal::Config(e.to_string()))?);

    let http_listener = bind("HTTP", settings.http_addr).await?;
    let grpc_listener = bind("gRPC", settings.grpc_addr).await?;
    let (http_addr, grpc_addr) = (
        http_listener
            .local_addr()
            .map_err(|e| Fatal::Bind(e.to_string()))?,
        grpc_listener
            .local_addr()
            .map_err(|e| Fatal::Bind(e.to_string()))?,
    );
    tracing::info!(
        issuer = app.issuer(),
        %http_addr,
        %grpc_addr,
        active_kid = %app.exchanger.keys.current().active().kid,
        issuers = app.exchanger.iam.current().issuers().len(),
        roles = app.exchanger.iam.current().roles().len(),
        "ext-authz started"
    );
    // One machine-readable line, for scripts and tests that bind port 0.
    println!("listening http={http_addr} grpc={grpc_addr}");

    let (drain_tx, drain_rx) = watch::channel(false);
    let drained = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|d| *d).await;
    };

    let reloader = tokio::spawn(reload_loop(
        app.clone(),
        settings.reload_interval,
        drained(drain_rx.clone()),
    ));
    let grace = settings.shutdown_grace;
    let http = tokio::spawn(ext_authz::http::serve(
        http_listener,
        app.clone(),
        drained(drain_rx.clone()),
        grace,
    ));
    let policy: Arc<dyn Policy> = app.clone();
    let grpc_shutdown = drained(drain_rx.clone());
    let grpc = tokio::spawn(async move {
        match tokio::time::timeout(
            grace + Duration::from_secs(1),
            authz::serve(grpc_listener, policy, authz_metrics, grpc_shutdown),
        )
        .await
        {
            Ok(Ok(())) => tracing::info!("gRPC server drained"),
            Ok(Err(e)) => tracing::error!(error = %e, "gRPC server failed"),
            Err(_) => {
                tracing::warn!(grace = ?grace, "gRPC server: calls still open after the grace period; closing")
            }
        }
    });

    wait_for_signal().await;
    tracing::info!("shutdown signal: draining");
    app.draining.store(true, Ordering::Relaxed);
    let _ = drain_tx.send(true);
    let _ = tokio::join!(http, grpc, reloader);
    tracing::info!("ext-authz stopped");
    Ok(())
}

async fn reload_loop(app: Arc<App>, every: Duration, stop: impl std::future::Future<Output = ()>) {
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
            if a.exchanger.keys.reload(now) {
                a.metrics.reload("keys", "applied");
            }
            a.exchanger.keys.expire_retired(now);
        })
        .await;
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

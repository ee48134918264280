//! The ext-authz binary: settings, then both servers until SIGTERM/SIGINT,
//! then one drain for both ([`ext_authz::server`]). Exit codes: 0 after a
//! clean stop, 64 for bad settings or configuration (the message names the
//! flag, file or field), 69 when a listen address cannot be bound, 70 when
//! a server stopped on its own.

use std::process::ExitCode;

use clap::Parser;
use ext_authz::config::{Args, LogFormat, ProcessEnv, Settings};
use ext_authz::server::{self, Fatal};

const EX_USAGE: u8 = 64;
const EX_UNAVAILABLE: u8 = 69;
const EX_SOFTWARE: u8 = 70;

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
    // One machine-readable line, for scripts and tests that bind port 0.
    let listening = |l: server::Listening| println!("listening http={} grpc={}", l.http, l.grpc);
    let result = runtime.block_on(server::run(settings, wait_for_signal(), listening));
    let code = match &result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Fatal::Config(_)) => EX_USAGE,
        Err(Fatal::Bind(_)) => EX_UNAVAILABLE,
        Err(Fatal::Served(_)) => EX_SOFTWARE,
    };
    if let Err(e) = result {
        tracing::error!("{e}");
        eprintln!("ext-authz: {e}");
    }
    ExitCode::from(code)
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

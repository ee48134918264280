//! `make run`: the whole of faas-mesh-auth on 127.0.0.1 until Ctrl-C.
//!
//! Ports come from GATEWAY_PORT, GATEWAY_ADMIN_PORT, EXT_AUTHZ_HTTP_PORT,
//! EXT_AUTHZ_GRPC_PORT, OIDC_PORT and SIDECARS_ADMIN_PORT (defaults 8080,
//! 9901, 8081, 8082, 8083, 9902). IAM_DIR loads your own IAM objects instead
//! of the generated demo ones. State (the dev signing key, generated IAM
//! files, rendered Envoy configs) lives in STATE_DIR, default `.run/`.

use std::path::PathBuf;
use std::process::ExitCode;

use mesh_auth_tests::repo_root;
use mesh_auth_tests::stack::{Ports, Stack, StackOpts};

#[tokio::main]
async fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let ports = match Ports::from_vars(var) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("make run: {e:#}");
            return ExitCode::from(64);
        }
    };
    let state = var("STATE_DIR").map_or_else(|| repo_root().join(".run"), PathBuf::from);
    let mut opts = StackOpts::new(ports, state);
    opts.iam_dir = var("IAM_DIR").map(PathBuf::from);
    eprintln!(
        "starting faas-mesh-auth (state in {})...",
        opts.state_dir.display()
    );
    let stack = match Stack::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("make run: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", stack.walkthrough());
    println!("ext-authz's audit log follows:\n");
    // Show every decision as it happens, until Ctrl-C.
    let mut shown = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(300));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let log = stack.ext_authz().log();
                for line in log.lines().skip(shown) {
                    if line.contains("audit") {
                        println!("{line}");
                    }
                }
                shown = log.lines().count();
            }
        }
    }
    eprintln!("\nstopping...");
    stack.stop().await;
    eprintln!("stopped.");
    ExitCode::SUCCESS
}

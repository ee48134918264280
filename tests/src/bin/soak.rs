//! `make soak`: the whole local stack under mixed load and faults for
//! SOAK_MINUTES (default 10); writes SOAK_REPORT (default `bench/SOAK.md`)
//! and exits non-zero unless it passed. State, logs and the gateway's access
//! log go to SOAK_STATE_DIR (default `.run/soak`, emptied first).

use std::path::PathBuf;
use std::process::ExitCode;

use mesh_auth_tests::repo_root;
use mesh_auth_tests::soak::{self, SoakPlan};

#[tokio::main]
async fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let minutes = match var("SOAK_MINUTES").map(|m| m.parse::<u64>()) {
        None => 10,
        Some(Ok(m)) if m >= 1 => m,
        Some(_) => {
            eprintln!("make soak: SOAK_MINUTES must be a whole number of minutes, at least 1");
            return ExitCode::from(64);
        }
    };
    let report =
        var("SOAK_REPORT").map_or_else(|| repo_root().join("bench/SOAK.md"), PathBuf::from);
    let state = var("SOAK_STATE_DIR").map_or_else(|| repo_root().join(".run/soak"), PathBuf::from);
    // Fresh keys and IAM each run: the rotation's dated file names are
    // relative to now.
    if state.exists()
        && let Err(e) = std::fs::remove_dir_all(&state)
    {
        eprintln!("make soak: cannot empty {}: {e}", state.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "soak: {minutes} minutes; the report goes to {}",
        report.display()
    );
    let result = tokio::select! {
        r = soak::run(SoakPlan::long(minutes, state)) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("soak: interrupted");
            return ExitCode::FAILURE;
        }
    };
    match result {
        Ok(r) => {
            println!("{}", r.summary());
            if let Err(e) = std::fs::write(&report, r.markdown()) {
                eprintln!("make soak: cannot write {}: {e}", report.display());
                return ExitCode::FAILURE;
            }
            println!("report: {}", report.display());
            if r.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("make soak: the soak could not run: {e:#}");
            ExitCode::FAILURE
        }
    }
}

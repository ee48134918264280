//! A short soak (about 90 s) in `make test`: the whole stack with two
//! ext-authz replicas under load, through a key rotation that reaches them
//! at different times, an IAM reload with a broken file, and a replica
//! restart. It catches a server that dies after its first minute, and any
//! request those faults cost. `make soak` runs the long one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mesh_auth_tests::soak::{self, SoakPlan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_rides_out_faults_under_load() {
    let state = tempfile::Builder::new().prefix("soak-").tempdir().unwrap();
    let report = soak::run(SoakPlan::short(state.path().to_owned()))
        .await
        .unwrap();
    eprintln!("{}", report.summary());
    if !report.passed() {
        // The full record, with the faults' timeline and the counters.
        eprintln!("{}", report.markdown());
        // Keep the logs for whoever reads the failure.
        let kept = state.keep();
        panic!(
            "the short soak failed (logs in {}):\n  {}",
            kept.display(),
            report.reasons().join("\n  ")
        );
    }
}

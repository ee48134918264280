//! `explain` (owned by the offline-commands work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ExplainArgs {}

pub fn run(_: ExplainArgs) -> ExitCode {
    eprintln!("faas-mesh-auth explain: not built yet");
    ExitCode::FAILURE
}

//! `iam check` (owned by the offline-commands work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum IamCommand {
    /// Validate an IAM directory exactly as ext-authz loads it.
    Check { dir: std::path::PathBuf },
}

pub fn run(_: IamCommand) -> ExitCode {
    eprintln!("faas-mesh-auth iam check: not built yet");
    ExitCode::FAILURE
}

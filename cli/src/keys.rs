//! `keys` (owned by the offline-commands work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Write a new P-256 signing key into DIR.
    New { dir: std::path::PathBuf },
    /// Print the JWKS ext-authz would publish from DIR.
    Jwks { dir: std::path::PathBuf },
}

pub fn run(_: KeysCommand) -> ExitCode {
    eprintln!("faas-mesh-auth keys: not built yet");
    ExitCode::FAILURE
}

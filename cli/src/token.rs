//! `token` (owned by the login work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TokenArgs {}

pub fn run(_: TokenArgs) -> ExitCode {
    eprintln!("faas-mesh-auth token: not built yet");
    ExitCode::FAILURE
}

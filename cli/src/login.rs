//! `login` and `logout` (owned by the login work; placeholder until it lands).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct LoginArgs {}

#[derive(clap::Args)]
pub struct LogoutArgs {}

pub fn run_login(_: LoginArgs) -> ExitCode {
    eprintln!("faas-mesh-auth login: not built yet");
    ExitCode::FAILURE
}

pub fn run_logout(_: LogoutArgs) -> ExitCode {
    eprintln!("faas-mesh-auth logout: not built yet");
    ExitCode::FAILURE
}

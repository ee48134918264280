//! `faas-mesh-auth`: the people's and operators' command. It logs a person
//! or a machine in and writes faas-cli's own config, prints tokens for
//! scripts, explains why a request is allowed or denied with the engine
//! that enforces it, checks IAM directories as ext-authz loads them, and
//! makes and publishes signing keys.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod explain;
mod faas_config;
mod iam_check;
mod keys;
mod login;
mod oauth;
mod token;

#[derive(Parser)]
#[command(name = "faas-mesh-auth", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in at the IdP, exchange for an API token, write faas-cli's config.
    Login(login::LoginArgs),
    /// Remove one gateway's entry from faas-cli's config.
    Logout(login::LogoutArgs),
    /// Print a token for scripts: a function token, or the stored API token.
    Token(token::TokenArgs),
    /// Why a request is allowed or denied, by the engine that enforces it.
    Explain(explain::ExplainArgs),
    /// IAM objects (JwtIssuer, Policy, Role).
    #[command(subcommand)]
    Iam(iam_check::IamCommand),
    /// The signing keys ext-authz publishes and signs with.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Login(a) => login::run_login(a),
        Command::Logout(a) => login::run_logout(a),
        Command::Token(a) => token::run(a),
        Command::Explain(a) => explain::run(a),
        Command::Iam(c) => iam_check::run(c),
        Command::Keys(c) => keys::run(c),
    }
}

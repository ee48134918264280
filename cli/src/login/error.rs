//! The errors of `login`, `logout` and `token`, and their exit codes: the
//! one place they are chosen.

use std::process::ExitCode;

use crate::faas_config::ConfigError;
use crate::oauth::OauthError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Flags that do not fit together, or a value that is not valid.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Oauth(#[from] OauthError),
    #[error(
        "not logged in to {gateway}: no entry in {path} (run `faas-mesh-auth login --gateway {gateway}`)"
    )]
    NotLoggedIn { gateway: String, path: String },
    #[error("cannot read the subject token from stdin: {0}")]
    Stdin(std::io::Error),
}

impl CliError {
    /// 2 usage, 3 faas-cli's config, 4 the IdP or the sign-in, 5 the
    /// gateway, 6 the local callback listener.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Stdin(_) => 2,
            CliError::Config(_) | CliError::NotLoggedIn { .. } => 3,
            CliError::Oauth(e) => match e {
                OauthError::GatewayRefused { .. } => 5,
                OauthError::Unreachable { what, .. } if *what == "the gateway" => 5,
                OauthError::Listen { .. } => 6,
                _ => 4,
            },
        }
    }

    /// Print the message and give the exit code.
    pub fn report(&self, command: &str) -> ExitCode {
        eprintln!("faas-mesh-auth {command}: {self}");
        ExitCode::from(self.exit_code())
    }
}

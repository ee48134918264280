//! `iam check DIR`: load an IAM directory with ext-authz's own loader
//! ([`ext_authz::iam_store::load`]), so the verdict, the messages (file,
//! object, field) and the exit code (64, as ext-authz exits on bad
//! configuration) are the ones ext-authz would give at startup.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ext_authz::iam_store::{self, IamLoadError};

/// ext-authz's exit code for bad settings or configuration (`EX_USAGE`).
pub const EX_CONFIG: u8 = 64;

#[derive(clap::Subcommand)]
pub enum IamCommand {
    /// Validate an IAM directory exactly as ext-authz loads it.
    ///
    /// Exit 0 when ext-authz would load it (warnings go to stderr), 64 with
    /// ext-authz's own message when it would refuse to start.
    Check { dir: PathBuf },
}

pub fn run(cmd: IamCommand) -> ExitCode {
    match cmd {
        IamCommand::Check { dir } => match check(&dir) {
            Ok(summary) => {
                for w in &summary.warnings {
                    eprintln!("warning: IAM: {w}");
                }
                println!("{}", summary.line);
                ExitCode::SUCCESS
            }
            // The same words ext-authz prints after "ext-authz: ".
            Err(e) => {
                eprintln!("faas-mesh-auth: {e}");
                ExitCode::from(EX_CONFIG)
            }
        },
    }
}

/// What a directory that loads holds.
#[derive(Debug)]
pub struct Summary {
    pub line: String,
    pub warnings: Vec<String>,
}

pub fn check(dir: &Path) -> Result<Summary, IamLoadError> {
    let (config, _) = iam_store::load(dir)?;
    Ok(Summary {
        line: format!(
            "{}: OK: {} JwtIssuer(s), {} Policy(ies), {} Role(s) in namespace {}",
            dir.display(),
            config.issuers().len(),
            config.policies().len(),
            config.roles().len(),
            config.namespace()
        ),
        warnings: config.warnings(),
    })
}

#[cfg(test)]
mod tests;

//! `token`: a token for scripts, on stdout alone. `--function NS:NAME`
//! (repeatable, each an `audience`) exchanges a subject for a function
//! token; `--api` prints the stored API token. The subject is the API
//! token that `login` stored for the gateway, or `--subject-token`
//! (`-` reads it from stdin).

use std::io::Read as _;
use std::process::ExitCode;

use crate::login::{CliError, GatewayArg, load_config};
use crate::oauth::{self, Http, TokenKind};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("kind").required(true).args(["function", "api"])))]
pub struct TokenArgs {
    #[command(flatten)]
    pub gateway: GatewayArg,
    /// A function token for NS:NAME; repeat to allow several (each becomes
    /// an `audience` of the exchange).
    #[arg(long, value_name = "NS:NAME")]
    pub function: Vec<String>,
    /// Print the API token stored in faas-cli's config for the gateway.
    #[arg(long, conflicts_with_all = ["function", "subject_token"])]
    pub api: bool,
    /// Exchange this token instead of the stored one (`-`: read stdin).
    #[arg(long)]
    pub subject_token: Option<String>,
}

pub fn run(args: TokenArgs) -> ExitCode {
    match token(&args) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => e.report("token"),
    }
}

/// `NS:NAME`, both parts non-empty (patterns such as `dev:*` allowed: the
/// gateway decides what they attenuate to).
fn check_function(f: &str) -> Result<(), CliError> {
    match f.split_once(':') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains(':') => Ok(()),
        _ => Err(CliError::Usage(format!(
            "--function {f:?} is not NS:NAME (for example openfaas-fn:env)"
        ))),
    }
}

fn token(args: &TokenArgs) -> Result<String, CliError> {
    let gateway = args.gateway.normalized()?;
    for f in &args.function {
        check_function(f)?;
    }
    let subject = match args.subject_token.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(CliError::Stdin)?;
            s.trim().to_owned()
        }
        Some(t) => t.trim().to_owned(),
        None => {
            let config = load_config()?;
            let entry = config.lookup(&gateway).filter(|e| !e.token.is_empty());
            match entry {
                Some(e) if e.auth == crate::faas_config::OAUTH2 => e.token,
                Some(e) => {
                    return Err(CliError::Usage(format!(
                        "the entry for {gateway} in {} is `auth: {}`, not an OAuth token: run `faas-mesh-auth login --gateway {gateway}`",
                        config.path().display(),
                        e.auth
                    )));
                }
                None => {
                    return Err(CliError::NotLoggedIn {
                        gateway,
                        path: config.path().display().to_string(),
                    });
                }
            }
        }
    };
    if subject.is_empty() {
        return Err(CliError::Usage("the subject token is empty".to_owned()));
    }
    if args.api {
        return Ok(subject);
    }
    // faas-cli sends every subject as an ID token; the gateway accepts its
    // own API tokens that way.
    let fn_token = oauth::exchange(
        &Http::default(),
        &gateway,
        &subject,
        TokenKind::IdToken,
        Some(&args.function),
    )?;
    Ok(fn_token.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert!(check_function("openfaas-fn:env").is_ok());
        assert!(check_function("dev:*").is_ok());
        for bad in ["env", ":env", "dev:", "a:b:c"] {
            assert!(check_function(bad).is_err(), "{bad}");
        }
    }
}

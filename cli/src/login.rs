//! `login` and `logout`: sign in at the IdP (a person in a browser, a
//! person on a device, or a machine with a secret), exchange what the IdP
//! gives for an OpenFaaS API token at `GATEWAY/oauth/token`, and store it
//! in faas-cli's config as faas-cli reads it.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::faas_config::{self, FaasConfig};
use crate::oauth::{self, Claims, Http, TokenKind};

mod error;

pub use error::CliError;

/// faas-cli's default gateway.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";
const DEFAULT_PEOPLE_SCOPE: &str = "openid email profile";

/// The gateway flag every command shares, read as faas-cli reads it.
#[derive(clap::Args, Debug, Clone)]
pub struct GatewayArg {
    /// The OpenFaaS gateway (lowercased and without a trailing `/`, as
    /// faas-cli looks it up).
    #[arg(long, short = 'g', env = "OPENFAAS_URL", default_value = DEFAULT_GATEWAY)]
    pub gateway: String,
}

impl GatewayArg {
    pub fn normalized(&self) -> Result<String, CliError> {
        let g = faas_config::normalize_gateway(&self.gateway);
        match url::Url::parse(&g) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(g),
            _ => Err(CliError::Usage(format!(
                "--gateway {:?} is not an http(s) URL",
                self.gateway
            ))),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub gateway: GatewayArg,
    /// The IdP's issuer URL; its endpoints come from OIDC discovery.
    #[arg(long, env = "FAAS_MESH_AUTH_ISSUER")]
    pub issuer: String,
    /// The client registered at the IdP for this command (or the machine).
    #[arg(long, env = "FAAS_MESH_AUTH_CLIENT_ID")]
    pub client_id: String,
    /// A machine's secret: use the client-credentials grant. Prefer the
    /// variable: arguments are visible to every user in `ps`.
    #[arg(
        long,
        env = "FAAS_MESH_AUTH_CLIENT_SECRET",
        hide_env_values = true,
        conflicts_with = "device"
    )]
    pub client_secret: Option<String>,
    /// Scopes to ask for (people: default "openid email profile").
    #[arg(long)]
    pub scope: Option<String>,
    /// The `audience` some IdPs (Auth0) need to issue a token for the gateway.
    #[arg(long)]
    pub audience: Option<String>,
    /// Sign in on another device: the device authorization grant.
    #[arg(long)]
    pub device: bool,
    /// Print the sign-in address instead of opening a browser.
    #[arg(long, conflicts_with = "device")]
    pub no_browser: bool,
    /// How long to wait for the browser to come back, in seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// The loopback port for the sign-in callback (0: any free port; set
    /// it when the IdP only accepts one registered redirect URI).
    #[arg(long, default_value_t = 0)]
    pub callback_port: u16,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub gateway: GatewayArg,
}

pub fn run_login(args: LoginArgs) -> ExitCode {
    match login(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report("login"),
    }
}

pub fn run_logout(args: LogoutArgs) -> ExitCode {
    match logout(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report("logout"),
    }
}

/// faas-cli's config, loaded and checked before any sign-in, so a file we
/// could not write back fails first and costs the user nothing.
pub fn load_config() -> Result<FaasConfig, CliError> {
    let path = faas_config::config_path(&faas_config::Env::from_process())?;
    Ok(FaasConfig::load(&path)?)
}

fn login(args: &LoginArgs) -> Result<(), CliError> {
    let gateway = args.gateway.normalized()?;
    let config = load_config()?;
    let http = Http::default();
    let endpoints = oauth::discover(&http, &args.issuer)?;

    let (subject, kind) = if let Some(secret) =
        args.client_secret.as_deref().filter(|s| !s.is_empty())
    {
        let token = oauth::client_credentials(
            &http,
            &endpoints,
            &args.client_id,
            secret,
            args.scope.as_deref(),
            args.audience.as_deref(),
        )?;
        (token, TokenKind::AccessToken)
    } else {
        let scope = args.scope.as_deref().unwrap_or(DEFAULT_PEOPLE_SCOPE);
        if !scope.split_whitespace().any(|s| s == "openid") {
            return Err(CliError::Usage(format!(
                "--scope {scope:?} must include `openid`: a person's login exchanges the ID token"
            )));
        }
        let token = if args.device {
            oauth::device_grant(
                &http,
                &endpoints,
                &args.client_id,
                scope,
                args.audience.as_deref(),
            )?
        } else {
            oauth::auth_code(
                &http,
                &endpoints,
                &oauth::AuthCodeOpts {
                    client_id: &args.client_id,
                    scope,
                    audience: args.audience.as_deref(),
                    port: args.callback_port,
                    open_browser: !args.no_browser,
                    timeout: Duration::from_secs(args.timeout),
                },
            )?
        };
        (token, TokenKind::IdToken)
    };

    let api = oauth::exchange(&http, &gateway, &subject, kind, None)?;
    // The file as it is now: the sign-in may have taken minutes.
    FaasConfig::update(config.path(), |c| {
        c.set_oauth2(&gateway, &api.access_token);
        true
    })?;
    print_identity(&gateway, &api.access_token, api.expires_in, config.path());
    Ok(())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn print_identity(gateway: &str, token: &str, expires_in: Option<u64>, path: &Path) {
    let claims = Claims::read(token).unwrap_or_default();
    println!(
        "Logged in to {gateway} as {}",
        claims.str("sub").unwrap_or("(the token names no subject)")
    );
    let policies = claims.strings("policy");
    if !policies.is_empty() {
        println!("  policies: {}", policies.join(", "));
    }
    let now = now();
    if let Some(exp) = claims.exp().or_else(|| expires_in.map(|s| now + s)) {
        println!(
            "  expires:  {} ({})",
            oauth::jwt::utc(exp),
            oauth::jwt::until(exp, now)
        );
    }
    println!(
        "  saved in: {} (faas-cli uses it for {gateway})",
        path.display()
    );
}

fn logout(args: &LogoutArgs) -> Result<(), CliError> {
    let gateway = args.gateway.normalized()?;
    let config = load_config()?;
    if !FaasConfig::update(config.path(), |c| c.remove(&gateway) > 0)? {
        eprintln!(
            "Not logged in to {gateway}: {} has no entry for it; nothing changed.",
            config.path().display()
        );
        return Ok(());
    }
    println!(
        "Logged out of {gateway}: its entry is gone from {}.",
        config.path().display()
    );
    Ok(())
}

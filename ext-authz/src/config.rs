//! Settings: command-line flags, with environment variables as fallbacks
//! and then defaults. Every variable is declared once below. Resolution
//! reads the environment through [`Env`], so tests pass a map instead of
//! mutating the process environment. Invalid settings stop the process
//! with exit code 64 (`EX_USAGE`) and a message naming the flag.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mesh_auth_core::iam::parse_go_duration;

pub const ENV_ISSUER: &str = "EXT_AUTHZ_ISSUER";
pub const ENV_HTTP_ADDR: &str = "EXT_AUTHZ_HTTP_ADDR";
pub const ENV_GRPC_ADDR: &str = "EXT_AUTHZ_GRPC_ADDR";
pub const ENV_IAM_DIR: &str = "EXT_AUTHZ_IAM_DIR";
pub const ENV_KEY_DIR: &str = "EXT_AUTHZ_SIGNING_KEY_DIR";
pub const ENV_RELOAD_INTERVAL: &str = "EXT_AUTHZ_RELOAD_INTERVAL";
pub const ENV_IDP_TIMEOUT: &str = "EXT_AUTHZ_IDP_TIMEOUT";
pub const ENV_IDP_CA_FILE: &str = "EXT_AUTHZ_IDP_CA_FILE";
pub const ENV_IDP_JWKS_REFRESH: &str = "EXT_AUTHZ_IDP_JWKS_REFRESH";
pub const ENV_IDP_MIN_REFETCH: &str = "EXT_AUTHZ_IDP_MIN_REFETCH";
pub const ENV_IDP_KEYS_MAX_AGE: &str = "EXT_AUTHZ_IDP_KEYS_MAX_AGE";
pub const ENV_CLOCK_SKEW: &str = "EXT_AUTHZ_CLOCK_SKEW";
pub const ENV_PAST_SUBJECT_EXPIRY: &str = "EXT_AUTHZ_ALLOW_PAST_SUBJECT_EXPIRY";
pub const ENV_SHUTDOWN_GRACE: &str = "EXT_AUTHZ_SHUTDOWN_GRACE";
pub const ENV_LOG_FORMAT: &str = "EXT_AUTHZ_LOG_FORMAT";
pub const ENV_LOG: &str = "EXT_AUTHZ_LOG";
pub const ENV_JWKS_URI: &str = "EXT_AUTHZ_JWKS_URI";
pub const ENV_KEY_PUBLISH_DELAY: &str = "EXT_AUTHZ_KEY_PUBLISH_DELAY";

/// `--key-publish-delay` when not given (also `faas-mesh-auth keys new`'s
/// default lead time).
pub const DEFAULT_KEY_PUBLISH_DELAY: &str = "10m";

/// Where environment variables come from.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string())
    }
}

/// The flags. Each falls back to the environment variable in its help.
#[derive(Debug, Parser, Default)]
#[command(
    name = "ext-authz",
    version,
    about = "faas-mesh-auth: token exchange, JWKS and Envoy ext_authz for OpenFaaS functions"
)]
pub struct Args {
    /// Our issuer URL: the gateway's public URL, the `iss` and `aud` of every
    /// token we sign [env: EXT_AUTHZ_ISSUER] (required)
    #[arg(long)]
    pub issuer: Option<String>,
    /// HTTP listen address: /oauth/token, /.well-known/*, /healthz, /readyz,
    /// /metrics [env: EXT_AUTHZ_HTTP_ADDR] [default: 0.0.0.0:8080]
    #[arg(long)]
    pub http_addr: Option<String>,
    /// gRPC listen address: envoy.service.auth.v3.Authorization and
    /// grpc.health.v1 [env: EXT_AUTHZ_GRPC_ADDR] [default: 0.0.0.0:9000]
    #[arg(long)]
    pub grpc_addr: Option<String>,
    /// Directory of JwtIssuer, Policy and Role YAML files (a mounted
    /// ConfigMap) [env: EXT_AUTHZ_IAM_DIR] [default: /etc/faas-mesh-auth/iam]
    #[arg(long)]
    pub iam_dir: Option<PathBuf>,
    /// Directory of P-256 PEM signing keys (a mounted Secret); a file named
    /// by a UTC date or time (2026-12-02.pem, 2026-12-02T1530Z.pem) signs
    /// from then on [env: EXT_AUTHZ_SIGNING_KEY_DIR]
    /// [default: /var/run/faas-mesh-auth/keys]
    #[arg(long)]
    pub signing_key_dir: Option<PathBuf>,
    /// A key added while running signs no sooner than this after it was
    /// first seen, whatever its name's time: long enough for every replica
    /// (the kubelet's Secret sync) and every filter (its refresh_seconds) to
    /// have it [env: EXT_AUTHZ_KEY_PUBLISH_DELAY] [default: 10m]
    #[arg(long)]
    pub key_publish_delay: Option<String>,
    /// How often the IAM and key directories are checked for changes
    /// [env: EXT_AUTHZ_RELOAD_INTERVAL] [default: 5s]
    #[arg(long)]
    pub reload_interval: Option<String>,
    /// Timeout for each request to an identity provider
    /// [env: EXT_AUTHZ_IDP_TIMEOUT] [default: 5s]
    #[arg(long)]
    pub idp_timeout: Option<String>,
    /// Extra CA certificates (PEM) to trust for identity providers, such as
    /// the Kubernetes API server's [env: EXT_AUTHZ_IDP_CA_FILE]
    #[arg(long)]
    pub idp_ca_file: Option<PathBuf>,
    /// Refresh an identity provider's keys when older than this
    /// [env: EXT_AUTHZ_IDP_JWKS_REFRESH] [default: 5m]
    #[arg(long)]
    pub idp_jwks_refresh: Option<String>,
    /// At most one refetch per provider this often, on unknown kids
    /// [env: EXT_AUTHZ_IDP_MIN_REFETCH] [default: 30s]
    #[arg(long)]
    pub idp_min_refetch: Option<String>,
    /// Never use a provider's keys older than this
    /// [env: EXT_AUTHZ_IDP_KEYS_MAX_AGE] [default: 24h]
    #[arg(long)]
    pub idp_keys_max_age: Option<String>,
    /// Leeway for exp, nbf and iat [env: EXT_AUTHZ_CLOCK_SKEW] [default: 30s]
    #[arg(long)]
    pub clock_skew: Option<String>,
    /// Issue tokens that outlive the exchanged subject token
    /// [env: EXT_AUTHZ_ALLOW_PAST_SUBJECT_EXPIRY=true]
    #[arg(long)]
    pub allow_past_subject_expiry: bool,
    /// How long in-flight requests may take to finish on SIGTERM
    /// [env: EXT_AUTHZ_SHUTDOWN_GRACE] [default: 20s]
    #[arg(long)]
    pub shutdown_grace: Option<String>,
    /// Log format: text or json [env: EXT_AUTHZ_LOG_FORMAT] [default: text]
    #[arg(long)]
    pub log_format: Option<String>,
    /// The jwks_uri advertised in the discovery document, when verifiers
    /// cannot reach `<issuer>/.well-known/jwks.json` (e.g. watchdogs inside
    /// the cluster) [env: EXT_AUTHZ_JWKS_URI]
    #[arg(long)]
    pub jwks_uri: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub iam_dir: PathBuf,
    pub signing_key_dir: PathBuf,
    pub key_publish_delay: Duration,
    pub reload_interval: Duration,
    pub idp_timeout: Duration,
    pub idp_ca_file: Option<PathBuf>,
    pub idp_jwks_refresh: Duration,
    pub idp_min_refetch: Duration,
    pub idp_keys_max_age: Duration,
    pub clock_skew: Duration,
    pub allow_past_subject_expiry: bool,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// `tracing` filter directives, from EXT_AUTHZ_LOG (default `info`).
    pub log_filter: String,
    /// Advertised jwks_uri; `<issuer>/.well-known/jwks.json` when unset.
    pub jwks_uri: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--{flag} ({env}): {problem}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub env: &'static str,
    pub problem: String,
}

impl Settings {
    pub fn resolve(args: Args, env: &dyn Env) -> Result<Settings, ConfigError> {
        let pick = |flag: Option<String>, name: &str| {
            flag.filter(|s| !s.is_empty()).or_else(|| env.var(name))
        };
        let err = |flag: &'static str, env: &'static str, problem: String| ConfigError {
            flag,
            env,
            problem,
        };

        let issuer = pick(args.issuer, ENV_ISSUER).ok_or_else(|| {
            err(
                "issuer",
                ENV_ISSUER,
                "required: the gateway's public URL, e.g. https://gateway.example.com".into(),
            )
        })?;
        let issuer = issuer.trim_end_matches('/').to_owned();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) || issuer.len() < 10 {
            return Err(err(
                "issuer",
                ENV_ISSUER,
                format!("{issuer:?} is not an http(s) URL"),
            ));
        }
        let addr =
            |flag: &'static str, env_name: &'static str, value: Option<String>, default: &str| {
                let v = pick(value, env_name).unwrap_or_else(|| default.to_owned());
                v.parse::<SocketAddr>().map_err(|_| {
                    err(
                        flag,
                        env_name,
                        format!("{v:?} is not host:port (e.g. 0.0.0.0:8080)"),
                    )
                })
            };
        let dur =
            |flag: &'static str, env_name: &'static str, value: Option<String>, default: &str| {
                let v = pick(value, env_name).unwrap_or_else(|| default.to_owned());
                parse_go_duration(&v).map_err(|e| err(flag, env_name, format!("{v:?}: {e}")))
            };
        let log_format = match pick(args.log_format, ENV_LOG_FORMAT).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "log-format",
                    ENV_LOG_FORMAT,
                    format!("{other:?}: use text or json"),
                ));
            }
        };
        let allow_past = args.allow_past_subject_expiry
            || match env.var(ENV_PAST_SUBJECT_EXPIRY).as_deref() {
                None | Some("false" | "0") => false,
                Some("true" | "1") => true,
                Some(other) => {
                    return Err(err(
                        "allow-past-subject-expiry",
                        ENV_PAST_SUBJECT_EXPIRY,
                        format!("{other:?}: use true or false"),
                    ));
                }
            };
        let settings = Settings {
            issuer,
            http_addr: addr("http-addr", ENV_HTTP_ADDR, args.http_addr, "0.0.0.0:8080")?,
            grpc_addr: addr("grpc-addr", ENV_GRPC_ADDR, args.grpc_addr, "0.0.0.0:9000")?,
            iam_dir: args
                .iam_dir
                .or_else(|| env.var(ENV_IAM_DIR).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/etc/faas-mesh-auth/iam")),
            signing_key_dir: args
                .signing_key_dir
                .or_else(|| env.var(ENV_KEY_DIR).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/var/run/faas-mesh-auth/keys")),
            key_publish_delay: dur(
                "key-publish-delay",
                ENV_KEY_PUBLISH_DELAY,
                args.key_publish_delay,
                DEFAULT_KEY_PUBLISH_DELAY,
            )?,
            reload_interval: dur(
                "reload-interval",
                ENV_RELOAD_INTERVAL,
                args.reload_interval,
                "5s",
            )?,
            idp_timeout: dur("idp-timeout", ENV_IDP_TIMEOUT, args.idp_timeout, "5s")?,
            idp_ca_file: args
                .idp_ca_file
                .or_else(|| env.var(ENV_IDP_CA_FILE).map(PathBuf::from)),
            idp_jwks_refresh: dur(
                "idp-jwks-refresh",
                ENV_IDP_JWKS_REFRESH,
                args.idp_jwks_refresh,
                "5m",
            )?,
            idp_min_refetch: dur(
                "idp-min-refetch",
                ENV_IDP_MIN_REFETCH,
                args.idp_min_refetch,
                "30s",
            )?,
            idp_keys_max_age: dur(
                "idp-keys-max-age",
                ENV_IDP_KEYS_MAX_AGE,
                args.idp_keys_max_age,
                "24h",
            )?,
            clock_skew: dur("clock-skew", ENV_CLOCK_SKEW, args.clock_skew, "30s")?,
            allow_past_subject_expiry: allow_past,
            shutdown_grace: dur(
                "shutdown-grace",
                ENV_SHUTDOWN_GRACE,
                args.shutdown_grace,
                "20s",
            )?,
            log_format,
            log_filter: env.var(ENV_LOG).unwrap_or_else(|| "info".into()),
            jwks_uri: String::new(),
        };
        let mut settings = settings;
        settings.jwks_uri = match pick(args.jwks_uri, ENV_JWKS_URI) {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => u,
            Some(u) => {
                return Err(err(
                    "jwks-uri",
                    ENV_JWKS_URI,
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
            None => format!("{}/.well-known/jwks.json", settings.issuer),
        };
        if settings.reload_interval < Duration::from_millis(100) {
            return Err(err(
                "reload-interval",
                ENV_RELOAD_INTERVAL,
                "must be at least 100ms".into(),
            ));
        }
        if settings.clock_skew > Duration::from_secs(600) {
            return Err(err(
                "clock-skew",
                ENV_CLOCK_SKEW,
                "must be at most 10m".into(),
            ));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests;

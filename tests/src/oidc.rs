//! A real OpenID provider: the npm package `oidc-provider` run by
//! `tests/oidc/provider.mjs` under Node, with one client-credentials client
//! that gets JWT access tokens (RS256 by default, or ES256). And
//! [`jose_verify`], which checks a token with the `jose` npm package: a JOSE
//! implementation independent of ours.
//!
//! The provider binds `127.0.0.1:0` and prints `issuer=http://127.0.0.1:PORT`.
//! Its packages come from `npm ci` in `tests/oidc` (`make setup`). Dropping
//! the handle kills and reaps the process.

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::client::{HttpResponse, get, request};
use crate::ext_authz::{LoggedChild, form_encode};
use crate::paths::repo_root;

/// The Node binary to run (default: `node` on `PATH`).
pub const NODE_BIN_ENV: &str = "NODE_BIN";

const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on one `verify.mjs` run.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(20);

/// `<repo>/tests/oidc`: the provider and verifier scripts and their
/// `node_modules`.
pub fn oidc_dir() -> PathBuf {
    repo_root().join("tests/oidc")
}

fn node() -> String {
    std::env::var(NODE_BIN_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "node".to_owned())
}

/// The npm packages must be installed; say how if they are not.
fn require_node_modules() -> Result<PathBuf> {
    let dir = oidc_dir();
    for package in ["oidc-provider", "jose"] {
        let manifest = dir.join("node_modules").join(package).join("package.json");
        if !manifest.is_file() {
            bail!(
                "{} is missing: run `make setup` (it runs `npm ci` in {})",
                manifest.display(),
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// How to start the provider. The defaults are the script's own.
#[derive(Debug, Clone)]
pub struct OidcOpts {
    pub client_id: String,
    pub client_secret: String,
    /// `aud` of the access tokens.
    pub audience: String,
    /// `RS256` (what most IdPs sign with) or `ES256`.
    pub alg: String,
    /// Access-token lifetime.
    pub ttl: Duration,
    /// Listen port; 0 for any.
    pub port: u16,
}

impl Default for OidcOpts {
    fn default() -> Self {
        OidcOpts {
            client_id: "openfaas-demo".to_owned(),
            client_secret: "dev-secret-not-for-production".to_owned(),
            audience: "openfaas".to_owned(),
            alg: "RS256".to_owned(),
            ttl: Duration::from_secs(3600),
            port: 0,
        }
    }
}

/// A running provider.
pub struct OidcProvider {
    proc: LoggedChild,
    issuer: String,
    opts: OidcOpts,
}

impl OidcProvider {
    /// Start `node tests/oidc/provider.mjs` and wait for its issuer line.
    pub async fn start(opts: OidcOpts) -> Result<Self> {
        let dir = require_node_modules()?;
        let logs = tempfile::Builder::new()
            .prefix("oidc-provider-")
            .tempdir()?;
        let mut cmd = Command::new(node());
        cmd.current_dir(&dir)
            .arg(dir.join("provider.mjs"))
            .args(["--port", &opts.port.to_string(), "--host", "127.0.0.1"])
            .args(["--client-id", &opts.client_id])
            .args(["--audience", &opts.audience])
            .args(["--alg", &opts.alg])
            .args(["--ttl", &opts.ttl.as_secs().max(1).to_string()])
            // The secret through the environment, not the command line.
            .env("OIDC_CLIENT_SECRET", &opts.client_secret)
            .env_remove("DEBUG");
        let mut proc = LoggedChild::spawn("oidc-provider", cmd, logs)
            .context("is Node installed? (`node`, or set $NODE_BIN)")?;
        let line = proc.wait_for_stdout_line("issuer=", START_TIMEOUT).await?;
        let issuer = line
            .strip_prefix("issuer=")
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("unexpected provider line {line:?}"))?;
        Ok(OidcProvider { proc, issuer, opts })
    }

    /// `http://127.0.0.1:<port>`: its `iss`, and where discovery starts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The demo client's secret (a development value, printed by `make run`).
    pub fn client_secret(&self) -> &str {
        &self.opts.client_secret
    }

    pub fn client_id(&self) -> &str {
        &self.opts.client_id
    }

    pub fn audience(&self) -> &str {
        &self.opts.audience
    }

    pub fn alg(&self) -> &str {
        &self.opts.alg
    }

    /// `GET /.well-known/openid-configuration`.
    pub async fn discovery(&self) -> Result<Value> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let resp = get(&url, &[]).await?;
        if resp.status != 200 {
            bail!("GET {url}: {} {}", resp.status, resp.body);
        }
        resp.json()
    }

    /// The discovery document's `token_endpoint`.
    pub async fn token_endpoint(&self) -> Result<String> {
        self.discovered("token_endpoint").await
    }

    /// The discovery document's `jwks_uri`.
    pub async fn jwks_uri(&self) -> Result<String> {
        self.discovered("jwks_uri").await
    }

    async fn discovered(&self, field: &str) -> Result<String> {
        self.discovery()
            .await?
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("discovery document has no {field}"))
    }

    /// `POST` `fields`, form-encoded, to the discovered token endpoint.
    pub async fn token_request(&self, fields: &[(&str, &str)]) -> Result<HttpResponse> {
        request(
            "POST",
            &self.token_endpoint().await?,
            &[("content-type", "application/x-www-form-urlencoded")],
            form_encode(fields),
        )
        .await
    }

    /// A client-credentials access token (a JWT), requested as the OpenFaaS
    /// docs do: `client_id`, `client_secret`, `scope` and `grant_type` in a
    /// form body.
    pub async fn client_credentials_token(&self, scope: &str) -> Result<String> {
        let resp = self
            .token_request(&[
                ("client_id", &self.opts.client_id),
                ("client_secret", &self.opts.client_secret),
                ("scope", scope),
                ("grant_type", "client_credentials"),
            ])
            .await?;
        if resp.status != 200 {
            bail!(
                "client_credentials at {}: {} {}\n{}",
                self.issuer,
                resp.status,
                resp.body,
                self.proc.describe()
            );
        }
        resp.json()?
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("token response has no access_token: {}", resp.body))
    }

    /// Rotate the signing key, as an IdP does: a new key signs from now on,
    /// and the old ones stay in the JWKS. Returns the new `kid`.
    pub async fn rotate_key(&self) -> Result<String> {
        let url = format!("{}/test/rotate-key", self.issuer);
        let resp = request("POST", &url, &[], Vec::new()).await?;
        if resp.status != 200 {
            bail!("POST {url}: {} {}", resp.status, resp.body);
        }
        resp.json()?
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("rotation answered no kid: {}", resp.body))
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        self.proc.stderr()
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// SIGTERM and wait for it to exit: from then on connections to its
    /// port are refused.
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        self.proc.terminate(STOP_TIMEOUT).await
    }
}

/// What [`jose_verify`] checks a token against.
#[derive(Debug, Clone)]
pub struct JoseCheck<'a> {
    pub jwks_url: &'a str,
    pub issuer: &'a str,
    pub audience: &'a str,
    /// The only algorithm accepted.
    pub alg: &'a str,
}

/// Verify `token` with the `jose` npm package (`tests/oidc/verify.mjs`):
/// signature against the keys at `jwks_url`, then `iss`, `aud`, `exp`,
/// `nbf` and the algorithm. Returns `{"header": …, "payload": …}`; an
/// error carries jose's code and message.
pub async fn jose_verify(token: &str, check: &JoseCheck<'_>) -> Result<Value> {
    let dir = require_node_modules()?;
    let mut child = tokio::process::Command::new(node())
        .current_dir(&dir)
        .arg(dir.join("verify.mjs"))
        .args(["--jwks", check.jwks_url])
        .args(["--issuer", check.issuer])
        .args(["--audience", check.audience])
        .args(["--alg", check.alg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node verify.mjs")?;
    // The token on stdin, not the command line.
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("verify.mjs has no stdin"))?;
    stdin.write_all(token.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(VERIFY_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("verify.mjs did not finish within {VERIFY_TIMEOUT:?}"))??;
    if !out.status.success() {
        bail!(
            "jose refused the token ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "verify.mjs printed no JSON: {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What OpenFaaS's watchdog (with `jwt_auth=true`) would answer for `token`
/// at function `namespace:name`, given the gateway's discovery URL: status
/// and reason, e.g. `(200, "ok")`. Runs `tests/oidc/watchdog-check.mjs`.
pub async fn watchdog_check(
    discovery_url: &str,
    token: &str,
    namespace: &str,
    name: &str,
) -> Result<(u16, String)> {
    let dir = require_node_modules()?;
    let mut child = tokio::process::Command::new(node())
        .current_dir(&dir)
        .arg(dir.join("watchdog-check.mjs"))
        .args([
            "--discovery",
            discovery_url,
            "--namespace",
            namespace,
            "--name",
            name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node watchdog-check.mjs")?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("watchdog-check.mjs has no stdin"))?;
    stdin.write_all(token.as_bytes()).await?;
    drop(stdin);
    let out = tokio::time::timeout(VERIFY_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow!("watchdog-check.mjs did not finish within {VERIFY_TIMEOUT:?}"))??;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        bail!(
            "watchdog-check.mjs failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let (status, reason) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    let status = status
        .parse()
        .with_context(|| format!("watchdog-check.mjs printed {text:?}"))?;
    Ok((status, reason.to_owned()))
}

//! The whole system on one machine: what `make run` starts and what the
//! end-to-end test drives, the same way.
//!
//! ```text
//! client ─▶ gateway Envoy :8080 ─┬─ /oauth/token, /.well-known/* ─▶ ext-authz HTTP :8081
//!                                ├─ /system/* ─ ext_authz gRPC :8082 ─▶ gateway API (a stand-in echo)
//!                                └─ /function/NAME[.NS], /async-function/… ─▶ that function's sidecar
//! sidecars Envoy: one listener per function ─[wasm filter]─▶ the function (an echo server)
//!                 every filter fetches keys from ext-authz's JWKS
//! OpenID provider (oidc-provider) :8083: client-credentials tokens to exchange
//! ```
//!
//! The Envoy configuration comes from the templates in `envoy/`, filled in
//! here. IAM objects come from a folder of the user's, or are generated: a
//! JwtIssuer for the local provider, and the Policy and Role from the
//! OpenFaaS docs bound to the demo client. The signing key is generated on
//! first run into the state folder (git-ignored) and kept.
//!
//! ext-authz may run as several replicas ([`StackOpts::replicas`]), as in a
//! cluster: they share the IAM folder (one ConfigMap) and each has its own
//! key folder (the same Secret, which the kubelet delivers to each pod at
//! its own time). Every Envoy cluster that reaches ext-authz lists every
//! replica, with health checks and retries (`envoy/`), so one replica
//! restarting ([`Stack::restart_ext_authz`]) costs no request. `make run`
//! runs one replica on its fixed ports, so the walkthrough has one address
//! to print; `make soak` runs two on free ports. With
//! [`StackOpts::idp_proxy`], ext-authz reaches the IdP through a
//! [`FaultProxy`] (the JwtIssuer's `issInternal`), so a test can cut it off.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::echo::EchoUpstream;
use crate::envoy::Envoy;
use crate::ext_authz::{ExtAuthz, ExtAuthzOpts, PemKey};
use crate::fault_proxy::FaultProxy;
use crate::oidc::{OidcOpts, OidcProvider};
use crate::paths::{filter_wasm, repo_root};

/// A sample function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub namespace: &'static str,
    pub name: &'static str,
    /// Behind the wasm filter (the pod opted in), or not.
    pub auth: bool,
}

impl Function {
    pub fn id(&self) -> String {
        format!("{}:{}", self.namespace, self.name)
    }

    /// The name Envoy listeners and clusters use.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.namespace, self.name)
    }

    /// The gateway path faas-cli uses: `/function/NAME.NAMESPACE`.
    pub fn path(&self) -> String {
        format!("/function/{}.{}", self.name, self.namespace)
    }
}

/// The functions of the local stack. `staging:env` lies outside the docs'
/// policy, to show a 403; `nodeinfo` has not opted in.
pub const FUNCTIONS: [Function; 4] = [
    Function {
        namespace: "openfaas-fn",
        name: "env",
        auth: true,
    },
    Function {
        namespace: "dev",
        name: "env",
        auth: true,
    },
    Function {
        namespace: "staging",
        name: "env",
        auth: true,
    },
    Function {
        namespace: "openfaas-fn",
        name: "nodeinfo",
        auth: false,
    },
];

/// Ports the user can reach. 0 means "any free port". Internal hops
/// (sidecar listeners, the functions, the gateway API stand-in) always use
/// free ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub gateway: u16,
    pub gateway_admin: u16,
    pub ext_authz_http: u16,
    pub ext_authz_grpc: u16,
    pub oidc: u16,
    pub sidecars_admin: u16,
}

/// Each port's environment variable and default, for `make run`.
pub const PORT_VARS: [(&str, u16); 6] = [
    ("GATEWAY_PORT", 8080),
    ("GATEWAY_ADMIN_PORT", 9901),
    ("EXT_AUTHZ_HTTP_PORT", 8081),
    ("EXT_AUTHZ_GRPC_PORT", 8082),
    ("OIDC_PORT", 8083),
    ("SIDECARS_ADMIN_PORT", 9902),
];

impl Ports {
    /// Every port free: for tests.
    pub fn any() -> Self {
        Ports {
            gateway: 0,
            gateway_admin: 0,
            ext_authz_http: 0,
            ext_authz_grpc: 0,
            oidc: 0,
            sidecars_admin: 0,
        }
    }

    /// Defaults, each overridden by its variable from `lookup`.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut v = [0u16; 6];
        for (slot, (var, default)) in v.iter_mut().zip(PORT_VARS) {
            *slot = match lookup(var).filter(|s| !s.is_empty()) {
                None => default,
                Some(s) => s
                    .parse()
                    .with_context(|| format!("{var}={s:?} is not a port number (0-65535)"))?,
            };
        }
        Ok(Ports {
            gateway: v[0],
            gateway_admin: v[1],
            ext_authz_http: v[2],
            ext_authz_grpc: v[3],
            oidc: v[4],
            sidecars_admin: v[5],
        })
    }

    fn named(&self) -> [(&'static str, u16); 6] {
        [
            ("GATEWAY_PORT", self.gateway),
            ("GATEWAY_ADMIN_PORT", self.gateway_admin),
            ("EXT_AUTHZ_HTTP_PORT", self.ext_authz_http),
            ("EXT_AUTHZ_GRPC_PORT", self.ext_authz_grpc),
            ("OIDC_PORT", self.oidc),
            ("SIDECARS_ADMIN_PORT", self.sidecars_admin),
        ]
    }

    /// Fail early, and clearly, when a fixed port is taken.
    pub fn check_free(&self) -> Result<()> {
        let mut seen = Vec::new();
        for (var, port) in self.named() {
            if port == 0 {
                continue;
            }
            if let Some((other, _)) = seen.iter().find(|(_, p)| *p == port) {
                bail!("{var} and {other} are both {port}: give each its own port");
            }
            seen.push((var, port));
            if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
                bail!(
                    "port {port} ({var}) is not available on 127.0.0.1: {e}; set {var} to a free port, e.g. `make run {var}={}`",
                    port + 1000
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct StackOpts {
    pub ports: Ports,
    /// Keys, generated IAM files and rendered Envoy configs live here.
    pub state_dir: PathBuf,
    /// IAM objects to load instead of the generated demo ones.
    pub iam_dir: Option<PathBuf>,
    /// How often ext-authz looks for IAM and key changes.
    pub reload_interval: Duration,
    /// Envoy worker threads per Envoy.
    pub concurrency: u32,
    /// How often the filters refresh their keys.
    pub jwks_refresh_seconds: u64,
    /// ext-authz replicas (at least one). The first listens on the ports of
    /// `ports`, the others on free ones.
    pub replicas: usize,
    /// More ext-authz flags, given to every replica.
    pub ext_authz_args: Vec<String>,
    /// Reach the IdP through a [`FaultProxy`] (the JwtIssuer's
    /// `issInternal`), for tests that cut it off.
    pub idp_proxy: bool,
    /// The generated JwtIssuer's `tokenExpiry`.
    pub token_expiry: String,
    /// Lifetime of the IdP's access tokens.
    pub idp_token_ttl: Duration,
}

impl StackOpts {
    pub fn new(ports: Ports, state_dir: impl Into<PathBuf>) -> Self {
        StackOpts {
            ports,
            state_dir: state_dir.into(),
            iam_dir: None,
            reload_interval: Duration::from_secs(1),
            concurrency: 2,
            jwks_refresh_seconds: 60,
            replicas: 1,
            ext_authz_args: Vec::new(),
            idp_proxy: false,
            token_expiry: "30m".to_owned(),
            idp_token_ttl: Duration::from_secs(3600),
        }
    }
}

pub struct Stack {
    pub oidc: OidcProvider,
    /// The ext-authz replicas, in the order of [`replica_name`].
    pub replicas: Vec<ExtAuthz>,
    /// How each replica was started (its ports fixed after the first start),
    /// to start it again the same way.
    replica_opts: Vec<ExtAuthzOpts>,
    /// Between ext-authz and the IdP, with [`StackOpts::idp_proxy`].
    pub idp_proxy: Option<FaultProxy>,
    pub sidecars: Envoy,
    pub gateway: Envoy,
    /// Each function and its echo server.
    pub functions: Vec<(Function, EchoUpstream)>,
    /// Stands in for the OpenFaaS gateway's REST API behind /system/.
    pub gateway_api: EchoUpstream,
    gateway_url: String,
    iam_dir: PathBuf,
    state_dir: PathBuf,
}

/// `ext-authz-a`, `ext-authz-b`, …: how logs and reports name replica `i`.
pub fn replica_name(i: usize) -> String {
    let letter = u8::try_from(i % 26).map_or('?', |n| char::from(b'a' + n));
    format!("ext-authz-{letter}")
}

/// `{{NAME}}` → value, and a clear error if any placeholder is left.
fn fill(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = template.to_owned();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    if let Some(start) = out.find("{{") {
        let rest: String = out[start..].chars().take(40).collect();
        bail!("unfilled placeholder in an envoy/ template: {rest}");
    }
    Ok(out)
}

fn template(name: &str) -> Result<String> {
    let path = repo_root().join("envoy").join(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// A free port now. Only for the gateway when the caller asked for "any":
/// ext-authz needs the gateway URL (its issuer) before the gateway starts.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The local provider's public clients for people (`faas-mesh-auth login`):
/// authorization code + PKCE, and the device grant (tests/oidc's defaults).
/// Their ID tokens carry the client as `aud`, so the JwtIssuer lists them.
pub const PEOPLE_CLIENT_ID: &str = "faas-mesh-auth";
pub const DEVICE_CLIENT_ID: &str = "faas-mesh-auth-device";
/// The person the demo Role lets in (any password at the provider's page).
pub const DEMO_PERSON: &str = "alice";

/// The demo IAM objects: the docs' Policy and Role, bound to the local
/// provider's client and to one person, plus an admin policy for the
/// /system/ API.
/// `iss_internal`: where ext-authz reaches the provider, if not at its `iss`.
pub fn demo_iam(
    oidc_issuer: &str,
    client_id: &str,
    iss_internal: Option<&str>,
    token_expiry: &str,
) -> Vec<(String, String)> {
    let internal = iss_internal
        .map(|url| format!("  # ext-authz reaches the provider here (a fault-injecting proxy).\n  issInternal: {url}\n"))
        .unwrap_or_default();
    vec![
        (
            "jwtissuer.yaml".into(),
            format!(
                r#"# The local OpenID provider, trusted like Keycloak or Auth0 would be.
apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata:
  name: local-oidc
  namespace: openfaas
spec:
  iss: {oidc_issuer}
{internal}  aud:
    - openfaas
    # ID tokens of people who log in with `faas-mesh-auth login`.
    - {PEOPLE_CLIENT_ID}
    - {DEVICE_CLIENT_ID}
  tokenExpiry: {token_expiry}
"#
            ),
        ),
        (
            "invoke.yaml".into(),
            format!(
                r#"# From the OpenFaaS docs: invoke any function in openfaas-fn, and dev:env.
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: invoke-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-invoke-policy
    action:
      - "Function:Invoke"
    effect: Allow
    resource:
      - "openfaas-fn:*"
      - "dev:env"
---
# Lets the demo client read what is deployed in openfaas-fn (/system/).
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: read-only-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-read-only
    action:
      - "Function:List"
      - "Function:Get"
      - "System:Info"
    effect: Allow
    resource:
      - "openfaas-fn:*"
      - "*"
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: invoke-role
  namespace: openfaas
spec:
  policy:
  - invoke-policy
  - read-only-policy
  condition:
    principal:
      jwt:sub:
        - {client_id}
    StringEqual:
      jwt:iss: ["{oidc_issuer}"]
---
# A person who signs in at the local provider as {DEMO_PERSON}.
apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: people-role
  namespace: openfaas
spec:
  policy:
  - invoke-policy
  - read-only-policy
  condition:
    principal:
      jwt:sub:
        - {DEMO_PERSON}
    StringEqual:
      jwt:iss: ["{oidc_issuer}"]
"#
            ),
        ),
    ]
}

/// Every `*.pem` of `from` copied into `to` (created), as the same Secret
/// is mounted into each replica.
fn copy_keys(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)?.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "pem") {
            let target = to.join(entry.file_name());
            if !target.exists() {
                std::fs::copy(&path, &target)
                    .with_context(|| format!("copying {} to {}", path.display(), to.display()))?;
            }
        }
    }
    Ok(())
}

/// A signing key kept across runs in `dir`, generated when there is none.
fn ensure_signing_key(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let has_key = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .any(|e| e.path().extension().is_some_and(|x| x == "pem"));
    if !has_key {
        let key = PemKey::generate()?;
        let path = dir.join("0001-dev.pem");
        std::fs::write(&path, key.pem.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl Stack {
    pub async fn start(opts: StackOpts) -> Result<Self> {
        opts.ports.check_free()?;
        let state = &opts.state_dir;
        std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
        let gateway_port = match opts.ports.gateway {
            0 => free_port()?,
            p => p,
        };
        let gateway_url = format!("http://127.0.0.1:{gateway_port}");

        let mut functions = Vec::new();
        for f in FUNCTIONS {
            functions.push((f, EchoUpstream::start().await?));
        }
        let gateway_api = EchoUpstream::start().await?;

        let oidc = OidcProvider::start(OidcOpts {
            port: opts.ports.oidc,
            ttl: opts.idp_token_ttl,
            ..OidcOpts::default()
        })
        .await
        .context("starting the OpenID provider")?;
        let idp_proxy = if opts.idp_proxy {
            let idp: SocketAddr = oidc
                .issuer()
                .trim_start_matches("http://")
                .parse()
                .with_context(|| format!("the provider's issuer {}", oidc.issuer()))?;
            Some(FaultProxy::start(idp).await?)
        } else {
            None
        };

        let key_dir = state.join("keys");
        ensure_signing_key(&key_dir)?;
        let iam_dir = match &opts.iam_dir {
            Some(dir) => dir.clone(),
            None => {
                let dir = state.join("iam");
                std::fs::create_dir_all(&dir)?;
                let internal = idp_proxy.as_ref().map(FaultProxy::url);
                for (name, yaml) in demo_iam(
                    oidc.issuer(),
                    oidc.client_id(),
                    internal.as_deref(),
                    &opts.token_expiry,
                ) {
                    std::fs::write(dir.join(name), yaml)?;
                }
                dir
            }
        };
        let mut replicas = Vec::new();
        let mut replica_opts = Vec::new();
        for i in 0..opts.replicas.max(1) {
            let (keys, http, grpc) = if i == 0 {
                (
                    key_dir.clone(),
                    opts.ports.ext_authz_http,
                    opts.ports.ext_authz_grpc,
                )
            } else {
                let dir = state.join(format!("keys-{}", replica_name(i)));
                copy_keys(&key_dir, &dir)?;
                (dir, 0, 0)
            };
            let mut o = ExtAuthzOpts::new(&gateway_url)
                .dirs(&iam_dir, &keys)
                .listen(http, grpc)
                .reload_interval(opts.reload_interval);
            o.args.clone_from(&opts.ext_authz_args);
            let replica = ExtAuthz::start(o.clone())
                .await
                .with_context(|| format!("starting {}", replica_name(i)))?;
            // Started again on the same ports.
            o = o.listen(replica.http_addr().port(), replica.grpc_addr().port());
            replicas.push(replica);
            replica_opts.push(o);
        }
        let http_addrs: Vec<SocketAddr> = replicas.iter().map(ExtAuthz::http_addr).collect();
        let grpc_addrs: Vec<SocketAddr> = replicas.iter().map(ExtAuthz::grpc_addr).collect();

        let sidecars_yaml = Self::sidecars_config(&opts, &functions, &http_addrs, &gateway_url)?;
        std::fs::write(state.join("sidecars.yaml"), &sidecars_yaml)?;
        let sidecars = Envoy::builder(sidecars_yaml)
            .concurrency(opts.concurrency)
            .start()
            .await
            .context("starting the sidecars' Envoy")?;

        let gateway_yaml = Self::gateway_config(
            &opts,
            gateway_port,
            &functions,
            &sidecars,
            (&http_addrs, &grpc_addrs),
            gateway_api.addr(),
        )?;
        std::fs::write(state.join("gateway.yaml"), &gateway_yaml)?;
        let gateway = Envoy::builder(gateway_yaml)
            .concurrency(opts.concurrency)
            .start()
            .await
            .context("starting the gateway's Envoy")?;

        Ok(Stack {
            oidc,
            replicas,
            replica_opts,
            idp_proxy,
            sidecars,
            gateway,
            functions,
            gateway_api,
            gateway_url,
            iam_dir,
            state_dir: state.clone(),
        })
    }

    fn sidecars_config(
        opts: &StackOpts,
        functions: &[(Function, EchoUpstream)],
        ext_authz_http: &[SocketAddr],
        issuer: &str,
    ) -> Result<String> {
        let (listener_t, filter_t) = (
            template("sidecar-listener.yaml")?,
            template("auth-filter.yaml")?,
        );
        let wasm = filter_wasm()?;
        let mut listeners = String::new();
        let mut clusters = String::new();
        for (f, echo) in functions {
            let auth_filter = if f.auth {
                let plugin = json!({
                    "issuer": issuer,
                    "jwks": {
                        "cluster": "ext-authz-jwks",
                        "authority": "ext-authz.openfaas",
                        "path": "/.well-known/jwks.json",
                        "refresh_seconds": opts.jwks_refresh_seconds,
                    },
                    "function": {"name": f.name, "namespace": f.namespace},
                    "mode": "enforce",
                    "forward_subject": true,
                });
                fill(
                    &filter_t,
                    &[
                        ("FILTER_WASM", wasm.display().to_string()),
                        ("PLUGIN_CONFIG", plugin.to_string()),
                    ],
                )?
            } else {
                "          # No wasm filter: this function has not opted in.".to_owned()
            };
            listeners.push_str(&fill(
                &listener_t,
                &[
                    ("FUNCTION", f.id()),
                    ("SLUG", f.slug()),
                    ("SIDECAR_PORT", "0".into()),
                    ("AUTH_FILTER", auth_filter.trim_end().to_owned()),
                ],
            )?);
            cluster(
                &mut clusters,
                &format!("function-{}", f.slug()),
                echo.addr(),
            );
        }
        fill(
            &template("sidecars.yaml")?,
            &[
                ("SIDECARS_ADMIN_PORT", opts.ports.sidecars_admin.to_string()),
                ("SIDECAR_LISTENERS", listeners.trim_end().to_owned()),
                ("EXT_AUTHZ_HTTP_ENDPOINTS", endpoints(ext_authz_http)),
                ("FUNCTION_CLUSTERS", clusters.trim_end().to_owned()),
            ],
        )
    }

    fn gateway_config(
        opts: &StackOpts,
        gateway_port: u16,
        functions: &[(Function, EchoUpstream)],
        sidecars: &Envoy,
        (ext_authz_http, ext_authz_grpc): (&[SocketAddr], &[SocketAddr]),
        gateway_api: SocketAddr,
    ) -> Result<String> {
        let mut routes = String::new();
        let mut clusters = String::new();
        for (f, _) in functions {
            // `/function/NAME.NS`, and the bare `/function/NAME` for the
            // default namespace; the prefix is stripped as the OpenFaaS
            // gateway does.
            let ns = if f.namespace == "openfaas-fn" {
                r"(\.openfaas-fn)?".to_owned()
            } else {
                format!(r"\.{}", f.namespace.replace('-', r"\-"))
            };
            let _ = write!(
                routes,
                r#"              - match: {{safe_regex: {{regex: '^/(async-)?function/{name}{ns}(/.*)?$'}}}}
                route:
                  cluster: sidecar-{slug}
                  regex_rewrite:
                    pattern: {{regex: '^/(?:async-)?function/[^/]+/?'}}
                    substitution: /
"#,
                name = f.name,
                slug = f.slug(),
            );
            let port = sidecars.listener_port(&format!("sidecar-{}", f.slug()))?;
            cluster(
                &mut clusters,
                &format!("sidecar-{}", f.slug()),
                SocketAddr::from(([127, 0, 0, 1], port)),
            );
        }
        fill(
            &template("gateway.yaml")?,
            &[
                ("GATEWAY_ADMIN_PORT", opts.ports.gateway_admin.to_string()),
                ("GATEWAY_PORT", gateway_port.to_string()),
                ("FUNCTION_ROUTES", routes.trim_end().to_owned()),
                (
                    "ACCESS_LOG",
                    opts.state_dir
                        .join(GATEWAY_ACCESS_LOG)
                        .display()
                        .to_string(),
                ),
                ("EXT_AUTHZ_HTTP_ENDPOINTS", endpoints(ext_authz_http)),
                ("EXT_AUTHZ_GRPC_ENDPOINTS", endpoints(ext_authz_grpc)),
                ("GATEWAY_API_PORT", gateway_api.port().to_string()),
                ("FUNCTION_CLUSTERS", clusters.trim_end().to_owned()),
            ],
        )
    }

    /// SIGTERM replica `i`, wait for it to exit, leave it down for
    /// `down_for` (a pod being rescheduled), and start it again on the same
    /// ports with the same folders. Returns how it exited and its log (the
    /// new process logs afresh).
    pub async fn restart_ext_authz(
        &mut self,
        i: usize,
        down_for: Duration,
    ) -> Result<(ExitStatus, String)> {
        let opts = self
            .replica_opts
            .get(i)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no ext-authz replica {i}"))?;
        let replica = self
            .replicas
            .get_mut(i)
            .ok_or_else(|| anyhow::anyhow!("no ext-authz replica {i}"))?;
        let status = replica.sigterm_and_wait().await?;
        let log = replica.log();
        tokio::time::sleep(down_for).await;
        *replica = ExtAuthz::start(opts)
            .await
            .with_context(|| format!("starting {} again", replica_name(i)))?;
        Ok((status, log))
    }

    /// The first replica: the one `make run` prints.
    pub fn ext_authz(&self) -> &ExtAuthz {
        &self.replicas[0]
    }

    /// Where the gateway writes its access log.
    pub fn access_log_path(&self) -> PathBuf {
        self.state_dir.join(GATEWAY_ACCESS_LOG)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `http://127.0.0.1:<port>` of the sidecar listener of function `id`.
    pub fn sidecar_url(&self, id: &str) -> Result<String> {
        let f = FUNCTIONS
            .iter()
            .find(|f| f.id() == id)
            .ok_or_else(|| anyhow::anyhow!("no function {id}"))?;
        self.sidecars.listener_url(&format!("sidecar-{}", f.slug()))
    }

    /// Stop everything, front to back, each process cleanly.
    pub async fn stop(mut self) {
        self.gateway.stop();
        self.sidecars.stop();
        for (i, replica) in self.replicas.iter_mut().enumerate() {
            if let Err(e) = replica.sigterm_and_wait().await {
                eprintln!("{} did not stop cleanly: {e:#}", replica_name(i));
            }
        }
        if let Err(e) = self.oidc.stop().await {
            eprintln!("the OpenID provider did not stop cleanly: {e:#}");
        }
        for (_, echo) in &mut self.functions {
            echo.stop().await;
        }
        self.gateway_api.stop().await;
    }

    /// `http://127.0.0.1:<gateway port>`: also our issuer.
    pub fn gateway_url(&self) -> &str {
        &self.gateway_url
    }

    pub fn iam_dir(&self) -> &Path {
        &self.iam_dir
    }

    pub fn function(&self, id: &str) -> Option<&EchoUpstream> {
        self.functions
            .iter()
            .find(|(f, _)| f.id() == id)
            .map(|(_, e)| e)
    }

    /// The OpenFaaS docs' walkthrough, adapted to this stack's addresses.
    pub fn walkthrough(&self) -> String {
        let gw = &self.gateway_url;
        let idp = self.oidc.issuer();
        let client = self.oidc.client_id();
        let secret = self.oidc.client_secret();
        format!(
            r#"
faas-mesh-auth is running:
  gateway           {gw}          (also the issuer of function tokens)
  OpenID provider   {idp}
  ext-authz         {ext}   (gRPC {grpc})
  functions         openfaas-fn:env, dev:env, staging:env (protected), openfaas-fn:nodeinfo (no auth)
  IAM objects       {iam}   (edit them: ext-authz reloads)
  access log        {access}   (the gateway's; paths without their query)

# 1. Get an IdP token with the client-credentials flow:
export IDP_TOKEN_URL="{idp}/token"
export CLIENT_ID="{client}"
export CLIENT_SECRET="{secret}"
export TOKEN=$(curl -sS -X POST "$IDP_TOKEN_URL" \
    --data-urlencode "client_id=$CLIENT_ID" \
    --data-urlencode "client_secret=$CLIENT_SECRET" \
    --data-urlencode 'scope=email' \
    --data-urlencode 'grant_type=client_credentials' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# 2. Exchange it at the gateway for a function token:
export FN_TOKEN=$(curl -sS -X POST "{gw}/oauth/token" \
    --data-urlencode "subject_token=$TOKEN" \
    --data-urlencode "subject_token_type=urn:ietf:params:oauth:token-type:id_token" \
    --data-urlencode 'grant_type=urn:ietf:params:oauth:grant-type:token-exchange' \
    --data-urlencode 'scope=function' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# 3. Invoke a protected function (200):
curl -i "{gw}/function/env" -H "Authorization: Bearer $FN_TOKEN"
curl -i "{gw}/function/env.dev" -H "Authorization: Bearer $FN_TOKEN"

# 4. Without a token (401, with the realm faas-cli looks for):
curl -i "{gw}/function/env"

# 5. Outside the token's permissions (403):
curl -i "{gw}/function/env.staging" -H "Authorization: Bearer $FN_TOKEN"

# 6. Attenuate with audience: this token may invoke openfaas-fn:env only.
export ENV_TOKEN=$(curl -sS -X POST "{gw}/oauth/token" \
    --data-urlencode "subject_token=$TOKEN" \
    --data-urlencode "subject_token_type=urn:ietf:params:oauth:token-type:id_token" \
    --data-urlencode 'grant_type=urn:ietf:params:oauth:grant-type:token-exchange' \
    --data-urlencode 'scope=function' \
    --data-urlencode 'audience=openfaas-fn:env' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -i "{gw}/function/env.dev" -H "Authorization: Bearer $ENV_TOKEN"    # 403

# 7. A function that has not opted in needs no token:
curl -i "{gw}/function/nodeinfo"

# 8. The gateway API with an API token (exchange without scope=function):
export API_TOKEN=$(curl -sS -X POST "{gw}/oauth/token" \
    --data-urlencode "subject_token=$TOKEN" \
    --data-urlencode "subject_token_type=urn:ietf:params:oauth:token-type:id_token" \
    --data-urlencode 'grant_type=urn:ietf:params:oauth:grant-type:token-exchange' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -i "{gw}/system/functions?namespace=openfaas-fn" -H "Authorization: Bearer $API_TOKEN"   # 200
curl -i "{gw}/system/secrets?namespace=openfaas-fn" -H "Authorization: Bearer $API_TOKEN"     # 403

# 9. Or let faas-mesh-auth log in (`cargo install --path cli`): it exchanges for an
#    API token and writes faas-cli's config (~/.openfaas/config.yml, or $OPENFAAS_CONFIG/),
#    so faas-cli list/describe/invoke work with no flags. Pick one way:
export OPENFAAS_URL="{gw}"
FAAS_MESH_AUTH_CLIENT_SECRET="$CLIENT_SECRET" \
  faas-mesh-auth login --issuer "{idp}" --client-id "$CLIENT_ID"              # a machine
faas-mesh-auth login --issuer "{idp}" --client-id {people}          # a person, in a browser: sign in as {person}, any password
faas-mesh-auth login --issuer "{idp}" --client-id {device} --device # a person, no browser
curl -i "{gw}/system/functions?namespace=openfaas-fn" -H "Authorization: Bearer $(faas-mesh-auth token --api)"  # 200
curl -i "{gw}/function/env" -H "Authorization: Bearer $(faas-mesh-auth token --function openfaas-fn:env)"     # 200
faas-mesh-auth token --function staging:env        # refused: invalid_target
faas-mesh-auth logout                              # removes this gateway's entry only

# 10. Why is a request allowed or denied? The enforcing engine, offline:
faas-mesh-auth explain --iam-dir {iam} --token "$TOKEN" --function staging:env
faas-mesh-auth explain --iam-dir {iam} --token "$TOKEN" --request "GET /system/secrets?namespace=openfaas-fn"

Ctrl-C stops everything.
"#,
            people = PEOPLE_CLIENT_ID,
            device = DEVICE_CLIENT_ID,
            person = DEMO_PERSON,
            ext = self.ext_authz().http_url(),
            grpc = self.ext_authz().grpc_addr(),
            iam = self.iam_dir.display(),
            access = self.access_log_path().display(),
        )
    }
}

/// The gateway's access log, in the state folder.
pub const GATEWAY_ACCESS_LOG: &str = "gateway-access.log";

/// `lb_endpoints` entries, one per address, for the templates.
fn endpoints(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| {
            format!(
                "        - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}",
                a.ip(),
                a.port()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cluster(out: &mut String, name: &str, addr: SocketAddr) {
    let _ = write!(
        out,
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: {ip}, port_value: {port}}}}}}}
"#,
        ip = addr.ip(),
        port = addr.port(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_from_variables() {
        let p = Ports::from_vars(|_| None).unwrap();
        assert_eq!((p.gateway, p.oidc), (8080, 8083));
        let p = Ports::from_vars(|v| (v == "GATEWAY_PORT").then(|| "9080".to_owned())).unwrap();
        assert_eq!(p.gateway, 9080);
        let e = Ports::from_vars(|v| (v == "OIDC_PORT").then(|| "http".to_owned())).unwrap_err();
        assert!(e.to_string().contains("OIDC_PORT"));
    }

    #[test]
    fn a_taken_port_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let ports = Ports {
            gateway: port,
            ..Ports::any()
        };
        let e = ports.check_free().unwrap_err().to_string();
        assert!(
            e.contains("GATEWAY_PORT") && e.contains(&port.to_string()),
            "{e}"
        );
        let same = Ports {
            gateway: 7001,
            oidc: 7001,
            ..Ports::any()
        };
        assert!(same.check_free().unwrap_err().to_string().contains("both"));
    }

    #[test]
    fn placeholders_must_all_be_filled() {
        assert_eq!(fill("a {{X}} b", &[("X", "1".into())]).unwrap(), "a 1 b");
        assert!(fill("a {{X}} {{Y}}", &[("X", "1".into())]).is_err());
    }
}

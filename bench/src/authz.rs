//! ext-authz under load: the token exchange against the same server's
//! `/healthz`, the ext_authz `Check` through a gateway-style Envoy against
//! plain Envoy, exchange latency with 10, 1,000 and 10,000 Roles, and
//! memory.
//!
//! The subject tokens come from a stand-in IdP on loopback: ES256 tokens
//! minted here, its discovery document and JWKS served by the harness's
//! `JwksServer` (one JSON object that is both). No Node in the hot loop.
//! ext-authz (the release build, started by the harness's `ExtAuthz`) is
//! not pinned: "on this 2-core machine" it shares both cores with wrk, as a
//! deployment would with its clients; its own CPU per request is read from
//! `/proc` all the same.

mod iam;
mod measure;
mod tables;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{Envoy, ExtAuthz, ExtAuthzOpts, JwksServer, form_encode, get};
use serde_json::{Value, json};

use crate::configs::{self, LISTENER, Pinned, bootstrap};
use crate::load::Wrk;
use crate::pool::Cursor;
use crate::procfs;
use crate::report::{Outcome, int};
use crate::settings::Settings;
use crate::tokens::{Kind, Signer, idp_claims, mint};

use iam::{iam_yaml, team};
use measure::Ctx;

/// ext-authz's `--issuer`: the gateway's public URL.
const GATEWAY: &str = "https://gateway.bench.local";
const IDP_AUDIENCE: &str = "openfaas";
/// The subject every exchange is for; one Role near the end names it.
const SUBJECT: &str = "bench-client";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ROLE_COUNTS: [usize; 3] = [10, 1_000, 10_000];
const CONCURRENCY: [u32; 3] = [1, 16, 64];
/// Connections for the Check through Envoy.
const CHECK_CONNECTIONS: u32 = 16;
/// Rarely: with 10,000 Roles a reload would cost CPU in the measurements.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
const GRPC_CLUSTER: &str = "ext-authz-grpc";

/// The figures the targets are checked against.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub exchange_rps_c64: f64,
    pub exchange_p99_us_c64: f64,
    pub roles_p50_ratio: f64,
    pub rss_10k_kib: f64,
    pub rss_10k_peak_kib: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    Exchange { instance: usize, c: u32 },
    Healthz { c: u32 },
    Check { through_ext_authz: bool },
}

/// One ext-authz process, with its number of Roles.
struct Instance {
    roles: usize,
    authz: ExtAuthz,
    startup: Duration,
    idle_rss_kib: u64,
    idp: Cursor,
}

/// The stand-in IdP: its key, and its discovery document and JWKS served
/// on loopback.
struct Idp {
    signer: Signer,
    /// Serves until the section ends.
    _server: JwksServer,
    iss: String,
    now: u64,
}

impl Idp {
    async fn start() -> Result<Self> {
        let signer = Signer::generate()?;
        let server = JwksServer::start("{}").await?;
        let iss = format!("http://{}", server.addr());
        server.set_body(
            json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"), "keys": [signer.jwk()]})
                .to_string(),
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Idp {
            signer,
            _server: server,
            iss,
            now,
        })
    }

    fn claims(&self, ttl: u64, jti: &str) -> String {
        idp_claims(&self.iss, SUBJECT, IDP_AUDIENCE, self.now, ttl, jti)
    }

    /// `count` distinct IdP tokens for the subject.
    fn pool(&self, count: usize) -> Result<Arc<Vec<String>>> {
        let started = Instant::now();
        let pool = mint(&self.signer, count.max(1_000), Kind::Valid, &|i| {
            self.claims(6 * 3600, &format!("idp-{i}"))
        })?;
        eprintln!(
            "bench: minted {} IdP tokens in {:.1}s",
            int(pool.len() as f64),
            started.elapsed().as_secs_f64()
        );
        Ok(Arc::new(pool))
    }
}

pub async fn run(settings: &Settings, wrk: &Wrk) -> Result<Outcome<Summary>> {
    let pinned = Pinned::new(&settings.envoy_bin, settings.envoy_cpu)?;
    let scratch = tempfile::Builder::new().prefix("bench-idp-").tempdir()?;
    let bin = settings
        .ext_authz_bin
        .clone()
        .context("the ext-authz binary is needed for this section")?;
    let idp = Idp::start().await?;
    let pool = idp.pool(settings.idp_tokens)?;

    let mut instances = Vec::new();
    for roles in ROLE_COUNTS {
        instances.push(start_instance(&bin, &idp, roles, &pool, scratch.path()).await?);
    }
    let api_token = check_exchanges(&instances, &idp).await?;

    // The gateways: plain, and with the ext_authz filter to the first.
    let grpc_port = instances[0].authz.grpc_addr().port();
    let plain = pinned
        .start("the gateway without ext_authz", &bootstrap())
        .await?;
    let gated = bootstrap()
        .http_filter(configs::ext_authz_filter(GRPC_CLUSTER))
        .grpc_cluster(GRPC_CLUSTER, grpc_port);
    let gated = pinned.start("the gateway with ext_authz", &gated).await?;
    let system_path = format!("/system/functions?namespace={}", team(instances[0].roles));
    check_gateways(&plain, &gated, &system_path, &api_token).await?;

    let fields = [
        ("grant_type", GRANT),
        ("subject_token_type", ID_TOKEN),
        ("scope", "function"),
    ];
    let prefix = format!("{}&subject_token=", form_encode(&fields));
    let ctx = Ctx {
        wrk,
        all_cpus: format!(
            "0-{}",
            std::thread::available_parallelism().map_or(1, usize::from) - 1
        ),
        prefix: &prefix,
        bearer_token: &api_token,
        system_path: &system_path,
        plain: &plain,
        gated: &gated,
    };
    let samples = ctx
        .run_jobs(settings, &jobs(instances.len()), &mut instances)
        .await?;
    let final_rss: Vec<(u64, u64)> = instances
        .iter()
        .map(|i| procfs::rss_kib(i.authz.pid()))
        .collect::<Result<_>>()?;
    drop(plain);
    drop(gated);
    let outcome = tables::tabulate(settings, &instances, &samples, &final_rss);
    drop(idp);
    outcome
}

/// ext-authz with `roles` Roles and Policies, ready.
async fn start_instance(
    bin: &Path,
    idp: &Idp,
    roles: usize,
    pool: &Arc<Vec<String>>,
    scratch: &Path,
) -> Result<Instance> {
    let t = Instant::now();
    let opts = ExtAuthzOpts::new(GATEWAY)
        .binary(bin)
        .iam("bench.yaml", iam_yaml(&idp.iss, roles))
        .reload_interval(RELOAD_INTERVAL)
        // Its default level, as in production: an audit line per exchange.
        .log("info");
    let authz = ExtAuthz::start(opts)
        .await
        .with_context(|| format!("starting {} with {roles} Roles", bin.display()))?;
    let startup = t.elapsed();
    let (rss, _) = procfs::rss_kib(authz.pid())?;
    Ok(Instance {
        roles,
        startup,
        idle_rss_kib: rss,
        idp: Cursor::new(pool.clone(), &format!("idp-{roles}"), scratch),
        authz,
    })
}

/// One exchange each: a function token for the subject's team. Returns an
/// API token (no scope) for the Check.
async fn check_exchanges(instances: &[Instance], idp: &Idp) -> Result<String> {
    for inst in instances {
        let subject = idp.signer.sign(&idp.claims(3600, "sanity"))?;
        let token = exchange(&inst.authz, &subject, Some("function"))
            .await
            .with_context(|| format!("an exchange with {} Roles", inst.roles))?;
        let perms = payload(&token)?["function"]["permissions"].clone();
        if perms != json!([format!("{}:*", team(inst.roles))]) {
            bail!("with {} Roles the exchange granted {perms}", inst.roles);
        }
    }
    let subject = idp.signer.sign(&idp.claims(3600, "api"))?;
    exchange(&instances[0].authz, &subject, None)
        .await
        .context("the API-token exchange")
}

/// A token exchange for an IdP token that must succeed: the token issued.
async fn exchange(authz: &ExtAuthz, subject: &str, scope: Option<&str>) -> Result<String> {
    let mut fields = vec![
        ("grant_type", GRANT),
        ("subject_token_type", ID_TOKEN),
        ("subject_token", subject),
    ];
    fields.extend(scope.map(|s| ("scope", s)));
    let resp = authz.token_request(&fields).await?;
    if resp.status != 200 {
        bail!("answered {} {}\n{}", resp.status, resp.body, authz.log());
    }
    Ok(resp.json()?["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Both gateways let the API token through; the ext_authz one refuses a
/// request without it.
async fn check_gateways(plain: &Envoy, gated: &Envoy, path: &str, token: &str) -> Result<()> {
    let bearer = format!("Bearer {token}");
    for (envoy, what) in [(plain, "plain"), (gated, "ext_authz")] {
        let url = format!("{}{path}", envoy.listener_url(LISTENER)?);
        let r = get(&url, &[("authorization", &bearer)]).await?;
        if r.status != 200 {
            bail!(
                "GET {path} through the {what} gateway: {} {}",
                r.status,
                r.body
            );
        }
    }
    let denied = get(&format!("{}{path}", gated.listener_url(LISTENER)?), &[]).await?;
    if denied.status != 401 {
        bail!(
            "without a token the ext_authz gateway answered {}, not 401: is Check running?",
            denied.status
        );
    }
    Ok(())
}

/// Every measurement, in the order of a round.
fn jobs(instances: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    for c in CONCURRENCY {
        jobs.push(Job::Exchange { instance: 0, c });
        jobs.push(Job::Healthz { c });
    }
    for through_ext_authz in [false, true] {
        jobs.push(Job::Check { through_ext_authz });
    }
    for instance in 1..instances {
        jobs.push(Job::Exchange { instance, c: 1 });
    }
    jobs
}

/// A JWT's claims, unverified.
fn payload(token: &str) -> Result<Value> {
    use base64::Engine as _;
    let part = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
    Ok(serde_json::from_slice(&bytes)?)
}

//! ext-authz under load: the token exchange against the same server's
//! `/healthz`, the ext_authz `Check` through a gateway-style Envoy against
//! plain Envoy, exchange latency with 10, 1,000 and 10,000 Roles, and
//! memory.
//!
//! The subject tokens come from a stand-in IdP on loopback: ES256 tokens
//! minted here, its discovery document and JWKS served by the harness's
//! `JwksServer` (one JSON object that is both). No Node in the hot loop.
//! ext-authz (the release build) is not pinned: "on this 2-core machine"
//! it shares both cores with wrk, as a deployment would with its clients;
//! its own CPU per request is read from `/proc` all the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{Envoy, JwksServer, form_encode, get};
use serde_json::{Value, json};

use crate::configs::{self, LISTENER, Pinned};
use crate::load::{Load, Sample, Tokens, Wrk};
use crate::pool::Cursor;
use crate::procfs;
use crate::report::{Table, int, latency, median, mib, num, signed};
use crate::server::ExtAuthz;
use crate::settings::Settings;
use crate::tokens::{Kind, Signer, idp_claims, mint};

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

/// The figures the targets are checked against.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub exchange_rps_c64: f64,
    pub exchange_p99_us_c64: f64,
    pub roles_p50_ratio: f64,
    pub rss_10k_kib: f64,
    pub rss_10k_peak_kib: f64,
}

pub struct Outcome {
    pub tables: Vec<Table>,
    pub summary: Summary,
}

/// The IAM objects: a JwtIssuer for the stand-in IdP, and `n` Policies and
/// Roles, each Role with its own `jwt:sub` principal and its own Policy;
/// Role `n - 3` is the bench's subject's.
pub fn iam_yaml(idp: &str, n: usize) -> String {
    let mut y = String::with_capacity(n * 420 + 300);
    let _ = write!(
        y,
        "apiVersion: iam.openfaas.com/v1\nkind: JwtIssuer\nmetadata:\n  name: bench-idp\n  namespace: openfaas\nspec:\n  iss: {idp}\n  aud:\n    - {IDP_AUDIENCE}\n  tokenExpiry: 30m\n"
    );
    let target = n.saturating_sub(3);
    for i in 0..n {
        let sub = if i == target {
            SUBJECT.to_owned()
        } else {
            format!("client-{i}")
        };
        let _ = write!(
            y,
            "---\napiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata:\n  name: policy-{i}\n  namespace: openfaas\nspec:\n  statement:\n  - sid: team-{i}\n    action: [\"Function:Invoke\", \"Function:List\", \"Function:Get\"]\n    effect: Allow\n    resource: [\"team-{i}:*\"]\n---\napiVersion: iam.openfaas.com/v1\nkind: Role\nmetadata:\n  name: role-{i}\n  namespace: openfaas\nspec:\n  policy: [policy-{i}]\n  principal:\n    jwt:sub: [\"{sub}\"]\n  condition:\n    StringEqual:\n      jwt:iss: [\"{idp}\"]\n"
        );
    }
    y
}

/// The team whose functions the subject may use, with `n` Roles.
fn team(n: usize) -> String {
    format!("team-{}", n.saturating_sub(3))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    Exchange { instance: usize, c: u32 },
    Healthz { c: u32 },
    Check { through_ext_authz: bool },
}

struct Instance {
    roles: usize,
    authz: ExtAuthz,
    startup: Duration,
    idle_rss_kib: u64,
    idp: Cursor,
}

pub async fn run(settings: &Settings, wrk: &Wrk) -> Result<Outcome> {
    let pinned = Pinned::new(&settings.envoy_bin, settings.envoy_cpu)?;
    let scratch = tempfile::Builder::new().prefix("bench-idp-").tempdir()?;
    let bin = settings
        .ext_authz_bin
        .clone()
        .context("the ext-authz binary is needed for this section")?;

    // ---- the stand-in IdP and its tokens --------------------------------
    let signer = Signer::generate()?;
    let idp = JwksServer::start("{}").await?;
    let iss = format!("http://{}", idp.addr());
    idp.set_body(
        json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"), "keys": [signer.jwk()]})
            .to_string(),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let started = Instant::now();
    let pool: Arc<Vec<String>> = Arc::new(mint(
        &signer,
        settings.idp_tokens.max(1_000),
        Kind::Valid,
        &|i| {
            idp_claims(
                &iss,
                SUBJECT,
                IDP_AUDIENCE,
                now,
                6 * 3600,
                &format!("idp-{i}"),
            )
        },
    )?);
    eprintln!(
        "bench: minted {} IdP tokens in {:.1}s",
        int(pool.len() as f64),
        started.elapsed().as_secs_f64()
    );

    // ---- ext-authz with 10, 1,000, 10,000 Roles ---------------------------
    let mut instances = Vec::new();
    for roles in ROLE_COUNTS {
        let t = Instant::now();
        let authz = ExtAuthz::start(&bin, GATEWAY, &iam_yaml(&iss, roles))
            .await
            .with_context(|| format!("starting {} with {roles} Roles", bin.display()))?;
        let startup = t.elapsed();
        let (rss, _) = procfs::rss_kib(authz.pid())?;
        instances.push(Instance {
            roles,
            startup,
            idle_rss_kib: rss,
            idp: Cursor::new(pool.clone(), &format!("idp-{roles}"), scratch.path()),
            authz,
        });
    }

    // One exchange each: 200, a function token for the subject's team.
    let fields = [
        ("grant_type", GRANT),
        ("subject_token_type", ID_TOKEN),
        ("scope", "function"),
    ];
    let prefix = format!("{}&subject_token=", form_encode(&fields));
    for inst in &instances {
        let subject = signer.sign(&idp_claims(
            &iss,
            SUBJECT,
            IDP_AUDIENCE,
            now,
            3600,
            "sanity",
        ))?;
        let resp = inst
            .authz
            .token_request(&[
                ("grant_type", GRANT),
                ("subject_token_type", ID_TOKEN),
                ("scope", "function"),
                ("subject_token", &subject),
            ])
            .await?;
        if resp.status != 200 {
            bail!(
                "an exchange with {} Roles answered {} {}\n{}",
                inst.roles,
                resp.status,
                resp.body,
                inst.authz.log()
            );
        }
        let token = resp.json()?["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let perms = payload(&token)?["function"]["permissions"].clone();
        if perms != json!([format!("{}:*", team(inst.roles))]) {
            bail!("with {} Roles the exchange granted {perms}", inst.roles);
        }
    }
    // An API token (no scope) for the Check.
    let api_token = {
        let subject = signer.sign(&idp_claims(&iss, SUBJECT, IDP_AUDIENCE, now, 3600, "api"))?;
        let resp = instances[0]
            .authz
            .token_request(&[
                ("grant_type", GRANT),
                ("subject_token_type", ID_TOKEN),
                ("subject_token", &subject),
            ])
            .await?;
        if resp.status != 200 {
            bail!(
                "the API-token exchange answered {} {}",
                resp.status,
                resp.body
            );
        }
        resp.json()?["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    // ---- the gateway Envoys ----------------------------------------------
    let grpc = configs::grpc_cluster("ext-authz-grpc", instances[0].authz.grpc_addr().port());
    let plain = pinned
        .start(
            "the gateway without ext_authz",
            configs::bootstrap(vec![], vec![])?,
        )
        .await?;
    let gated = pinned
        .start(
            "the gateway with ext_authz",
            configs::bootstrap(
                vec![configs::ext_authz_filter("ext-authz-grpc")],
                vec![grpc],
            )?,
        )
        .await?;
    let system_path = format!("/system/functions?namespace={}", team(instances[0].roles));
    let bearer = format!("Bearer {api_token}");
    for (envoy, what) in [(&plain, "plain"), (&gated, "ext_authz")] {
        let url = format!("{}{system_path}", envoy.listener_url(LISTENER)?);
        let r = get(&url, &[("authorization", &bearer)]).await?;
        if r.status != 200 {
            bail!(
                "GET {system_path} through the {what} gateway: {} {}",
                r.status,
                r.body
            );
        }
    }
    let denied = get(
        &format!("{}{system_path}", gated.listener_url(LISTENER)?),
        &[],
    )
    .await?;
    if denied.status != 401 {
        bail!(
            "without a token the ext_authz gateway answered {}, not 401: is Check running?",
            denied.status
        );
    }

    // ---- the measurements --------------------------------------------------
    let mut jobs = Vec::new();
    for c in CONCURRENCY {
        jobs.push(Job::Exchange { instance: 0, c });
        jobs.push(Job::Healthz { c });
    }
    jobs.push(Job::Check {
        through_ext_authz: false,
    });
    jobs.push(Job::Check {
        through_ext_authz: true,
    });
    for instance in 1..instances.len() {
        jobs.push(Job::Exchange { instance, c: 1 });
    }

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
    let mut warm: BTreeMap<Job, f64> = BTreeMap::new();
    for job in &jobs {
        let s = ctx
            .measure(*job, &mut instances, 0.0, settings.warmup)
            .await?;
        eprintln!(
            "bench: warm-up {:<48} {:>9} req/s",
            label(*job, &instances),
            int(s.rps())
        );
        warm.insert(*job, s.rps());
    }
    let mut samples: BTreeMap<Job, Vec<Sample>> = BTreeMap::new();
    for round in 0..settings.rounds {
        for k in 0..jobs.len() {
            let job = jobs[(k + round) % jobs.len()];
            let rate = warm.get(&job).copied().unwrap_or(0.0);
            let s = ctx
                .measure(job, &mut instances, rate, settings.authz_duration)
                .await?;
            eprintln!(
                "bench: round {}/{} {:<48} {:>9} req/s  p99 {:>9}  ext-authz {:>5.0}% of a core  (other load {:.0}% of a core)",
                round + 1,
                settings.rounds,
                label(job, &instances),
                int(s.rps()),
                latency(s.p99_us),
                match job {
                    Job::Check { .. } => s.busy_percent(1),
                    _ => s.busy_percent(0),
                },
                100.0 * s.other_cpu_seconds / s.seconds.max(1e-9),
            );
            samples.entry(job).or_default().push(s);
        }
    }
    let final_rss: Vec<(u64, u64)> = instances
        .iter()
        .map(|i| procfs::rss_kib(i.authz.pid()))
        .collect::<Result<_>>()?;
    drop(plain);
    drop(gated);
    let outcome = tabulate(settings, &instances, &samples, &final_rss);
    drop(idp);
    outcome
}

struct Ctx<'a> {
    wrk: &'a Wrk,
    /// `0-N`: every core, as ext-authz starts.
    all_cpus: String,
    prefix: &'a str,
    bearer_token: &'a str,
    system_path: &'a str,
    plain: &'a Envoy,
    gated: &'a Envoy,
}

impl Ctx<'_> {
    async fn measure(
        &self,
        job: Job,
        instances: &mut [Instance],
        rate: f64,
        duration: Duration,
    ) -> Result<Sample> {
        let (load, watch, cursor_of) = match job {
            Job::Exchange { instance, c } => {
                let inst = &mut instances[instance];
                // Warm-ups know no rate yet: a generous pool slice.
                let rate = if rate > 0.0 { rate } else { 50_000.0 };
                let count = inst.idp.need(rate, duration);
                let file = inst.idp.take(count)?;
                (
                    Load::get(inst.authz.token_url(), c, duration)
                        .form(self.prefix)
                        .tokens(Tokens::Pool(file)),
                    vec![inst.authz.pid()],
                    Some(instance),
                )
            }
            Job::Healthz { c } => (
                Load::get(
                    format!("{}/healthz", instances[0].authz.http_url()),
                    c,
                    duration,
                ),
                vec![instances[0].authz.pid()],
                None,
            ),
            Job::Check { through_ext_authz } => {
                let envoy = if through_ext_authz {
                    self.gated
                } else {
                    self.plain
                };
                (
                    Load::get(
                        format!("{}{}", envoy.listener_url(LISTENER)?, self.system_path),
                        CHECK_CONNECTIONS,
                        duration,
                    )
                    .tokens(Tokens::Fixed(self.bearer_token.to_owned())),
                    vec![envoy.pid(), instances[0].authz.pid()],
                    None,
                )
            }
        };
        // For the Check, Envoy's core is Envoy's alone: ext-authz moves to
        // wrk's core for the run, and back to every core afterwards.
        let pinned = matches!(job, Job::Check { .. });
        if pinned {
            set_affinity(instances[0].authz.pid(), &self.wrk.cpu.to_string()).await?;
        }
        let s = self.wrk.run(&load, &watch).await;
        if pinned {
            set_affinity(instances[0].authz.pid(), &self.all_cpus).await?;
        }
        let s = s.with_context(|| format!("measuring {}", label(job, instances)))?;
        if let Some(i) = cursor_of {
            instances[i]
                .idp
                .consumed(s.requests + u64::from(load.connections));
        }
        if s.requests == 0 || s.non_2xx > 0 || s.socket_errors > 0 {
            // One more request like the load's, to show what went wrong.
            let probe = match &load.tokens {
                Tokens::Fixed(t) => {
                    get(&load.url, &[("authorization", &format!("Bearer {t}"))]).await
                }
                _ => get(&load.url, &[]).await,
            };
            let probe = match probe {
                Ok(r) => format!(
                    "{} {:?} (www-authenticate: {:?})",
                    r.status,
                    r.body,
                    r.header("www-authenticate")
                ),
                Err(e) => format!("{e:#}"),
            };
            let mut log = instances[0].authz.log();
            if let Job::Check { .. } = job {
                let stats = self.gated.stats().await.unwrap_or_default();
                for (k, v) in stats {
                    if (k.contains("ext-authz-grpc") || k.contains("ext_authz")) && v > 0 {
                        log.push_str(&format!("\nenvoy stat {k} = {v}"));
                    }
                }
                log.push_str(&format!("\nenvoy log: {}", self.gated.log()));
            }
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            bail!(
                "{}: {} requests, {} not 2xx, {} connection errors or timeouts; one more request now: {probe}; ext-authz log ends:\n{}",
                label(job, instances),
                s.requests,
                s.non_2xx,
                s.socket_errors,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(s)
    }
}

/// Move every thread of `pid` to these cores (`taskset -a -p -c`).
async fn set_affinity(pid: u32, cpus: &str) -> Result<()> {
    let out = tokio::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .output()
        .await
        .context("running taskset")?;
    if !out.status.success() {
        bail!(
            "taskset -a -p -c {cpus} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn label(job: Job, instances: &[Instance]) -> String {
    match job {
        Job::Exchange { instance, c } => format!(
            "POST /oauth/token, {} Roles, c={c}",
            instances.get(instance).map_or(0, |i| i.roles)
        ),
        Job::Healthz { c } => format!("GET /healthz, c={c}"),
        Job::Check {
            through_ext_authz: true,
        } => "Envoy + ext_authz Check, /system/functions".to_owned(),
        Job::Check {
            through_ext_authz: false,
        } => "plain Envoy, /system/functions".to_owned(),
    }
}

fn payload(token: &str) -> Result<Value> {
    use base64::Engine as _;
    let part = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
    Ok(serde_json::from_slice(&bytes)?)
}

fn tabulate(
    settings: &Settings,
    instances: &[Instance],
    samples: &BTreeMap<Job, Vec<Sample>>,
    final_rss: &[(u64, u64)],
) -> Result<Outcome> {
    let get = |job: Job| samples.get(&job).map(Vec::as_slice).unwrap_or_default();
    let med = |s: &[Sample], f: &dyn Fn(&Sample) -> f64| median(s.iter().map(f));
    let ratio = |a: &[Sample], b: &[Sample], f: &dyn Fn(&Sample, &Sample) -> f64| {
        median(a.iter().zip(b).map(|(x, y)| f(x, y)))
    };

    let mut ex = Table::new(
        "ext-authz: token exchange vs `/healthz`",
        &[
            "concurrency",
            "exchanges/s",
            "p50",
            "p99",
            "ext-authz CPU/exchange",
            "ext-authz cores busy",
            "`/healthz` req/s",
            "`/healthz` p50",
            "`/healthz` p99",
            "exchange ÷ healthz",
        ],
    );
    ex.intro.push(format!(
        "`POST /oauth/token` (RFC 8693, `scope=function`), every request a distinct ES256 IdP token, {} Roles loaded; against `GET /healthz` on the same server. Medians of {} interleaved rounds of `wrk -t1 -cN -d{}s`; wrk pinned to core {}, ext-authz (release build, 2 tokio workers) on both cores, so it shares core {} with wrk.",
        instances[0].roles,
        settings.rounds,
        settings.authz_duration.as_secs_f64(),
        settings.load_cpu,
        settings.load_cpu,
    ));
    for c in CONCURRENCY {
        let e = get(Job::Exchange { instance: 0, c });
        let h = get(Job::Healthz { c });
        ex.row(vec![
            c.to_string(),
            int(med(e, &Sample::rps)),
            latency(med(e, &|s| s.p50_us)),
            latency(med(e, &|s| s.p99_us)),
            format!("{} µs", num(med(e, &|s| s.cpu_us_per_request(0)), 0)),
            num(med(e, &|s| s.busy_percent(0) / 100.0), 2),
            int(med(h, &Sample::rps)),
            latency(med(h, &|s| s.p50_us)),
            latency(med(h, &|s| s.p99_us)),
            num(ratio(e, h, &|a, b| a.rps() / b.rps()), 2),
        ]);
    }
    let wraps: u64 = instances.iter().map(|i| i.idp.wraps).sum();
    ex.note(format!(
        "Subject tokens: a pool of {} distinct IdP tokens per ext-authz process, handed out in order without reuse{}.",
        int(instances[0].idp.pool_size() as f64),
        if wraps > 0 {
            format!(" until it ran out ({wraps} wraps: ext-authz keeps no per-token cache, so a reused subject costs the same)")
        } else {
            String::new()
        }
    ));
    ex.note("ext-authz logs one audit line per exchange at its default level (info), as in production; that cost is included.");
    let other = median(
        samples
            .values()
            .flatten()
            .map(|s| 100.0 * s.other_cpu_seconds / s.seconds.max(1e-9)),
    );
    ex.note(format!(
        "Everything else on the machine (not ext-authz, Envoy, wrk or this driver) used a median {}% of a core during these measurements{}",
        num(other, 0),
        if other > 10.0 {
            ": the machine was NOT quiet, expect noise"
        } else {
            ""
        }
    ));

    let mut ck = Table::new(
        "ext-authz: the ext_authz `Check` through Envoy",
        &[
            "gateway Envoy",
            "req/s",
            "× plain",
            "p50",
            "p99",
            "Envoy CPU/req",
            "added Envoy CPU/req",
            "Envoy core busy",
            "ext-authz CPU/Check",
            "ext-authz cores busy",
        ],
    );
    ck.intro.push(format!(
        "`GET {}` with an API token (ES256, verified by ext-authz on every Check, then IAM `Function:List`); the route answers 200 itself (`direct_response`). Envoy `--concurrency 1` pinned to core {}, `envoy.filters.http.ext_authz` over gRPC (HTTP/2) to ext-authz as `envoy/gateway.yaml` configures it; `wrk -c{CHECK_CONNECTIONS}` and, for these runs, ext-authz on core {}, so Envoy has its core to itself.",
        "/system/functions?namespace=…",
        settings.envoy_cpu,
        settings.load_cpu
    ));
    let p = get(Job::Check {
        through_ext_authz: false,
    });
    let g = get(Job::Check {
        through_ext_authz: true,
    });
    for (name, s) in [("plain Envoy", p), ("Envoy + `ext_authz`", g)] {
        let is_plain = std::ptr::eq(s, p);
        ck.row(vec![
            name.to_owned(),
            int(med(s, &Sample::rps)),
            num(ratio(s, p, &|a, b| a.rps() / b.rps()), 2),
            latency(med(s, &|x| x.p50_us)),
            latency(med(s, &|x| x.p99_us)),
            format!("{} µs", num(med(s, &|x| x.cpu_us_per_request(0)), 1)),
            if is_plain {
                "0".to_owned()
            } else {
                format!(
                    "{} µs",
                    signed(
                        ratio(s, p, &|a, b| a.cpu_us_per_request(0)
                            - b.cpu_us_per_request(0)),
                        1
                    )
                )
            },
            format!("{}%", num(med(s, &|x| x.busy_percent(0)), 0)),
            if is_plain {
                "–".to_owned()
            } else {
                format!("{} µs", num(med(s, &|x| x.cpu_us_per_request(1)), 0))
            },
            if is_plain {
                "–".to_owned()
            } else {
                num(med(s, &|x| x.busy_percent(1) / 100.0), 2)
            },
        ]);
    }

    let mut roles = Table::new(
        "ext-authz: exchange latency by the number of Roles and Policies",
        &[
            "Roles + Policies",
            "startup to ready",
            "p50",
            "p99",
            "exchanges/s (c=1)",
            "ext-authz CPU/exchange",
            "p50 × 10 Roles",
            "RSS idle",
            "RSS after the run (peak)",
        ],
    );
    roles.intro.push(
        "Concurrency 1. Each Role has its own `jwt:sub` principal and its own Policy; the subject matches one Role near the end (the third from last).".to_owned(),
    );
    let base = get(Job::Exchange { instance: 0, c: 1 });
    for (i, inst) in instances.iter().enumerate() {
        let s = get(Job::Exchange { instance: i, c: 1 });
        roles.row(vec![
            int(inst.roles as f64),
            format!("{} ms", num(inst.startup.as_secs_f64() * 1000.0, 0)),
            latency(med(s, &|x| x.p50_us)),
            latency(med(s, &|x| x.p99_us)),
            int(med(s, &Sample::rps)),
            format!("{} µs", num(med(s, &|x| x.cpu_us_per_request(0)), 0)),
            num(ratio(s, base, &|a, b| a.p50_us / b.p50_us), 2),
            mib(inst.idle_rss_kib as f64),
            format!(
                "{} ({})",
                mib(final_rss[i].0 as f64),
                mib(final_rss[i].1 as f64)
            ),
        ]);
    }

    let e64 = get(Job::Exchange { instance: 0, c: 64 });
    let last = instances.len() - 1;
    let summary = Summary {
        exchange_rps_c64: med(e64, &Sample::rps),
        exchange_p99_us_c64: med(e64, &|s| s.p99_us),
        roles_p50_ratio: ratio(
            get(Job::Exchange {
                instance: last,
                c: 1,
            }),
            base,
            &|a, b| a.p50_us / b.p50_us,
        ),
        rss_10k_kib: final_rss[last].0 as f64,
        rss_10k_peak_kib: final_rss[last].1 as f64,
    };
    Ok(Outcome {
        tables: vec![ex, ck, roles],
        summary,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iam_has_n_roles_and_policies_and_one_for_the_subject() {
        let y = iam_yaml("http://127.0.0.1:1", 10);
        assert_eq!(y.matches("kind: Role\n").count(), 10);
        assert_eq!(y.matches("kind: Policy\n").count(), 10);
        assert_eq!(y.matches(SUBJECT).count(), 1);
        assert!(y.contains("name: role-7\n  namespace: openfaas\nspec:\n  policy: [policy-7]\n  principal:\n    jwt:sub: [\"bench-client\"]"));
        for doc in y.split("---\n") {
            let v: serde_yaml::Value = serde_yaml::from_str(doc).unwrap();
            assert!(v.get("kind").is_some());
        }
    }
}

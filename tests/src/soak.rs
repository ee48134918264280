//! `make soak`: the whole local stack (as `make run` starts it, with two
//! ext-authz replicas and the IdP behind a fault proxy) under a mixed load
//! for minutes, with faults injected along the way. `tests/tests/soak.rs`
//! runs a short one in `make test`.
//!
//! ```text
//! workers (reqwest) ─▶ gateway Envoy ─┬─▶ ext-authz a ─┐  (HTTP: health-checked, retried)
//!        │                            ├─▶ ext-authz b ─┤  (gRPC ext_authz: the same)
//!        │                            └─▶ sidecars Envoy [wasm filter] ─▶ echo functions
//!        └──────── direct ─────────────▶ sidecars Envoy        ext-authz ─▶ fault proxy ─▶ IdP
//! controller: faults on a schedule         sampler: RSS and counters once a period
//! ```
//!
//! Every request is judged against what it was designed to get
//! ([`load::judge`]): designed refusals are expected outcomes; failures a
//! fault explains are counted apart with their reason; anything else is an
//! unexpected failure. It passes with no unexpected failure, every fault
//! check holding, and no process whose memory at the end exceeds 1.1× its
//! memory two minutes after it started ([`report`]).

pub mod faults;
pub mod load;
pub mod report;
pub mod sample;
pub mod tally;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::watch;

pub use faults::Fault;
use faults::{Ctx, Events};
use load::{Load, Target};
pub use report::SoakReport;
use sample::{Proc, Procs, Sample, Source};
use tally::Tally;

use crate::stack::{Ports, Stack, StackOpts, replica_name};

/// ext-authz's flag for publish-before-sign key rotation.
pub const KEY_PUBLISH_DELAY_FLAG: &str = "--key-publish-delay";

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub duration: Duration,
    /// One report row, one memory and counter sample, per period.
    pub sample_every: Duration,
    pub workers: usize,
    /// Each worker does one operation per `pace`.
    pub pace: Duration,
    /// Faults, at their time since the start.
    pub faults: Vec<(Duration, Fault)>,
    /// A request slower than this fails.
    pub slow: Duration,
    /// Keys, IAM, rendered configs, the access log and saved logs.
    pub state_dir: PathBuf,
    /// The filters' `jwks.refresh_seconds`.
    pub jwks_refresh: Duration,
    /// ext-authz's `--key-publish-delay` (when it has the flag).
    pub key_publish_delay: Duration,
    /// ext-authz's `--idp-jwks-refresh`: short enough that refreshes fall
    /// into the IdP outage.
    pub idp_jwks_refresh: Duration,
    /// ext-authz's `--idp-timeout` (its default).
    pub idp_timeout: Duration,
    /// The JwtIssuer's `tokenExpiry`: tokens expire and are renewed
    /// during the run.
    pub token_expiry: Duration,
}

impl SoakPlan {
    /// `make soak`: `minutes` long, each 10 minutes one cycle of every fault
    /// (IAM reload, rotation, IdP outage, a replica restart), spread out so
    /// the last minutes are quiet and a restarted replica runs long enough
    /// to have its own minute 2.
    pub fn long(minutes: u64, state_dir: PathBuf) -> Self {
        let duration = Duration::from_secs(minutes.max(1) * 60);
        let cycles = (minutes / 10).max(1);
        let cycle = duration / u32::try_from(cycles).unwrap_or(1);
        let mut faults = Vec::new();
        for c in 0..cycles {
            let start = cycle * u32::try_from(c).unwrap_or(0);
            let at = |fraction: f64| start + cycle.mul_f64(fraction);
            faults.push((
                at(0.15),
                Fault::IamReload {
                    broken_for: Duration::from_secs(20),
                },
            ));
            faults.push((
                at(0.30),
                Fault::KeyRotation {
                    lead: Duration::from_secs(30),
                    stagger: Duration::from_secs(8),
                },
            ));
            faults.push((
                at(0.45),
                Fault::IdpOutage {
                    length: cycle.mul_f64(0.1).min(Duration::from_secs(60)),
                },
            ));
            faults.push((
                at(0.65),
                Fault::RestartExtAuthz {
                    replica: usize::try_from(c % 2).map_or(1, |r| 1 - r),
                    down_for: Duration::from_secs(5),
                },
            ));
        }
        SoakPlan {
            duration,
            sample_every: Duration::from_secs(60),
            workers: 4,
            pace: Duration::from_millis(100),
            faults,
            slow: Duration::from_secs(2),
            state_dir,
            jwks_refresh: Duration::from_secs(5),
            key_publish_delay: Duration::from_secs(5),
            idp_jwks_refresh: Duration::from_secs(30),
            idp_timeout: Duration::from_secs(5),
            token_expiry: Duration::from_secs(120),
        }
    }

    /// The soak in `make test`: 90 s, a rotation, an IAM reload with a
    /// broken file, a replica restart; no IdP outage (the exchange tests
    /// cover it) and no memory verdict (too short for one).
    pub fn short(state_dir: PathBuf) -> Self {
        SoakPlan {
            duration: Duration::from_secs(90),
            sample_every: Duration::from_secs(30),
            faults: vec![
                (
                    Duration::from_secs(8),
                    Fault::KeyRotation {
                        lead: Duration::from_secs(20),
                        stagger: Duration::from_secs(5),
                    },
                ),
                (
                    Duration::from_secs(40),
                    Fault::IamReload {
                        broken_for: Duration::from_secs(8),
                    },
                ),
                (
                    Duration::from_secs(62),
                    Fault::RestartExtAuthz {
                        replica: 1,
                        down_for: Duration::from_secs(3),
                    },
                ),
            ],
            ..Self::long(10, state_dir)
        }
    }
}

/// Run the soak: start the stack, load it, inject the faults, stop it.
/// An error means the soak could not run; a run that finds failures
/// returns a report that did not pass.
pub async fn run(plan: SoakPlan) -> Result<SoakReport> {
    let notes = Vec::new();
    let args = vec![
        "--idp-jwks-refresh".to_owned(),
        format!("{}s", plan.idp_jwks_refresh.as_secs()),
        "--idp-timeout".to_owned(),
        format!("{}s", plan.idp_timeout.as_secs()),
        KEY_PUBLISH_DELAY_FLAG.to_owned(),
        format!("{}s", plan.key_publish_delay.as_secs()),
    ];

    std::fs::create_dir_all(&plan.state_dir)
        .with_context(|| format!("creating {}", plan.state_dir.display()))?;
    let mut opts = StackOpts::new(Ports::any(), &plan.state_dir);
    opts.replicas = 2;
    opts.idp_proxy = true;
    opts.reload_interval = Duration::from_millis(500);
    opts.jwks_refresh_seconds = plan.jwks_refresh.as_secs().max(1);
    opts.ext_authz_args = args;
    opts.token_expiry = format!("{}s", plan.token_expiry.as_secs());
    opts.idp_token_ttl = Duration::from_secs(600);
    eprintln!(
        "soak: starting the stack (two ext-authz replicas) in {}",
        plan.state_dir.display()
    );
    let mut stack = Stack::start(opts).await.context("starting the stack")?;
    let result = drive(&plan, &mut stack, notes).await;
    save_logs(&stack, &plan.state_dir.join("logs"));
    stack.stop().await;
    result
}

async fn drive(plan: &SoakPlan, stack: &mut Stack, notes: Vec<String>) -> Result<SoakReport> {
    let target = Target {
        gateway: stack.gateway_url().to_owned(),
        sidecar_env: stack.sidecar_url("openfaas-fn:env")?,
        sidecar_dev: stack.sidecar_url("dev:env")?,
        idp_token_url: stack.oidc.token_endpoint().await?,
        client_id: stack.oidc.client_id().to_owned(),
        client_secret: stack.oidc.client_secret().to_owned(),
    };
    let procs = Arc::new(Procs::default());
    let envoy = |name: &str, e: &crate::Envoy| -> Result<Proc> {
        Ok(Proc {
            name: name.to_owned(),
            run: 1,
            pid: e.pid(),
            started: Duration::ZERO,
            source: Source::Envoy {
                admin: e.admin_url()?,
            },
            judged: true,
        })
    };
    procs.add(envoy("gateway", &stack.gateway)?);
    procs.add(envoy("sidecars", &stack.sidecars)?);
    for (i, r) in stack.replicas.iter().enumerate() {
        procs.add(Proc {
            name: replica_name(i),
            run: 1,
            pid: r.pid(),
            started: Duration::ZERO,
            source: Source::ExtAuthz { http: r.http_url() },
            judged: true,
        });
    }
    procs.add(Proc {
        name: "idp".to_owned(),
        run: 1,
        pid: stack.oidc.pid(),
        started: Duration::ZERO,
        source: Source::None,
        judged: false,
    });

    let tally = Arc::new(Tally::new(plan.sample_every));
    let load = Arc::new(
        Load::new(target, tally.clone(), plan.slow)
            .await
            .context("the clients' first tokens")?,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let sampler = tokio::spawn(sampler(
        load.client.clone(),
        procs.clone(),
        tally.clone(),
        plan.sample_every,
        stop_rx.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..plan.workers {
        tasks.spawn(load::worker(load.clone(), id, plan.pace, stop_rx.clone()));
    }
    tasks.spawn(load::keeper(
        load.clone(),
        Duration::from_secs(60),
        plan.token_expiry / 3,
        stop_rx.clone(),
    ));

    let events = Events::default();
    for n in &notes {
        events.note(&tally, n.clone());
    }
    let mut faults = plan.faults.clone();
    faults.sort_by_key(|(at, _)| *at);
    {
        let mut ctx = Ctx {
            stack,
            load: &load,
            events: &events,
            procs: &procs,
            idp_timeout: plan.idp_timeout,
            jwks_refresh: plan.jwks_refresh,
            log_dir: plan.state_dir.join("logs"),
        };
        for (at, fault) in faults {
            if at >= plan.duration {
                continue;
            }
            sleep_until(&tally, at).await;
            if let Err(e) = ctx.inject(fault).await {
                tally.harness_error(format!("injecting {}: {e:#}", fault.describe()));
            }
        }
    }
    sleep_until(&tally, plan.duration).await;
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let mut samples = sampler.await.unwrap_or_default();
    // The final sample, at the end of the load.
    samples.push(sample::sample(&load.client, &procs, tally.elapsed()).await);
    Ok(SoakReport::new(
        plan,
        &tally,
        events.all(),
        samples,
        procs.all(),
    ))
}

/// Pace the schedule (not a synchronisation: the load runs meanwhile).
async fn sleep_until(tally: &Tally, at: Duration) {
    let now = tally.elapsed();
    if at > now {
        tokio::time::sleep(at - now).await;
    }
}

/// A sample at the start and once per period, until `stop`.
async fn sampler(
    client: reqwest::Client,
    procs: Arc<Procs>,
    tally: Arc<Tally>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::from_std(tally.start()), every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return out,
            _ = tick.tick() => {}
        }
        // A replica being restarted may miss a sample: the report judges
        // the processes at the end, and the load judges every request.
        out.push(sample::sample(&client, &procs, tally.elapsed()).await);
    }
}

/// Every process's log, for the failures the report lists.
fn save_logs(stack: &Stack, dir: &std::path::Path) {
    let _ = std::fs::create_dir_all(dir);
    let mut logs = vec![
        ("gateway-envoy.log".to_owned(), stack.gateway.log()),
        ("sidecars-envoy.log".to_owned(), stack.sidecars.log()),
        ("idp.log".to_owned(), stack.oidc.log()),
    ];
    for (i, r) in stack.replicas.iter().enumerate() {
        logs.push((format!("{}.log", replica_name(i)), r.log()));
    }
    for (name, text) in logs {
        if let Err(e) = std::fs::write(dir.join(&name), text) {
            eprintln!("soak: cannot save {name}: {e}");
        }
    }
}

#[cfg(test)]
mod tests;

//! One measurement of a job: its load, the processes watched, and on a
//! failure, what one more request and the logs say.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{Envoy, get};

use super::{CHECK_CONNECTIONS, Instance, Job};
use crate::configs::LISTENER;
use crate::load::{Load, Sample, Tokens, Wrk};
use crate::report::{int, latency};
use crate::settings::Settings;

/// What every measurement needs besides the job.
pub(super) struct Ctx<'a> {
    pub wrk: &'a Wrk,
    /// `0-N`: every core, as ext-authz starts.
    pub all_cpus: String,
    /// The exchange's form fields before the subject token.
    pub prefix: &'a str,
    pub bearer_token: &'a str,
    pub system_path: &'a str,
    pub plain: &'a Envoy,
    pub gated: &'a Envoy,
}

impl Ctx<'_> {
    /// A warm-up of every job (its rate sizes its token files), then the
    /// interleaved rounds: every job once a round, the order rotated.
    pub(super) async fn run_jobs(
        &self,
        settings: &Settings,
        jobs: &[Job],
        instances: &mut [Instance],
    ) -> Result<BTreeMap<Job, Vec<Sample>>> {
        let mut warm: BTreeMap<Job, f64> = BTreeMap::new();
        for job in jobs {
            let s = self.measure(*job, instances, 0.0, settings.warmup).await?;
            eprintln!(
                "bench: warm-up {:<48} {:>9} req/s",
                label(*job, instances),
                int(s.rps())
            );
            warm.insert(*job, s.rps());
        }
        let mut samples: BTreeMap<Job, Vec<Sample>> = BTreeMap::new();
        for round in 0..settings.rounds {
            for k in 0..jobs.len() {
                let job = jobs[(k + round) % jobs.len()];
                let rate = warm.get(&job).copied().unwrap_or(0.0);
                let s = self
                    .measure(job, instances, rate, settings.authz_duration)
                    .await?;
                eprintln!(
                    "bench: round {}/{} {:<48} {:>9} req/s  p99 {:>9}  ext-authz {:>5.0}% of a core  (other load {:.0}% of a core)",
                    round + 1,
                    settings.rounds,
                    label(job, instances),
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
        Ok(samples)
    }

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

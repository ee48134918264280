//! What the soak watches once a period: each process's resident memory
//! (`VmRSS` in `/proc/PID/status`) and the counters that tell a fault's
//! cost: Envoy's (the filter's, the ext-authz clusters', ext_authz's) and
//! ext-authz's own `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Where a process's counters come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An Envoy: its admin `/stats?format=json`.
    Envoy { admin: String },
    /// ext-authz: its Prometheus `/metrics`.
    ExtAuthz { http: String },
    /// Memory only.
    None,
}

/// One run of one process.
#[derive(Debug, Clone)]
pub struct Proc {
    /// `gateway`, `sidecars`, `ext-authz-a`, `idp`…; a restarted process
    /// keeps its name with a higher `run`.
    pub name: String,
    pub run: u32,
    pub pid: u32,
    /// When it started, since the start of the soak (zero for the first run).
    pub started: Duration,
    pub source: Source,
    /// Memory counted in the pass/fail check (the IdP is for information).
    pub judged: bool,
}

impl Proc {
    /// `ext-authz-b`, or `ext-authz-b (run 2)` after a restart.
    pub fn label(&self) -> String {
        if self.run <= 1 {
            self.name.clone()
        } else {
            format!("{} (run {})", self.name, self.run)
        }
    }
}

/// The processes now running, updated when one restarts.
#[derive(Debug, Default)]
pub struct Procs {
    inner: Mutex<Vec<Proc>>,
    /// Every run ever, for the report.
    all: Mutex<Vec<Proc>>,
}

impl Procs {
    pub fn add(&self, p: Proc) {
        if let Ok(mut all) = self.all.lock() {
            all.push(p.clone());
        }
        if let Ok(mut now) = self.inner.lock() {
            now.retain(|q| q.name != p.name);
            now.push(p);
        }
    }

    /// `name` restarted as `pid` at `at`.
    pub fn restarted(&self, name: &str, pid: u32, at: Duration) {
        let prev = self
            .inner
            .lock()
            .ok()
            .and_then(|v| v.iter().find(|p| p.name == name).cloned());
        if let Some(prev) = prev {
            self.add(Proc {
                run: prev.run + 1,
                pid,
                started: at,
                ..prev
            });
        }
    }

    pub fn current(&self) -> Vec<Proc> {
        self.inner.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn all(&self) -> Vec<Proc> {
        self.all.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// One sample.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at: Duration,
    /// Resident memory in KiB by process label; `None`: the process is gone.
    pub rss_kib: BTreeMap<String, Option<u64>>,
    /// Counter name (prefixed with the process name) to value.
    pub counters: BTreeMap<String, u64>,
    /// Counters that could not be read, and why.
    pub errors: Vec<String>,
}

/// `VmRSS` of `pid` in KiB; `None` once it has exited (a zombie has none).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Envoy stats worth a look in a soak: the filter's counters, the
/// ext-authz clusters' failures, retries and health, and ext_authz's results.
pub fn envoy_stat_wanted(name: &str) -> bool {
    const CLUSTER_STATS: [&str; 10] = [
        "upstream_cx_connect_fail",
        "upstream_cx_total",
        "upstream_rq_retry",
        "upstream_rq_retry_success",
        "upstream_rq_retry_overflow",
        "upstream_rq_timeout",
        "upstream_cx_destroy_remote_with_active_rq",
        "health_check.failure",
        "outlier_detection.ejections_enforced_total",
        "upstream_rq_5xx",
    ];
    name.starts_with("wasmcustom.faas_mesh_auth.")
        || name.starts_with("http.gateway.ext_authz.")
        || (name.starts_with("http.")
            && !name.starts_with("http.admin.")
            && name.ends_with("downstream_rq_5xx"))
        || name.ends_with("requests_rejected_with_underscores_in_headers")
        || (name.starts_with("cluster.ext-authz-")
            && CLUSTER_STATS.iter().any(|s| {
                name.strip_prefix("cluster.")
                    .and_then(|rest| rest.split_once('.'))
                    .is_some_and(|(_, stat)| stat == *s)
            }))
}

/// `/metrics` lines worth keeping: ext-authz's own counters (not the
/// histograms' buckets).
pub fn parse_metrics(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| l.starts_with("faas_mesh_auth_") && !l.contains("_bucket"))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let name = name.trim();
            if !(name.contains("_total") || name.contains("published_keys")) {
                return None;
            }
            // Counters print as integers or floats ("3" or "3.0").
            let v = value.trim().parse::<f64>().ok()?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some((name.to_owned(), v.max(0.0) as u64))
        })
        .collect()
}

/// Sum the `/metrics` series `name` whose labels contain every `labels`
/// (`what="iam"`).
pub fn metric_sum(metrics: &BTreeMap<String, u64>, name: &str, labels: &[&str]) -> u64 {
    metrics
        .iter()
        .filter(|(k, _)| k.split('{').next() == Some(name) && labels.iter().all(|l| k.contains(l)))
        .map(|(_, v)| *v)
        .sum()
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<String> {
    let r = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let body = r.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}");
    }
    Ok(body)
}

/// ext-authz's counters now.
pub async fn ext_authz_metrics(
    client: &reqwest::Client,
    http: &str,
) -> Result<BTreeMap<String, u64>> {
    Ok(parse_metrics(
        &fetch(client, &format!("{http}/metrics")).await?,
    ))
}

/// Take one sample of every current process.
pub async fn sample(client: &reqwest::Client, procs: &Procs, at: Duration) -> Sample {
    let mut s = Sample {
        at,
        ..Sample::default()
    };
    for p in procs.current() {
        s.rss_kib.insert(p.label(), rss_kib(p.pid));
        match &p.source {
            Source::Envoy { admin } => {
                match fetch(client, &format!("{admin}/stats?format=json"))
                    .await
                    .and_then(|b| crate::envoy::parse_stats(&b))
                {
                    Ok(stats) => s.counters.extend(
                        stats
                            .into_iter()
                            .filter(|(k, _)| envoy_stat_wanted(k))
                            .map(|(k, v)| (format!("{} {k}", p.name), v)),
                    ),
                    Err(e) => s.errors.push(format!("{}: {e:#}", p.name)),
                }
            }
            Source::ExtAuthz { http } => match ext_authz_metrics(client, http).await {
                Ok(m) => s
                    .counters
                    .extend(m.into_iter().map(|(k, v)| (format!("{} {k}", p.name), v))),
                Err(e) => s.errors.push(format!("{}: {e:#}", p.name)),
            },
            Source::None => {}
        }
    }
    s
}

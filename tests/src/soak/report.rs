//! The soak's verdict and its record (`bench/SOAK.md`).
//!
//! It passes when no request failed unexpectedly, the harness did its job,
//! every fault check held, every process runs at the end, and no process's
//! memory at the end exceeds 1.1× its memory two minutes after it started
//! (a restarted replica against its own minute 2; when the run is too short
//! for that, the report says so instead).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use super::SoakPlan;
use super::faults::{Event, unix_now, utc_stamp};
use super::sample::{Proc, Sample};
use super::tally::{Kind, Tally, clock};

/// Memory may grow at most this much between minute 2 and the end.
pub const RSS_GROWTH_LIMIT: f64 = 1.1;
/// The baseline: this long after a process started.
pub const RSS_BASELINE_AFTER: Duration = Duration::from_secs(120);

/// One process's memory verdict.
#[derive(Debug, Clone)]
pub struct RssCheck {
    pub label: String,
    /// (when, KiB) two minutes after its start, and at the end.
    pub baseline: Option<(Duration, u64)>,
    pub last: Option<(Duration, u64)>,
    pub judged: bool,
}

impl RssCheck {
    pub fn ratio(&self) -> Option<f64> {
        match (self.baseline, self.last) {
            (Some((b_at, b)), Some((l_at, l))) if l_at > b_at && b > 0 =>
            {
                #[allow(clippy::cast_precision_loss)]
                Some(l as f64 / b as f64)
            }
            _ => None,
        }
    }

    pub fn failed(&self) -> bool {
        self.judged && self.ratio().is_some_and(|r| r > RSS_GROWTH_LIMIT)
    }
}

/// The memory verdict of every run of every process. The baseline is the
/// first sample at least two minutes (less a few seconds of sampling
/// jitter) after the process started.
pub fn rss_checks(samples: &[Sample], procs: &[Proc]) -> Vec<RssCheck> {
    procs
        .iter()
        .map(|p| {
            let label = p.label();
            let series: Vec<(Duration, u64)> = samples
                .iter()
                .filter_map(|s| s.rss_kib.get(&label).copied().flatten().map(|v| (s.at, v)))
                .collect();
            let baseline = series
                .iter()
                .find(|(at, _)| *at + Duration::from_secs(5) >= p.started + RSS_BASELINE_AFTER)
                .copied();
            RssCheck {
                label,
                baseline,
                last: series.last().copied(),
                judged: p.judged,
            }
        })
        .collect()
}

/// The outcome, and the record.
#[derive(Debug, Clone)]
pub struct SoakReport {
    passed: bool,
    reasons: Vec<String>,
    markdown: String,
    summary: String,
}

fn mib(kib: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let m = kib as f64 / 1024.0;
    format!("{m:.1}")
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.1}", d.as_secs_f64() * 1000.0),
    )
}

/// `|` would end a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl SoakReport {
    pub fn new(
        plan: &SoakPlan,
        tally: &Tally,
        events: Vec<Event>,
        samples: Vec<Sample>,
        procs: Vec<Proc>,
    ) -> Self {
        let kinds = tally.kinds();
        let unexpected = tally.unexpected();
        let expected = tally.expected();
        let harness = tally.harness_errors();
        let checks = rss_checks(&samples, &procs);

        let mut reasons = Vec::new();
        let n_unexpected = tally.unexpected_count();
        if n_unexpected > 0 {
            reasons.push(format!(
                "{n_unexpected} unexpected failure(s) in {} group(s) (see Unexpected failures)",
                unexpected.len()
            ));
        }
        for (at, e) in &harness {
            reasons.push(format!("harness error at {}: {e}", clock(*at)));
        }
        for e in events.iter().filter(|e| e.failed) {
            reasons.push(format!("check failed at {}: {}", clock(e.at), e.text));
        }
        if let Some(last) = samples.last() {
            let current: BTreeSet<String> = procs
                .iter()
                .map(|p| p.name.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter_map(|name| {
                    procs
                        .iter()
                        .filter(|p| p.name == name)
                        .max_by_key(|p| p.run)
                        .map(Proc::label)
                })
                .collect();
            for label in current {
                if last.rss_kib.get(&label).copied().flatten().is_none() {
                    reasons.push(format!("{label} is not running at the end"));
                }
            }
        }
        for c in checks.iter().filter(|c| c.failed()) {
            reasons.push(format!(
                "{}: memory grew {:.2}x from minute 2 ({} MiB) to the end ({} MiB), over the {RSS_GROWTH_LIMIT}x limit",
                c.label,
                c.ratio().unwrap_or(0.0),
                c.baseline.map_or_else(String::new, |b| mib(b.1)),
                c.last.map_or_else(String::new, |l| mib(l.1)),
            ));
        }
        let total: u64 = kinds.values().map(super::tally::KindCounts::total).sum();
        if total == 0 {
            reasons.push("no request was made".into());
        }
        let passed = reasons.is_empty();

        let mut md = String::new();
        let minutes = plan.duration.as_secs_f64() / 60.0;
        let _ = writeln!(md, "# Soak: the local stack under load and faults\n");
        let _ = writeln!(
            md,
            "`make soak SOAK_MINUTES={minutes}` (tests/src/soak.rs), started {} UTC, {}.\n",
            utc_stamp(unix_now().saturating_sub(tally.elapsed().as_secs())),
            machine()
        );
        let _ = writeln!(md, "**Result: {}**\n", if passed { "PASS" } else { "FAIL" });
        for r in &reasons {
            let _ = writeln!(md, "- {}", cell(r));
        }
        if !reasons.is_empty() {
            md.push('\n');
        }

        let _ = writeln!(md, "## Load\n");
        let _ = writeln!(
            md,
            "{} workers, one operation each per {} ms, through the gateway and straight to the sidecars, over kept-alive connections: invokes with a held function token (the filter's cache) and with one exchanged just before, exchanges (IdP → function, IdP → API, API → function), and `/system/` calls with an API token. Held tokens are renewed every {} s (`tokenExpiry` {} s), the IdP token every 60 s. Some requests are refused by design (a function outside the token's permissions, an audience outside them, `Secret:List`). A request slower than {} s fails.\n",
            plan.workers,
            plan.pace.as_millis(),
            (plan.token_expiry / 3).as_secs(),
            plan.token_expiry.as_secs(),
            plan.slow.as_secs()
        );
        let _ = writeln!(
            md,
            "| kind | requests | ok | refused by design | expected failures | unexpected failures | p50 ms | p99 ms | max ms |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for k in Kind::ALL {
            let c = kinds.get(&k).cloned().unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                k.label(),
                c.total(),
                c.ok,
                c.denied,
                c.expected,
                c.unexpected,
                ms(c.latency(0.5)),
                ms(c.latency(0.99)),
                ms(c.latency(1.0))
            );
        }
        md.push('\n');

        let _ = writeln!(md, "### Expected failures\n");
        if expected.is_empty() {
            let _ = writeln!(md, "None.\n");
        } else {
            let _ = writeln!(md, "| kind | reason | count |\n|---|---|---:|");
            for ((k, reason), n) in &expected {
                let _ = writeln!(md, "| {} | {} | {n} |", k.label(), cell(reason));
            }
            md.push('\n');
        }

        let _ = writeln!(md, "### Unexpected failures\n");
        if unexpected.is_empty() {
            let _ = writeln!(md, "None.\n");
        } else {
            let _ = writeln!(
                md,
                "| first | last | count | kind | request | what it got |\n|---|---|---:|---|---|---|"
            );
            for g in unexpected.iter().take(60) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} |",
                    clock(g.first),
                    clock(g.last),
                    g.count,
                    g.kind.label(),
                    cell(&g.what),
                    cell(&g.detail)
                );
            }
            if unexpected.len() > 60 {
                let _ = writeln!(md, "\n… and {} more groups.", unexpected.len() - 60);
            }
            md.push('\n');
        }

        let _ = writeln!(md, "## Faults\n");
        let _ = writeln!(md, "| at | event |\n|---|---|");
        for e in &events {
            let _ = writeln!(
                md,
                "| {} | {}{} |",
                clock(e.at),
                if e.failed { "**FAILED** " } else { "" },
                cell(&e.text)
            );
        }
        md.push('\n');

        let labels: Vec<String> = procs.iter().map(Proc::label).collect();
        let periods = tally.periods();
        let every = tally.period();
        let _ = writeln!(
            md,
            "## Per period ({} s)\n\nRSS (MiB) sampled at the end of each period; `-`: not running then.\n",
            every.as_secs()
        );
        let _ = write!(
            md,
            "| period | requests | refused by design | expected | unexpected |"
        );
        for l in &labels {
            let _ = write!(md, " {} |", cell(l));
        }
        let _ = write!(md, "\n|---|---:|---:|---:|---:|");
        for _ in &labels {
            md.push_str("---:|");
        }
        md.push('\n');
        let start_rss = samples.first();
        let _ = write!(md, "| start | | | | |");
        for l in &labels {
            let v = start_rss.and_then(|s| s.rss_kib.get(l).copied().flatten());
            let _ = write!(md, " {} |", v.map_or_else(|| "-".to_owned(), mib));
        }
        md.push('\n');
        let rows = periods.len().max(samples.len().saturating_sub(1));
        for i in 0..rows {
            let p = periods.get(i).copied().unwrap_or_default();
            let end = every * u32::try_from(i + 1).unwrap_or(u32::MAX);
            // The sample closest to the period's end.
            let s = samples.iter().skip(1).min_by_key(|s| s.at.abs_diff(end));
            let _ = write!(
                md,
                "| {}–{} | {} | {} | {} | {} |",
                clock(end.saturating_sub(every)),
                clock(end.min(plan.duration)),
                p.requests,
                p.denied,
                p.expected,
                p.unexpected
            );
            for l in &labels {
                let v = s
                    .filter(|s| s.at.abs_diff(end) < every / 2)
                    .and_then(|s| s.rss_kib.get(l).copied().flatten());
                let _ = write!(md, " {} |", v.map_or_else(|| "-".to_owned(), mib));
            }
            md.push('\n');
        }
        md.push('\n');

        let _ = writeln!(
            md,
            "## Memory\n\nEach process's RSS at the end against its RSS two minutes after it started (limit {RSS_GROWTH_LIMIT}x; the IdP is shown for information).\n"
        );
        let _ = writeln!(
            md,
            "| process | minute 2 (MiB) | end (MiB) | ratio | verdict |\n|---|---:|---:|---:|---|"
        );
        for c in &checks {
            let verdict = match (c.ratio(), c.judged) {
                (Some(_), true) if c.failed() => "**over the limit**".to_owned(),
                (Some(_), true) => "ok".to_owned(),
                (Some(_), false) => "information".to_owned(),
                (None, _) => "not evaluated: the run ended before a sample two minutes after this process started".to_owned(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {verdict} |",
                cell(&c.label),
                c.baseline.map_or_else(|| "-".to_owned(), |b| mib(b.1)),
                c.last.map_or_else(|| "-".to_owned(), |l| mib(l.1)),
                c.ratio()
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
            );
        }
        md.push('\n');

        let _ = writeln!(
            md,
            "## Counters\n\nAt the first and the last sample (ext-authz's restart from zero when it restarts). Envoy's: the filter's (`wasmcustom.faas_mesh_auth.*`), the ext-authz clusters', ext_authz's; ext-authz's: `/metrics`.\n"
        );
        let _ = writeln!(md, "| counter | start | end |\n|---|---:|---:|");
        let first: BTreeMap<String, u64> = samples
            .first()
            .map(|s| s.counters.clone())
            .unwrap_or_default();
        if let Some(last) = samples.last() {
            for (k, v) in &last.counters {
                let s0 = first.get(k).copied().unwrap_or(0);
                if *v > 0 || s0 > 0 {
                    let _ = writeln!(md, "| `{}` | {s0} | {v} |", cell(k));
                }
            }
        }
        md.push('\n');
        let errors: Vec<String> = samples
            .iter()
            .flat_map(|s| {
                s.errors
                    .iter()
                    .map(move |e| format!("{}: {e}", clock(s.at)))
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(
                md,
                "Counters that could not be read (a replica restarting):\n"
            );
            for e in errors {
                let _ = writeln!(md, "- {}", cell(&e));
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "Logs of every process, and the gateway's access log, are in `{}` (`logs/`, `gateway-access.log`).",
            plan.state_dir.display()
        );

        let mut summary = String::new();
        let _ = writeln!(
            summary,
            "soak: {} after {}",
            if passed { "PASS" } else { "FAIL" },
            clock(tally.elapsed())
        );
        for k in Kind::ALL {
            let c = kinds.get(&k).cloned().unwrap_or_default();
            let _ = writeln!(
                summary,
                "  {:<14} {:>7} requests: {:>7} ok, {:>6} refused by design, {:>5} expected failures, {:>5} unexpected",
                k.label(),
                c.total(),
                c.ok,
                c.denied,
                c.expected,
                c.unexpected
            );
        }
        for ((k, reason), n) in &expected {
            let _ = writeln!(summary, "  expected ({}): {n} x {reason}", k.label());
        }
        for g in unexpected.iter().take(20) {
            let _ = writeln!(
                summary,
                "  UNEXPECTED {} x {} {} ({}–{}): {}",
                g.count,
                g.kind.label(),
                g.what,
                clock(g.first),
                clock(g.last),
                g.detail
            );
        }
        for c in &checks {
            if let Some(r) = c.ratio() {
                let _ = writeln!(
                    summary,
                    "  memory {}: {r:.2}x from minute 2 to the end",
                    c.label
                );
            }
        }
        for r in &reasons {
            let _ = writeln!(summary, "  reason: {r}");
        }
        SoakReport {
            passed,
            reasons,
            markdown: md,
            summary,
        }
    }

    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Why it failed (empty when it passed).
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// The record, as `bench/SOAK.md` holds it.
    pub fn markdown(&self) -> &str {
        &self.markdown
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

/// Cores, kernel and commit, for the record.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(crate::paths::repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{cores} cores, Linux {kernel}, commit {commit}")
}

//! The figures the targets are checked against, taken from the rows: each
//! ratio within a round, then the median over rounds.

use super::envoys::BASELINE;
use super::{Proc, Row, Traffic};
use crate::load::Sample;
use crate::report::median;

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub hot_vs_noop: f64,
    /// Against the do-nothing filter that skips the SDK (the true floor).
    pub hot_vs_bare: f64,
    pub hot_added_us: f64,
    pub noop_added_us: f64,
    pub bare_added_us: f64,
    pub jwt_added_us: f64,
    pub jwt_cache_added_us: f64,
    pub jwt_ratio: f64,
    pub cold_ratio: f64,
    pub cold_added_us: f64,
    pub cold_cpu_us: f64,
    pub jwt_cpu_us: f64,
    pub cold_fallback: Option<(f64, f64)>,
    pub flood_cpu_us: f64,
    pub flood_ratio: f64,
    pub flood_cache_survived: Option<bool>,
    pub filter_wasm_bytes: u64,
    pub noop_wasm_bytes: u64,
    pub vm_rss_kib: f64,
    pub noop_vm_rss_kib: f64,
    pub cold_path: String,
    /// With `BENCH_BASELINE_WASM`: the hot path against the baseline build.
    pub baseline: Option<Baseline>,
}

/// This build's hot path against the baseline build's, round by round.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// Throughput, this build ÷ the baseline: the median, and each round's.
    pub rps_ratio: f64,
    pub rps_rounds: Vec<f64>,
    /// CPU per request added to plain Envoy: this build's, the baseline's,
    /// and the median of the rounds' ratios.
    pub added_us: f64,
    pub baseline_added_us: f64,
    pub added_ratio: f64,
}

/// The median over rounds of `f(row's sample, base's sample)`.
pub(super) fn per_round(row: &Row, base: &Row, f: impl Fn(&Sample, &Sample) -> f64) -> f64 {
    median(row.samples.iter().zip(&base.samples).map(|(a, b)| f(a, b)))
}

/// CPU µs per request `a` took more than plain Envoy in the same round.
pub(super) fn added_cpu(a: &Sample, plain: &Sample) -> f64 {
    a.cpu_us_per_request(0) - plain.cpu_us_per_request(0)
}

/// What the rows say, for the targets table. `rss_minus_plain(label)`: the
/// RSS of that Envoy after the run, less plain Envoy's.
pub(super) fn summarize(
    rows: &[Row],
    procs: &[Proc],
    plain: &Row,
    rss_minus_plain: impl Fn(&str) -> f64,
    wasm_bytes: (u64, u64),
) -> Summary {
    let find = |traffic: Traffic, proc_label: &str| {
        rows.iter()
            .find(|r| r.traffic == traffic && procs[r.proc_index].label == proc_label)
    };
    let added = |r: Option<&Row>| r.map_or(f64::NAN, |r| per_round(r, plain, added_cpu));
    let ratio =
        |r: Option<&Row>| r.map_or(f64::NAN, |r| per_round(r, plain, |a, b| a.rps() / b.rps()));
    let cpu = |r: Option<&Row>| {
        r.map_or(f64::NAN, |r| {
            median(r.samples.iter().map(|s| s.cpu_us_per_request(0)))
        })
    };
    let against = |a: Option<&Row>, b: Option<&Row>| match (a, b) {
        (Some(a), Some(b)) => per_round(a, b, |x, y| x.rps() / y.rps()),
        _ => f64::NAN,
    };
    let hot = find(Traffic::Hot, "ours");
    let noop = find(Traffic::Hot, "noop");
    let cold = find(Traffic::Cold, "ours");
    let fallback = find(Traffic::Cold, "ours-wasm-crypto");
    let flood = find(Traffic::Flood, "ours");
    let jwt = find(Traffic::Hot, "jwt_authn");
    let baseline = match (hot, find(Traffic::Hot, BASELINE)) {
        (Some(h), Some(b)) => Some(baseline(h, b, plain)),
        _ => None,
    };
    Summary {
        hot_vs_noop: against(hot, noop),
        hot_vs_bare: against(hot, find(Traffic::Hot, "bare")),
        hot_added_us: added(hot),
        noop_added_us: added(noop),
        bare_added_us: added(find(Traffic::Hot, "bare")),
        jwt_added_us: added(jwt),
        jwt_cache_added_us: added(find(Traffic::Hot, "jwt_authn+cache")),
        jwt_ratio: ratio(jwt),
        cold_ratio: ratio(cold),
        cold_added_us: added(cold),
        cold_cpu_us: cpu(cold),
        jwt_cpu_us: cpu(jwt),
        cold_fallback: fallback.map(|f| (ratio(Some(f)), added(Some(f)))),
        flood_cpu_us: cpu(flood),
        flood_ratio: ratio(flood),
        flood_cache_survived: flood.map(|f| f.cache_survived.iter().all(|b| *b)),
        filter_wasm_bytes: wasm_bytes.0,
        noop_wasm_bytes: wasm_bytes.1,
        vm_rss_kib: rss_minus_plain("ours"),
        noop_vm_rss_kib: rss_minus_plain("noop"),
        cold_path: cold.map_or_else(String::new, cold_path),
        baseline,
    }
}

/// Which signature path the cold row took, from the filter's counters.
fn cold_path(cold: &Row) -> String {
    let native = cold.stats.get("verify_native").copied();
    let wasm = cold.stats.get("verify_wasm").copied();
    match (native, wasm) {
        (Some(n), Some(w)) if n > 0 && w == 0 => "Envoy's native `verify_signature`".to_owned(),
        (Some(n), Some(w)) if w > 0 && n == 0 => "pure Rust in the VM".to_owned(),
        (Some(n), Some(w)) => format!("mixed: {n} native, {w} in the VM"),
        _ => "not reported by this filter build".to_owned(),
    }
}

/// Both hot rows ran in every round, next to each other in its order: a
/// ratio within the round leaves the machine's drift out.
fn baseline(hot: &Row, base: &Row, plain: &Row) -> Baseline {
    let rps_rounds: Vec<f64> = hot
        .samples
        .iter()
        .zip(&base.samples)
        .map(|(a, b)| a.rps() / b.rps())
        .collect();
    let added_ratio = median(
        hot.samples
            .iter()
            .zip(&base.samples)
            .zip(&plain.samples)
            .map(|((a, b), p)| added_cpu(a, p) / added_cpu(b, p)),
    );
    Baseline {
        rps_ratio: median(rps_rounds.iter().copied()),
        rps_rounds,
        added_us: per_round(hot, plain, added_cpu),
        baseline_added_us: per_round(base, plain, added_cpu),
        added_ratio,
    }
}

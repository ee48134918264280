//! The report's first table: the targets the filter and ext-authz were
//! built to, each against this run's figures, met or missed.

use crate::report::{Table, int, latency, mib, num};
use crate::{authz, filter, memory};

fn verdict(met: bool) -> String {
    if met { "met" } else { "**missed**" }.to_owned()
}

/// The targets against this run's figures.
pub fn table(
    f: Option<&filter::Summary>,
    m: Option<&memory::Summary>,
    a: Option<&authz::Summary>,
) -> Table {
    let mut t = Table::new("Targets and this run", &["target", "this run", ""]);
    if let Some(f) = f {
        t.row(vec![
            "hot path ≥ 0.95× the do-nothing wasm filter's throughput".into(),
            format!(
                "{}× (added CPU: ours {} µs, do-nothing {} µs, `jwt_authn`+cache {} µs)",
                num(f.hot_vs_noop, 2),
                num(f.hot_added_us, 1),
                num(f.noop_added_us, 1),
                num(f.jwt_cache_added_us, 1)
            ),
            verdict(f.hot_vs_noop >= 0.95),
        ]);
        t.row(vec![
            "(for reference) hot path against a do-nothing filter without the SDK".into(),
            format!(
                "{}× (added CPU: ours {} µs, this floor {} µs)",
                num(f.hot_vs_bare, 2),
                num(f.hot_added_us, 1),
                num(f.bare_added_us, 1)
            ),
            String::new(),
        ]);
        if let Some(b) = &f.baseline {
            t.row(vec![
                "(before/after) hot path against the baseline build, same rounds".into(),
                format!(
                    "throughput {}×; added CPU {} µs vs {} µs = {}×",
                    num(b.rps_ratio, 3),
                    num(b.added_us, 1),
                    num(b.baseline_added_us, 1),
                    num(b.added_ratio, 2)
                ),
                String::new(),
            ]);
        }
        t.row(vec![
            "cold path throughput ≥ 0.3× plain Envoy".into(),
            format!(
                "{}× (signatures: {}); native `jwt_authn` without cache {}×",
                num(f.cold_ratio, 2),
                f.cold_path,
                num(f.jwt_ratio, 2)
            ),
            verdict(f.cold_ratio >= 0.3),
        ]);
        let added_ratio = f.cold_added_us / f.jwt_added_us;
        t.row(vec![
            "cold path CPU/request within 1.5× of native `jwt_authn`'s".into(),
            format!(
                "added {} µs vs {} µs = {}×; in all {} µs vs {} µs = {}×",
                num(f.cold_added_us, 1),
                num(f.jwt_added_us, 1),
                num(added_ratio, 2),
                num(f.cold_cpu_us, 1),
                num(f.jwt_cpu_us, 1),
                num(f.cold_cpu_us / f.jwt_cpu_us, 2)
            ),
            verdict(added_ratio <= 1.5),
        ]);
        if let Some((ratio, added)) = f.cold_fallback {
            t.row(vec![
                "(for reference) cold path, pure-Rust fallback forced".into(),
                format!("{}× plain, added {} µs", num(ratio, 2), num(added, 1)),
                String::new(),
            ]);
        }
        t.row(vec![
            "a flood of forged tokens costs no more per request than a cold valid token".into(),
            format!(
                "{} µs vs {} µs CPU/request ({}× plain)",
                num(f.flood_cpu_us, 1),
                num(f.cold_cpu_us, 1),
                num(f.flood_ratio, 2)
            ),
            // Within the measurement's noise (2%) counts as no more.
            verdict(f.flood_cpu_us <= f.cold_cpu_us * 1.02),
        ]);
        if let Some(survived) = f.flood_cache_survived {
            t.row(vec![
                "the flood cannot flush the verified-token cache".into(),
                if survived {
                    "the hot token was still cached after every flood".into()
                } else {
                    "the hot token was evicted by a flood".into()
                },
                verdict(survived),
            ]);
        }
        t.row(vec![
            "`.wasm` ≤ 1 MiB".into(),
            format!(
                "{} bytes ({} MiB); do-nothing filter {} bytes; VM memory (Envoy RSS minus plain) {}, do-nothing {}",
                int(f.filter_wasm_bytes as f64),
                num(f.filter_wasm_bytes as f64 / 1_048_576.0, 2),
                int(f.noop_wasm_bytes as f64),
                mib(f.vm_rss_kib),
                mib(f.noop_vm_rss_kib)
            ),
            verdict(f.filter_wasm_bytes <= 1_048_576),
        ]);
    }
    if let Some(m) = m {
        t.row(vec![
            "(for sizing) memory per extra Envoy worker, beyond plain Envoy's".into(),
            format!(
                "ours {}; the do-nothing wasm filter {}",
                mib(m.ours_per_worker_kib),
                mib(m.noop_per_worker_kib)
            ),
            String::new(),
        ]);
    }
    if let Some(a) = a {
        t.row(vec![
            "≥ 5,000 exchanges/s at concurrency 64, p99 < 20 ms".into(),
            format!(
                "{}/s, p99 {}",
                int(a.exchange_rps_c64),
                latency(a.exchange_p99_us_c64)
            ),
            verdict(a.exchange_rps_c64 >= 5000.0 && a.exchange_p99_us_c64 < 20_000.0),
        ]);
        t.row(vec![
            "exchange latency with 10,000 Roles within 2× of 10 Roles".into(),
            format!("p50 {}×", num(a.roles_p50_ratio, 2)),
            verdict(a.roles_p50_ratio <= 2.0),
        ]);
        t.row(vec![
            "ext-authz RSS with 10,000 Roles ≤ 100 MiB".into(),
            format!(
                "{} after the run (peak {})",
                mib(a.rss_10k_kib),
                mib(a.rss_10k_peak_kib)
            ),
            verdict(a.rss_10k_peak_kib <= 100.0 * 1024.0),
        ]);
    }
    t
}

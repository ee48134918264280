//! What the sidecar rows measured, as the report's tables: one row per
//! filter chain and traffic with notes from the filter's counters, and each
//! Envoy's memory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::summary::{Baseline, added_cpu, per_round, summarize};
use super::{Proc, Row, Summary, Traffic};
use crate::load::Sample;
use crate::report::{Outcome, Table, int, latency, median, mib, num, signed};
use crate::settings::Settings;

pub(super) fn tabulate(
    settings: &Settings,
    rows: &[Row],
    procs: &[Proc],
    final_rss: &[(u64, u64)],
    skipped: Vec<String>,
    token_bytes: usize,
) -> Result<Outcome<Summary>> {
    let plain = rows
        .iter()
        .find(|r| r.traffic == Traffic::Hot && procs[r.proc_index].label == "plain")
        .context("no plain row")?;
    let plain_final = procs
        .iter()
        .position(|p| p.label == "plain")
        .map_or(0, |i| final_rss[i].0);
    let rss_minus_plain = |label: &str| {
        procs
            .iter()
            .position(|p| p.label == label)
            .map_or(f64::NAN, |i| final_rss[i].0 as f64 - plain_final as f64)
    };
    let wasm_bytes = (size(&settings.filter_wasm), size(&settings.noop_wasm));
    let summary = summarize(rows, procs, plain, rss_minus_plain, wasm_bytes);
    let mut table = sidecar(settings, rows, procs, plain, skipped, token_bytes);
    if let (Some(b), Some(file)) = (&summary.baseline, &settings.baseline_wasm) {
        table.note(baseline_note(b, file));
    }
    let mem = memory(settings, procs, final_rss, plain_final);
    Ok(Outcome {
        tables: vec![table, mem],
        summary,
    })
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// This build's hot path against the baseline build's, in the same rounds.
fn baseline_note(b: &Baseline, file: &Path) -> String {
    format!(
        "**ours, hot** against the baseline build (`{}`), within each round: throughput {}× (rounds: {}), added CPU/req {} µs vs {} µs = {}×",
        file.display(),
        num(b.rps_ratio, 3),
        b.rps_rounds
            .iter()
            .map(|r| num(*r, 3))
            .collect::<Vec<_>>()
            .join(", "),
        num(b.added_us, 1),
        num(b.baseline_added_us, 1),
        num(b.added_ratio, 2),
    )
}

/// The rows' figures, and what the filter's counters say about each.
fn sidecar(
    settings: &Settings,
    rows: &[Row],
    procs: &[Proc],
    plain: &Row,
    skipped: Vec<String>,
    token_bytes: usize,
) -> Table {
    let mut table = Table::new(
        "Sidecar: Envoy HTTP filter chains",
        &[
            "Envoy HTTP filter chain",
            "req/s",
            "× plain",
            "p50",
            "p99",
            "Envoy CPU/req (range)",
            "added CPU/req",
            "Envoy core busy",
        ],
    );
    table.intro.push(format!(
        "Medians of {} interleaved rounds of `wrk -t1 -c{} -d{}s` (after a {}s warm-up per row); Envoy `--concurrency 1` pinned to core {}, wrk pinned to core {}. ES256 tokens of {} bytes. \"added\" is the per-round difference to plain Envoy; the range is the lowest and highest round.",
        settings.rounds,
        settings.connections,
        settings.duration.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.envoy_cpu,
        settings.load_cpu,
        token_bytes,
    ));
    for row in rows {
        let rps = median(row.samples.iter().map(Sample::rps));
        let ratio = per_round(row, plain, |a, b| a.rps() / b.rps());
        let cpu = median(row.samples.iter().map(|s| s.cpu_us_per_request(0)));
        let added = per_round(row, plain, added_cpu);
        let busy = median(row.samples.iter().map(|s| s.busy_percent(0)));
        table.row(vec![
            row.label.to_owned(),
            int(rps),
            num(ratio, 2),
            latency(median(row.samples.iter().map(|s| s.p50_us))),
            latency(median(row.samples.iter().map(|s| s.p99_us))),
            format!(
                "{} µs{}",
                num(cpu, 1),
                range(row.samples.iter().map(|s| s.cpu_us_per_request(0)))
            ),
            if std::ptr::eq(row, plain) {
                "0".to_owned()
            } else {
                format!("{} µs", signed(added, 1))
            },
            format!("{}%", num(busy, 0)),
        ]);
        if busy < 90.0 {
            table.note(format!(
                "{}: Envoy's core was only {}% busy: something other than Envoy limited this row (wrk, or the machine)",
                row.label,
                num(busy, 0)
            ));
        }
    }
    counter_notes(&mut table, rows, procs);
    machine_note(&mut table, rows);
    for s in skipped {
        table.note(s);
    }
    table
}

/// Per row, the filter's counters over its measurements.
fn counter_notes(table: &mut Table, rows: &[Row], procs: &[Proc]) {
    for row in rows {
        let st = |k: &str| row.stats.get(k).copied().unwrap_or(0);
        let total: u64 = row.samples.iter().map(|s| s.requests).sum();
        match row.traffic {
            _ if row.stats.is_empty() => {}
            Traffic::Hot => table.note(format!(
                "{}: {} requests measured; filter counters: cache_hit {}, cache_miss {}, allowed {}",
                row.label,
                int(total as f64),
                int(st("cache_hit") as f64),
                int(st("cache_miss") as f64),
                int(st("allowed") as f64)
            )),
            Traffic::Cold => {
                let p = &procs[row.proc_index];
                table.note(format!(
                    "{}: {} requests, each token new to this Envoy (pool of {} distinct tokens; {} handed out{}); filter counters: cache_miss {}, cache_hit {}, verify_native {}, verify_wasm {}",
                    row.label,
                    int(total as f64),
                    int(p.cold.pool_size() as f64),
                    int(p.cold.handed_out as f64),
                    reuse(p.cold.wraps, p.cold.pool_size(), row),
                    int(st("cache_miss") as f64),
                    int(st("cache_hit") as f64),
                    counter(&row.stats, "verify_native"),
                    counter(&row.stats, "verify_wasm"),
                ));
            }
            Traffic::Flood => table.note(format!(
                "{}: {} requests, every token distinct with a random 64-byte signature (pool of {}{}); denied.bad_signature {}, verify_native {}, verify_wasm {}; the hot token was still cached after the flood in {} of {} rounds",
                row.label,
                int(total as f64),
                int(procs[row.proc_index].flood.pool_size() as f64),
                reuse(procs[row.proc_index].flood.wraps, procs[row.proc_index].flood.pool_size(), row),
                int(st("denied.bad_signature") as f64),
                counter(&row.stats, "verify_native"),
                counter(&row.stats, "verify_wasm"),
                row.cache_survived.iter().filter(|b| **b).count(),
                row.cache_survived.len(),
            )),
            Traffic::NoToken => table.note(format!(
                "{}: {} requests; audit_would_deny.missing_token {}",
                row.label,
                int(total as f64),
                int(st("audit_would_deny.missing_token") as f64),
            )),
        }
    }
}

/// How busy wrk and the rest of the machine were.
fn machine_note(table: &mut Table, rows: &[Row]) {
    let other = median(rows.iter().flat_map(|r| {
        r.samples
            .iter()
            .map(|s| 100.0 * s.other_cpu_seconds / s.seconds.max(1e-9))
    }));
    let load_cpu = median(rows.iter().flat_map(|r| {
        r.samples
            .iter()
            .map(|s| 100.0 * s.load_cpu_seconds / s.seconds.max(1e-9))
    }));
    table.note(format!(
        "wrk used a median {}% of its core; everything else on the machine (not Envoy, not wrk, not this driver) used a median {}% of a core during the measurements{}",
        num(load_cpu, 0),
        num(other, 0),
        if other > 10.0 {
            ": the machine was NOT quiet, expect noise"
        } else {
            ""
        }
    ));
}

/// Each Envoy's RSS, and the `.wasm` sizes.
fn memory(
    settings: &Settings,
    procs: &[Proc],
    final_rss: &[(u64, u64)],
    plain_final: u64,
) -> Table {
    let mut mem = Table::new(
        "Sidecar: memory and size",
        &[
            "Envoy",
            "RSS idle",
            "RSS after the run",
            "minus plain Envoy (after the run)",
        ],
    );
    for (p, (rss, _)) in procs.iter().zip(final_rss) {
        mem.row(vec![
            format!("`{}`", p.label),
            mib(p.idle_rss_kib as f64),
            mib(*rss as f64),
            mib(*rss as f64 - plain_final as f64),
        ]);
    }
    let filter_bytes = size(&settings.filter_wasm);
    mem.note(format!(
        "`.wasm` sizes: our filter {} bytes ({} MiB), the do-nothing filter {} bytes{}",
        int(filter_bytes as f64),
        num(filter_bytes as f64 / 1_048_576.0, 2),
        int(size(&settings.noop_wasm) as f64),
        settings
            .baseline_wasm
            .as_deref()
            .map_or_else(String::new, |b| format!(
                ", the baseline build {} bytes",
                int(size(b) as f64)
            )),
    ));
    mem.note(
        "One worker, so one VM per Envoy; Envoy 1.40 reports no per-VM memory statistic, so the VM's memory is the Envoy's RSS minus plain Envoy's (the V8 engine, the module, and its heap with the verified-token cache).",
    );
    mem
}

/// ` (min–max)` over the rounds, when there is more than one.
fn range(values: impl Iterator<Item = f64>) -> String {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return String::new();
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(" ({}–{})", num(lo, 1), num(hi, 1))
}

/// What the report says about tokens sent twice to one Envoy.
fn reuse(pool_wraps: u64, pool: usize, row: &Row) -> String {
    let mut s = String::new();
    if pool_wraps > 0 {
        s.push_str(&format!(
            ", pool wrapped {pool_wraps} times: a token came back only after {} others",
            int(pool as f64)
        ));
    }
    let file_wraps: u64 = row.samples.iter().map(|x| x.wraps).sum();
    if file_wraps > 0 {
        s.push_str(&format!(
            ", a run used up its share of the pool {file_wraps} times and started it over"
        ));
    }
    s
}

/// A counter the filter may not have (older builds): its total, or a dash.
fn counter(stats: &BTreeMap<String, u64>, name: &str) -> String {
    stats
        .get(name)
        .map_or_else(|| "– (not in this build)".to_owned(), |v| int(*v as f64))
}

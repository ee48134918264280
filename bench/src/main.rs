//! `make bench`: what the filter costs a sidecar and what ext-authz
//! sustains, measured in one run against baselines from the same run.
//!
//! * The sidecar: Envoy 1.40, one worker pinned to one core, a route Envoy
//!   answers itself, and in front of it nothing, native `jwt_authn` (with
//!   and without its cache), a do-nothing Rust proxy-wasm filter, or ours
//!   (hot token, cold tokens, audit mode, a flood of forged signatures);
//!   wrk on the other core. Throughput, latency, and Envoy's CPU per
//!   request from `/proc`.
//! * ext-authz: token exchanges against `/healthz`, the ext_authz `Check`
//!   through Envoy against plain Envoy, 10 to 10,000 Roles, memory.
//!
//! Prints the tables and writes them, with the machine and the versions, to
//! `bench/results/latest.md`. Settings: see [`settings`].

mod authz;
mod configs;
mod filter;
mod load;
mod pool;
mod procfs;
mod report;
mod server;
mod settings;
mod tokens;

use std::fmt::Write as _;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::load::Wrk;
use crate::report::{Table, int, latency, mib, num};
use crate::settings::{Section, Settings};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let began = Instant::now();
    let settings = Settings::from_env()?;
    let machine = procfs::Machine::read();
    if machine.cores <= settings.envoy_cpu.max(settings.load_cpu) {
        bail!(
            "this machine has {} core(s); make bench pins Envoy to core {} and wrk to core {} (set BENCH_ENVOY_CPU / BENCH_LOAD_CPU)",
            machine.cores,
            settings.envoy_cpu,
            settings.load_cpu
        );
    }
    let wrk = Wrk::check(&settings.wrk, &settings.lua, settings.load_cpu)?;
    let versions = Versions::read(&settings, &wrk);
    eprintln!(
        "bench: {} on {} ({} cores), load average {}",
        versions.envoy, machine.cpu_model, machine.cores, machine.load_average
    );

    let mut tables: Vec<Table> = Vec::new();
    let mut filter_summary = None;
    let mut authz_summary = None;
    if settings.sections.contains(&Section::Filter) {
        let out = filter::run(&settings, &wrk)
            .await
            .context("the sidecar section")?;
        tables.extend(out.tables);
        filter_summary = Some(out.summary);
    }
    if settings.sections.contains(&Section::Authz) {
        let out = authz::run(&settings, &wrk)
            .await
            .context("the ext-authz section")?;
        tables.extend(out.tables);
        authz_summary = Some(out.summary);
    }
    let targets = targets(filter_summary.as_ref(), authz_summary.as_ref());

    let mut md = String::new();
    let _ = writeln!(md, "# make bench: results of the latest run\n");
    let _ = writeln!(md, "- date: {}", utc_now());
    let _ = writeln!(
        md,
        "- machine: {} cores, {}, Linux {}; load average before the run: {}",
        machine.cores, machine.cpu_model, machine.kernel, machine.load_average
    );
    let _ = writeln!(
        md,
        "- versions: Envoy {}; {}; {}; filter `{}`",
        versions.envoy,
        versions.rustc,
        versions.wrk,
        settings.filter_wasm.display()
    );
    let _ = writeln!(md, "- command: `{}`", command_line());
    let _ = writeln!(
        md,
        "- whole run (after the builds): {:.0} s\n",
        began.elapsed().as_secs_f64()
    );
    md.push_str(&targets.markdown());
    for t in &tables {
        md.push_str(&t.markdown());
    }

    println!("\n{md}");
    if let Some(dir) = settings.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&settings.out, &md)
        .with_context(|| format!("writing {}", settings.out.display()))?;
    eprintln!(
        "bench: done in {:.0}s; written to {}",
        began.elapsed().as_secs_f64(),
        settings.out.display()
    );
    Ok(())
}

struct Versions {
    envoy: String,
    rustc: String,
    wrk: String,
}

impl Versions {
    fn read(settings: &Settings, wrk: &Wrk) -> Self {
        let first_line = |cmd: &mut Command| {
            cmd.output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("unknown")
                        .trim()
                        .to_owned()
                })
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        let envoy = first_line(Command::new(&settings.envoy_bin).arg("--version"));
        let envoy = envoy
            .split("version: ")
            .nth(1)
            .map_or(envoy.clone(), str::to_owned);
        Versions {
            envoy,
            rustc: first_line(Command::new("rustc").arg("--version")),
            wrk: wrk.version(),
        }
    }
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `make bench` plus every BENCH_* setting in effect.
fn command_line() -> String {
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(k, v)| k.starts_with("BENCH_") && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    vars.sort();
    if vars.is_empty() {
        "make bench".to_owned()
    } else {
        format!("make bench {}", vars.join(" "))
    }
}

fn verdict(met: bool) -> String {
    if met { "met" } else { "**missed**" }.to_owned()
}

/// Issue 5's targets against this run's figures.
fn targets(f: Option<&filter::Summary>, a: Option<&authz::Summary>) -> Table {
    let mut t = Table::new(
        "Targets (issue 5) and this run",
        &["target", "this run", ""],
    );
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

//! `make bench`: what the filter costs a sidecar and what ext-authz
//! sustains, measured in one run against baselines from the same run.
//!
//! * The sidecar: Envoy 1.40, one worker pinned to one core, a route Envoy
//!   answers itself, and in front of it nothing, native `jwt_authn` (with
//!   and without its cache), a do-nothing Rust proxy-wasm filter, or ours
//!   (hot token, cold tokens, audit mode, a flood of forged signatures);
//!   wrk on the other core. Throughput, latency, and Envoy's CPU per
//!   request from `/proc`.
//! * Memory per worker: plain Envoy, the do-nothing filter and ours with 1,
//!   2 and 4 workers (`BENCH_SECTIONS=memory` runs only this).
//! * ext-authz: token exchanges against `/healthz`, the ext_authz `Check`
//!   through Envoy against plain Envoy, 10 to 10,000 Roles, memory.
//!
//! Prints the tables and writes them, with the machine and the versions, to
//! `bench/results/latest.md`. Settings: see [`settings`].

mod authz;
mod configs;
mod filter;
mod load;
mod memory;
mod pool;
mod procfs;
mod report;
mod settings;
mod targets;
mod tokens;

use std::fmt::Write as _;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::load::Wrk;
use crate::report::{Outcome, Table};
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

    let (s, w) = (&settings, &wrk);
    let filter = section(s, Section::Filter, "the sidecar section", filter::run(s, w)).await?;
    let memory = section(s, Section::Memory, "the memory section", memory::run(s, w)).await?;
    let authz = section(s, Section::Authz, "the ext-authz section", authz::run(s, w)).await?;
    let targets = targets::table(
        filter.as_ref().map(|o| &o.summary),
        memory.as_ref().map(|o| &o.summary),
        authz.as_ref().map(|o| &o.summary),
    );
    let tables: Vec<Table> = filter
        .into_iter()
        .flat_map(|o| o.tables)
        .chain(memory.into_iter().flat_map(|o| o.tables))
        .chain(authz.into_iter().flat_map(|o| o.tables))
        .collect();

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
        "- versions: Envoy {}; {}; {}; filter `{}`{}",
        versions.envoy,
        versions.rustc,
        versions.wrk,
        settings.filter_wasm.display(),
        settings
            .baseline_wasm
            .as_ref()
            .map_or_else(String::new, |b| format!(
                "; baseline build `{}`",
                b.display()
            ))
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

/// A section's outcome, if the settings ask for it (else `run` never starts).
async fn section<S>(
    settings: &Settings,
    which: Section,
    what: &'static str,
    run: impl Future<Output = Result<Outcome<S>>>,
) -> Result<Option<Outcome<S>>> {
    if !settings.sections.contains(&which) {
        return Ok(None);
    }
    run.await.context(what).map(Some)
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

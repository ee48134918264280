//! What a sidecar's memory grows by with each worker thread: Envoy runs one
//! wasm VM per worker (plus one on the main thread), so a wasm filter's
//! memory is paid again for every worker an operator configures (Istio's
//! `concurrency`, by default 2 for sidecars).
//!
//! Plain Envoy, the do-nothing wasm filter and ours, each started with 1,
//! 2 and 4 workers; RSS read idle and after a load that reaches every
//! worker (ours: distinct valid tokens, so every worker's verified-token
//! cache fills to its default 1,024 entries). The slope from 1 to 4
//! workers, minus plain Envoy's own, is what one more worker's VM costs.
//! Memory hardly depends on CPU noise, so one Envoy runs at a time, every
//! round starting each one afresh.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use mesh_auth_tests::{Envoy, SidecarBootstrap, get};
use serde_json::json;

use crate::configs::{self, LISTENER, Pinned, bootstrap};
use crate::filter::{FUNCTION, ISSUER, Minted, NAMESPACE};
use crate::load::{Load, Tokens, Wrk};
use crate::procfs;
use crate::report::{Outcome, Table, median, mib, num};
use crate::settings::Settings;

/// Worker counts compared.
const WORKERS: [u32; 3] = [1, 2, 4];
/// Load per Envoy: long enough to fill every worker's cache.
const LOAD: Duration = Duration::from_secs(3);
/// wrk's connections per worker: the kernel spreads connections over the
/// workers' sockets (`SO_REUSEPORT`) by hash, so with 16 each the chance
/// that a worker gets none is negligible; if one does, the run stops.
const CONNECTIONS_PER_WORKER: u32 = 16;
/// Distinct valid tokens for our filter's load (each worker caches 1,024).
const TOKENS: usize = 20_000;
/// The filter's default `cache.max_entries`.
const CACHE_ENTRIES: u64 = 1_024;
const CACHE_MISS: &str = "wasmcustom.faas_mesh_auth.cache_miss";

/// The figures other tables may quote.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// What one more worker adds to ours, beyond what it adds to plain Envoy.
    pub ours_per_worker_kib: f64,
    pub noop_per_worker_kib: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Noop,
    Ours,
}

const CHAINS: [(Kind, &str); 3] = [
    (Kind::Plain, "plain Envoy (no filter)"),
    (Kind::Noop, "Rust proxy-wasm filter that does nothing"),
    (Kind::Ours, "ours"),
];

/// RSS in KiB of one start of one chain with one worker count.
#[derive(Default, Clone, Copy)]
struct Reading {
    idle: f64,
    loaded: f64,
}

pub async fn run(settings: &Settings, wrk: &Wrk) -> Result<Outcome<Summary>> {
    let pinned = Pinned::new(&settings.envoy_bin, settings.envoy_cpu)?;
    let minted = Minted::new(TOKENS)?;
    let scratch = tempfile::Builder::new().prefix("bench-memory-").tempdir()?;
    let pool = scratch.path().join("cold.txt");
    std::fs::write(&pool, minted.cold.join("\n") + "\n")?;

    // (chain, workers) → one reading per round.
    let mut readings: BTreeMap<(usize, u32), Vec<Reading>> = BTreeMap::new();
    for round in 0..settings.rounds {
        for (i, (kind, label)) in CHAINS.iter().enumerate() {
            for workers in WORKERS {
                let chain = chain(settings, &minted, *kind);
                let what = format!("{label}, {workers} worker(s)");
                let mut envoy = pinned.start_workers(&what, &chain, workers).await?;
                let reading = measure(wrk, &envoy, &minted, *kind, workers, &pool, &what).await;
                envoy.stop();
                let reading = reading?;
                eprintln!(
                    "bench: memory round {}/{}: {what}: {} idle, {} after load",
                    round + 1,
                    settings.rounds,
                    mib(reading.idle),
                    mib(reading.loaded)
                );
                readings.entry((i, workers)).or_default().push(reading);
            }
        }
    }
    Ok(tabulate(settings, &readings))
}

fn chain(settings: &Settings, minted: &Minted, kind: Kind) -> SidecarBootstrap {
    match kind {
        Kind::Plain => bootstrap(),
        Kind::Noop => bootstrap().filter(configs::wasm("noop", &settings.noop_wasm, "")),
        Kind::Ours => {
            let config =
                configs::plugin_config(ISSUER, &minted.jwks, (NAMESPACE, FUNCTION), json!({}));
            bootstrap().filter(configs::wasm("mesh-auth", &settings.filter_wasm, &config))
        }
    }
}

async fn measure(
    wrk: &Wrk,
    envoy: &Envoy,
    minted: &Minted,
    kind: Kind,
    workers: u32,
    pool: &std::path::Path,
    what: &str,
) -> Result<Reading> {
    let idle = procfs::rss_kib(envoy.pid())?.0 as f64;
    let url = format!("{}/", envoy.listener_url(LISTENER)?);
    let auth = format!("Bearer {}", minted.hot);
    let one = get(&url, &[("authorization", auth.as_str())]).await?;
    if one.status != 200 {
        bail!(
            "{what}: expected 200 for one request, got {} {:?}",
            one.status,
            one.body
        );
    }
    let tokens = match kind {
        Kind::Ours => Tokens::Pool(pool.to_owned()),
        Kind::Plain | Kind::Noop => Tokens::Fixed(minted.hot.clone()),
    };
    let s = wrk
        .run(
            &Load::get(url, CONNECTIONS_PER_WORKER * workers, LOAD).tokens(tokens),
            &[envoy.pid()],
        )
        .await?;
    if s.requests == 0 || s.non_2xx > 0 || s.socket_errors > 0 {
        bail!(
            "{what}: {} requests, {} not 2xx, {} connection errors",
            s.requests,
            s.non_2xx,
            s.socket_errors
        );
    }
    let stats = envoy.stats().await?;
    for w in 0..workers {
        let suffix = format!(".worker_{w}.downstream_cx_total");
        let got: u64 = stats
            .iter()
            .filter(|(k, _)| k.starts_with("listener.") && k.ends_with(&suffix))
            .map(|(_, v)| *v)
            .sum();
        if got == 0 {
            bail!("{what}: worker {w} took no connection, so its VM saw no load");
        }
    }
    if kind == Kind::Ours {
        // Counters reach Envoy on the filter's 100 ms tick.
        let misses = envoy
            .settled_stat(CACHE_MISS, Duration::from_millis(350))
            .await?
            .unwrap_or(0);
        if misses < CACHE_ENTRIES * u64::from(workers) {
            bail!(
                "{what}: {misses} cache misses: too few to fill {workers} worker cache(s) of {CACHE_ENTRIES}"
            );
        }
    }
    Ok(Reading {
        idle,
        loaded: procfs::rss_kib(envoy.pid())?.0 as f64,
    })
}

fn tabulate(
    settings: &Settings,
    readings: &BTreeMap<(usize, u32), Vec<Reading>>,
) -> Outcome<Summary> {
    let med = |chain: usize, workers: u32, f: fn(&Reading) -> f64| {
        median(readings.get(&(chain, workers)).into_iter().flatten().map(f))
    };
    let (fewest, most) = (WORKERS[0], WORKERS[WORKERS.len() - 1]);
    // The slope from the fewest workers to the most, after load.
    let per_worker = |chain: usize| {
        (med(chain, most, |r| r.loaded) - med(chain, fewest, |r| r.loaded))
            / f64::from(most - fewest)
    };
    let plain_per_worker = per_worker(0);

    let mut t = Table::new(
        "Sidecar memory by worker count",
        &[
            "Envoy",
            "workers",
            "RSS idle",
            "RSS after load",
            "after load, minus plain Envoy with as many workers",
        ],
    );
    t.intro.push(format!(
        "Each Envoy started afresh with `--concurrency` {}, pinned to one core; RSS from `/proc` idle and after {} s of load on {CONNECTIONS_PER_WORKER} connections per worker (every worker checked to have taken some; ours: distinct valid tokens, so each worker's verified-token cache is full at {CACHE_ENTRIES} entries). Medians over {} round(s).",
        WORKERS.map(|w| w.to_string()).join(", "),
        LOAD.as_secs(),
        settings.rounds
    ));
    for (i, (_, label)) in CHAINS.iter().enumerate() {
        for workers in WORKERS {
            let loaded = med(i, workers, |r| r.loaded);
            t.row(vec![
                (*label).to_owned(),
                workers.to_string(),
                mib(med(i, workers, |r| r.idle)),
                mib(loaded),
                if i == 0 {
                    "0".to_owned()
                } else {
                    mib(loaded - med(0, workers, |r| r.loaded))
                },
            ]);
        }
    }
    let ours = per_worker(2) - plain_per_worker;
    let noop = per_worker(1) - plain_per_worker;
    t.note(format!(
        "Per extra worker, after load, from {fewest} to {most} workers: plain Envoy {}; the do-nothing filter {} more than plain; ours {} more than plain. Envoy runs one wasm VM per worker and one on its main thread; an extra worker adds about what its own instance needs (linear memory, heap, verified-token cache), so the engine and the compiled module are paid once. A sidecar with N workers holds about its 1-worker figure plus (N − 1) × that.",
        mib(plain_per_worker),
        mib(noop),
        mib(ours)
    ));
    t.note(format!(
        "With 1 worker, after load, ours is {}× plain Envoy's RSS (the do-nothing filter {}×): most of a wasm filter's memory is paid once per sidecar, not per worker.",
        num(med(2, fewest, |r| r.loaded) / med(0, fewest, |r| r.loaded), 2),
        num(med(1, fewest, |r| r.loaded) / med(0, fewest, |r| r.loaded), 2)
    ));
    Outcome {
        tables: vec![t],
        summary: Summary {
            ours_per_worker_kib: ours,
            noop_per_worker_kib: noop,
        },
    }
}

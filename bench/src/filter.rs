//! The sidecar table: our filter in a real Envoy beside plain Envoy, Envoy's
//! own `jwt_authn`, and a do-nothing wasm filter, all in one run.
//!
//! One Envoy per filter chain, each `--concurrency 1` and pinned to the
//! same core, started once and kept (V8 has tiered the code up by the end
//! of the warm-up); wrk on the other core. Every round measures every row
//! once, in a rotated order, so drift over the run hits all rows alike;
//! each figure is the median over rounds, and ratios are taken within a
//! round (a row against plain Envoy measured minutes apart would mostly
//! measure the machine). With `BENCH_BASELINE_WASM` a baseline build of
//! our filter joins the hot path, so a change is compared within rounds too.

mod envoys;
mod rounds;
mod summary;
mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use mesh_auth_tests::Envoy;

use crate::configs::Pinned;
use crate::load::{Sample, Wrk};
use crate::pool::Cursor;
use crate::procfs;
use crate::report::{Outcome, int};
use crate::settings::Settings;
use crate::tokens::{Kind, Signer, SplitMix, function_claims, mint};

pub use summary::Summary;

pub const ISSUER: &str = "https://gateway.bench.local";
pub(crate) const NAMESPACE: &str = "openfaas-fn";
pub(crate) const FUNCTION: &str = "bench";
/// Long enough for any run; the filter checks `exp`, nothing caps lifetime.
const TOKEN_TTL: u64 = 6 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// The same valid token every request.
    Hot,
    /// A valid token never sent to this Envoy before, every request.
    Cold,
    /// A distinct token with a forged signature, every request.
    Flood,
    /// No `authorization` header.
    NoToken,
}

/// One Envoy (one filter chain) and its way through the token pools.
struct Proc {
    label: &'static str,
    envoy: Envoy,
    idle_rss_kib: u64,
    cold: Cursor,
    flood: Cursor,
}

/// One line of the table: a kind of traffic against one Envoy.
struct Row {
    label: &'static str,
    proc_index: usize,
    traffic: Traffic,
    expect: u16,
    warm_rps: f64,
    samples: Vec<Sample>,
    /// Deltas of the filter's counters over this row's measurements.
    stats: BTreeMap<String, u64>,
    /// Per flood round: was the hot token still cached afterwards?
    cache_survived: Vec<bool>,
}

/// The key, and the tokens every row draws from.
pub(crate) struct Minted {
    signer: Signer,
    pub(crate) jwks: String,
    now: u64,
    pub(crate) hot: String,
    pub(crate) cold: Arc<Vec<String>>,
    flood: Arc<Vec<String>>,
}

impl Minted {
    pub(crate) fn new(count: usize) -> Result<Self> {
        let signer = Signer::generate()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let hot = signer.sign(&claims(now, "bench-hot"))?;
        let n = count.max(1_000);
        let started = Instant::now();
        let cold = mint(&signer, n, Kind::Valid, &|i| {
            claims(now, &format!("cold-{i}"))
        })?;
        let flood = mint(&signer, n, Kind::Forged, &|i| {
            claims(now, &format!("flood-{i}"))
        })?;
        eprintln!(
            "bench: minted {} valid ES256 tokens and {} forged ones in {:.1}s ({} bytes each)",
            int(n as f64),
            int(n as f64),
            started.elapsed().as_secs_f64(),
            hot.len()
        );
        Ok(Minted {
            jwks: signer.jwks(),
            signer,
            now,
            hot,
            cold: Arc::new(cold),
            flood: Arc::new(flood),
        })
    }

    /// A new valid token, or one with a forged signature.
    fn one(&self, jti: &str, forged: bool) -> Result<String> {
        let c = claims(self.now, jti);
        Ok(if forged {
            self.signer.forge(&c, &mut SplitMix::new(7))
        } else {
            self.signer.sign(&c)?
        })
    }
}

/// A function token's claims for our function, with this `jti`.
fn claims(now: u64, jti: &str) -> String {
    let permission = format!("{NAMESPACE}:{FUNCTION}");
    function_claims(ISSUER, now, TOKEN_TTL, &permission, jti)
}

pub async fn run(settings: &Settings, wrk: &Wrk) -> Result<Outcome<Summary>> {
    if settings.warmup < Duration::from_secs(1) {
        bail!("BENCH_WARMUP must be at least 1 second: V8 tiers the filter's code up under load");
    }
    let pinned = Pinned::new(&settings.envoy_bin, settings.envoy_cpu)?;
    let scratch = tempfile::Builder::new().prefix("bench-tokens-").tempdir()?;
    let minted = Minted::new(settings.cold_tokens)?;

    let (mut procs, skipped) = envoys::start(settings, &pinned, &minted, scratch.path()).await?;
    let mut rows = envoys::rows(&procs);
    rounds::check_each(&rows, &procs, &minted).await?;
    let runner = rounds::Runner {
        settings,
        wrk,
        hot: &minted.hot,
    };
    runner.warm_up(&mut rows, &mut procs).await?;
    runner.measure(&mut rows, &mut procs).await?;

    let final_rss: Vec<(u64, u64)> = procs
        .iter()
        .map(|p| procfs::rss_kib(p.envoy.pid()))
        .collect::<Result<_>>()?;
    let outcome = tables::tabulate(
        settings,
        &rows,
        &procs,
        &final_rss,
        skipped,
        minted.hot.len(),
    );
    for p in &mut procs {
        p.envoy.stop();
    }
    outcome
}

//! What `make bench` measures, and with what: every knob is an environment
//! variable, declared once here, with its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{EXT_AUTHZ_BIN_ENV, envoy_bin, filter_wasm, repo_root};

/// Seconds of load per row and round in the filter table (`wrk -d`).
pub const DURATION_ENV: &str = "BENCH_DURATION";
/// Interleaved rounds; every figure is the median over them.
pub const ROUNDS_ENV: &str = "BENCH_ROUNDS";
/// Load before the first round, per Envoy (V8 tiers code up under load).
pub const WARMUP_ENV: &str = "BENCH_WARMUP";
/// Connections wrk keeps open in the filter table (`wrk -c`).
pub const CONNECTIONS_ENV: &str = "BENCH_CONNECTIONS";
/// Seconds of load per measurement in the ext-authz tables.
pub const AUTHZ_DURATION_ENV: &str = "BENCH_AUTHZ_DURATION";
/// Distinct valid tokens minted for the cold path (and as many bad ones).
pub const COLD_TOKENS_ENV: &str = "BENCH_COLD_TOKENS";
/// Distinct IdP tokens minted for the token exchange.
pub const IDP_TOKENS_ENV: &str = "BENCH_IDP_TOKENS";
/// `filter`, `memory`, `authz`, or several (comma-separated); all three
/// when unset.
pub const SECTIONS_ENV: &str = "BENCH_SECTIONS";
/// The core Envoy is pinned to, and the core wrk is pinned to.
pub const ENVOY_CPU_ENV: &str = "BENCH_ENVOY_CPU";
pub const LOAD_CPU_ENV: &str = "BENCH_LOAD_CPU";
/// Where the report of this run goes.
pub const OUT_ENV: &str = "BENCH_OUT";
/// `1`: also measure the cost breakdown: our filter's cold path with the
/// pure-Rust fallback forced, the hot path's one host call alone (on the
/// bare filter), and one native `verify_signature` call alone
/// (bench/probe-filter).
pub const PROBES_ENV: &str = "BENCH_PROBES";
/// A baseline build of our filter (an older `.wasm`): measured on the hot
/// path beside the current build, in the same rounds, and compared.
pub const BASELINE_WASM_ENV: &str = "BENCH_BASELINE_WASM";
/// The do-nothing filter, the probe filter, the wrk binary.
pub const NOOP_WASM_ENV: &str = "NOOP_WASM";
pub const BARE_WASM_ENV: &str = "BARE_WASM";
pub const PROBE_WASM_ENV: &str = "PROBE_WASM";
pub const WRK_ENV: &str = "WRK";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Filter,
    /// Memory per Envoy worker (bench/src/memory.rs).
    Memory,
    Authz,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub rounds: usize,
    pub warmup: Duration,
    pub connections: u32,
    pub authz_duration: Duration,
    pub cold_tokens: usize,
    pub idp_tokens: usize,
    pub sections: Vec<Section>,
    pub envoy_cpu: usize,
    pub load_cpu: usize,
    pub out: PathBuf,
    pub envoy_bin: PathBuf,
    pub filter_wasm: PathBuf,
    pub baseline_wasm: Option<PathBuf>,
    pub noop_wasm: PathBuf,
    /// The do-nothing filter without the SDK (bench/bare-filter).
    pub bare_wasm: PathBuf,
    pub probe_wasm: Option<PathBuf>,
    pub ext_authz_bin: Option<PathBuf>,
    pub wrk: PathBuf,
    pub lua: PathBuf,
}

impl Settings {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let secs = |var: &str, default: f64| -> Result<Duration> {
            match get(var) {
                None => Ok(Duration::from_secs_f64(default)),
                Some(v) => parse_duration(&v)
                    .with_context(|| format!("{var}={v:?}: expected seconds, e.g. 10 or 2.5s")),
            }
        };
        let num = |var: &str, default: usize| -> Result<usize> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .replace('_', "")
                    .parse()
                    .with_context(|| format!("{var}={v:?}: expected a whole number")),
            }
        };
        let sections = match get(SECTIONS_ENV) {
            None => vec![Section::Filter, Section::Memory, Section::Authz],
            Some(v) => v
                .split(',')
                .map(|s| match s.trim() {
                    "filter" => Ok(Section::Filter),
                    "memory" => Ok(Section::Memory),
                    "authz" | "ext-authz" => Ok(Section::Authz),
                    other => {
                        bail!("{SECTIONS_ENV}: unknown section {other:?} (filter, memory, authz)")
                    }
                })
                .collect::<Result<Vec<_>>>()?,
        };
        let rounds = num(ROUNDS_ENV, 3)?;
        if rounds == 0 {
            bail!("{ROUNDS_ENV} must be at least 1");
        }
        let duration = secs(DURATION_ENV, 10.0)?;
        let authz_duration = secs(AUTHZ_DURATION_ENV, 5.0)?;
        if duration < Duration::from_secs(1) || authz_duration < Duration::from_secs(1) {
            bail!("{DURATION_ENV} and {AUTHZ_DURATION_ENV} must be at least 1 second");
        }
        let root = repo_root();
        let noop_wasm = match get(NOOP_WASM_ENV) {
            Some(p) => PathBuf::from(p),
            None => root.join("target/wasm32-wasip1/release/bench_noop_filter.wasm"),
        };
        let bare_wasm = match get(BARE_WASM_ENV) {
            Some(p) => PathBuf::from(p),
            None => root.join("target/wasm32-wasip1/release/bench_bare_filter.wasm"),
        };
        let probes = match get(PROBES_ENV).as_deref() {
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => bail!("{PROBES_ENV}={other:?}: expected 0 or 1"),
        };
        let probe_wasm = match (probes, get(PROBE_WASM_ENV)) {
            (false, _) => None,
            (true, Some(p)) => Some(existing(Path::new(&p), "build bench/probe-filter")?),
            (true, None) => Some(existing(
                &root.join("target/wasm32-wasip1/release/bench_probe_filter.wasm"),
                "run `make bench` (it builds the probe filter)",
            )?),
        };
        let wrk = PathBuf::from(get(WRK_ENV).unwrap_or_else(|| "wrk".to_owned()));
        let needs_authz = sections.contains(&Section::Authz);
        Ok(Settings {
            duration,
            rounds,
            warmup: secs(WARMUP_ENV, 2.0)?,
            connections: u32::try_from(num(CONNECTIONS_ENV, 16)?)?,
            authz_duration,
            cold_tokens: num(COLD_TOKENS_ENV, 1_000_000)?,
            idp_tokens: num(IDP_TOKENS_ENV, 100_000)?,
            sections,
            envoy_cpu: num(ENVOY_CPU_ENV, 1)?,
            load_cpu: num(LOAD_CPU_ENV, 0)?,
            out: get(OUT_ENV).map_or_else(|| root.join("bench/results/latest.md"), PathBuf::from),
            envoy_bin: envoy_bin()?,
            filter_wasm: filter_wasm()?,
            baseline_wasm: get(BASELINE_WASM_ENV)
                .map(|p| existing(Path::new(&p), "the baseline build of the filter"))
                .transpose()?,
            noop_wasm: existing(&noop_wasm, "run `make bench` (it builds the noop filter)")?,
            bare_wasm: existing(&bare_wasm, "run `make bench` (it builds the bare filter)")?,
            probe_wasm,
            // The release build, unlike the integration tests' debug one.
            ext_authz_bin: if needs_authz {
                let path = get(EXT_AUTHZ_BIN_ENV)
                    .map_or_else(|| root.join("target/release/ext-authz"), PathBuf::from);
                Some(existing(
                    &path,
                    "run `cargo build --release -p ext-authz` (make bench does)",
                )?)
            } else {
                None
            },
            wrk,
            lua: existing(
                &root.join("bench/wrk/bench.lua"),
                "the wrk script is missing",
            )?,
        })
    }
}

fn existing(path: &Path, hint: &str) -> Result<PathBuf> {
    if !path.is_file() {
        bail!("{} does not exist: {hint}", path.display());
    }
    Ok(std::path::absolute(path)?)
}

/// `10`, `10s`, `2.5s` or `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(sec) = s.strip_suffix('s') {
        (sec, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse()?;
    if !v.is_finite() || v < 0.0 {
        bail!("not a duration");
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1").is_err());
    }
}

//! The sidecar table: our filter in a real Envoy beside plain Envoy, Envoy's
//! own `jwt_authn`, and a do-nothing wasm filter, all in one run.
//!
//! One Envoy per filter chain, each `--concurrency 1` and pinned to the
//! same core, started once and kept (V8 has tiered the code up by the end
//! of the warm-up); wrk on the other core. Every round measures every row
//! once, in a rotated order, so drift over the run hits all rows alike;
//! each figure is the median over rounds, and ratios are taken within a
//! round (a row against plain Envoy measured minutes apart would mostly
//! measure the machine).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{Envoy, get};
use serde_json::json;

use crate::configs::{self, LISTENER, Pinned};
use crate::load::{Load, Sample, Tokens, Wrk};
use crate::pool::Cursor;
use crate::procfs;
use crate::report::{Table, int, latency, median, mib, num, signed};
use crate::settings::Settings;
use crate::tokens::{Kind, Signer, function_claims, mint};

pub const ISSUER: &str = "https://gateway.bench.local";
const NAMESPACE: &str = "openfaas-fn";
const FUNCTION: &str = "bench";
/// Long enough for any run; the filter checks `exp`, nothing caps lifetime.
const TOKEN_TTL: u64 = 6 * 3600;
const STATS_PREFIX: &str = "wasmcustom.faas_mesh_auth.";
/// Counters unchanged this long, with no load, have been flushed.
const SETTLED: Duration = Duration::from_millis(350);

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

struct Proc {
    label: &'static str,
    envoy: Envoy,
    idle_rss_kib: u64,
    cold: Cursor,
    flood: Cursor,
}

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

/// The figures the targets are checked against.
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
}

pub struct Outcome {
    pub tables: Vec<Table>,
    pub summary: Summary,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub async fn run(settings: &Settings, wrk: &Wrk) -> Result<Outcome> {
    if settings.warmup < Duration::from_secs(1) {
        bail!("BENCH_WARMUP must be at least 1 second: V8 tiers the filter's code up under load");
    }
    let pinned = Pinned::new(&settings.envoy_bin, settings.envoy_cpu)?;
    let scratch = tempfile::Builder::new().prefix("bench-tokens-").tempdir()?;

    // ---- keys and tokens ------------------------------------------------
    let signer = Signer::generate()?;
    let jwks = signer.jwks();
    let now = unix_now();
    let permission = format!("{NAMESPACE}:{FUNCTION}");
    let claims = |jti: &str| function_claims(ISSUER, now, TOKEN_TTL, &permission, jti);
    let hot = signer.sign(&claims("bench-hot"))?;
    let n = settings.cold_tokens.max(1_000);
    let started = Instant::now();
    let cold: Arc<Vec<String>> = Arc::new(mint(&signer, n, Kind::Valid, &|i| {
        claims(&format!("cold-{i}"))
    })?);
    let flood: Arc<Vec<String>> = Arc::new(mint(&signer, n, Kind::Forged, &|i| {
        claims(&format!("flood-{i}"))
    })?);
    eprintln!(
        "bench: minted {} valid ES256 tokens and {} forged ones in {:.1}s ({} bytes each)",
        int(n as f64),
        int(n as f64),
        started.elapsed().as_secs_f64(),
        hot.len()
    );

    // ---- the Envoys -------------------------------------------------------
    let ours = |extra: serde_json::Value| {
        configs::wasm(
            "mesh-auth",
            &settings.filter_wasm,
            &configs::plugin_config(ISSUER, &jwks, (NAMESPACE, FUNCTION), extra),
        )
    };
    let specs: Vec<(&'static str, Vec<serde_json::Value>, bool)> = vec![
        ("plain", vec![], true),
        (
            "jwt_authn",
            vec![configs::jwt_authn(ISSUER, &jwks, false)],
            true,
        ),
        (
            "jwt_authn+cache",
            vec![configs::jwt_authn(ISSUER, &jwks, true)],
            true,
        ),
        (
            "noop",
            vec![configs::wasm("noop", &settings.noop_wasm, "")],
            true,
        ),
        (
            "bare",
            vec![configs::wasm("bare", &settings.bare_wasm, "")],
            true,
        ),
        ("ours", vec![ours(json!({}))], true),
        ("ours-audit", vec![ours(json!({"mode": "audit"}))], true),
    ];
    let mut specs = specs;
    if let Some(probe) = &settings.probe_wasm {
        // The pure-Rust fallback, forced: only builds that have the setting.
        specs.push((
            "ours-wasm-crypto",
            vec![ours(json!({"crypto": "wasm"}))],
            false,
        ));
        let (message, sig) = hot.rsplit_once('.').context("the hot token")?;
        let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)?;
        let der = mesh_auth_core::verify::es256_signature_to_der(&raw)
            .context("the hot token's signature")?;
        let verify = format!("verify:{}:{}:{message}", hex(&signer.spki_der()), hex(&der));
        specs.push((
            "probe-headers",
            vec![configs::wasm("bare", &settings.bare_wasm, "headers")],
            true,
        ));
        specs.push((
            "probe-verify",
            vec![configs::wasm("probe", probe, &verify)],
            true,
        ));
    }
    let mut procs: Vec<Proc> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for (label, filters, required) in specs {
        let yaml = configs::bootstrap(filters, vec![])?;
        match pinned.start(label, yaml).await {
            Ok(envoy) => {
                let (rss, _) = procfs::rss_kib(envoy.pid())?;
                procs.push(Proc {
                    label,
                    idle_rss_kib: rss,
                    cold: Cursor::new(cold.clone(), &format!("{label}-cold"), scratch.path()),
                    flood: Cursor::new(flood.clone(), &format!("{label}-flood"), scratch.path()),
                    envoy,
                });
            }
            Err(e) if !required => {
                let first = format!("{e:#}");
                let first = first
                    .lines()
                    .find(|l| l.contains("faas-mesh-auth"))
                    .map_or_else(
                        || first.lines().next().unwrap_or_default().to_owned(),
                        str::to_owned,
                    );
                eprintln!("bench: {label}: not measured: {first}");
                skipped.push(format!(
                    "`{label}` was not measured: this filter build refused the configuration ({first})"
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let index = |label: &str| procs.iter().position(|p| p.label == label);

    let mut rows: Vec<Row> = Vec::new();
    let mut add = |label: &'static str, proc_label: &str, traffic: Traffic, expect: u16| {
        if let Some(proc_index) = index(proc_label) {
            rows.push(Row {
                label,
                proc_index,
                traffic,
                expect,
                warm_rps: 0.0,
                samples: Vec::new(),
                stats: BTreeMap::new(),
                cache_survived: Vec::new(),
            });
        }
    };
    add("plain Envoy (no filter)", "plain", Traffic::Hot, 200);
    add(
        "native `jwt_authn`, `local_jwks`",
        "jwt_authn",
        Traffic::Hot,
        200,
    );
    add(
        "native `jwt_authn` + `jwt_cache_config`",
        "jwt_authn+cache",
        Traffic::Hot,
        200,
    );
    add(
        "Rust proxy-wasm filter that does nothing",
        "noop",
        Traffic::Hot,
        200,
    );
    add(
        "the same without the SDK, exporting only what a request needs",
        "bare",
        Traffic::Hot,
        200,
    );
    add(
        "**ours, hot** (same token: cache hit)",
        "ours",
        Traffic::Hot,
        200,
    );
    add(
        "**ours, cold** (every token new)",
        "ours",
        Traffic::Cold,
        200,
    );
    add(
        "ours, cold, `crypto: wasm` (pure-Rust fallback forced)",
        "ours-wasm-crypto",
        Traffic::Cold,
        200,
    );
    add(
        "ours, audit mode, no token (would deny)",
        "ours-audit",
        Traffic::NoToken,
        200,
    );
    add(
        "ours, flood of forged signatures (401)",
        "ours",
        Traffic::Flood,
        401,
    );
    add(
        "probe: the do-nothing filter without the SDK, plus the hot path's one host call (all request headers)",
        "probe-headers",
        Traffic::Hot,
        200,
    );
    add(
        "probe: one native `verify_signature` call alone (on the SDK, like the do-nothing filter)",
        "probe-verify",
        Traffic::Hot,
        200,
    );

    // ---- one request each: is every row what it claims to be? ----------
    for row in &rows {
        let proc = &procs[row.proc_index];
        let url = proc.envoy.listener_url(LISTENER)?;
        let token = match row.traffic {
            Traffic::Hot => Some(hot.clone()),
            Traffic::Cold => Some(signer.sign(&claims("sanity"))?),
            Traffic::Flood => Some(signer.forge(
                &claims("sanity-forged"),
                &mut crate::tokens::SplitMix::new(7),
            )),
            Traffic::NoToken => None,
        };
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let resp = get(&format!("{url}/"), &headers).await?;
        if resp.status != row.expect {
            bail!(
                "{}: expected {} for one request, got {} {:?} (www-authenticate: {:?})\n{}",
                row.label,
                row.expect,
                resp.status,
                resp.body,
                resp.header("www-authenticate"),
                proc.envoy.log()
            );
        }
        if row.traffic == Traffic::Flood
            && !resp
                .header("www-authenticate")
                .is_some_and(|h| h.contains("bad_signature"))
        {
            bail!(
                "{}: a forged token was refused, but not for its signature: {:?}",
                row.label,
                resp.header("www-authenticate")
            );
        }
    }

    // ---- warm-up --------------------------------------------------------
    let connections = settings.connections;
    let mut plain_rate = 0.0f64;
    for i in 0..rows.len() {
        let rate = if plain_rate > 0.0 {
            plain_rate
        } else {
            200_000.0
        };
        let (load, sent_cursor) = load_for(
            &rows[i],
            &mut procs,
            &hot,
            rate,
            settings.warmup,
            connections,
        )?;
        let pid = procs[rows[i].proc_index].envoy.pid();
        let s = wrk.run(&load, &[pid]).await?;
        if let Some(c) = sent_cursor {
            cursor(&mut procs[rows[i].proc_index], c).consumed(s.requests + u64::from(connections));
        }
        rows[i].warm_rps = s.rps();
        if i == 0 {
            plain_rate = s.rps();
        }
        eprintln!(
            "bench: warm-up {:<55} {:>9} req/s",
            rows[i].label,
            int(s.rps())
        );
    }

    // ---- interleaved rounds -------------------------------------------
    for round in 0..settings.rounds {
        for k in 0..rows.len() {
            let i = (k + round) % rows.len();
            let proc_index = rows[i].proc_index;
            let url = procs[proc_index].envoy.listener_url(LISTENER)?;
            let before = filter_stats(&procs[proc_index].envoy).await?;
            if rows[i].traffic == Traffic::Flood {
                // The hot token goes into the cache before the flood...
                let auth = format!("Bearer {hot}");
                let r = get(&format!("{url}/"), &[("authorization", &auth)]).await?;
                if r.status != 200 {
                    bail!("the hot token got {} before the flood", r.status);
                }
            }
            let (load, sent_cursor) = load_for(
                &rows[i],
                &mut procs,
                &hot,
                rows[i].warm_rps,
                settings.duration,
                connections,
            )?;
            let pid = procs[proc_index].envoy.pid();
            let s = wrk
                .run(&load, &[pid])
                .await
                .with_context(|| format!("measuring {}", rows[i].label))?;
            if let Some(c) = sent_cursor {
                cursor(&mut procs[proc_index], c).consumed(s.requests + u64::from(connections));
            }
            let mut after = filter_stats(&procs[proc_index].envoy).await?;
            if rows[i].traffic == Traffic::Flood {
                // ...and must still be there after it.
                let auth = format!("Bearer {hot}");
                let r = get(&format!("{url}/"), &[("authorization", &auth)]).await?;
                let again = filter_stats(&procs[proc_index].envoy).await?;
                let hits = |m: &BTreeMap<String, u64>| m.get("cache_hit").copied().unwrap_or(0);
                rows[i]
                    .cache_survived
                    .push(r.status == 200 && hits(&again) == hits(&after) + 1);
                after = again;
                // The check request itself is not part of the flood.
                if let Some(v) = after.get_mut("cache_hit") {
                    *v = v.saturating_sub(1);
                }
                if let Some(v) = after.get_mut("allowed") {
                    *v = v.saturating_sub(1);
                }
            }
            check_sample(&rows[i], &s)?;
            for (k, v) in &after {
                let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
                *rows[i].stats.entry(k.clone()).or_default() += d;
            }
            eprintln!(
                "bench: round {}/{} {:<55} {:>9} req/s  Envoy {:>3.0}% busy  {:>6.1} µs CPU/req  (other load {:.0}% of a core)",
                round + 1,
                settings.rounds,
                rows[i].label,
                int(s.rps()),
                s.busy_percent(0),
                s.cpu_us_per_request(0),
                100.0 * s.other_cpu_seconds / s.seconds.max(1e-9),
            );
            rows[i].samples.push(s);
        }
    }

    let final_rss: Vec<(u64, u64)> = procs
        .iter()
        .map(|p| procfs::rss_kib(p.envoy.pid()))
        .collect::<Result<_>>()?;
    let outcome = tabulate(settings, &rows, &procs, &final_rss, skipped, hot.len());
    for p in &mut procs {
        p.envoy.stop();
    }
    outcome
}

fn cursor(proc: &mut Proc, which: Traffic) -> &mut Cursor {
    match which {
        Traffic::Flood => &mut proc.flood,
        _ => &mut proc.cold,
    }
}

/// The load of `row` for `duration`, and which pool it draws from.
fn load_for(
    row: &Row,
    procs: &mut [Proc],
    hot: &str,
    rate: f64,
    duration: Duration,
    connections: u32,
) -> Result<(Load, Option<Traffic>)> {
    let proc = &mut procs[row.proc_index];
    let url = format!("{}/", proc.envoy.listener_url(LISTENER)?);
    let load = Load::get(url, connections, duration);
    Ok(match row.traffic {
        Traffic::Hot => (load.tokens(Tokens::Fixed(hot.to_owned())), None),
        Traffic::NoToken => (load, None),
        Traffic::Cold | Traffic::Flood => {
            let c = cursor(proc, row.traffic);
            let count = c.need(rate, duration);
            let file = c.take(count)?;
            (load.tokens(Tokens::Pool(file)), Some(row.traffic))
        }
    })
}

/// A measurement whose answers are not what the row expects is a broken
/// bench, not a slow filter: stop.
fn check_sample(row: &Row, s: &Sample) -> Result<()> {
    if s.requests == 0 {
        bail!("{}: no request completed", row.label);
    }
    if s.socket_errors > 0 {
        bail!(
            "{}: {} connection errors or timeouts in {} requests",
            row.label,
            s.socket_errors,
            s.requests
        );
    }
    let ok = if row.expect < 400 {
        s.non_2xx == 0
    } else {
        s.non_2xx == s.requests
    };
    if !ok {
        bail!(
            "{}: expected every answer to be {}, but {} of {} were 4xx/5xx",
            row.label,
            row.expect,
            s.non_2xx,
            s.requests
        );
    }
    Ok(())
}

/// The filter's counters, without their prefix, once they have settled:
/// the filter may keep counts in the VM and flush them on its tick (100 ms),
/// so a read right after the load would miss the last tick's worth and
/// credit it to the next row. Polls until the counters have not moved for
/// [`SETTLED`]; Envoys without the filter answer at once.
async fn filter_stats(envoy: &Envoy) -> Result<BTreeMap<String, u64>> {
    let read = || async {
        Ok::<_, anyhow::Error>(
            envoy
                .stats()
                .await?
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(STATS_PREFIX).map(|s| (s.to_owned(), v)))
                .collect::<BTreeMap<String, u64>>(),
        )
    };
    let mut last = read().await?;
    if last.is_empty() {
        return Ok(last);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut still_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = read().await?;
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= SETTLED {
            return Ok(last);
        }
        if Instant::now() > deadline {
            bail!("the filter's counters kept moving for 10 s with no load");
        }
    }
}

fn per_round(row: &Row, base: &Row, f: impl Fn(&Sample, &Sample) -> f64) -> f64 {
    median(row.samples.iter().zip(&base.samples).map(|(a, b)| f(a, b)))
}

fn tabulate(
    settings: &Settings,
    rows: &[Row],
    procs: &[Proc],
    final_rss: &[(u64, u64)],
    skipped: Vec<String>,
    token_bytes: usize,
) -> Result<Outcome> {
    let find = |traffic: Traffic, proc_label: &str| {
        rows.iter()
            .find(|r| r.traffic == traffic && procs[r.proc_index].label == proc_label)
    };
    let plain = find(Traffic::Hot, "plain").context("no plain row")?;
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
        let added = per_round(row, plain, |a, b| {
            a.cpu_us_per_request(0) - b.cpu_us_per_request(0)
        });
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
    for s in skipped {
        table.note(s);
    }

    // ---- memory and size -------------------------------------------------
    let mut mem = Table::new(
        "Sidecar: memory and size",
        &[
            "Envoy",
            "RSS idle",
            "RSS after the run",
            "minus plain Envoy (after the run)",
        ],
    );
    let plain_idx = procs.iter().position(|p| p.label == "plain");
    let plain_final = plain_idx.map_or(0, |i| final_rss[i].0);
    for (p, (rss, _)) in procs.iter().zip(final_rss) {
        mem.row(vec![
            format!("`{}`", p.label),
            mib(p.idle_rss_kib as f64),
            mib(*rss as f64),
            mib(*rss as f64 - plain_final as f64),
        ]);
    }
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let filter_bytes = size(&settings.filter_wasm);
    let noop_bytes = size(&settings.noop_wasm);
    mem.note(format!(
        "`.wasm` sizes: our filter {} bytes ({} MiB), the do-nothing filter {} bytes",
        int(filter_bytes as f64),
        num(filter_bytes as f64 / 1_048_576.0, 2),
        int(noop_bytes as f64)
    ));
    mem.note(
        "One worker, so one VM per Envoy; Envoy 1.40 reports no per-VM memory statistic, so the VM's memory is the Envoy's RSS minus plain Envoy's (the V8 engine, the module, and its heap with the verified-token cache).",
    );

    // ---- summary ------------------------------------------------------------
    let added = |r: Option<&Row>| {
        r.map_or(f64::NAN, |r| {
            per_round(r, plain, |a, b| {
                a.cpu_us_per_request(0) - b.cpu_us_per_request(0)
            })
        })
    };
    let ratio =
        |r: Option<&Row>| r.map_or(f64::NAN, |r| per_round(r, plain, |a, b| a.rps() / b.rps()));
    let cpu = |r: Option<&Row>| {
        r.map_or(f64::NAN, |r| {
            median(r.samples.iter().map(|s| s.cpu_us_per_request(0)))
        })
    };
    let hot = find(Traffic::Hot, "ours");
    let noop = find(Traffic::Hot, "noop");
    let bare = find(Traffic::Hot, "bare");
    let cold = find(Traffic::Cold, "ours");
    let fallback = find(Traffic::Cold, "ours-wasm-crypto");
    let flood = find(Traffic::Flood, "ours");
    let jwt = find(Traffic::Hot, "jwt_authn");
    let rss_minus_plain = |label: &str| {
        procs
            .iter()
            .position(|p| p.label == label)
            .map_or(f64::NAN, |i| final_rss[i].0 as f64 - plain_final as f64)
    };
    let cold_path = cold.map_or_else(String::new, |r| {
        let native = r.stats.get("verify_native").copied();
        let wasm = r.stats.get("verify_wasm").copied();
        match (native, wasm) {
            (Some(n), Some(w)) if n > 0 && w == 0 => "Envoy's native `verify_signature`".to_owned(),
            (Some(n), Some(w)) if w > 0 && n == 0 => "pure Rust in the VM".to_owned(),
            (Some(n), Some(w)) => format!("mixed: {n} native, {w} in the VM"),
            _ => "not reported by this filter build".to_owned(),
        }
    });
    let summary = Summary {
        hot_vs_noop: match (hot, noop) {
            (Some(h), Some(n)) => per_round(h, n, |a, b| a.rps() / b.rps()),
            _ => f64::NAN,
        },
        hot_vs_bare: match (hot, bare) {
            (Some(h), Some(b)) => per_round(h, b, |a, b| a.rps() / b.rps()),
            _ => f64::NAN,
        },
        hot_added_us: added(hot),
        noop_added_us: added(noop),
        bare_added_us: added(bare),
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
        filter_wasm_bytes: filter_bytes,
        noop_wasm_bytes: noop_bytes,
        vm_rss_kib: rss_minus_plain("ours"),
        noop_vm_rss_kib: rss_minus_plain("noop"),
        cold_path,
    };
    Ok(Outcome {
        tables: vec![table, mem],
        summary,
    })
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

//! Which Envoys run (one filter chain each) and which rows measure them.

use std::path::Path;

use anyhow::{Context as _, Result};
use mesh_auth_tests::SidecarBootstrap;
use serde_json::{Value, json};

use super::{FUNCTION, ISSUER, Minted, NAMESPACE, Proc, Row, Traffic};
use crate::configs::{self, Pinned, bootstrap};
use crate::pool::Cursor;
use crate::procfs;
use crate::settings::Settings;

/// The Envoy running the baseline build of our filter.
pub const BASELINE: &str = "ours-baseline";

/// The table's rows, in order: label, the Envoy, the traffic, the status
/// every answer must have. A row whose Envoy is not running is left out.
#[rustfmt::skip]
const ROWS: &[(&str, &str, Traffic, u16)] = &[
    ("plain Envoy (no filter)", "plain", Traffic::Hot, 200),
    ("native `jwt_authn`, `local_jwks`", "jwt_authn", Traffic::Hot, 200),
    ("native `jwt_authn` + `jwt_cache_config`", "jwt_authn+cache", Traffic::Hot, 200),
    ("Rust proxy-wasm filter that does nothing", "noop", Traffic::Hot, 200),
    ("the same without the SDK, exporting only what a request needs", "bare", Traffic::Hot, 200),
    ("**ours, hot** (same token: cache hit)", "ours", Traffic::Hot, 200),
    ("ours (baseline build), hot (same token: cache hit)", BASELINE, Traffic::Hot, 200),
    ("**ours, cold** (every token new)", "ours", Traffic::Cold, 200),
    ("ours, cold, `crypto: wasm` (pure-Rust fallback forced)", "ours-wasm-crypto", Traffic::Cold, 200),
    ("ours, audit mode, no token (would deny)", "ours-audit", Traffic::NoToken, 200),
    ("ours, flood of forged signatures (401)", "ours", Traffic::Flood, 401),
    ("probe: the do-nothing filter without the SDK, plus the hot path's one host call (all request headers)", "probe-headers", Traffic::Hot, 200),
    ("probe: one native `verify_signature` call alone (on the SDK, like the do-nothing filter)", "probe-verify", Traffic::Hot, 200),
];

/// One Envoy to start: its label, its bootstrap, and whether its refusal
/// of the configuration fails the run (or only leaves its rows out).
type Chain = (&'static str, SidecarBootstrap, bool);

fn chains(settings: &Settings, minted: &Minted) -> Result<Vec<Chain>> {
    let ours = |file: &Path, extra: Value| {
        let config = configs::plugin_config(ISSUER, &minted.jwks, (NAMESPACE, FUNCTION), extra);
        bootstrap().filter(configs::wasm("mesh-auth", file, &config))
    };
    let wasm = |name: &str, file: &Path, config: &str| {
        bootstrap().filter(configs::wasm(name, file, config))
    };
    let jwt_authn =
        |cache| bootstrap().http_filter(configs::jwt_authn(ISSUER, &minted.jwks, cache));
    let mut chains: Vec<Chain> = vec![
        ("plain", bootstrap(), true),
        ("jwt_authn", jwt_authn(false), true),
        ("jwt_authn+cache", jwt_authn(true), true),
        ("noop", wasm("noop", &settings.noop_wasm, ""), true),
        ("bare", wasm("bare", &settings.bare_wasm, ""), true),
        ("ours", ours(&settings.filter_wasm, json!({})), true),
        (
            "ours-audit",
            ours(&settings.filter_wasm, json!({"mode": "audit"})),
            true,
        ),
    ];
    if let Some(baseline) = &settings.baseline_wasm {
        chains.push((BASELINE, ours(baseline, json!({})), true));
    }
    if let Some(probe) = &settings.probe_wasm {
        // The pure-Rust fallback, forced: only builds that have the setting.
        chains.push((
            "ours-wasm-crypto",
            ours(&settings.filter_wasm, json!({"crypto": "wasm"})),
            false,
        ));
        let (message, sig) = minted.hot.rsplit_once('.').context("the hot token")?;
        let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig)?;
        let der = mesh_auth_core::verify::es256_signature_to_der(&raw)
            .context("the hot token's signature")?;
        let spki = minted.signer.spki_der();
        let verify = format!("verify:{}:{}:{message}", hex(&spki), hex(&der));
        chains.push((
            "probe-headers",
            wasm("bare", &settings.bare_wasm, "headers"),
            true,
        ));
        chains.push(("probe-verify", wasm("probe", probe, &verify), true));
    }
    Ok(chains)
}

/// Start every Envoy; those that may refuse their configuration and do are
/// left out, with a note for the report.
pub(super) async fn start(
    settings: &Settings,
    pinned: &Pinned,
    minted: &Minted,
    scratch: &Path,
) -> Result<(Vec<Proc>, Vec<String>)> {
    let mut procs: Vec<Proc> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for (label, bootstrap, required) in chains(settings, minted)? {
        match pinned.start(label, &bootstrap).await {
            Ok(envoy) => {
                let (rss, _) = procfs::rss_kib(envoy.pid())?;
                procs.push(Proc {
                    label,
                    idle_rss_kib: rss,
                    cold: Cursor::new(minted.cold.clone(), &format!("{label}-cold"), scratch),
                    flood: Cursor::new(minted.flood.clone(), &format!("{label}-flood"), scratch),
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
    Ok((procs, skipped))
}

/// The rows whose Envoy is running.
pub(super) fn rows(procs: &[Proc]) -> Vec<Row> {
    ROWS.iter()
        .filter_map(|&(label, proc_label, traffic, expect)| {
            let proc_index = procs.iter().position(|p| p.label == proc_label)?;
            Some(Row {
                label,
                proc_index,
                traffic,
                expect,
                warm_rps: 0.0,
                samples: Vec::new(),
                stats: Default::default(),
                cache_survived: Vec::new(),
            })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

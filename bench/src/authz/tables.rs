//! What the ext-authz jobs measured, as the report's tables: exchanges
//! against `/healthz`, the `Check` through Envoy, and the Roles.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{CHECK_CONNECTIONS, CONCURRENCY, Instance, Job, Summary};
use crate::load::Sample;
use crate::report::{Outcome, Table, int, latency, median, mib, num, signed};
use crate::settings::Settings;

pub(super) fn tabulate(
    settings: &Settings,
    instances: &[Instance],
    samples: &BTreeMap<Job, Vec<Sample>>,
    final_rss: &[(u64, u64)],
) -> Result<Outcome<Summary>> {
    let get = |job: Job| samples.get(&job).map(Vec::as_slice).unwrap_or_default();
    let med = |s: &[Sample], f: &dyn Fn(&Sample) -> f64| median(s.iter().map(f));
    let ratio = |a: &[Sample], b: &[Sample], f: &dyn Fn(&Sample, &Sample) -> f64| {
        median(a.iter().zip(b).map(|(x, y)| f(x, y)))
    };

    let mut ex = Table::new(
        "ext-authz: token exchange vs `/healthz`",
        &[
            "concurrency",
            "exchanges/s",
            "p50",
            "p99",
            "ext-authz CPU/exchange",
            "ext-authz cores busy",
            "`/healthz` req/s",
            "`/healthz` p50",
            "`/healthz` p99",
            "exchange ÷ healthz",
        ],
    );
    ex.intro.push(format!(
        "`POST /oauth/token` (RFC 8693, `scope=function`), every request a distinct ES256 IdP token, {} Roles loaded; against `GET /healthz` on the same server. Medians of {} interleaved rounds of `wrk -t1 -cN -d{}s`; wrk pinned to core {}, ext-authz (release build, 2 tokio workers) on both cores, so it shares core {} with wrk.",
        instances[0].roles,
        settings.rounds,
        settings.authz_duration.as_secs_f64(),
        settings.load_cpu,
        settings.load_cpu,
    ));
    for c in CONCURRENCY {
        let e = get(Job::Exchange { instance: 0, c });
        let h = get(Job::Healthz { c });
        ex.row(vec![
            c.to_string(),
            int(med(e, &Sample::rps)),
            latency(med(e, &|s| s.p50_us)),
            latency(med(e, &|s| s.p99_us)),
            format!("{} µs", num(med(e, &|s| s.cpu_us_per_request(0)), 0)),
            num(med(e, &|s| s.busy_percent(0) / 100.0), 2),
            int(med(h, &Sample::rps)),
            latency(med(h, &|s| s.p50_us)),
            latency(med(h, &|s| s.p99_us)),
            num(ratio(e, h, &|a, b| a.rps() / b.rps()), 2),
        ]);
    }
    let wraps: u64 = instances.iter().map(|i| i.idp.wraps).sum();
    ex.note(format!(
        "Subject tokens: a pool of {} distinct IdP tokens per ext-authz process, handed out in order without reuse{}.",
        int(instances[0].idp.pool_size() as f64),
        if wraps > 0 {
            format!(" until it ran out ({wraps} wraps: ext-authz keeps no per-token cache, so a reused subject costs the same)")
        } else {
            String::new()
        }
    ));
    ex.note("ext-authz logs one audit line per exchange at its default level (info), as in production; that cost is included.");
    let other = median(
        samples
            .values()
            .flatten()
            .map(|s| 100.0 * s.other_cpu_seconds / s.seconds.max(1e-9)),
    );
    ex.note(format!(
        "Everything else on the machine (not ext-authz, Envoy, wrk or this driver) used a median {}% of a core during these measurements{}",
        num(other, 0),
        if other > 10.0 {
            ": the machine was NOT quiet, expect noise"
        } else {
            ""
        }
    ));

    let mut ck = Table::new(
        "ext-authz: the ext_authz `Check` through Envoy",
        &[
            "gateway Envoy",
            "req/s",
            "× plain",
            "p50",
            "p99",
            "Envoy CPU/req",
            "added Envoy CPU/req",
            "Envoy core busy",
            "ext-authz CPU/Check",
            "ext-authz cores busy",
        ],
    );
    ck.intro.push(format!(
        "`GET {}` with an API token (ES256, verified by ext-authz on every Check, then IAM `Function:List`); the route answers 200 itself (`direct_response`). Envoy `--concurrency 1` pinned to core {}, `envoy.filters.http.ext_authz` over gRPC (HTTP/2) to ext-authz as `envoy/gateway.yaml` configures it; `wrk -c{CHECK_CONNECTIONS}` and, for these runs, ext-authz on core {}, so Envoy has its core to itself.",
        "/system/functions?namespace=…",
        settings.envoy_cpu,
        settings.load_cpu
    ));
    let p = get(Job::Check {
        through_ext_authz: false,
    });
    let g = get(Job::Check {
        through_ext_authz: true,
    });
    for (name, s) in [("plain Envoy", p), ("Envoy + `ext_authz`", g)] {
        let is_plain = std::ptr::eq(s, p);
        ck.row(vec![
            name.to_owned(),
            int(med(s, &Sample::rps)),
            num(ratio(s, p, &|a, b| a.rps() / b.rps()), 2),
            latency(med(s, &|x| x.p50_us)),
            latency(med(s, &|x| x.p99_us)),
            format!("{} µs", num(med(s, &|x| x.cpu_us_per_request(0)), 1)),
            if is_plain {
                "0".to_owned()
            } else {
                format!(
                    "{} µs",
                    signed(
                        ratio(s, p, &|a, b| a.cpu_us_per_request(0)
                            - b.cpu_us_per_request(0)),
                        1
                    )
                )
            },
            format!("{}%", num(med(s, &|x| x.busy_percent(0)), 0)),
            if is_plain {
                "–".to_owned()
            } else {
                format!("{} µs", num(med(s, &|x| x.cpu_us_per_request(1)), 0))
            },
            if is_plain {
                "–".to_owned()
            } else {
                num(med(s, &|x| x.busy_percent(1) / 100.0), 2)
            },
        ]);
    }

    let mut roles = Table::new(
        "ext-authz: exchange latency by the number of Roles and Policies",
        &[
            "Roles + Policies",
            "startup to ready",
            "p50",
            "p99",
            "exchanges/s (c=1)",
            "ext-authz CPU/exchange",
            "p50 × 10 Roles",
            "RSS idle",
            "RSS after the run (peak)",
        ],
    );
    roles.intro.push(
        "Concurrency 1. Each Role has its own `jwt:sub` principal and its own Policy; the subject matches one Role near the end (the third from last).".to_owned(),
    );
    let base = get(Job::Exchange { instance: 0, c: 1 });
    for (i, inst) in instances.iter().enumerate() {
        let s = get(Job::Exchange { instance: i, c: 1 });
        roles.row(vec![
            int(inst.roles as f64),
            format!("{} ms", num(inst.startup.as_secs_f64() * 1000.0, 0)),
            latency(med(s, &|x| x.p50_us)),
            latency(med(s, &|x| x.p99_us)),
            int(med(s, &Sample::rps)),
            format!("{} µs", num(med(s, &|x| x.cpu_us_per_request(0)), 0)),
            num(ratio(s, base, &|a, b| a.p50_us / b.p50_us), 2),
            mib(inst.idle_rss_kib as f64),
            format!(
                "{} ({})",
                mib(final_rss[i].0 as f64),
                mib(final_rss[i].1 as f64)
            ),
        ]);
    }

    let e64 = get(Job::Exchange { instance: 0, c: 64 });
    let last = instances.len() - 1;
    let summary = Summary {
        exchange_rps_c64: med(e64, &Sample::rps),
        exchange_p99_us_c64: med(e64, &|s| s.p99_us),
        roles_p50_ratio: ratio(
            get(Job::Exchange {
                instance: last,
                c: 1,
            }),
            base,
            &|a, b| a.p50_us / b.p50_us,
        ),
        rss_10k_kib: final_rss[last].0 as f64,
        rss_10k_peak_kib: final_rss[last].1 as f64,
    };
    Ok(Outcome {
        tables: vec![ex, ck, roles],
        summary,
    })
}

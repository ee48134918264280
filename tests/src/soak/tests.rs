use std::collections::BTreeMap;
use std::time::Duration;

use super::faults::utc_stamp;
use super::load::{Expect, Resp, describe, judge};
use super::report::rss_checks;
use super::sample::{Proc, Sample, Source, envoy_stat_wanted, metric_sum, parse_metrics};
use super::tally::{Kind, Outcome, Tally, clock};

fn resp(status: u16, headers: &[(&'static str, &str)], body: &str) -> Resp {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, v.parse().unwrap());
    }
    Resp {
        status,
        headers: map,
        body: body.to_owned(),
    }
}

const FAST: Duration = Duration::from_millis(5);
const SLOW: Duration = Duration::from_secs(2);

#[test]
fn key_names_carry_the_utc_second_without_colons() {
    assert_eq!(utc_stamp(0), "1970-01-01T000000Z");
    // 2024-02-29 13:05:09 UTC, a leap day.
    assert_eq!(utc_stamp(1_709_211_909), "2024-02-29T130509Z");
    assert_eq!(utc_stamp(4_102_444_799), "2099-12-31T235959Z");
}

#[test]
fn designed_refusals_are_told_from_failures() {
    let filter_403 = resp(403, &[], "insufficient permissions");
    assert_eq!(
        judge(Expect::FilterDenied, &Ok(filter_403), FAST, SLOW),
        Outcome::Denied
    );
    let authz_403 = resp(
        403,
        &[("content-type", "text/plain; charset=utf-8")],
        "forbidden: Secret:List",
    );
    assert_eq!(
        judge(Expect::AuthzDenied, &Ok(authz_403), FAST, SLOW),
        Outcome::Denied
    );
    // Envoy's own 403 when the ext_authz call failed is no designed refusal.
    let bare = judge(Expect::AuthzDenied, &Ok(resp(403, &[], "")), FAST, SLOW);
    assert!(
        matches!(&bare, Outcome::Unexpected(d) if d.contains("ext_authz call failed")),
        "{bare:?}"
    );
    let bad_target = resp(400, &[], r#"{"error":"invalid_target"}"#);
    assert_eq!(
        judge(Expect::InvalidTarget, &Ok(bad_target), FAST, SLOW),
        Outcome::Denied
    );
}

#[test]
fn a_success_must_come_from_the_upstream_with_the_subject() {
    let echo = r#"{"method":"GET","path":"/","headers":{"x-faas-mesh-auth-subject":"fed:openfaas-demo"},"body":""}"#;
    assert_eq!(
        judge(Expect::Invoked, &Ok(resp(200, &[], echo)), FAST, SLOW),
        Outcome::Ok
    );
    let no_sub = r#"{"method":"GET","path":"/","headers":{},"body":""}"#;
    assert!(matches!(
        judge(Expect::Invoked, &Ok(resp(200, &[], no_sub)), FAST, SLOW),
        Outcome::Unexpected(_)
    ));
    // Right answer, too late.
    let slow = judge(
        Expect::Invoked,
        &Ok(resp(200, &[], echo)),
        Duration::from_secs(5),
        SLOW,
    );
    assert!(
        matches!(&slow, Outcome::Unexpected(d) if d.starts_with("slow")),
        "{slow:?}"
    );
}

#[test]
fn failures_are_described_by_what_clients_see() {
    let r = resp(
        401,
        &[(
            "www-authenticate",
            r#"Bearer realm="IAM function invoke", error="invalid_token", error_description="unknown_kid""#,
        )],
        "invalid token",
    );
    assert_eq!(describe(&r), "401 invalid_token unknown_kid");
    let r = resp(
        503,
        &[],
        r#"{"error":"temporarily_unavailable","error_description":"IdP down"}"#,
    );
    assert_eq!(describe(&r), "503 temporarily_unavailable: IdP down");
    assert_eq!(describe(&resp(502, &[], "")), "502 (no body)");
}

#[test]
fn the_tally_counts_by_kind_and_period_and_groups_failures() {
    let t = Tally::new(Duration::from_secs(60));
    t.record(Kind::Exchange, "a", Outcome::Ok, FAST);
    t.record(Kind::Exchange, "a", Outcome::Unexpected("500".into()), FAST);
    t.record(Kind::Exchange, "a", Outcome::Unexpected("500".into()), FAST);
    t.record(Kind::System, "b", Outcome::Denied, FAST);
    t.record(Kind::System, "b", Outcome::Expected("why".into()), FAST);
    let kinds = t.kinds();
    assert_eq!(kinds[&Kind::Exchange].total(), 3);
    assert_eq!(kinds[&Kind::Exchange].unexpected, 2);
    assert_eq!(kinds[&Kind::System].denied, 1);
    assert_eq!(t.unexpected().len(), 1);
    assert_eq!(t.unexpected()[0].count, 2);
    assert_eq!(t.periods()[0].requests, 5);
    assert_eq!(t.expected()[&(Kind::System, "why".to_owned())], 1);
    assert_eq!(clock(Duration::from_millis(125_400)), "2:05.4");
}

fn proc(name: &str, run: u32, started: u64) -> Proc {
    Proc {
        name: name.to_owned(),
        run,
        pid: 1,
        started: Duration::from_secs(started),
        source: Source::None,
        judged: true,
    }
}

fn sample(at: u64, rss: &[(&str, u64)]) -> Sample {
    Sample {
        at: Duration::from_secs(at),
        rss_kib: rss
            .iter()
            .map(|(l, v)| ((*l).to_owned(), Some(*v)))
            .collect(),
        counters: BTreeMap::new(),
        errors: Vec::new(),
    }
}

#[test]
fn memory_is_judged_against_minute_2_of_each_run() {
    let samples = vec![
        sample(0, &[("a", 100), ("b", 100)]),
        sample(60, &[("a", 150), ("b", 150)]),
        sample(120, &[("a", 200), ("b", 200), ("b (run 2)", 50)]),
        sample(180, &[("a", 210), ("b (run 2)", 60)]),
        sample(240, &[("a", 215), ("b (run 2)", 80)]),
    ];
    let procs = vec![proc("a", 1, 0), proc("b", 1, 0), proc("b", 2, 110)];
    let checks = rss_checks(&samples, &procs);
    assert!(
        !checks[0].failed(),
        "215/200 is within 1.1x: {:?}",
        checks[0]
    );
    // b's first run ended at its minute-2 sample: nothing to compare.
    assert_eq!(checks[1].ratio(), None);
    // b's second run started at 110 s: its minute 2 is 240 s, the end.
    assert_eq!(checks[2].ratio(), None);
    let grown = vec![sample(120, &[("a", 100)]), sample(600, &[("a", 111)])];
    assert!(rss_checks(&grown, &[proc("a", 1, 0)])[0].failed());
}

#[test]
fn counters_worth_keeping() {
    assert!(envoy_stat_wanted(
        "wasmcustom.faas_mesh_auth.jwks_fetch_failed"
    ));
    assert!(envoy_stat_wanted(
        "cluster.ext-authz-grpc.upstream_cx_connect_fail"
    ));
    assert!(envoy_stat_wanted(
        "cluster.ext-authz-jwks.health_check.failure"
    ));
    assert!(envoy_stat_wanted("http.gateway.ext_authz.error"));
    assert!(!envoy_stat_wanted(
        "cluster.function-dev-env.upstream_cx_connect_fail"
    ));
    assert!(!envoy_stat_wanted(
        "cluster.ext-authz-grpc.upstream_cx_rx_bytes_total"
    ));
    let m = parse_metrics(
        "# HELP x\nfaas_mesh_auth_config_reloads_total{what=\"iam\",result=\"applied\"} 2\n\
         faas_mesh_auth_config_reloads_total{what=\"keys\",result=\"applied\"} 1\n\
         faas_mesh_auth_token_exchange_duration_seconds_bucket{le=\"0.1\"} 9\n",
    );
    assert_eq!(m.len(), 2);
    assert_eq!(
        metric_sum(&m, "faas_mesh_auth_config_reloads_total", &["what=\"iam\""]),
        2
    );
}

#!/usr/bin/env python3
"""Generates the monitoring files in this folder from the one source below:
the alert rules (a plain Prometheus rules file and the same groups as a
PrometheusRule) and the Grafana dashboard (its JSON and a ConfigMap holding
it). Python 3 standard library only.

    python3 k8s/monitoring/generate.py          # rewrite the four files
    python3 k8s/monitoring/generate.py --check  # exit 1 if any file is stale

Every alert's expression is `(<signal>) <op> <number>` or
`absent(<signal>)`, nothing else: the real-Prometheus test
(tests/tests/monitoring.rs) evaluates the signal on its own and requires it
to return series, so a misspelt metric cannot hide behind a threshold that
is never crossed. docs/monitoring.md says what each alert means.

Metric names are what the processes really export:
* ext-authz's `/metrics` (prometheus-client): `faas_mesh_auth_*`, counters
  with `_total`;
* the filter's counters in Envoy's `/stats/prometheus`: Envoy prints
  `wasmcustom.faas_mesh_auth.denied.no_keys` as
  `faas_mesh_auth_denied_no_keys` (a custom stat namespace: no `envoy_`
  prefix, the namespace dropped);
* Envoy's own ext_authz filter stats on the gateway:
  `envoy_http_ext_authz_{ok,denied,error}`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNBOOK = "https://github.com/faas-mesh-auth/faas-mesh-auth/blob/main/docs/monitoring.md"

# --- alerts -------------------------------------------------------------------

# The filter's counters, as Envoy prints them.
F = "faas_mesh_auth_"
POD = "namespace, pod"


def ratio(part: str, whole: str) -> str:
    return f"{part}\n/\n{whole}"


ALERTS = [
    dict(
        alert="MeshAuthFilterKeyRefreshFailing",
        signal=ratio(
            f"sum by ({POD}) (increase({F}jwks_fetch_failed[15m]))",
            f"(sum by ({POD}) (increase({F}jwks_fetch_failed[15m])) + sum by ({POD}) (increase({F}jwks_fetch_ok[15m])))",
        ),
        op=">=",
        threshold="1",
        for_="5m",
        severity="warning",
        summary="The filter in {{ $labels.namespace }}/{{ $labels.pod }} has failed every JWKS fetch for 15 minutes",
    ),
    dict(
        alert="MeshAuthFilterDeniesNoKeys",
        signal=f"sum by ({POD}) (rate({F}denied_no_keys[5m]))",
        op=">",
        threshold="0",
        for_="2m",
        severity="critical",
        summary="The filter in {{ $labels.namespace }}/{{ $labels.pod }} refuses requests because it has no keys (no_keys)",
    ),
    dict(
        alert="MeshAuthFilterDeniesNoIdentity",
        signal=f"sum by ({POD}) (rate({F}denied_no_identity[5m]))",
        op=">",
        threshold="0",
        for_="2m",
        severity="critical",
        summary="The filter in {{ $labels.namespace }}/{{ $labels.pod }} refuses requests because it does not know its function (no_identity)",
    ),
    dict(
        alert="MeshAuthCheckErrors",
        signal=f"sum by ({POD}) (rate(envoy_http_ext_authz_error[5m]))",
        op=">",
        threshold="0",
        for_="5m",
        severity="critical",
        summary="The gateway {{ $labels.namespace }}/{{ $labels.pod }} gets errors, not answers, from ext-authz's Check",
    ),
    dict(
        alert="MeshAuthExtAuthzNotReady",
        signal="faas_mesh_auth_ready == 1",
        op="absent",
        threshold=None,
        for_="2m",
        severity="critical",
        summary="No ext-authz replica is ready (none scraped, or all draining)",
    ),
    dict(
        alert="MeshAuthExchangeErrorRatioHigh",
        signal=ratio(
            'sum by (namespace) (rate(faas_mesh_auth_token_exchanges_total{result!="ok"}[10m]))',
            "sum by (namespace) (rate(faas_mesh_auth_token_exchanges_total[10m]))",
        ),
        op=">",
        threshold="0.25",
        for_="10m",
        severity="warning",
        summary="{{ $value | humanizePercentage }} of token exchanges in {{ $labels.namespace }} fail",
    ),
    dict(
        alert="MeshAuthIdpKeyFetchFailing",
        signal=ratio(
            'sum by (namespace, issuer) (rate(faas_mesh_auth_idp_key_fetches_total{result="error"}[5m]))',
            "sum by (namespace, issuer) (rate(faas_mesh_auth_idp_key_fetches_total[5m]))",
        ),
        op=">",
        threshold="0.5",
        for_="5m",
        severity="warning",
        summary="ext-authz cannot fetch the keys of identity provider {{ $labels.issuer }}",
    ),
    dict(
        alert="MeshAuthIamReloadRejected",
        signal=f"max by ({POD}) (faas_mesh_auth_iam_reload_rejected)",
        op=">",
        threshold="0",
        for_="1m",
        severity="warning",
        summary="ext-authz {{ $labels.namespace }}/{{ $labels.pod }} rejected the IAM objects' last change and serves the previous ones",
    ),
    dict(
        alert="MeshAuthSigningKeyOld",
        signal=f"time() - max by ({POD}) (faas_mesh_auth_signing_key_since_timestamp_seconds)",
        op=">",
        # 90 days.
        threshold="7776000",
        for_="1h",
        severity="warning",
        summary="ext-authz {{ $labels.namespace }}/{{ $labels.pod }} has signed with the same key for {{ $value | humanizeDuration }}",
    ),
]

OPS = (">", "<", ">=", "<=", "==", "!=")


def expr_of(a: dict) -> str:
    signal = a["signal"]
    if a["op"] == "absent":
        return f"absent({signal})"
    assert a["op"] in OPS, a
    float(a["threshold"])
    return f"({signal}) {a['op']} {a['threshold']}"


def anchor(name: str) -> str:
    return name.lower()


def rule_groups() -> list[dict]:
    rules = []
    for a in ALERTS:
        rules.append(
            {
                "alert": a["alert"],
                "expr": expr_of(a),
                "for": a["for_"],
                "labels": {"severity": a["severity"]},
                "annotations": {
                    "summary": a["summary"],
                    "runbook_url": f"{RUNBOOK}#{anchor(a['alert'])}",
                },
            }
        )
    return [{"name": "faas-mesh-auth", "rules": rules}]


# --- the dashboard ------------------------------------------------------------

RI = "$__rate_interval"


def rate(metric: str, by: str = "", sel: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({metric}{sel}[{RI}]))"




def by_reason(prefix: str, by: str) -> str:
    """The rate of Envoy's per-reason counters `<prefix><reason>`. The
    reason becomes a label before the rate (a subquery): rate() drops the
    name, and the series of one pod would otherwise collide."""
    return (
        f'sum{f" by ({by})" if by else ""} (rate(label_replace({{__name__=~"{prefix}.+"}}, '
        f'"reason", "$1", "__name__", "{prefix}(.+)")[{RI}:]))'
    )


FN = "namespace, faas_function"

# (title, unit, [(expr, legend)]), laid out two to a row.
PANELS = [
    ("Requests allowed and denied by the filter", "reqps", [
        (rate(f"{F}allowed"), "allowed"),
        (by_reason(F + "denied_", ""), "denied"),
        (rate(f"{F}exempt"), "exempt"),
    ]),
    ("Denied by reason", "reqps", [(by_reason(F + "denied_", "reason"), "{{reason}}")]),
    ("Allowed by function", "reqps", [(rate(f"{F}allowed", FN), "{{namespace}}/{{faas_function}}")]),
    ("Denied by function", "reqps", [(by_reason(F + "denied_", FN), "{{namespace}}/{{faas_function}}")]),
    ("Audit mode: would deny, by reason", "reqps", [(by_reason(F + "audit_would_deny_", "reason"), "{{reason}}")]),
    ("Token cache hit ratio", "percentunit", [(
        f"{rate(F + 'cache_hit')}\n/\n({rate(F + 'cache_hit')} + {rate(F + 'cache_miss')})",
        "hit ratio",
    )]),
    ("Signature verifies: native (Envoy) vs wasm (fallback)", "ops", [
        (rate(f"{F}verify_native"), "native"),
        (rate(f"{F}verify_wasm"), "wasm"),
    ]),
    ("JWKS fetches by the filters", "ops", [
        (rate(f"{F}jwks_fetch_ok"), "ok"),
        (rate(f"{F}jwks_fetch_failed"), "failed"),
        (rate(f"{F}jwks_updated"), "keys changed"),
        (rate(f"{F}jwks_unknown_kid_refetch"), "unknown-kid refetch"),
        (rate("faas_mesh_auth_jwks_served_total"), "served by ext-authz"),
    ]),
    ("Token exchanges by result", "reqps", [
        (rate("faas_mesh_auth_token_exchanges_total", "result, kind"), "{{result}} ({{kind}})"),
    ]),
    ("Token exchange latency", "s", [
        (f"histogram_quantile({q}, sum by (le) (rate(faas_mesh_auth_token_exchange_duration_seconds_bucket[{RI}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.9, 0.99)
    ]),
    ("Checks (/system/ API) by action and result", "reqps", [
        (rate("faas_mesh_auth_ext_authz_decisions_total", "action, result"), "{{action}} {{result}}"),
    ]),
    ("Check denials by reason, and the gateway's Check errors", "reqps", [
        (rate("faas_mesh_auth_ext_authz_denials_total", "reason"), "{{reason}}"),
        (rate("envoy_http_ext_authz_error"), "gateway: Check errors"),
    ]),
    ("Identity providers: key fetches by issuer and result", "ops", [
        (rate("faas_mesh_auth_idp_key_fetches_total", "issuer, result"), "{{issuer}} {{result}}"),
    ]),
    ("Identity providers: exchanges refused because the IdP is unavailable", "reqps", [
        (rate("faas_mesh_auth_token_exchanges_total", "kind", '{result="idp_unavailable"}'), "{{kind}}"),
    ]),
    ("ext-authz: ready replicas, IAM reload rejected", "short", [
        ("sum(faas_mesh_auth_ready)", "ready replicas"),
        ("max(faas_mesh_auth_iam_reload_rejected)", "IAM change rejected"),
        ("max(faas_mesh_auth_published_keys)", "published keys"),
    ]),
    ("ext-authz: signing key age", "s", [
        ("time() - max by (pod) (faas_mesh_auth_signing_key_since_timestamp_seconds)", "{{pod}}"),
    ]),
]


def dashboard() -> dict:
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append({
            "id": i + 1,
            "type": "timeseries",
            "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [
                {
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "expr": expr,
                    "legendFormat": legend,
                    "refId": chr(ord("A") + j),
                }
                for j, (expr, legend) in enumerate(targets)
            ],
        })
    return {
        "uid": "faas-mesh-auth",
        "title": "faas-mesh-auth",
        "tags": ["faas-mesh-auth", "openfaas", "istio"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        }]},
        "panels": panels,
    }


# --- rendering ------------------------------------------------------------------

HEADER = "# Generated by k8s/monitoring/generate.py from its source; do not edit.\n"


def scalar(v: str, indent: str) -> str:
    """A YAML scalar: JSON-quoted on one line, or a literal block."""
    if "\n" in v:
        return "|-\n" + "".join(f"{indent}  {line}\n" for line in v.split("\n")).rstrip("\n")
    return json.dumps(v)


def groups_yaml(indent: str) -> str:
    out = []
    for g in rule_groups():
        out.append(f"{indent}- name: {json.dumps(g['name'])}\n{indent}  rules:\n")
        for r in g["rules"]:
            i = indent + "  "
            out.append(f"{i}- alert: {r['alert']}\n")
            out.append(f"{i}  expr: {scalar(r['expr'], i + '  ')}\n")
            out.append(f"{i}  for: {r['for']}\n")
            out.append(f"{i}  labels:\n")
            for k, v in r["labels"].items():
                out.append(f"{i}    {k}: {json.dumps(v)}\n")
            out.append(f"{i}  annotations:\n")
            for k, v in r["annotations"].items():
                out.append(f"{i}    {k}: {json.dumps(v)}\n")
    return "".join(out)


def rules_file() -> str:
    return HEADER + "# The alert rules as a plain Prometheus rules file (rule_files:).\ngroups:\n" + groups_yaml("")


def prometheus_rule() -> str:
    return (
        HEADER
        + "# The alert rules for the Prometheus Operator; the same groups as rules.yaml.\n"
        + "apiVersion: monitoring.coreos.com/v1\n"
        + "kind: PrometheusRule\n"
        + "metadata:\n"
        + "  name: faas-mesh-auth\n"
        + "  labels:\n"
        + "    app.kubernetes.io/name: faas-mesh-auth\n"
        + "spec:\n"
        + "  groups:\n"
        + groups_yaml("  ")
    )


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def dashboard_configmap() -> str:
    body = "".join(f"    {line}\n" if line else "\n" for line in dashboard_json().rstrip("\n").split("\n"))
    return (
        HEADER
        + "# dashboard.json for Grafana's dashboard sidecar (label grafana_dashboard).\n"
        + "apiVersion: v1\n"
        + "kind: ConfigMap\n"
        + "metadata:\n"
        + "  name: faas-mesh-auth-dashboard\n"
        + "  labels:\n"
        + "    app.kubernetes.io/name: faas-mesh-auth\n"
        + '    grafana_dashboard: "1"\n'
        + "data:\n"
        + "  faas-mesh-auth.json: |\n"
        + body
    )


FILES = {
    "rules.yaml": rules_file,
    "prometheusrule.yaml": prometheus_rule,
    "dashboard.json": dashboard_json,
    "dashboard-configmap.yaml": dashboard_configmap,
}


def main(argv: list[str]) -> int:
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    names = {a["alert"] for a in ALERTS}
    assert len(names) == len(ALERTS), "duplicate alert names"
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)
    stale = []
    for name, render in FILES.items():
        path = HERE / name
        text = render()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"k8s/monitoring: stale {', '.join(stale)}: run python3 k8s/monitoring/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

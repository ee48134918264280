//! k8s/monitoring/ against real parts: Debian's `prometheus` scrapes the
//! stack `make run` starts (ext-authz's `/metrics`, both Envoys'
//! `/stats/prometheus`) every second and evaluates the alert rules from
//! `rules.yaml`. After real traffic (good and bad tokens, an IdP outage, a
//! broken IAM file), every expression in the rules file and the dashboard
//! evaluates without error and returns series. The expressions are read from
//! the files themselves.
//!
//! An alert's expression returns series only while it fires, so for each
//! alert its signal (the expression without its threshold, or without
//! `absent(...)`: generate.py writes only those two forms) must return
//! series; the expression itself must evaluate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesh_auth_tests::stack::{Ports, Stack, StackOpts};
use mesh_auth_tests::{FaultMode, form_encode, get, repo_root, request, wait_for, wait_until};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
/// What Grafana's `$__rate_interval` is here: a few 1 s scrapes.
const RATE_INTERVAL: &str = "10s";
/// Alert expressions compare to a number with one of these.
const OPS: [&str; 6] = [">=", "<=", "==", "!=", ">", "<"];

fn monitoring_dir() -> PathBuf {
    repo_root().join("k8s/monitoring")
}

/// `$PROMETHEUS_BIN`, else `prometheus` on the PATH (Debian's package).
fn prometheus_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .expect("no prometheus on the PATH: `make monitoring` installs Debian's prometheus package")
}

/// A Prometheus server on 127.0.0.1, killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Prometheus cannot listen on port 0: take a free port and try again
    /// if another process took it first.
    async fn start(config: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let mut last = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new(prometheus_bin())
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("cannot run prometheus");
            let url = format!("http://127.0.0.1:{port}");
            let ready = wait_until(T, "prometheus /-/ready", || {
                let exited = child.try_wait().ok().flatten().is_some();
                let url = url.clone();
                async move {
                    exited
                        || get(&format!("{url}/-/ready"), &[])
                            .await
                            .is_ok_and(|r| r.status == 200)
                }
            })
            .await;
            if ready.is_ok() && child.try_wait().ok().flatten().is_none() {
                return Prometheus {
                    child,
                    url,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        }
        panic!("prometheus did not start:\n{last}");
    }

    /// An instant query: its result, or Prometheus's error.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = format!(
            "{}/api/v1/query?{}",
            self.url,
            form_encode(&[("query", expr)])
        );
        let r = get(&url, &[]).await.map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
        if body["status"] != "success" {
            return Err(format!(
                "{} {}: {}",
                r.status, body["errorType"], body["error"]
            ));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Poll until `expr` evaluates and returns series. An evaluation error
    /// fails at once: waiting cannot fix it.
    async fn series(&self, what: &str, expr: &str) -> Vec<Value> {
        wait_for(T, &format!("{what} to return series: {expr}"), || async {
            match self.query(expr).await {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                Ok(_) => Ok(None),
                Err(e) => panic!("{what}: `{expr}` does not evaluate: {e}"),
            }
        })
        .await
        .unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let r = get(&format!("{}{path}", self.url), &[]).await.unwrap();
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (alert name, expression) of every alert in the plain rules file.
fn alerts() -> Vec<(String, String)> {
    let rules = yaml_file(&monitoring_dir().join("rules.yaml"));
    let out: Vec<(String, String)> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_owned(),
                r["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(!out.is_empty(), "rules.yaml has no alerts");
    out
}

/// `(<signal>) <op> <number>` or `absent(<signal>)` → the signal.
fn signal_of(alert: &str, expr: &str) -> String {
    let expr = expr.trim();
    if let Some(inner) = expr
        .strip_prefix("absent(")
        .and_then(|e| e.strip_suffix(')'))
    {
        return inner.to_owned();
    }
    let (lhs, cmp) = expr
        .strip_prefix('(')
        .and_then(|e| e.rsplit_once(") "))
        .unwrap_or_else(|| panic!("{alert}: not `(signal) op number`: {expr}"));
    let (op, number) = cmp
        .split_once(' ')
        .unwrap_or_else(|| panic!("{alert}: no threshold in {expr}"));
    assert!(OPS.contains(&op), "{alert}: {op} is not a comparison");
    assert!(
        number.parse::<f64>().is_ok(),
        "{alert}: {number} is not a number"
    );
    lhs.to_owned()
}

/// (panel title, expression) of every dashboard target.
fn dashboard_targets() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(monitoring_dir().join("dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    let out: Vec<(String, String)> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_owned();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert!(out.len() >= 10, "the dashboard has {} targets", out.len());
    out
}

#[test]
fn generated_files_are_current_and_agree() {
    let out = Command::new("python3")
        .arg(monitoring_dir().join("generate.py"))
        .arg("--check")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The PrometheusRule and the rules file hold the same groups; the
    // ConfigMap holds the dashboard.
    let rule = yaml_file(&monitoring_dir().join("prometheusrule.yaml"));
    let plain = yaml_file(&monitoring_dir().join("rules.yaml"));
    assert_eq!(rule["spec"]["groups"], plain["groups"]);
    let cm = yaml_file(&monitoring_dir().join("dashboard-configmap.yaml"));
    let embedded: Value =
        serde_json::from_str(cm["data"]["faas-mesh-auth.json"].as_str().unwrap()).unwrap();
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(monitoring_dir().join("dashboard.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(embedded, dash);
}

#[test]
fn signals_are_split_off_the_expressions() {
    assert_eq!(
        signal_of("a", "(sum(x)\n/\nsum(y)) >= 1"),
        "sum(x)\n/\nsum(y)"
    );
    assert_eq!(signal_of("b", "absent(up == 1)"), "up == 1");
    for (name, expr) in alerts() {
        assert!(!signal_of(&name, &expr).is_empty());
    }
}

/// A token exchange through the gateway, as faas-cli does it.
async fn exchange(stack: &Stack, subject: &str, scope: Option<&str>) -> (u16, Value) {
    let mut fields = vec![
        ("subject_token", subject),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
    ];
    if let Some(s) = scope {
        fields.push(("scope", s));
    }
    let r = request(
        "POST",
        &format!("{}/oauth/token", stack.gateway_url()),
        &[("content-type", "application/x-www-form-urlencoded")],
        form_encode(&fields).into_bytes(),
    )
    .await
    .unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
    )
}

async fn call(stack: &Stack, path: &str, token: Option<&str>) -> u16 {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    get(&format!("{}{path}", stack.gateway_url()), &headers)
        .await
        .unwrap()
        .status
}

fn scrape_config(stack: &Stack) -> String {
    let rules = monitoring_dir().join("rules.yaml");
    let job = |name: &str, path: &str, target: String, labels: &str| {
        format!(
            "  - job_name: {name}\n    metrics_path: {path}\n    static_configs:\n      - targets: ['{target}']\n        labels: {{{labels}}}\n"
        )
    };
    // The labels a Kubernetes pod scrape gives (namespace, pod).
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\nscrape_configs:\n{}{}{}",
        rules.display(),
        job(
            "ext-authz",
            "/metrics",
            stack.ext_authz().http_addr().to_string(),
            "namespace: openfaas, pod: ext-authz-a"
        ),
        job(
            "gateway",
            "/stats/prometheus",
            stack.gateway.admin_addr().unwrap().to_string(),
            "namespace: openfaas, pod: gateway"
        ),
        job(
            "sidecars",
            "/stats/prometheus",
            stack.sidecars.admin_addr().unwrap().to_string(),
            "namespace: openfaas-fn, pod: sidecars"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_and_dashboard_expression_returns_series_from_the_stack() {
    let started = Instant::now();
    let state = tempfile::tempdir().unwrap();
    let mut opts = StackOpts::new(Ports::any(), state.path());
    opts.reload_interval = Duration::from_millis(200);
    opts.idp_proxy = true;
    let stack = Stack::start(opts).await.unwrap();
    let prom = Prometheus::start(&scrape_config(&stack)).await;

    // Every target up before the traffic, so counters are seen from zero.
    wait_until(T, "all three targets up", || async {
        prom.query("sum(up)")
            .await
            .ok()
            .and_then(|v| v.first().cloned())
            .is_some_and(|s| s["value"][1] == "3")
    })
    .await
    .unwrap();

    // The IdP cut off: the first exchange fails to fetch its keys.
    let idp_token = stack.oidc.client_credentials_token("email").await.unwrap();
    let proxy = stack.idp_proxy.as_ref().unwrap();
    proxy.set_mode(FaultMode::Refuse);
    let (status, body) = exchange(&stack, &idp_token, Some("function")).await;
    assert_ne!(status, 200, "{body}");
    proxy.set_mode(FaultMode::Pass);
    // Back: the background retry fetches the keys.
    let fn_token = wait_for(T, "an exchange once the IdP is back", || async {
        let (status, body) = exchange(&stack, &idp_token, Some("function")).await;
        Ok((status == 200).then(|| body["access_token"].as_str().unwrap().to_owned()))
    })
    .await
    .unwrap();
    let (status, body) = exchange(&stack, &idp_token, None).await;
    assert_eq!(status, 200, "{body}");
    let api_token = body["access_token"].as_str().unwrap().to_owned();
    for bad in ["not-a-jwt", "a.b.c"] {
        let (status, _) = exchange(&stack, bad, Some("function")).await;
        assert_eq!(status, 400);
    }

    // Invocations: allowed (twice: a cache hit), no token, a bad token.
    for _ in 0..2 {
        assert_eq!(
            call(&stack, "/function/env.openfaas-fn", Some(&fn_token)).await,
            200
        );
    }
    assert_eq!(call(&stack, "/function/env.openfaas-fn", None).await, 401);
    assert_eq!(
        call(&stack, "/function/env.openfaas-fn", Some("a.b.c")).await,
        401
    );
    // The /system/ API: a Check allowed, and one denied.
    assert_eq!(
        call(
            &stack,
            "/system/functions?namespace=openfaas-fn",
            Some(&api_token)
        )
        .await,
        200
    );
    assert_eq!(call(&stack, "/system/functions", None).await, 401);

    // An IAM change that does not load: the last good one serves, and the
    // alert for it goes off.
    std::fs::write(stack.iam_dir().join("zz-broken.yaml"), "kind: [unclosed\n").unwrap();

    let alerts = alerts();
    for (name, expr) in &alerts {
        let signal = signal_of(name, expr);
        prom.series(&format!("{name}'s signal"), &signal).await;
        prom.query(expr)
            .await
            .unwrap_or_else(|e| panic!("{name}: `{expr}` does not evaluate: {e}"));
    }
    for (title, expr) in dashboard_targets() {
        prom.series(
            &format!("panel {title:?}"),
            &expr.replace("$__rate_interval", RATE_INTERVAL),
        )
        .await;
    }
    prom.series(
        "the rejected IAM change's alert",
        "ALERTS{alertname=\"MeshAuthIamReloadRejected\"}",
    )
    .await;

    // Prometheus's own evaluation of the rules file: every rule loaded and
    // evaluated without error.
    let rules = prom.get_json("/api/v1/rules").await;
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .collect();
    assert_eq!(loaded.len(), alerts.len());
    for r in loaded {
        assert_eq!(r["health"], "ok", "{r}");
    }

    stack.stop().await;
    eprintln!("monitoring: {:?}", started.elapsed());
}

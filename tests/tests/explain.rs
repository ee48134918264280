//! `faas-mesh-auth explain`, `iam check` and `keys`, the built binary,
//! against the real ext-authz binary given the same IAM directory:
//! * a table of subjects and requests covering every condition operator,
//!   AND and OR, an issuer mismatch and audience attenuation, each explained
//!   offline and answered by ext-authz (the exchange at `/oauth/token`, a
//!   real gRPC Check), status and reason compared;
//! * `iam check` and ext-authz's startup on the same bad directories: the
//!   same exit code and the same message;
//! * `keys new` into a running ext-authz's key directory, then `keys jwks`
//!   against its `/.well-known/jwks.json`.
//!
//! The binary: `$CLI_BIN`, else `<repo>/target/debug/faas-mesh-auth`
//! (`cargo build -p faas-mesh-auth`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HttpResponse as Answer};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use mesh_auth_tests::testing::TestKey;
use mesh_auth_tests::{
    ExtAuthz, ExtAuthzOpts, JwksServer, PemKey, cli_bin, ext_authz_bin, wait_until,
};
use serde_json::{Value, json};

const GATEWAY: &str = "https://gateway.example.com";

fn cli(args: &[&str]) -> Output {
    Command::new(cli_bin().unwrap())
        .args(args)
        .output()
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn payload(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

// ---- the IAM objects: one Role per operator, one for AND, one for OR ----

fn iam(iss: &str) -> String {
    let role = |name: &str, policy: &str, cond: &str| {
        format!(
            "---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {{name: {name}}}
spec:
  policy: [{policy}]
  condition:
    StringEqual:
      jwt:iss: [\"{iss}\"]
{cond}"
        )
    };
    let policy = |name: &str, actions: &str, resources: &str| {
        format!(
            "---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {{name: {name}}}
spec:
  statement:
  - sid: {name}
    effect: Allow
    action: {actions}
    resource: {resources}
"
        )
    };
    [
        format!(
            "apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata: {{name: idp}}
spec: {{iss: \"{iss}\", aud: [openfaas], tokenExpiry: 30m}}
"
        ),
        policy("dev", "[\"Function:Invoke\", \"Function:List\", \"Function:Delete\"]", "[\"dev:*\"]"),
        policy("prod-env", "[\"Function:Invoke\"]", "[\"prod:env\"]"),
        policy("admin", "[\"*\"]", "[\"*\"]"),
        role("equal", "dev", "    principal:\n      jwt:sub: [alice]\n"),
        role("ignore-case", "dev", "    StringEqualIgnoreCase:\n      jwt:email: [Bob@Example.COM]\n"),
        role("like", "prod-env", "    StringLike:\n      jwt:repository: [\"org/*\"]\n"),
        role("any-value", "admin", "    ForAnyValue:StringEqual:\n      jwt:groups: [admins]\n"),
        // AND: the principal and a glob on another claim.
        role(
            "and",
            "prod-env",
            "    principal:\n      jwt:sub: [carol]\n    StringLike:\n      jwt:email: [\"*@corp.example.com\"]\n",
        ),
        // OR: the values of one key.
        role("or", "dev", "    principal:\n      jwt:team: [red, blue]\n"),
    ]
    .concat()
}

/// A stand-in IdP: one JSON body is both the discovery document and the
/// JWKS (see tests/tests/exchange.rs).
async fn idp(key: &TestKey) -> (JwksServer, String) {
    let server = JwksServer::start("{}").await.unwrap();
    let iss = format!("http://{}", server.addr());
    server.set_body(
        json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"), "keys": [key.jwk()]}).to_string(),
    );
    (server, iss)
}

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

/// ext-authz's answer: (status, reason, the exchanged token if any).
#[derive(Debug, Clone, PartialEq)]
struct Real {
    status: u16,
    reason: String,
    token: Option<String>,
}

async fn exchange(authz: &ExtAuthz, token: &str, function: Option<&str>) -> Real {
    let mut fields = vec![
        ("grant_type", GRANT),
        ("subject_token", token),
        ("subject_token_type", ID_TOKEN),
    ];
    if let Some(f) = function {
        fields.push(("scope", "function"));
        fields.push(("audience", f));
    }
    let resp = authz.token_request(&fields).await.unwrap();
    let body = resp.json().unwrap();
    match resp.status {
        200 => Real {
            status: 200,
            reason: "ok".into(),
            token: body["access_token"].as_str().map(str::to_owned),
        },
        s => Real {
            status: s,
            reason: body["error"].as_str().unwrap().to_owned(),
            token: None,
        },
    }
}

async fn check(authz: &ExtAuthz, token: &str, method: &str, path: &str, body: &str) -> Real {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", authz.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut headers = HashMap::new();
    headers.insert("authorization".to_owned(), format!("Bearer {token}"));
    headers.insert("content-length".to_owned(), body.len().to_string());
    let req = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    protocol: "HTTP/1.1".into(),
                    headers,
                    raw_body: body.as_bytes().to_vec(),
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    };
    let resp: CheckResponse = AuthorizationClient::new(channel)
        .check(req)
        .await
        .unwrap()
        .into_inner();
    match resp.http_response {
        Some(Answer::DeniedResponse(d)) => Real {
            status: u16::try_from(d.status.unwrap().code).unwrap(),
            reason: resp.status.unwrap().message,
            token: None,
        },
        Some(Answer::OkResponse(_)) => Real {
            status: 200,
            reason: "ok".into(),
            token: None,
        },
        other => panic!("not an allow or a denial: {other:?}"),
    }
}

/// `explain --json`, its decision as (status, reason or OAuth error).
fn explain(iam_dir: &Path, token: &str, target: &[&str]) -> (Real, Value) {
    let dir = iam_dir.to_str().unwrap();
    let mut args = vec![
        "explain",
        "--json",
        "--iam-dir",
        dir,
        "--issuer",
        GATEWAY,
        "--token",
        token,
    ];
    args.extend_from_slice(target);
    let out = cli(&args);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let d = &report["decision"];
    let allowed = d["allowed"].as_bool().unwrap();
    assert_eq!(
        out.status.code(),
        Some(if allowed { 0 } else { 1 }),
        "{report:#}"
    );
    let reason = d["error"]
        .as_str()
        .or(d["reason"].as_str())
        .unwrap()
        .to_owned();
    let real = Real {
        status: u16::try_from(d["status"].as_u64().unwrap()).unwrap(),
        reason,
        token: None,
    };
    (real, report)
}

/// What the row asks.
#[derive(Debug, Clone, Copy)]
enum Ask {
    /// The exchange, `scope=function&audience=F`.
    Function(&'static str),
    /// The exchange for an API token, then a Check of this request with it.
    Request(&'static str, &'static str, &'static str),
}

struct Case {
    name: &'static str,
    claims: Value,
    ask: Ask,
    /// The status both must give: the table says what it tests.
    status: u16,
}

fn cases(iss: &str) -> Vec<Case> {
    let c = |extra: Value| {
        let mut m = json!({"iss": iss, "aud": "openfaas", "exp": now() + 600, "iat": now()});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    use Ask::*;
    vec![
        Case {
            name: "StringEqual (principal) matches",
            claims: c(json!({"sub": "alice"})),
            ask: Function("dev:env"),
            status: 200,
        },
        Case {
            name: "StringEqual: outside the policy",
            claims: c(json!({"sub": "alice"})),
            ask: Function("prod:env"),
            status: 400,
        },
        Case {
            name: "StringEqual fails",
            claims: c(json!({"sub": "mallory"})),
            ask: Function("dev:env"),
            status: 400,
        },
        Case {
            name: "StringEqualIgnoreCase matches",
            claims: c(json!({"sub": "b", "email": "bob@example.com"})),
            ask: Function("dev:env"),
            status: 200,
        },
        Case {
            name: "StringEqualIgnoreCase fails",
            claims: c(json!({"sub": "b", "email": "bob@example.org"})),
            ask: Function("dev:env"),
            status: 400,
        },
        Case {
            name: "StringLike matches",
            claims: c(json!({"sub": "ci", "repository": "org/app"})),
            ask: Function("prod:env"),
            status: 200,
        },
        Case {
            name: "StringLike fails",
            claims: c(json!({"sub": "ci", "repository": "other/app"})),
            ask: Function("prod:env"),
            status: 400,
        },
        Case {
            name: "ForAnyValue:StringEqual matches",
            claims: c(json!({"sub": "root", "groups": ["x", "admins"]})),
            ask: Request("GET", "/system/functions?namespace=prod", ""),
            status: 200,
        },
        Case {
            name: "ForAnyValue:StringEqual fails",
            claims: c(json!({"sub": "root", "groups": ["x"]})),
            ask: Request("GET", "/system/functions?namespace=prod", ""),
            status: 400,
        },
        Case {
            name: "AND: both hold",
            claims: c(json!({"sub": "carol", "email": "carol@corp.example.com"})),
            ask: Function("prod:env"),
            status: 200,
        },
        Case {
            name: "AND: one fails",
            claims: c(json!({"sub": "carol", "email": "carol@home.example.com"})),
            ask: Function("prod:env"),
            status: 400,
        },
        Case {
            name: "OR: the second value",
            claims: c(json!({"sub": "t", "team": "blue"})),
            ask: Function("dev:fn"),
            status: 200,
        },
        Case {
            name: "OR: neither value",
            claims: c(json!({"sub": "t", "team": "green"})),
            ask: Function("dev:fn"),
            status: 400,
        },
        Case {
            name: "issuer mismatch (trailing slash)",
            claims: {
                let mut m = c(json!({"sub": "alice"}));
                m["iss"] = json!(format!("{iss}/"));
                m
            },
            ask: Function("dev:env"),
            status: 400,
        },
        Case {
            name: "expired subject",
            claims: {
                let mut m = c(json!({"sub": "alice"}));
                m["exp"] = json!(now() - 3600);
                m
            },
            ask: Function("dev:env"),
            status: 400,
        },
        Case {
            name: "API: list in the namespace",
            claims: c(json!({"sub": "alice"})),
            ask: Request("GET", "/system/functions?namespace=dev", ""),
            status: 200,
        },
        Case {
            name: "API: list elsewhere",
            claims: c(json!({"sub": "alice"})),
            ask: Request("GET", "/system/functions?namespace=prod", ""),
            status: 403,
        },
        Case {
            name: "API: delete with the namespace in the body",
            claims: c(json!({"sub": "alice"})),
            ask: Request(
                "DELETE",
                "/system/functions",
                r#"{"functionName":"env","namespace":"dev"}"#,
            ),
            status: 200,
        },
    ]
}

#[tokio::test]
async fn explain_agrees_with_ext_authz() {
    let key = TestKey::generate();
    let (_idp, iss) = idp(&key).await;
    let authz = ExtAuthz::start(ExtAuthzOpts::new(GATEWAY).iam("iam.yaml", iam(&iss)))
        .await
        .unwrap();
    let dir = authz.iam_dir().to_owned();

    for case in cases(&iss) {
        let token = key.sign(&case.claims);
        let (real, offline) = match case.ask {
            Ask::Function(f) => {
                let real = exchange(&authz, &token, Some(f)).await;
                let (offline, report) = explain(&dir, &token, &["--function", f]);
                if let Some(t) = &real.token {
                    // The grant too: permissions and the attenuating audience.
                    let function = &payload(t)["function"];
                    assert_eq!(
                        report["function_token"], *function,
                        "{}: {report:#}",
                        case.name
                    );
                }
                (real, offline)
            }
            Ask::Request(method, path, body) => {
                let api = exchange(&authz, &token, None).await;
                let real = match &api.token {
                    Some(t) => check(&authz, t, method, path, body).await,
                    None => api,
                };
                let request = format!("{method} {path}");
                let mut target = vec!["--request", request.as_str()];
                if !body.is_empty() {
                    target.extend(["--body", body]);
                }
                (real, explain(&dir, &token, &target).0)
            }
        };
        assert_eq!(
            real.status, case.status,
            "{}: ext-authz gave {real:?}",
            case.name
        );
        assert_eq!(
            (offline.status, &offline.reason),
            (real.status, &real.reason),
            "{}",
            case.name
        );
        // Bare claims explain the same as the signed token.
        let claims = case.claims.to_string();
        if let Ask::Function(f) = case.ask {
            let out = cli(&[
                "explain",
                "--json",
                "--iam-dir",
                dir.to_str().unwrap(),
                "--issuer",
                GATEWAY,
                "--claims",
                &claims,
                "--function",
                f,
            ]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                v["decision"]["status"], case.status,
                "{}: --claims",
                case.name
            );
        }
    }

    // Audience attenuation: a function token narrowed to dev:env, presented
    // to the Check (the filter's rule) for two functions in its permissions.
    let alice =
        key.sign(&json!({"iss": iss, "aud": "openfaas", "exp": now() + 600, "sub": "alice"}));
    let narrowed = exchange(&authz, &alice, Some("dev:env"))
        .await
        .token
        .unwrap();
    for (function, path, status) in [
        ("dev:env", "/function/env.dev", 200),
        ("dev:other", "/function/other.dev", 403),
    ] {
        let real = check(&authz, &narrowed, "POST", path, "").await;
        let (offline, report) = explain(&dir, &narrowed, &["--function", function]);
        assert_eq!(real.status, status, "{function}: {real:?}");
        assert_eq!(
            (offline.status, &offline.reason),
            (real.status, &real.reason),
            "{function}: {report:#}"
        );
        let (offline, _) = explain(&dir, &narrowed, &["--request", &format!("POST {path}")]);
        assert_eq!(
            (offline.status, &offline.reason),
            (real.status, &real.reason),
            "{function} via --request"
        );
    }

    // One of our API tokens, given as it is.
    let api = exchange(&authz, &alice, None).await.token.unwrap();
    for (method, path) in [
        ("GET", "/system/functions?namespace=dev"),
        ("GET", "/system/info"),
        ("GET", "/system/functions?namespace=a&namespace=b"),
    ] {
        let real = check(&authz, &api, method, path, "").await;
        let (offline, _) = explain(&dir, &api, &["--request", &format!("{method} {path}")]);
        assert_eq!(
            (offline.status, &offline.reason),
            (real.status, &real.reason),
            "{method} {path}"
        );
    }
    // The same API token as the subject of an exchange (faas-cli invoke).
    for (function, status) in [("dev:env", 200), ("prod:env", 400)] {
        let real = exchange(&authz, &api, Some(function)).await;
        let (offline, report) = explain(&dir, &api, &["--function", function]);
        assert_eq!(real.status, status, "API token for {function}: {real:?}");
        assert_eq!(
            (offline.status, &offline.reason),
            (real.status, &real.reason),
            "API token for {function}: {report:#}"
        );
    }

    // The human form of a denial names the failing condition.
    let mallory =
        key.sign(&json!({"iss": iss, "aud": "openfaas", "exp": now() + 600, "sub": "mallory"}));
    let out = cli(&[
        "explain",
        "--iam-dir",
        dir.to_str().unwrap(),
        "--token",
        &mallory,
        "--function",
        "dev:env",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("- jwt:sub StringEqual [\"alice\"]: the token has \"mallory\""),
        "{text}"
    );
    assert!(text.contains("signature is NOT checked"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

// ---- iam check: the same verdict and words as ext-authz's startup ----

/// ext-authz started on `iam_dir`: it must exit at once.
fn ext_authz_refuses(iam_dir: &Path, key_dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(ext_authz_bin().unwrap())
        .args([
            "--issuer",
            GATEWAY,
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ])
        .arg("--iam-dir")
        .arg(iam_dir)
        .arg("--signing-key-dir")
        .arg(key_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr
        .split_once("\next-authz: ")
        .or_else(|| stderr.split_once("ext-authz: "))
        .map(|(_, m)| m.trim_end().to_owned());
    (
        out.status.code(),
        msg.unwrap_or_else(|| panic!("no message: {stderr}")),
    )
}

#[test]
fn iam_check_matches_ext_authz_startup() {
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(
        keys.path().join("0001.pem"),
        PemKey::generate().unwrap().pem,
    )
    .unwrap();
    let good = iam("https://idp.example.com");
    // (case, files: (name, contents)); no files: no directory at all.
    type Files = Vec<(&'static str, Vec<u8>)>;
    let cases: Vec<(&str, Files)> = vec![
        ("bad YAML", vec![("a.yaml", b"kind: [unclosed".to_vec())]),
        (
            "unknown field",
            vec![(
                "a.yaml",
                good.replace("tokenExpiry: 30m", "tokenExpiry: 30m, audience: [x]")
                    .into_bytes(),
            )],
        ),
        (
            "a Role naming a missing Policy",
            vec![(
                "a.yaml",
                good.replace("policy: [dev]", "policy: [nope]").into_bytes(),
            )],
        ),
        (
            "unknown operator",
            vec![(
                "a.yaml",
                good.replace("StringLike:", "StringLikes:").into_bytes(),
            )],
        ),
        (
            "not UTF-8",
            vec![
                ("a.yaml", good.clone().into_bytes()),
                ("b.yaml", vec![0xff, 0xfe]),
            ],
        ),
        ("a missing directory", vec![]),
    ];
    for (name, files) in cases {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("iam");
        if !files.is_empty() {
            std::fs::create_dir(&dir).unwrap();
        }
        for (file, bytes) in &files {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        let (code, theirs) = ext_authz_refuses(&dir, keys.path());
        let out = cli(&["iam", "check", dir.to_str().unwrap()]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        let ours = stderr
            .strip_prefix("faas-mesh-auth: ")
            .unwrap_or(&stderr)
            .trim_end();
        assert_eq!(code, Some(64), "{name}: ext-authz");
        assert_eq!(out.status.code(), Some(64), "{name}: {stderr}");
        assert_eq!(ours, theirs, "{name}");
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("iam.yaml"), good).unwrap();
    let out = cli(&["iam", "check", root.path().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- keys: what a running ext-authz publishes ----

#[tokio::test]
async fn keys_new_and_jwks_match_a_running_ext_authz() {
    let authz =
        ExtAuthz::start(ExtAuthzOpts::new(GATEWAY).iam("iam.yaml", iam("https://idp.example.com")))
            .await
            .unwrap();
    let dir = authz.key_dir().to_str().unwrap().to_owned();
    let out = cli(&["keys", "new", &dir]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Published at once (ext-authz reloads every 100 ms here), not signing.
    wait_until(Duration::from_secs(10), "the new key published", || async {
        authz.published_kids().await.is_ok_and(|k| k.len() == 2)
    })
    .await
    .unwrap();
    let out = cli(&["keys", "jwks", &dir]);
    assert_eq!(out.status.code(), Some(0));
    let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours, authz.jwks().await.unwrap());
    assert_eq!(
        ours["keys"][0]["kid"],
        authz.keys()[0].1.kid(),
        "the old key still signs"
    );
}

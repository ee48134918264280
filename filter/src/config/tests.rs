use mesh_auth_core::testing::{TestKey, jwks};
use serde_json::json;

use super::*;

fn node(ns: Option<&str>, f: Option<&str>) -> NodeIdentity {
    NodeIdentity {
        namespace: ns.map(str::to_owned),
        function: f.map(str::to_owned),
    }
}

fn remote_cfg() -> serde_json::Value {
    json!({
        "issuer": "https://gw.example.com",
        "jwks": {"cluster": "outbound|8080||ext-authz.openfaas.svc.cluster.local"},
        "function": {"name": "env", "namespace": "openfaas-fn"}
    })
}

fn compile_json(v: &serde_json::Value, n: &NodeIdentity) -> Result<Compiled, ConfigError> {
    compile(v.to_string().as_bytes(), n)
}

#[test]
fn design_md_example_compiles() {
    let key = TestKey::generate();
    let cfg = json!({
      "issuer": "https://gateway.example.com",
      "audience": "https://gateway.example.com",
      "jwks": {
        "cluster": "outbound|8080||ext-authz.openfaas.svc.cluster.local",
        "authority": "ext-authz.openfaas",
        "path": "/.well-known/jwks.json",
        "refresh_seconds": 300
      },
      "function": {"name": "env", "namespace": "openfaas-fn"},
      "clock_skew_seconds": 30,
      "mode": "enforce",
      "exempt_paths": ["/_/health", "/_/ready"]
    });
    let c = compile_json(&cfg, &NodeIdentity::default()).unwrap();
    assert_eq!(c.mode, Mode::Enforce);
    let (id, src) = c.function.clone().unwrap();
    assert_eq!(
        (id.as_str(), src),
        ("openfaas-fn:env", IdentitySource::Config)
    );
    match &c.keys {
        KeySource::Remote(r) => {
            assert_eq!(r.authority, "ext-authz.openfaas");
            assert_eq!(r.refresh_ms, 300_000);
        }
        KeySource::Local(_) => panic!("expected remote"),
    }
    assert!(c.is_exempt("/_/health"));
    assert!(c.is_exempt("/_/ready?verbose=1"));
    assert!(!c.is_exempt("/_/health/../admin"));
    assert!(!c.is_exempt("/"));

    let local = json!({"issuer": "https://gw", "local_jwks": jwks(&[&key])});
    let c = compile_json(&local, &node(Some("dev"), Some("env"))).unwrap();
    assert!(matches!(&c.keys, KeySource::Local(s) if s.len() == 1));
    let inline = json!({"issuer": "https://gw", "local_jwks": {"keys": [key.jwk()]}});
    assert!(compile_json(&inline, &node(Some("dev"), Some("env"))).is_ok());
}

#[test]
fn defaults() {
    let c = compile_json(&remote_cfg(), &NodeIdentity::default()).unwrap();
    assert_eq!(c.validation.leeway_seconds(), 30);
    assert_eq!(c.mode, Mode::Enforce);
    assert_eq!(c.cache_entries, 1024);
    assert_eq!(
        c.exempt,
        vec![
            ExemptPath::Exact("/_/health".into()),
            ExemptPath::Exact("/_/ready".into())
        ]
    );
    match &c.keys {
        KeySource::Remote(r) => {
            // Istio's cluster name carries the host: it becomes the authority.
            assert_eq!(r.authority, "ext-authz.openfaas.svc.cluster.local");
            assert_eq!(r.path, "/.well-known/jwks.json");
            assert_eq!(r.timeout_ms, 5_000);
            assert_eq!(r.min_refetch_ms, 10_000);
        }
        KeySource::Local(_) => panic!(),
    }
}

#[test]
fn function_namespace_defaults_to_openfaas_fn() {
    let mut cfg = remote_cfg();
    cfg["function"] = json!({"name": "figlet"});
    let c = compile_json(&cfg, &NodeIdentity::default()).unwrap();
    assert_eq!(c.function.unwrap().0.as_str(), "openfaas-fn:figlet");
}

#[test]
fn identity_from_node_metadata_or_fail_closed() {
    let mut cfg = remote_cfg();
    cfg.as_object_mut().unwrap().remove("function");
    let c = compile_json(&cfg, &node(Some("dev"), Some("env"))).unwrap();
    let (id, src) = c.function.unwrap();
    assert_eq!(
        (id.as_str(), src),
        ("dev:env", IdentitySource::NodeMetadata)
    );
    let c = compile_json(&cfg, &node(Some("dev"), None)).unwrap();
    assert_eq!(c.function.unwrap_err(), IdentityUnavailable::NotFound);
    let c = compile_json(&cfg, &node(Some("dev"), Some("Bad Name"))).unwrap();
    assert!(matches!(c.function, Err(IdentityUnavailable::Invalid(_))));
    // The config wins over metadata.
    cfg["function"] = json!({"name": "env", "namespace": "openfaas-fn"});
    let c = compile_json(&cfg, &node(Some("dev"), Some("other"))).unwrap();
    assert_eq!(c.function.unwrap().0.as_str(), "openfaas-fn:env");
}

#[test]
fn audit_mode_and_prefix_exemptions() {
    let mut cfg = remote_cfg();
    cfg["mode"] = json!("audit");
    cfg["exempt_paths"] = json!(["/metrics", "/public/*"]);
    let c = compile_json(&cfg, &NodeIdentity::default()).unwrap();
    assert_eq!(c.mode, Mode::Audit);
    assert!(c.is_exempt("/public/a/b"));
    assert!(c.is_exempt("/metrics"));
    assert!(
        !c.is_exempt("/_/health"),
        "explicit list replaces the default"
    );
    assert!(!c.is_exempt("/publicity"));
}

#[test]
fn audience_list_and_issuer_fallback() {
    let mut cfg = remote_cfg();
    cfg["audience"] = json!(["https://a", "https://b"]);
    assert!(compile_json(&cfg, &NodeIdentity::default()).is_ok());
}

#[test]
fn bad_configs_are_refused_with_the_field() {
    let key = TestKey::generate();
    let base = remote_cfg();
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!({}), "issuer"),
        (with("issuer", json!("")), "issuer"),
        (with("issuer", json!(42)), "invalid type"),
        (with("audience", json!([])), "audience"),
        (with("audience", json!([""])), "audience"),
        (with("mode", json!("permissive")), "unknown variant"),
        (with("crypto", json!("boringssl")), "unknown variant"),
        (
            with("exempt_path", json!(["/x"])),
            "unknown field `exempt_path`",
        ),
        (with("exempt_paths", json!(["health"])), "exempt_paths"),
        (
            with("clock_skew_seconds", json!(100_000)),
            "clock_skew_seconds",
        ),
        (with("clock_skew_seconds", json!(-1)), "invalid value"),
        (with("max_token_bytes", json!(10)), "max_token_bytes"),
        (
            with("cache", json!({"max_entries": 10_000_000})),
            "cache.max_entries",
        ),
        (with("cache", json!({"size": 1})), "unknown field `size`"),
        (with("function", json!({"name": "Env"})), "function"),
        (
            with("function", json!({"namespace": "dev"})),
            "missing field `name`",
        ),
        (with("local_jwks", json!(jwks(&[&key]))), "exactly one"),
        (with("jwks", json!({"cluster": ""})), "jwks.cluster"),
        (
            with("jwks", json!({"cluster": "c", "path": "x"})),
            "jwks.path",
        ),
        (
            with("jwks", json!({"cluster": "c", "refresh_seconds": 0})),
            "jwks.refresh_seconds",
        ),
        (
            with("jwks", json!({"cluster": "c", "timeout_ms": 5})),
            "jwks.timeout_ms",
        ),
        (
            with("jwks", json!({"cluster": "c", "authority": " "})),
            "jwks.authority",
        ),
        (
            with("jwks", json!({"cluster": "c", "refrsh_seconds": 5})),
            "unknown field",
        ),
        (json!({"issuer": "https://gw"}), "exactly one"),
        (
            json!({"issuer": "https://gw", "local_jwks": "{\"keys\": []}"}),
            "local_jwks",
        ),
        (
            json!({"issuer": "https://gw", "local_jwks": "not json"}),
            "local_jwks",
        ),
    ];
    for (cfg, needle) in cases {
        let err = compile_json(&cfg, &NodeIdentity::default())
            .err()
            .unwrap_or_else(|| panic!("accepted: {cfg}"));
        let msg = err.to_string();
        assert!(msg.contains(needle), "{cfg}: {msg:?} lacks {needle:?}");
    }
    assert!(matches!(
        compile(b"", &NodeIdentity::default()),
        Err(ConfigError::Empty)
    ));
    assert!(matches!(
        compile(b"{", &NodeIdentity::default()),
        Err(ConfigError::Syntax(_))
    ));
    assert!(matches!(
        compile(&[0xff, 0xfe], &NodeIdentity::default()),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn shared_prefix_distinguishes_sources() {
    let a = compile_json(&remote_cfg(), &NodeIdentity::default()).unwrap();
    let mut other = remote_cfg();
    other["jwks"]["path"] = json!("/other/jwks.json");
    let b = compile_json(&other, &NodeIdentity::default()).unwrap();
    let prefix = |c: &Compiled| match &c.keys {
        KeySource::Remote(r) => r.shared_key_prefix(),
        KeySource::Local(_) => String::new(),
    };
    assert_ne!(prefix(&a), prefix(&b));
}

#[test]
fn only_plain_paths_are_exempt() {
    // `/public/../admin` starts with `/public/`, and upstream it is /admin.
    let mut cfg = remote_cfg();
    cfg["exempt_paths"] = json!(["/public/*", "/_/health"]);
    let c = compile_json(&cfg, &NodeIdentity::default()).unwrap();
    assert!(c.is_exempt("/public/a/b?x=../y"));
    assert!(c.is_exempt("/public/"));
    assert!(c.is_exempt("/public/a%20b"));
    for sneaky in [
        "/public/../admin",
        "/public/./x",
        "/public/..",
        "/public//admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/..%2fadmin",
        "/public/%2fadmin",
        "/public/..%5cadmin",
        "/public\\..\\admin",
        "/public/%252e%252e/admin",
        "/_/health/",
        "//_/health",
        "public/x",
    ] {
        assert!(!c.is_exempt(sneaky), "{sneaky}");
    }
}

#[test]
fn exempt_paths_must_be_plain() {
    for bad in [
        "/a/../b", "/a//b", "/a/%2e/b", "/a?x", "/a*b*", "a/b", "/a\\b",
    ] {
        let mut cfg = remote_cfg();
        cfg["exempt_paths"] = json!(["/ok", bad]);
        let e = compile_json(&cfg, &NodeIdentity::default()).unwrap_err();
        assert!(e.to_string().contains("exempt_paths\"[1]"), "{bad}: {e}");
    }
}

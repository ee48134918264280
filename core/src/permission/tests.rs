use super::*;

fn id(ns: &str, name: &str) -> FunctionId {
    FunctionId::new(ns, name).unwrap()
}

#[test]
fn identity_is_namespace_colon_name() {
    assert_eq!(id("openfaas-fn", "env").as_str(), "openfaas-fn:env");
    assert_eq!(id("dev", "env").to_string(), "dev:env");
}

#[test]
fn identity_parts_must_be_dns_labels() {
    assert!(FunctionId::new("", "env").is_err());
    assert!(FunctionId::new("dev", "").is_err());
    assert!(FunctionId::new("dev:x", "env").is_err());
    assert!(FunctionId::new("dev", "e*").is_err());
    assert!(FunctionId::new("Dev", "env").is_err());
    assert!(FunctionId::new("dev", "-env").is_err());
    assert!(FunctionId::new("dev", &"a".repeat(64)).is_err());
}

#[test]
fn patterns_from_the_docs() {
    let (env, env2, dev_env) = (
        id("openfaas-fn", "env"),
        id("openfaas-fn", "env2"),
        id("dev", "env"),
    );
    let all = PermissionPattern::new("*");
    assert!(all.matches(&env) && all.matches(&dev_env));
    let ns = PermissionPattern::new("openfaas-fn:*");
    assert!(ns.matches(&env) && ns.matches(&env2) && !ns.matches(&dev_env));
    let name = PermissionPattern::new("*:env");
    assert!(name.matches(&env) && name.matches(&dev_env) && !name.matches(&env2));
    let exact = PermissionPattern::new("openfaas-fn:env");
    assert!(exact.matches(&env));
    // The upstream unanchored-regex bug: env must not grant env2.
    assert!(!exact.matches(&env2));
    assert!(!PermissionPattern::new("dev:env").matches(&env));
}

#[test]
fn regex_syntax_grants_nothing() {
    let env = id("openfaas-fn", "env");
    for p in [
        "openfaas-fn:.*",
        ".*",
        "openfaas-fn:env|dev:env",
        "openfaas-fn:e[n]v",
        "",
    ] {
        assert!(!PermissionPattern::new(p).matches(&env), "{p}");
    }
}

#[test]
fn gateway_paths() {
    let p = |s| FunctionId::from_gateway_path(s, DEFAULT_NAMESPACE);
    assert_eq!(p("/function/env").unwrap(), id("openfaas-fn", "env"));
    assert_eq!(p("/function/env.dev").unwrap(), id("dev", "env"));
    assert_eq!(
        p("/function/env.dev/sub/path?x=1").unwrap(),
        id("dev", "env")
    );
    assert_eq!(p("/function/env?x=1").unwrap(), id("openfaas-fn", "env"));
    assert_eq!(
        p("/async-function/env.openfaas-fn").unwrap(),
        id("openfaas-fn", "env")
    );
    assert!(p("/function/").is_err());
    assert!(p("/function/.dev").is_err());
    assert!(p("/function/env.").is_err());
    assert!(p("/functions/env").is_err());
    assert!(p("/system/functions").is_err());
    assert!(p("/function/env.dev.extra").is_err());
}

#[test]
fn covers_keeps_audiences_inside_permissions() {
    let c = |w: &str, n: &str| PermissionPattern::new(w).covers(&PermissionPattern::new(n));
    assert!(c("*", "dev:*"));
    assert!(c("*", "openfaas-fn:env"));
    assert!(c("openfaas-fn:*", "openfaas-fn:env"));
    assert!(c("openfaas-fn:*", "openfaas-fn:*"));
    assert!(c("openfaas-fn:*", "openfaas-fn:e*"));
    assert!(c("*:env", "dev:env"));
    assert!(!c("openfaas-fn:*", "dev:env"));
    assert!(!c("openfaas-fn:env", "openfaas-fn:*"));
    assert!(!c("openfaas-fn:env", "openfaas-fn:env2"));
    assert!(!c("*:env", "dev:*"));
    assert!(!c("dev:*", "*"));
}

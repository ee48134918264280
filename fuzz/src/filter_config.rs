//! The filter's plugin configuration (`filter/src/config.rs` `compile`):
//! the JSON of `WasmPlugin.spec.pluginConfig`, with the node metadata
//! Envoy gives the VM.
//!
//! Input: a byte choosing the node metadata (none, a valid function, an
//! invalid one), then the configuration.
//!
//! Properties of every accepted configuration:
//! * the bounds the filter promises hold: clock skew, token cap, cache
//!   size, JWKS timings, a non-empty cluster, authority and `/` path;
//! * local keys are a non-empty set, the same `KeySet::from_jwks_json`
//!   gives;
//! * the function's identity is `namespace:name` of two DNS labels, from
//!   the config when it names one, else from the node metadata;
//! * each exempt path starts with `/`, and is exempt itself (an exact one,
//!   or a prefix's own text), also with a query appended.

use mesh_auth_core::FunctionId;
use mesh_auth_core::jwks::KeySet;

use crate::filter::config::{
    ExemptPath, IdentitySource, IdentityUnavailable, KeySource, NodeIdentity, compile,
};

pub fn filter_config(data: &[u8]) {
    let [pick, raw @ ..] = data else {
        return;
    };
    let node = match pick % 3 {
        0 => NodeIdentity::default(),
        1 => NodeIdentity {
            namespace: Some("openfaas-fn".into()),
            function: Some("env".into()),
        },
        _ => NodeIdentity {
            namespace: Some("Bad_NS".into()),
            function: Some("env".into()),
        },
    };
    let Ok(c) = compile(raw, &node) else {
        return;
    };
    assert!(c.validation.leeway_seconds() <= 600);
    assert!((64..=64 * 1024).contains(&c.validation.max_token_bytes()));
    assert!(c.cache_entries <= 100_000);
    let config: serde_json::Value = serde_json::from_slice(raw).expect("accepted config is JSON");
    match &c.keys {
        KeySource::Local(set) => {
            assert!(!set.is_empty());
            let text = match &config["local_jwks"] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let (direct, _) = KeySet::from_jwks_json(text.as_bytes()).expect("the same JWKS");
            assert_eq!(direct.kids(), set.kids());
        }
        KeySource::Remote(r) => {
            assert!(!r.cluster.trim().is_empty());
            assert!(!r.authority.trim().is_empty());
            assert!(r.path.starts_with('/'));
            assert!((1_000..=86_400_000).contains(&r.refresh_ms));
            assert!((100..=60_000).contains(&r.timeout_ms));
            assert!(r.min_refetch_ms <= 3_600_000);
            assert!((1_000..=3_600_000).contains(&r.retry_ms));
            assert!(r.shared_key_prefix().starts_with("faas-mesh-auth/v1/"));
        }
    }
    let from_config = config.get("function").is_some_and(|f| !f.is_null());
    match &c.function {
        Ok((id, source)) => {
            assert_eq!(FunctionId::new(id.namespace(), id.name()).as_ref(), Ok(id));
            assert_eq!(id.as_str(), format!("{}:{}", id.namespace(), id.name()));
            assert_eq!(*source == IdentitySource::Config, from_config);
            if !from_config {
                assert_eq!(id.as_str(), "openfaas-fn:env");
            }
        }
        Err(IdentityUnavailable::NotFound) => {
            assert!(!from_config && node.namespace.is_none())
        }
        Err(IdentityUnavailable::Invalid(_)) => assert!(!from_config),
    }
    for e in &c.exempt {
        let p = match e {
            ExemptPath::Exact(p) | ExemptPath::Prefix(p) => p,
        };
        assert!(p.starts_with('/'));
        if !p.contains(['?', '#']) {
            assert!(c.is_exempt(p), "{p:?} is not exempt from itself");
            assert!(c.is_exempt(&format!("{p}?q=1")));
        }
    }
}

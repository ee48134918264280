//! The Envoys under test: one listener, one route answered by Envoy itself,
//! and the HTTP filter chain of the row in front of it.
//!
//! ```text
//! listener "bench" 127.0.0.1:0 ─ HCM (max_request_headers_kb: 128)
//!   [the row's filters] ─ router ─ route "/" ─ direct_response 200 "ok"
//! ```
//!
//! The upstream is Envoy's own `direct_response`: no third process competes
//! for a core, and a row's cost is its filters' cost. The filters run in
//! full before the router answers, exactly as they would before proxying.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use mesh_auth_tests::{Envoy, EnvoyBuilder};
use serde_json::{Value, json};

pub const LISTENER: &str = "bench";

/// A bootstrap whose listener runs `filters` then answers 200 itself.
/// `clusters` are extra upstream clusters (ext-authz's gRPC).
pub fn bootstrap(filters: Vec<Value>, clusters: Vec<Value>) -> Result<String> {
    let mut http_filters = filters;
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let doc = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": LISTENER,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": LISTENER,
                        "codec_type": "AUTO",
                        // Room for the largest token the filter accepts, and
                        // `_` refused in header names, as in the project's
                        // own Envoy configs.
                        "max_request_headers_kb": 128,
                        "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
                        "route_config": {
                            "name": "local",
                            "virtual_hosts": [{
                                "name": "all",
                                "domains": ["*"],
                                "routes": [{
                                    "match": {"prefix": "/"},
                                    "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
                                }],
                            }],
                        },
                        "http_filters": http_filters,
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    });
    Ok(serde_yaml::to_string(&doc)?)
}

/// Envoy's own JWT filter, with `local_jwks`, requiring a token on every
/// path and forwarding it, as our filter does by default (which forwards
/// the caller's `sub` only with `forward_subject`). `cache`:
/// `jwt_cache_config` (verified tokens remembered, by the token string), as
/// large as our filter's default cache.
pub fn jwt_authn(issuer: &str, jwks: &str, cache: bool) -> Value {
    let mut provider = json!({
        "issuer": issuer,
        "audiences": [issuer],
        "local_jwks": {"inline_string": jwks},
        "forward": true,
    });
    if cache && let Some(p) = provider.as_object_mut() {
        p.insert("jwt_cache_config".into(), json!({"jwt_cache_size": 1024}));
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"mesh": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "mesh"}}],
        },
    })
}

/// A proxy-wasm filter on V8, as the project's configs load ours.
pub fn wasm(name: &str, file: &Path, configuration: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": "",
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": file.to_string_lossy()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
                "fail_open": false,
            },
        },
    })
}

/// Our filter's plugin configuration for the bench: keys inline (no fetch),
/// the function identity given, anything else from `extra`.
pub fn plugin_config(issuer: &str, jwks: &str, function: (&str, &str), extra: Value) -> String {
    let mut cfg = json!({
        "issuer": issuer,
        "local_jwks": jwks,
        "function": {"namespace": function.0, "name": function.1},
    });
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    cfg.to_string()
}

/// `envoy.filters.http.ext_authz` to ext-authz's gRPC service, configured
/// as `envoy/gateway.yaml` configures the gateway.
pub fn ext_authz_filter(cluster: &str) -> Value {
    json!({
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "grpc_service": {"envoy_grpc": {"cluster_name": cluster}, "timeout": "2s"},
            "failure_mode_allow": false,
            "with_request_body": {
                "max_request_bytes": 1_048_576,
                "allow_partial_message": false,
                "pack_as_bytes": true,
            },
        },
    })
}

/// An HTTP/2 (gRPC) cluster to 127.0.0.1:`port`.
pub fn grpc_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}],
        },
    })
}

/// Envoy pinned to one core: a wrapper that `exec`s `taskset -c CPU envoy`,
/// so the pid the harness holds is Envoy's own, and every thread Envoy
/// starts inherits the mask.
pub struct Pinned {
    wrapper: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pinned {
    pub fn new(envoy: &Path, cpu: usize) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("bench-envoy-").tempdir()?;
        let wrapper = dir.path().join("envoy-pinned");
        let script = format!(
            "#!/bin/sh\nexec taskset -c {cpu} '{}' \"$@\"\n",
            envoy.display().to_string().replace('\'', r"'\''")
        );
        std::fs::write(&wrapper, script)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Pinned { wrapper, _dir: dir })
    }

    /// `--concurrency 1`, warnings only (Istio's default proxy log level:
    /// the filter's info lines are dropped, as in production).
    pub fn builder(&self, bootstrap: String) -> EnvoyBuilder {
        Envoy::builder(bootstrap)
            .binary(&self.wrapper)
            .concurrency(1)
            .log_level("warning")
            .component_log_level("")
    }

    pub async fn start(&self, what: &str, bootstrap: String) -> Result<Envoy> {
        self.builder(bootstrap)
            .start()
            .await
            .with_context(|| format!("starting the Envoy for {what}"))
    }
}

//! The Envoys under test: the harness's sidecar bootstrap with its route
//! answered by Envoy itself, the row's HTTP filters in front of it, and
//! Envoy pinned to one core.
//!
//! The upstream is Envoy's own `direct_response`: no third process competes
//! for a core, and a row's cost is its filters' cost. The filters run in
//! full before the router answers, exactly as they would before proxying.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use mesh_auth_tests::{CLOSED_PORT, Envoy, SidecarBootstrap, WasmFilter};
use serde_json::{Value, json};

/// The listener every row's load goes to.
pub const LISTENER: &str = SidecarBootstrap::LISTENER;

/// A bootstrap whose `sidecar` listener answers 200 itself; the row adds
/// its filters and clusters.
pub fn bootstrap() -> SidecarBootstrap {
    SidecarBootstrap::new(SocketAddr::from(([127, 0, 0, 1], CLOSED_PORT)))
        .direct_response(200, "ok\n")
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

/// A proxy-wasm filter on V8, named (and its VM named) `name`.
pub fn wasm(name: &str, file: &Path, configuration: &str) -> WasmFilter {
    WasmFilter::new(configuration)
        .name(name)
        .vm_id(name)
        .wasm_file(file)
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
    pub async fn start(&self, what: &str, bootstrap: &SidecarBootstrap) -> Result<Envoy> {
        self.start_workers(what, bootstrap, 1).await
    }

    /// As [`Pinned::start`], with `workers` worker threads (all on the one
    /// core: what they cost in memory does not depend on cores).
    pub async fn start_workers(
        &self,
        what: &str,
        bootstrap: &SidecarBootstrap,
        workers: u32,
    ) -> Result<Envoy> {
        bootstrap
            .envoy()?
            .binary(&self.wrapper)
            .concurrency(workers)
            .log_level("warning")
            .component_log_level("")
            .start()
            .await
            .with_context(|| format!("starting the Envoy for {what}"))
    }
}

//! Envoy bootstraps for the common case: a function's sidecar.
//!
//! ```text
//! listener "sidecar" 127.0.0.1:0
//!   HCM (max_request_headers_kb: 128, header names with `_` refused)
//!     [envoy.filters.http.wasm: the filter, if configured] -> router -> cluster "upstream"
//! cluster "upstream"  STATIC 127.0.0.1:<echo port>
//! cluster "jwks"      STATIC 127.0.0.1:<jwks port, or CLOSED_PORT>, connect timeout 1 s
//! node                id, cluster, metadata (Istio-like NAMESPACE, LABELS)
//! ```
//!
//! For `make bench` the routes can answer themselves instead
//! ([`SidecarBootstrap::direct_response`]), with other HTTP filters in the
//! chain ([`SidecarBootstrap::http_filter`]).
//!
//! The document is built as JSON values and rendered as YAML, so tests can
//! also take [`SidecarBootstrap::to_value`], change anything, and start
//! Envoy with the result.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::envoy::{Envoy, EnvoyBuilder};
use crate::paths::filter_wasm;
use crate::server::CLOSED_PORT;

/// The wasm filter on one listener.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    /// The plugin configuration JSON, passed as a `google.protobuf.StringValue`.
    pub plugin_config: String,
    /// `vm_config.vm_id`: filters with the same id and code share a VM.
    pub vm_id: String,
    /// `root_id`; empty selects the module's default root context.
    pub root_id: String,
    /// The plugin's `name`, shown in Envoy's logs.
    pub name: String,
    /// The `.wasm` to load; `None` means [`filter_wasm`].
    pub wasm_file: Option<PathBuf>,
    /// `fail_open`: false (the default) answers 503 if the VM fails.
    pub fail_open: bool,
}

impl WasmFilter {
    pub fn new(plugin_config: impl Into<String>) -> Self {
        WasmFilter {
            plugin_config: plugin_config.into(),
            vm_id: "mesh-auth".to_owned(),
            root_id: String::new(),
            name: "mesh-auth".to_owned(),
            wasm_file: None,
            fail_open: false,
        }
    }

    /// The plugin's `name` in Envoy's logs (default `mesh-auth`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.vm_id = vm_id.to_owned();
        self
    }

    pub fn root_id(mut self, root_id: &str) -> Self {
        self.root_id = root_id.to_owned();
        self
    }

    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    pub fn wasm_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm_file = Some(path.into());
        self
    }

    /// The JSON form of its Envoy v3 `HttpFilter` (resolves the wasm path).
    pub fn to_value(&self) -> Result<Value> {
        let wasm = match &self.wasm_file {
            Some(p) => std::path::absolute(p)?,
            None => filter_wasm()?,
        };
        Ok(json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": self.name,
                    "root_id": self.root_id,
                    "vm_config": {
                        "vm_id": self.vm_id,
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": wasm.to_string_lossy()}},
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.plugin_config,
                    },
                    "fail_open": self.fail_open,
                },
            },
        }))
    }
}

#[derive(Debug, Clone)]
struct ListenerSpec {
    name: String,
    filter: Option<WasmFilter>,
    /// More HTTP filters, after the wasm filter and before the router.
    http_filters: Vec<Value>,
}

/// A sidecar-shaped bootstrap; see the module docs for its layout.
#[derive(Debug, Clone)]
pub struct SidecarBootstrap {
    upstream: SocketAddr,
    jwks_port: u16,
    listeners: Vec<ListenerSpec>,
    node_id: String,
    node_cluster: String,
    node_metadata: Map<String, Value>,
    extra_clusters: Vec<Value>,
    /// Routes answer this (status, body) themselves instead of routing.
    direct_response: Option<(u16, String)>,
}

impl SidecarBootstrap {
    /// The main listener's name.
    pub const LISTENER: &str = "sidecar";
    /// The cluster all routes go to.
    pub const UPSTREAM_CLUSTER: &str = "upstream";
    /// The cluster the filter fetches its JWKS through.
    pub const JWKS_CLUSTER: &str = "jwks";

    /// Route everything to `upstream`; no wasm filter yet, and the `jwks`
    /// cluster points at a closed port.
    pub fn new(upstream: SocketAddr) -> Self {
        SidecarBootstrap {
            upstream,
            jwks_port: CLOSED_PORT,
            listeners: vec![ListenerSpec {
                name: Self::LISTENER.to_owned(),
                filter: None,
                http_filters: Vec::new(),
            }],
            node_id: "sidecar~127.0.0.1~test.default~default.svc.cluster.local".to_owned(),
            node_cluster: "test.default".to_owned(),
            node_metadata: Map::new(),
            extra_clusters: Vec::new(),
            direct_response: None,
        }
    }

    /// Put the filter, with default settings and this plugin config, on the
    /// `sidecar` listener.
    pub fn plugin_config(self, json: impl Into<String>) -> Self {
        self.filter(WasmFilter::new(json))
    }

    /// Put this filter on the `sidecar` listener (replacing any).
    pub fn filter(mut self, filter: WasmFilter) -> Self {
        if let Some(l) = self.listeners.first_mut() {
            l.filter = Some(filter);
        }
        self
    }

    /// Add an HTTP filter, given as the JSON form of an Envoy v3
    /// `HttpFilter`, to the `sidecar` listener: after the wasm filter,
    /// before the router.
    pub fn http_filter(mut self, filter: Value) -> Self {
        if let Some(l) = self.listeners.first_mut() {
            l.http_filters.push(filter);
        }
        self
    }

    /// Add another listener on `127.0.0.1:0`, routing to `upstream` too,
    /// with its own filter or none.
    pub fn listener(mut self, name: &str, filter: Option<WasmFilter>) -> Self {
        self.listeners.push(ListenerSpec {
            name: name.to_owned(),
            filter,
            http_filters: Vec::new(),
        });
        self
    }

    /// Every route answers `status` with `body` itself (`direct_response`)
    /// instead of going upstream: no upstream process competes for a core,
    /// so a measurement sees only the filter chain's cost (`make bench`).
    pub fn direct_response(mut self, status: u16, body: &str) -> Self {
        self.direct_response = Some((status, body.to_owned()));
        self
    }

    /// Point the `jwks` cluster at `addr`'s port on 127.0.0.1.
    pub fn jwks(self, addr: SocketAddr) -> Self {
        self.jwks_port(addr.port())
    }

    pub fn jwks_port(mut self, port: u16) -> Self {
        self.jwks_port = port;
        self
    }

    pub fn node_id(mut self, id: &str) -> Self {
        self.node_id = id.to_owned();
        self
    }

    pub fn node_cluster(mut self, cluster: &str) -> Self {
        self.node_cluster = cluster.to_owned();
        self
    }

    /// Set one key of the node metadata.
    pub fn node_metadata(mut self, key: &str, value: Value) -> Self {
        self.node_metadata.insert(key.to_owned(), value);
        self
    }

    /// Node metadata as Istio sets it for an OpenFaaS function's pod:
    /// `NAMESPACE` and `LABELS.faas_function`.
    pub fn istio_function(self, namespace: &str, function: &str) -> Self {
        self.node_metadata("NAMESPACE", json!(namespace))
            .node_metadata("LABELS", json!({"faas_function": function}))
    }

    /// Add a cluster, given as the JSON form of an Envoy v3 `Cluster`.
    pub fn cluster(mut self, cluster: Value) -> Self {
        self.extra_clusters.push(cluster);
        self
    }

    /// Add a STATIC cluster to `127.0.0.1:port` that speaks HTTP/2, as a
    /// gRPC service (ext-authz's `Check`) needs.
    pub fn grpc_cluster(self, name: &str, port: u16) -> Self {
        let mut cluster = static_cluster(name, port);
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        });
        self.cluster(cluster)
    }

    /// The bootstrap as a JSON value (resolves the wasm path).
    pub fn to_value(&self) -> Result<Value> {
        let listeners = self
            .listeners
            .iter()
            .map(|l| listener(l, self.direct_response.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let mut clusters = vec![
            static_cluster(Self::UPSTREAM_CLUSTER, self.upstream.port()),
            static_cluster(Self::JWKS_CLUSTER, self.jwks_port),
        ];
        clusters.extend(self.extra_clusters.iter().cloned());
        Ok(json!({
            "node": {
                "id": self.node_id,
                "cluster": self.node_cluster,
                "metadata": self.node_metadata,
            },
            "admin": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            },
            "static_resources": {
                "listeners": listeners,
                "clusters": clusters,
            },
        }))
    }

    /// The bootstrap as YAML text.
    pub fn render(&self) -> Result<String> {
        Ok(serde_yaml::to_string(&self.to_value()?)?)
    }

    /// An [`EnvoyBuilder`] for this bootstrap, to set flags before starting.
    pub fn envoy(&self) -> Result<EnvoyBuilder> {
        Ok(Envoy::builder(self.render()?))
    }

    /// Start Envoy with this bootstrap and the default flags.
    pub async fn start(&self) -> Result<Envoy> {
        self.envoy()?.start().await
    }
}

fn listener(spec: &ListenerSpec, direct_response: Option<&(u16, String)>) -> Result<Value> {
    let mut http_filters = Vec::new();
    if let Some(f) = &spec.filter {
        http_filters.push(f.to_value()?);
    }
    http_filters.extend(spec.http_filters.iter().cloned());
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
        },
    }));
    let mut route = json!({"match": {"prefix": "/"}});
    match direct_response {
        Some((status, body)) => {
            route["direct_response"] = json!({"status": status, "body": {"inline_string": body}});
        }
        None => route["route"] = json!({"cluster": SidecarBootstrap::UPSTREAM_CLUSTER}),
    }
    Ok(json!({
        "name": spec.name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": spec.name,
                    "codec_type": "AUTO",
                    // Large enough that an oversized (100 KB) token reaches
                    // the filter instead of being cut off by the codec.
                    "max_request_headers_kb": 128,
                    // As in every config we ship: `x_faas_mesh_auth_subject`
                    // cannot pose as the filter's header.
                    "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"},
                    "route_config": {
                        "name": "local",
                        "virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [route],
                        }],
                    },
                    "http_filters": http_filters,
                },
            }],
        }],
    }))
}

fn static_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{
                "lb_endpoints": [{
                    "endpoint": {
                        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    },
                }],
            }],
        },
    })
}

#[cfg(test)]
mod tests;

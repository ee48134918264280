use super::*;

fn upstream() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}

#[test]
fn plain_bootstrap_routes_to_upstream_without_a_wasm_filter() {
    let v = SidecarBootstrap::new(upstream()).to_value().unwrap();
    let listeners = v["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1);
    assert_eq!(listeners[0]["name"], "sidecar");
    let hcm = &listeners[0]["filter_chains"][0]["filters"][0]["typed_config"];
    assert_eq!(hcm["max_request_headers_kb"], 128);
    let filters = hcm["http_filters"].as_array().unwrap();
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0]["name"], "envoy.filters.http.router");

    let clusters = v["static_resources"]["clusters"].as_array().unwrap();
    let port = |i: usize| {
        clusters[i]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["port_value"]
            .clone()
    };
    assert_eq!(clusters[0]["name"], "upstream");
    assert_eq!(port(0), 4000);
    assert_eq!(clusters[1]["name"], "jwks");
    assert_eq!(port(1), u64::from(CLOSED_PORT));
}

#[test]
fn filter_carries_plugin_config_as_a_string_value_before_the_router() {
    let config = r#"{"issuer":"https://gw.example.com","mode":"enforce"}"#;
    let v = SidecarBootstrap::new(upstream())
        .filter(
            WasmFilter::new(config)
                .vm_id("vm-a")
                .wasm_file("/nowhere/f.wasm"),
        )
        .jwks_port(5000)
        .to_value()
        .unwrap();
    let filters = &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"];
    assert_eq!(filters[0]["name"], "envoy.filters.http.wasm");
    assert_eq!(filters[1]["name"], "envoy.filters.http.router");
    let c = &filters[0]["typed_config"]["config"];
    assert_eq!(c["vm_config"]["vm_id"], "vm-a");
    assert_eq!(c["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(
        c["vm_config"]["code"]["local"]["filename"],
        "/nowhere/f.wasm"
    );
    assert_eq!(c["configuration"]["value"], config);
    assert_eq!(c["fail_open"], false);
}

#[test]
fn second_listener_and_istio_metadata() {
    let v = SidecarBootstrap::new(upstream())
        .listener("other", None)
        .istio_function("dev", "env")
        .to_value()
        .unwrap();
    assert_eq!(v["static_resources"]["listeners"][1]["name"], "other");
    assert_eq!(v["node"]["metadata"]["NAMESPACE"], "dev");
    assert_eq!(v["node"]["metadata"]["LABELS"]["faas_function"], "env");
}

#[test]
fn rendered_yaml_round_trips() {
    let b = SidecarBootstrap::new(upstream()).plugin_config(r#"{"a":"it's \"quoted\"\n"}"#);
    let b = b.filter(WasmFilter::new(r#"{"a":"it's \"quoted\"\n"}"#).wasm_file("/x.wasm"));
    let yaml = b.render().unwrap();
    let back: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(back, b.to_value().unwrap());
}

#[test]
fn direct_response_with_more_filters_and_a_grpc_cluster() {
    let v = SidecarBootstrap::new(upstream())
        .filter(WasmFilter::new("{}").name("noop").wasm_file("/x.wasm"))
        .http_filter(json!({"name": "envoy.filters.http.jwt_authn"}))
        .direct_response(200, "ok\n")
        .grpc_cluster("authz", 5001)
        .to_value()
        .unwrap();
    let hcm =
        &v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let names: Vec<&str> = hcm["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.wasm",
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(
        hcm["http_filters"][0]["typed_config"]["config"]["name"],
        "noop"
    );
    let route = &hcm["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["direct_response"]["status"], 200);
    assert_eq!(route["direct_response"]["body"]["inline_string"], "ok\n");
    assert!(route.get("route").is_none());
    let grpc = &v["static_resources"]["clusters"][2];
    assert_eq!(grpc["name"], "authz");
    assert!(
        grpc["typed_extension_protocol_options"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
            .get("http2_protocol_options")
            .is_some()
    );
}

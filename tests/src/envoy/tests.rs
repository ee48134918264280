use super::*;

#[test]
fn stats_keep_counters_and_gauges_and_skip_histograms() {
    let body = r#"{"stats":[
        {"name":"cluster.upstream.upstream_rq_200","value":3},
        {"name":"server.live","value":1},
        {"name":"version.text","value":"1.40.0"},
        {"histograms":{"supported_quantiles":[0,50],"computed_quantiles":[]}}
    ]}"#;
    let stats = parse_stats(body).unwrap();
    assert_eq!(stats.get("cluster.upstream.upstream_rq_200"), Some(&3));
    assert_eq!(stats.get("server.live"), Some(&1));
    assert_eq!(stats.len(), 2);
}

#[test]
fn stats_that_are_not_json_are_an_error() {
    assert!(parse_stats("server.live: 1").is_err());
}

#[test]
fn listeners_map_names_to_bound_ports() {
    let body = r#"{"listener_statuses":[
        {"name":"sidecar","local_address":{"socket_address":{"address":"127.0.0.1","port_value":36207}}},
        {"name":"second","local_address":{"socket_address":{"address":"127.0.0.1","port_value":40000}}}
    ]}"#;
    let ports = parse_listeners(body).unwrap().unwrap();
    assert_eq!(ports.get("sidecar"), Some(&36207));
    assert_eq!(ports.get("second"), Some(&40000));
}

#[test]
fn a_listener_still_on_port_0_is_not_ready() {
    let body = r#"{"listener_statuses":[
        {"name":"sidecar","local_address":{"socket_address":{"address":"127.0.0.1","port_value":0}}}
    ]}"#;
    assert_eq!(parse_listeners(body).unwrap(), None);
}

#[test]
fn no_listeners_is_ready_with_none() {
    assert_eq!(parse_listeners("{}").unwrap(), Some(BTreeMap::new()));
}

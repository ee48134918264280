//! The ext_authz gRPC service behind a real Envoy's
//! `envoy.filters.http.ext_authz` filter: what clients see, and what the
//! upstream (the gateway) receives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use ext_authz::authz::{Action, AuthzMetrics, Policy, Resource};
use mesh_auth_core::glob::Glob;
use mesh_auth_core::testing::{TestKey, jwks};
use mesh_auth_core::{
    Claims, GatewayClaims, KeySet, SystemClock, TokenError, Validation, Verified, clock::Clock,
    verify,
};
use mesh_auth_tests::{EchoUpstream, Envoy, request};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ISSUER: &str = "https://gateway.example.com";

struct TestPolicy {
    key: TestKey,
    keys: KeySet,
    validation: Validation,
    policies: HashMap<&'static str, Vec<(Glob, Glob)>>,
}

impl TestPolicy {
    fn new() -> Self {
        let key = TestKey::generate();
        let (keys, _) = KeySet::from_jwks_json(jwks(&[&key]).as_bytes()).unwrap();
        let mut policies = HashMap::new();
        policies.insert(
            "dev-rw",
            vec![
                (Glob::new("Function:*"), Glob::new("dev:*")),
                (Glob::new("Secret:*"), Glob::new("dev:*")),
            ],
        );
        TestPolicy {
            key,
            keys,
            validation: Validation::new([ISSUER], [ISSUER]).unwrap(),
            policies,
        }
    }

    fn token(&self, claims: Value) -> String {
        let now = SystemClock.now();
        let mut c = json!({"iss": ISSUER, "aud": [ISSUER], "iat": now, "exp": now + 300});
        c.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        self.key.sign(&c)
    }
}

impl Policy for TestPolicy {
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        verify(token, &self.keys, &self.validation, SystemClock.now())
    }

    fn allows(&self, claims: &Claims<GatewayClaims>, action: Action, resource: &Resource) -> bool {
        let (action, resource) = (action.as_str(), resource.to_string());
        claims
            .custom
            .policy
            .iter()
            .flatten()
            .filter_map(|p| self.policies.get(p.as_str()))
            .flatten()
            .any(|(a, r)| a.matches(action) && r.matches(&resource))
    }
}

fn cluster(name: &str, port: u16, http2: bool) -> Value {
    let mut c = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        ]}]},
    });
    if http2 {
        c["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        });
    }
    c
}

fn listener(name: &str, with_body: bool) -> Value {
    let mut authz = json!({
        "transport_api_version": "V3",
        "grpc_service": {"envoy_grpc": {"cluster_name": "ext-authz"}, "timeout": "5s"},
        "failure_mode_allow": false,
    });
    if with_body {
        authz["with_request_body"] = json!({
            "max_request_bytes": 4096,
            "allow_partial_message": true,
            "pack_as_bytes": true,
        });
    }
    authz["@type"] =
        json!("type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz");
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/oauth/"},
                            "route": {"cluster": "upstream"},
                            "typed_per_filter_config": {"envoy.filters.http.ext_authz": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
                                "disabled": true,
                            }},
                        },
                        {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}},
                    ],
                }]},
                "http_filters": [
                    {"name": "envoy.filters.http.ext_authz", "typed_config": authz},
                    {"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                    }},
                ],
            },
        }]}],
    })
}

struct Stack {
    policy: Arc<TestPolicy>,
    echo: EchoUpstream,
    envoy: Envoy,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Stack {
    async fn start() -> Result<Self> {
        let policy = Arc::new(TestPolicy::new());
        let echo = EchoUpstream::start().await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let authz_addr: SocketAddr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn({
            let policy: Arc<dyn Policy> = policy.clone();
            async move {
                ext_authz::authz::serve(listener, policy, AuthzMetrics::default(), async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            }
        });
        let bootstrap = json!({
            "static_resources": {
                "listeners": [listener_json("gateway", true), listener_json("nobody", false)],
                "clusters": [
                    cluster("upstream", echo.port(), false),
                    cluster("ext-authz", authz_addr.port(), true),
                ],
            },
        });
        let envoy = Envoy::start(serde_yaml::to_string(&bootstrap)?).await?;
        Ok(Stack {
            policy,
            echo,
            envoy,
            stop: Some(stop),
            server,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.envoy.listener_url("gateway").unwrap())
    }
}

fn listener_json(name: &str, with_body: bool) -> Value {
    listener(name, with_body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ext_authz_guards_the_gateway_api_in_envoy() -> Result<()> {
    let mut stack = Stack::start().await?;
    let alice = stack.policy.token(json!({
        "sub": "fed:alice", "fed:iss": "https://idp.example.com",
        "policy": ["dev-rw"], "jti": "a-1",
    }));
    let bearer = format!("Bearer {alice}");
    let auth = [("authorization", bearer.as_str())];

    // Allowed: the upstream gets the subject, not the client's forgery.
    let resp = request(
        "GET",
        &stack.url("/system/function/env?namespace=dev"),
        &[
            ("authorization", bearer.as_str()),
            ("x-faas-mesh-auth-subject", "fed:mallory"),
        ],
        Vec::new(),
    )
    .await?;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let seen = resp.echoed()?;
    assert_eq!(seen.header("x-faas-mesh-auth-subject"), Some("fed:alice"));
    assert_eq!(seen.path, "/system/function/env?namespace=dev");

    // Not allowed: 403 with our body and headers, nothing upstream.
    let before = stack.echo.request_count();
    let resp = request("GET", &stack.url("/system/functions"), &auth, Vec::new()).await?;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.body,
        "insufficient permissions: Function:List on openfaas-fn:*\n"
    );
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    assert_eq!(resp.header("www-authenticate"), None);
    assert_eq!(stack.echo.request_count(), before);

    // No token: 401 with the API realm.
    let resp = request("GET", &stack.url("/system/info"), &[], Vec::new()).await?;
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="OpenFaaS API""#)
    );

    // The namespace in the body: checked, and copied to the query for
    // providers that read it there.
    let body = json!({"functionName": "env", "namespace": "dev"}).to_string();
    let resp = request(
        "DELETE",
        &stack.url("/system/functions"),
        &[
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
        ],
        body.clone(),
    )
    .await?;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let seen = resp.echoed()?;
    assert_eq!(seen.path, "/system/functions?namespace=dev");
    assert_eq!(seen.body, body);

    // A body namespace outside the grant.
    let resp = request(
        "POST",
        &stack.url("/system/functions"),
        &auth,
        json!({"service": "env", "namespace": "prod", "image": "x"}).to_string(),
    )
    .await?;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.body,
        "insufficient permissions: Function:Create on prod:env\n"
    );

    // Conflicting namespaces in query and body.
    let resp = request(
        "POST",
        &stack.url("/system/scale-function/env?namespace=dev"),
        &auth,
        json!({"serviceName": "env", "namespace": "prod", "replicas": 1}).to_string(),
    )
    .await?;
    assert_eq!(resp.status, 400, "{}", resp.body);

    // Larger than max_request_bytes: Envoy marks it partial, we refuse.
    let big = json!({"service": "env", "namespace": "dev", "envVars": {"x": "y".repeat(8000)}});
    let resp = request(
        "PUT",
        &stack.url("/system/functions"),
        &auth,
        big.to_string(),
    )
    .await?;
    assert_eq!(resp.status, 413, "{}", resp.body);

    // Without with_request_body, a body route is refused, not guessed.
    let resp = request(
        "POST",
        &format!(
            "{}/system/secrets",
            stack.envoy.listener_url("nobody").unwrap()
        ),
        &auth,
        json!({"name": "db", "namespace": "dev", "value": "x"}).to_string(),
    )
    .await?;
    assert_eq!(resp.status, 403);
    assert!(resp.body.contains("with_request_body"), "{}", resp.body);
    // ... while a route that reads no body works there.
    let resp = request(
        "GET",
        &format!(
            "{}/system/secrets?namespace=dev",
            stack.envoy.listener_url("nobody").unwrap()
        ),
        &auth,
        Vec::new(),
    )
    .await?;
    assert_eq!(resp.status, 200, "{}", resp.body);

    // Unknown routes and path tricks.
    for path in [
        "/system/alert",
        "/system/functions/",
        "/system/secret%73?namespace=dev",
    ] {
        let resp = request("GET", &stack.url(path), &auth, Vec::new()).await?;
        assert_eq!(resp.status, 403, "{path}: {}", resp.body);
    }

    // Invocations: the sidecar filter's rule.
    let fn_token = stack.policy.token(json!({
        "sub": "fed:alice", "function": {"permissions": ["dev:env"]},
    }));
    let fn_bearer = format!("Bearer {fn_token}");
    let resp = request(
        "POST",
        &stack.url("/function/env.dev"),
        &[("authorization", fn_bearer.as_str())],
        "hello",
    )
    .await?;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.echoed()?.body, "hello");
    let resp = request("POST", &stack.url("/function/env"), &[], "hello").await?;
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some(r#"Bearer realm="IAM function invoke""#)
    );
    let resp = request("POST", &stack.url("/function/env.dev"), &auth, "hello").await?;
    assert_eq!(resp.status, 401, "an API token cannot invoke");

    // Routes with the filter disabled pass without a token.
    let resp = request("POST", &stack.url("/oauth/token"), &[], "x").await?;
    assert_eq!(resp.status, 200);

    if let Some(stop) = stack.stop.take() {
        let _ = stop.send(());
    }
    drop(stack.envoy);
    tokio::time::timeout(std::time::Duration::from_secs(10), stack.server).await??;
    Ok(())
}

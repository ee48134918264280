//! The services in process: a real tonic server on 127.0.0.1:0, called with
//! envoy-types' generated client and tonic-health's client.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use mesh_auth_core::{Claims, GatewayClaims, TokenError, Verified};
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as Pb;
use tonic_health::pb::health_client::HealthClient;

use super::*;
use crate::authz::fixtures::{FakePolicy, Req};
use crate::authz::{Action, Resource};

const AUTHZ_NAME: &str = "envoy.service.auth.v3.Authorization";
const WAIT: Duration = Duration::from_secs(10);

struct Running {
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

async fn start(policy: Arc<dyn Policy>, metrics: AuthzMetrics) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(crate::authz::serve(listener, policy, metrics, async {
        let _ = rx.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Running {
        channel,
        shutdown: Some(tx),
        task,
    }
}

impl Running {
    fn authz(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::new(self.channel.clone())
    }

    fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).unwrap();
        }
    }
}

fn policy() -> FakePolicy {
    FakePolicy::new()
        .with("admin", &[("*", "*")])
        .with("dev-rw", &[("Function:*", "dev:*")])
}

async fn health_of(client: &mut HealthClient<Channel>, service: &str) -> i32 {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_allows_and_denies_over_grpc() {
    let p = Arc::new(policy());
    let alice = p.api_token("fed:alice", &["dev-rw"]);
    let mut registry = Registry::default();
    let metrics = AuthzMetrics::register(&mut registry);
    let mut server = start(p.clone(), metrics.clone()).await;
    let mut client = server.authz();

    // Allowed: OK status, the subject set, a client's copy overwritten.
    let resp = client
        .check(
            Req::get("/system/function/env?namespace=dev")
                .bearer(&alice)
                .header("x-faas-mesh-auth-subject", "fed:mallory")
                .build(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.status.unwrap().code, 0);
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("expected an ok response");
    };
    let h = ok.headers[0].header.as_ref().unwrap();
    assert_eq!(
        (h.key.as_str(), h.value.as_str()),
        ("x-faas-mesh-auth-subject", "fed:alice")
    );

    // Denied: still Ok at the gRPC level, a 403 inside.
    let resp = client
        .check(Req::get("/system/functions").bearer(&alice).build())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status.unwrap().code,
        tonic::Code::PermissionDenied as i32
    );
    let Some(HttpResponse::DeniedResponse(denied)) = resp.http_response else {
        panic!("expected a denied response");
    };
    assert_eq!(denied.status.unwrap().code, 403);
    assert_eq!(
        denied.body,
        "insufficient permissions: Function:List on openfaas-fn:*\n"
    );

    // A 401 carries the challenge.
    let resp = client
        .check(Req::get("/function/env").build())
        .await
        .unwrap()
        .into_inner();
    let Some(HttpResponse::DeniedResponse(denied)) = resp.http_response else {
        panic!("expected a denied response");
    };
    assert_eq!(denied.status.unwrap().code, 401);
    let challenge = denied
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "www-authenticate")
        .unwrap();
    assert_eq!(challenge.value, r#"Bearer realm="IAM function invoke""#);

    // A body namespace, forwarded as bytes.
    let resp = client
        .check(
            Req::new("POST", "/system/scale-function/env")
                .json(&json!({"serviceName": "env", "namespace": "dev", "replicas": 2}))
                .bearer(&alice)
                .build(),
        )
        .await
        .unwrap()
        .into_inner();
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("expected an ok response");
    };
    assert_eq!(ok.query_parameters_to_set[0].value, "dev");

    // Counted by action and result.
    assert_eq!(metrics.decisions("Function:Get", "allowed"), 1);
    assert_eq!(metrics.decisions("Function:List", "denied"), 1);
    assert_eq!(metrics.decisions("Function:Scale", "allowed"), 1);
    assert_eq!(metrics.decisions("none", "denied"), 1);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"faas_mesh_auth_ext_authz_decisions_total{action="Function:Get",result="allowed"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"faas_mesh_auth_ext_authz_denials_total{reason="not_allowed"} 1"#),
        "{text}"
    );

    server.shut_down();
    drop(client);
    drop(server.channel);
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_is_a_grpc_error() {
    let p = Arc::new(policy());
    p.ready.store(false, Ordering::SeqCst);
    let token = p.api_token("fed:root", &["admin"]);
    let mut server = start(p.clone(), AuthzMetrics::default()).await;
    let err = server
        .authz()
        .check(Req::get("/system/info").bearer(&token).build())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    server.shut_down();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_flips_to_not_serving_on_shutdown() {
    let p = Arc::new(policy());
    let mut server = start(p, AuthzMetrics::default()).await;
    let mut health = server.health();
    assert_eq!(health_of(&mut health, "").await, Pb::Serving as i32);
    assert_eq!(health_of(&mut health, AUTHZ_NAME).await, Pb::Serving as i32);
    assert_eq!(
        health
            .check(HealthCheckRequest {
                service: "no.such.Service".into()
            })
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );

    let mut watch = health
        .watch(HealthCheckRequest {
            service: AUTHZ_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(WAIT, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.status, Pb::Serving as i32);

    server.shut_down();
    let next = tokio::time::timeout(WAIT, watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.status, Pb::NotServing as i32);

    // The open watch is a call in flight: the server stops once it ends.
    drop(watch);
    drop(health);
    drop(server.channel);
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A policy whose `verify` waits for the test to release it.
struct Gated {
    inner: FakePolicy,
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl Policy for Gated {
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        self.entered.lock().unwrap().send(()).unwrap();
        self.release.lock().unwrap().recv_timeout(WAIT).unwrap();
        self.inner.verify(token)
    }

    fn allows(&self, claims: &Claims<GatewayClaims>, action: Action, resource: &Resource) -> bool {
        self.inner.allows(claims, action, resource)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_finish_after_shutdown() {
    let inner = policy();
    let token = inner.api_token("fed:root", &["admin"]);
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gated = Arc::new(Gated {
        inner,
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let mut server = start(gated, AuthzMetrics::default()).await;
    let mut client = server.authz();
    let call = tokio::spawn(async move {
        client
            .check(Req::get("/system/info").bearer(&token).build())
            .await
    });
    tokio::task::spawn_blocking(move || entered_rx.recv_timeout(WAIT))
        .await
        .unwrap()
        .unwrap();

    server.shut_down();
    // Health is already NOT_SERVING while the call is still running.
    let mut health = server.health();
    let status = tokio::time::timeout(WAIT, async {
        loop {
            match health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
            {
                Ok(r) if r.get_ref().status == Pb::NotServing as i32 => break Ok(()),
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => break Err(e),
            }
        }
    })
    .await
    .unwrap();
    // Either we saw NOT_SERVING, or the server already refuses new streams.
    if let Err(e) = status {
        assert_ne!(e.code(), tonic::Code::Ok);
    }
    drop(health);

    release_tx.send(()).unwrap();
    let resp = tokio::time::timeout(WAIT, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status.unwrap().code,
        0,
        "the call in flight finished OK"
    );

    drop(server.channel);
    tokio::time::timeout(WAIT, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

//! The whole process in one test: both servers from settings, the drain.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesh_auth_core::testing::TestKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::*;
use crate::config::Args;

struct Process {
    addrs: Listening,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Fatal>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn start(grace: &str) -> Process {
    let iam = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("0001.pem"), TestKey::generate().sec1_pem()).unwrap();
    let args = Args {
        issuer: Some("http://gateway.test".into()),
        http_addr: Some("127.0.0.1:0".into()),
        grpc_addr: Some("127.0.0.1:0".into()),
        iam_dir: Some(iam.path().to_owned()),
        signing_key_dir: Some(keys.path().to_owned()),
        shutdown_grace: Some(grace.into()),
        ..Args::default()
    };
    let settings = Settings::resolve(args, &HashMap::new()).unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr_tx, addr_rx) = oneshot::channel();
    let task = tokio::spawn(run(
        settings,
        async {
            let _ = stop_rx.await;
        },
        move |l| {
            let _ = addr_tx.send(l);
        },
    ));
    Process {
        addrs: addr_rx.await.unwrap(),
        stop: Some(stop_tx),
        task,
        _dirs: (iam, keys),
    }
}

async fn grpc_health(addr: SocketAddr) -> Result<i32, String> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|e| e.to_string())
}

/// One HTTP/1.1 request on a fresh connection; the status code.
async fn http_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {out:?}"))
}

#[tokio::test]
async fn both_servers_keep_serving_long_after_the_grace_period() {
    // The grace period once timed out the whole gRPC server, not its drain:
    // every Check failed grace + 1 s after start.
    let mut p = start("200ms").await;
    // Real time must pass here: that is what is under test.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(
        grpc_health(p.addrs.grpc).await,
        Ok(ServingStatus::Serving as i32)
    );
    assert_eq!(http_status(p.addrs.http, "/readyz").await, Ok(200));
    assert!(!p.task.is_finished());

    p.stop.take().unwrap().send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut p.task)
        .await
        .expect("drains within the grace period")
        .unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    assert!(grpc_health(p.addrs.grpc).await.is_err(), "gRPC still up");
    assert!(http_status(p.addrs.http, "/healthz").await.is_err());
}

#[tokio::test]
async fn the_grace_period_bounds_work_in_flight_after_the_signal() {
    let mut p = start("300ms").await;
    // A request whose body never comes: in flight until a timeout.
    let mut slow = TcpStream::connect(p.addrs.http).await.unwrap();
    slow.write_all(
        b"POST /oauth/token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ngrant",
    )
    .await
    .unwrap();
    // Let the server start reading it.
    assert_eq!(http_status(p.addrs.http, "/healthz").await, Ok(200));

    let signalled = Instant::now();
    p.stop.take().unwrap().send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut p.task)
        .await
        .expect("stops once the grace period is over")
        .unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_listen_address_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("0001.pem"), TestKey::generate().sec1_pem()).unwrap();
    let iam = tempfile::tempdir().unwrap();
    let args = Args {
        issuer: Some("http://gateway.test".into()),
        http_addr: Some(taken.local_addr().unwrap().to_string()),
        grpc_addr: Some("127.0.0.1:0".into()),
        iam_dir: Some(iam.path().to_owned()),
        signing_key_dir: Some(keys.path().to_owned()),
        ..Args::default()
    };
    let settings = Settings::resolve(args, &HashMap::new()).unwrap();
    let r = run(settings, std::future::pending(), |_| {}).await;
    assert!(matches!(r, Err(Fatal::Bind(_))), "{r:?}");
}

#[tokio::test]
async fn slow_or_idle_clients_are_cut_off_after_the_header_read_timeout() {
    let iam = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    std::fs::write(keys.path().join("0001.pem"), TestKey::generate().sec1_pem()).unwrap();
    let args = Args {
        issuer: Some("http://gateway.test".into()),
        iam_dir: Some(iam.path().to_owned()),
        signing_key_dir: Some(keys.path().to_owned()),
        ..Args::default()
    };
    let app = build(&Settings::resolve(args, &HashMap::new()).unwrap())
        .unwrap()
        .http;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(crate::http::serve_with(
        listener,
        app,
        std::future::pending(),
        Duration::from_millis(300),
    ));
    let closed_within = |mut s: TcpStream| async move {
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => continue,
                Err(_) => panic!("the server kept the connection open"),
            }
        }
    };
    // Headers that never end (slowloris).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: ")
        .await
        .unwrap();
    assert!(closed_within(slow).await < Duration::from_secs(2));
    // A keep-alive connection that goes quiet after a request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_within(idle).await < Duration::from_secs(2));
    server.abort();
}

use std::time::Duration;

use super::{FaultMode, FaultProxy};
use crate::echo::EchoUpstream;

async fn get(url: &str, timeout: Duration) -> Result<u16, reqwest::Error> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(timeout)
        .build()?;
    Ok(client.get(url).send().await?.status().as_u16())
}

#[tokio::test]
async fn pass_refuse_blackhole_and_back() {
    let echo = EchoUpstream::start().await.unwrap();
    let proxy = FaultProxy::start(echo.addr()).await.unwrap();
    let url = format!("{}/x", proxy.url());
    let t = Duration::from_secs(5);
    assert_eq!(get(&url, t).await.unwrap(), 200);

    proxy.set_mode(FaultMode::Refuse);
    crate::wait::wait_until(t, "connections refused", || async {
        get(&url, t).await.is_err_and(|e| e.is_connect())
    })
    .await
    .unwrap();

    proxy.set_mode(FaultMode::Blackhole);
    crate::wait::wait_until(t, "connections hang", || async {
        get(&url, Duration::from_millis(300))
            .await
            .is_err_and(|e| e.is_timeout())
    })
    .await
    .unwrap();

    proxy.set_mode(FaultMode::Pass);
    crate::wait::wait_until(t, "traffic again", || async {
        get(&url, t).await.is_ok_and(|s| s == 200)
    })
    .await
    .unwrap();
    assert!(
        proxy
            .counts()
            .held
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
}

#[tokio::test]
async fn an_open_connection_stops_when_the_mode_changes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let echo = EchoUpstream::start().await.unwrap();
    let proxy = FaultProxy::start(echo.addr()).await.unwrap();
    let mut conn = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Refuse closes the kept-alive connection too.
    proxy.set_mode(FaultMode::Refuse);
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection should be closed");
}

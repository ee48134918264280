//! Retry-until-true helpers: the only way tests wait.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::Instant;

/// How often conditions are polled.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Poll `check` until it returns `true`, or fail after `timeout` naming
/// `what` was awaited.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(timeout, what, || {
        let fut = check();
        async move { Ok(fut.await.then_some(())) }
    })
    .await
}

/// Poll `check` until it yields `Ok(Some(value))`, and return the value.
/// `Ok(None)` and `Err(_)` both mean "not yet"; after `timeout` the error
/// names `what` and carries the last error seen, if any.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

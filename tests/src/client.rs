//! A plain HTTP client for tests: no TLS, no proxy, no connection reuse
//! (each call gets a fresh connection, so Envoy restarts and stopped
//! servers never meet a stale pooled socket).

use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::echo::Echoed;

/// Upper bound on one request, so a hung proxy fails the test instead.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A response, body read in full.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name`, if it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body)
            .with_context(|| format!("body is not JSON: {:?}", self.body))
    }

    /// The body as an [`crate::EchoUpstream`] answer: what the upstream saw.
    pub fn echoed(&self) -> Result<Echoed> {
        Echoed::from_body(&self.body).with_context(|| {
            format!(
                "body is not an echo (status {}): {:?}",
                self.status, self.body
            )
        })
    }
}

/// `GET url` with extra headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse> {
    request("GET", url, headers, Vec::new()).await
}

/// Any method, headers and body.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
) -> Result<HttpResponse> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let method = reqwest::Method::from_bytes(method.as_bytes())?;
    let mut req = client.request(method.clone(), url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.into();
    if !body.is_empty() {
        req = req.body(body);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .text()
        .await
        .with_context(|| format!("reading body of {method} {url}"))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

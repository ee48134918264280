//! A stand-in for ext-authz's JWKS endpoint: it serves a body the test sets
//! (at any path; the conventional one is [`JwksServer::PATH`]), can answer
//! with an error status or slowly, records every fetch, and can be stopped
//! so connections are refused, then restarted on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use crate::server::{Captured, Handler, Server, respond};
use crate::testing::{TestKey, jwks};

/// One fetch as the JWKS server saw it.
#[derive(Debug, Clone)]
pub struct JwksRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names, arrival order.
    pub headers: Vec<(String, String)>,
}

impl JwksRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `:authority` (HTTP/2) or `Host` (HTTP/1.1).
    pub fn authority(&self) -> Option<&str> {
        self.header(":authority").or_else(|| self.header("host"))
    }
}

#[derive(Default)]
struct State {
    body: Mutex<String>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    requests: Mutex<Vec<JwksRequest>>,
}

/// The JWKS server. Stops when dropped.
pub struct JwksServer {
    server: Server,
    state: Arc<State>,
}

impl JwksServer {
    /// The path ext-authz serves its JWKS at.
    pub const PATH: &str = "/.well-known/jwks.json";

    /// Serve `body` with 200 on `127.0.0.1:0`.
    pub async fn start(body: impl Into<String>) -> Result<Self> {
        let state = Arc::new(State {
            body: Mutex::new(body.into()),
            status: AtomicU16::new(200),
            ..State::default()
        });
        let server = Server::bind(0, handler(state.clone())).await?;
        Ok(JwksServer { server, state })
    }

    /// Serve a JWKS holding the public halves of `keys`.
    pub async fn with_keys(keys: &[&TestKey]) -> Result<Self> {
        Self::start(jwks(keys)).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// `http://127.0.0.1:<port>/.well-known/jwks.json`
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr(), Self::PATH)
    }

    pub fn set_body(&self, body: impl Into<String>) {
        if let Ok(mut b) = self.state.body.lock() {
            *b = body.into();
        }
    }

    /// Serve a JWKS holding the public halves of `keys` from now on.
    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.set_body(jwks(keys));
    }

    /// Answer with this status (the body is still sent).
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Hold every answer back this long (for timeout tests).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Requests received, whatever they were answered with.
    pub fn fetch_count(&self) -> usize {
        self.state.requests.lock().map_or(0, |r| r.len())
    }

    pub fn requests(&self) -> Vec<JwksRequest> {
        self.state
            .requests
            .lock()
            .map_or_else(|_| Vec::new(), |r| r.clone())
    }

    /// Close the listener and every open connection: from now on connections
    /// to `addr()` are refused.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Listen again on the same port, with the same body, status and log.
    /// A no-op when running.
    pub async fn restart(&mut self) -> Result<()> {
        if !self.server.is_running() {
            self.server = Server::bind(self.port(), handler(self.state.clone())).await?;
        }
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.server.is_running()
    }
}

fn handler(state: Arc<State>) -> Handler {
    Arc::new(move |c: Captured| {
        let state = state.clone();
        Box::pin(async move {
            if let Ok(mut r) = state.requests.lock() {
                r.push(JwksRequest {
                    method: c.method,
                    path: c.path,
                    headers: c.headers,
                });
            }
            let delay = state.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let body = state.body.lock().map(|b| b.clone()).unwrap_or_default();
            respond(
                state.status.load(Ordering::SeqCst),
                "application/json",
                body,
            )
        })
    })
}

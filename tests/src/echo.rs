//! An upstream that answers every request with 200 and a JSON description of
//! what it received, so a test sees exactly what Envoy forwarded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::server::{Captured, Handler, Server, respond};

/// One request as the upstream saw it; also the JSON body of its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echoed {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The request body, lossily decoded as UTF-8.
    pub body: String,
}

impl Echoed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Parse an echo answer's body.
    pub fn from_body(body: &str) -> Result<Self> {
        Ok(serde_json::from_str(body)?)
    }

    fn from_captured(c: Captured) -> Self {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in c.headers {
            headers
                .entry(k)
                .and_modify(|old| {
                    old.push_str(", ");
                    old.push_str(&v);
                })
                .or_insert(v);
        }
        Echoed {
            method: c.method,
            path: c.path,
            headers,
            body: String::from_utf8_lossy(&c.body).into_owned(),
        }
    }
}

/// The echo server. Stops when dropped.
pub struct EchoUpstream {
    server: Server,
    seen: Arc<Mutex<Vec<Echoed>>>,
}

impl EchoUpstream {
    /// Listen on `127.0.0.1:0`.
    pub async fn start() -> Result<Self> {
        let seen: Arc<Mutex<Vec<Echoed>>> = Arc::default();
        let log = seen.clone();
        let handler: Handler = Arc::new(move |c| {
            let echoed = Echoed::from_captured(c);
            let body = serde_json::to_vec(&echoed).unwrap_or_default();
            if let Ok(mut log) = log.lock() {
                log.push(echoed);
            }
            Box::pin(async move { respond(200, "application/json", body) })
        });
        Ok(EchoUpstream {
            server: Server::bind(0, handler).await?,
            seen,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// `http://127.0.0.1:<port>`, for calling it directly.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// How many requests reached the upstream.
    pub fn request_count(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.len())
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Echoed> {
        self.seen.lock().map_or_else(|_| Vec::new(), |s| s.clone())
    }

    pub fn last_request(&self) -> Option<Echoed> {
        self.seen.lock().ok().and_then(|s| s.last().cloned())
    }

    /// Close the listener and all connections.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }
}

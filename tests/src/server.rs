//! A small in-process HTTP server (HTTP/1.1 and h2c) that the echo upstream
//! and the JWKS server share. Stopping it closes the listening socket *and*
//! every accepted connection, so a peer with pooled keep-alive connections
//! (Envoy) really sees the server go away.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// A loopback port nothing listens on (it is privileged and unused), so a
/// connection to `127.0.0.1:CLOSED_PORT` is refused at once. Use it for
/// clusters that must never be reachable.
pub const CLOSED_PORT: u16 = 1;

/// What a server saw of one request, body read in full.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names lower-case, in arrival order; repeated names repeat.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Captured) -> BoxFuture<Response<Full<Bytes>>> + Send + Sync>;

pub(crate) struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serve `handler` on `127.0.0.1:port` (0 picks a free port).
    pub async fn bind(port: u16, handler: Handler) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, handler, stopped));
        Ok(Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Close the listener and all connections; when this returns, a new
    /// connection to `addr()` is refused. Idempotent.
    pub async fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            // A join error means the task was cancelled or panicked: it is
            // gone either way, and with it the sockets it owned.
            let _ = task.await;
        }
    }

    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping the sender ends the accept loop, which then closes every
        // connection; abort covers a runtime that is already shutting down.
        drop(self.stop.take());
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(listener: TcpListener, handler: Handler, mut stopped: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let handler = handler.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(capture(req).await).await) }
                    });
                    // A connection error (peer reset, bad request) ends only
                    // that connection.
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn capture(req: Request<Incoming>) -> Captured {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Captured {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    }
}

/// A response with a body and a content type.
pub(crate) fn respond(
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

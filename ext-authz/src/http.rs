//! The HTTP server: `POST /oauth/token`, the OpenID discovery document and
//! JWKS, `/healthz`, `/readyz` and `/metrics`. hyper 1 with graceful
//! shutdown: on the drain signal it stops accepting, lets in-flight
//! requests finish within the grace period, and reports whether they did.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use mesh_auth_core::{Clock, SystemClock};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::exchange::GRANT_TOKEN_EXCHANGE;
use crate::state::State;

mod metrics;
pub mod token;

pub use metrics::HttpMetrics;
pub use token::{MAX_TOKEN_REQUEST_BYTES, OAuthError};

type Body = Full<Bytes>;

/// What the HTTP server answers from: the shared state, its metrics and
/// the registry `/metrics` renders, and whether the process is draining.
pub struct HttpContext {
    pub state: Arc<State>,
    pub metrics: HttpMetrics,
    pub registry: prometheus_client::registry::Registry,
    /// Set on SIGTERM: /readyz answers 503 so load balancers stop sending.
    pub draining: AtomicBool,
}

impl HttpContext {
    pub fn new(
        state: Arc<State>,
        metrics: HttpMetrics,
        registry: prometheus_client::registry::Registry,
    ) -> Self {
        HttpContext {
            state,
            metrics,
            registry,
            draining: AtomicBool::new(false),
        }
    }

    pub fn now(&self) -> u64 {
        SystemClock.now()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

pub(crate) fn no_store(r: &mut Response<Body>) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub async fn handle(ctx: Arc<HttpContext>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::POST, "/oauth/token") => token::token(&ctx, req).await,
        (_, "/oauth/token") => method_not_allowed("POST"),
        (Method::GET | Method::HEAD, "/.well-known/openid-configuration") => discovery(&ctx),
        (Method::GET | Method::HEAD, "/.well-known/jwks.json") => jwks(&ctx),
        (Method::GET | Method::HEAD, "/healthz") => respond(StatusCode::OK, "text/plain", "ok\n"),
        (Method::GET | Method::HEAD, "/readyz") => {
            if ctx.is_draining() {
                respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
            } else {
                respond(StatusCode::OK, "text/plain", "ready\n")
            }
        }
        (Method::GET, "/metrics") => metrics(&ctx),
        (
            _,
            "/.well-known/openid-configuration"
            | "/.well-known/jwks.json"
            | "/healthz"
            | "/readyz"
            | "/metrics",
        ) => method_not_allowed("GET, HEAD"),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method_not_allowed"}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn discovery(ctx: &HttpContext) -> Response<Body> {
    let iss = &ctx.state.own.issuer;
    let doc = json!({
        "issuer": iss,
        "jwks_uri": ctx.state.own.jwks_uri,
        "token_endpoint": format!("{iss}/oauth/token"),
        "grant_types_supported": [GRANT_TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["function"],
    });
    let mut r = json_response(StatusCode::OK, &doc);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

fn jwks(ctx: &HttpContext) -> Response<Body> {
    let now = ctx.now();
    let ring = ctx.state.keys.current();
    let doc = ring.jwks(now);
    let body = doc.to_string();
    ctx.metrics
        .jwks_served(doc["keys"].as_array().map_or(0, |k| k.len()));
    let etag = format!("\"{}\"", short_hash(body.as_bytes()));
    let mut r = respond(StatusCode::OK, "application/jwk-set+json", body);
    // Short: verifiers must see a new key soon after it is published.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn short_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn metrics(ctx: &HttpContext) -> Response<Body> {
    let since = ctx.state.keys.current().active_since(ctx.now());
    ctx.metrics.observe(!ctx.is_draining(), since);
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &ctx.registry).is_err() {
        return respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "metrics encoding failed\n",
        );
    }
    respond(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        text,
    )
}

/// A client must send a request's headers within this, and its body within
/// [`BODY_READ_TIMEOUT`]: a slow client cannot hold a connection and a task
/// forever (slowloris). Idle keep-alive connections are closed after
/// [`HEADER_READ_TIMEOUT`] too, when the next request's headers do not come
/// (hyper starts that timer whenever it waits for a request head).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve until `shutdown`, then stop accepting and wait for the requests in
/// flight. The caller bounds that wait (one grace period for both servers).
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<HttpContext>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Infallible> {
    serve_with(listener, ctx, shutdown, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header-read timeout (tests).
pub async fn serve_with(
    listener: TcpListener,
    ctx: Arc<HttpContext>,
    shutdown: impl Future<Output = ()>,
    header_read_timeout: Duration,
) -> Result<(), Infallible> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, say: pause instead of
                        // spinning on an accept that fails at once.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let ctx = ctx.clone();
                let svc = service_fn(move |req| {
                    let ctx = ctx.clone();
                    async move { Ok::<_, Infallible>(handle(ctx, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

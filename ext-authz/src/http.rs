//! The HTTP server: `POST /oauth/token`, the OpenID discovery document and
//! JWKS, `/healthz`, `/readyz` and `/metrics`. hyper 1 with graceful
//! shutdown: on the drain signal it stops accepting, lets in-flight
//! requests finish within the grace period, and reports whether they did.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::app::App;
use crate::exchange::{
    Audit, ExchangeRequest, GRANT_TOKEN_EXCHANGE, OAuthError, TOKEN_TYPE_ACCESS_TOKEN,
};
use crate::metrics::ExchangeLabels;

/// Largest `/oauth/token` body read. Subject tokens are capped at 16 KiB.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 64 * 1024;

type Body = Full<Bytes>;

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

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

/// The single place an [`OAuthError`] becomes HTTP.
fn oauth_error(e: &OAuthError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = json_response(status, &e.body());
    no_store(&mut r);
    r
}

fn no_store(r: &mut Response<Body>) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::POST, "/oauth/token") => token(&app, req).await,
        (_, "/oauth/token") => method_not_allowed("POST"),
        (Method::GET | Method::HEAD, "/.well-known/openid-configuration") => discovery(&app),
        (Method::GET | Method::HEAD, "/.well-known/jwks.json") => jwks(&app),
        (Method::GET | Method::HEAD, "/healthz") => respond(StatusCode::OK, "text/plain", "ok\n"),
        (Method::GET | Method::HEAD, "/readyz") => {
            if app.is_draining() {
                respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
            } else {
                respond(StatusCode::OK, "text/plain", "ready\n")
            }
        }
        (Method::GET, "/metrics") => metrics(&app),
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

async fn token(app: &App, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let mut audit = Audit {
        kind: "none",
        ..Audit::default()
    };
    let result = token_inner(app, req, &mut audit).await;
    app.metrics
        .exchange_seconds
        .observe(started.elapsed().as_secs_f64());
    let label = |result: &str| ExchangeLabels {
        result: result.to_owned(),
        kind: audit.kind.to_owned(),
    };
    match result {
        Ok(issued) => {
            app.metrics.exchanges.get_or_create(&label("ok")).inc();
            tracing::info!(
                target: "audit",
                event = "token_exchange",
                decision = "issued",
                sub = audit.sub.as_deref().unwrap_or(""),
                subject_iss = audit.subject_iss.as_deref().unwrap_or(""),
                kind = audit.kind,
                roles = ?audit.roles,
                permissions = ?audit.permissions,
                audience = ?audit.audience,
                jti = audit.jti.as_deref().unwrap_or(""),
                expires_in = issued.expires_in,
            );
            let mut body = json!({
                "access_token": issued.access_token,
                "issued_token_type": TOKEN_TYPE_ACCESS_TOKEN,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
            });
            if !issued.scope.is_empty() {
                body["scope"] = Value::from(issued.scope);
            }
            let mut r = json_response(StatusCode::OK, &body);
            no_store(&mut r);
            r
        }
        Err(e) => {
            app.metrics.exchanges.get_or_create(&label(e.code())).inc();
            tracing::info!(
                target: "audit",
                event = "token_exchange",
                decision = "refused",
                sub = audit.sub.as_deref().unwrap_or(""),
                subject_iss = audit.subject_iss.as_deref().unwrap_or(""),
                kind = audit.kind,
                error = e.code(),
                reason = e.description(),
            );
            oauth_error(&e)
        }
    }
}

async fn token_inner(
    app: &App,
    req: Request<Incoming>,
    audit: &mut Audit,
) -> Result<crate::exchange::Issued, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let query = req.uri().query().map(str::to_owned);
    let read = Limited::new(req.into_body(), MAX_TOKEN_REQUEST_BYTES).collect();
    let body = tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .map_err(|_| {
            OAuthError::InvalidRequest(format!(
                "request body not received within {}s",
                BODY_READ_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|_| {
            OAuthError::InvalidRequest(format!("request body over {MAX_TOKEN_REQUEST_BYTES} bytes"))
        })?
        .to_bytes();
    if !body.is_empty() && content_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let parsed = ExchangeRequest::parse(query.as_deref(), &body)?;
    app.exchanger.exchange(&parsed, app.now(), audit).await
}

fn discovery(app: &App) -> Response<Body> {
    let iss = app.issuer();
    let doc = json!({
        "issuer": iss,
        "jwks_uri": app.exchanger.settings.jwks_uri,
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

fn jwks(app: &App) -> Response<Body> {
    let now = app.now();
    let ring = app.exchanger.keys.current();
    let doc = ring.jwks(now);
    let body = doc.to_string();
    app.metrics.jwks_served.inc();
    app.metrics
        .published_keys
        .set(doc["keys"].as_array().map_or(0, |k| k.len() as i64));
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

fn metrics(app: &App) -> Response<Body> {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &app.registry).is_err() {
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
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Infallible> {
    serve_with(listener, app, shutdown, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header-read timeout (tests).
pub async fn serve_with(
    listener: TcpListener,
    app: Arc<App>,
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
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(handle(app, req).await) }
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

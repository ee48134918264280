//! `POST /oauth/token` over HTTP: read the form, run the exchange, and
//! answer. [`OAuthError::from`] is the one place an [`ExchangeError`]
//! becomes an RFC 6749 / RFC 8693 error body; every exchange is counted and
//! logged once, by its outcome's variant.

use std::time::Instant;

use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{Body, HttpContext, json_response, no_store};
use crate::exchange::subject::SubjectError;
use crate::exchange::{self, ExchangeError, ExchangeRequest, Issued, RequestError};
use crate::exchange::{Kind, TOKEN_TYPE_ACCESS_TOKEN};

/// Largest `/oauth/token` body read. Subject tokens are capped at 16 KiB.
pub const MAX_TOKEN_REQUEST_BYTES: usize = 64 * 1024;

/// An OAuth 2.0 error response (RFC 6749 section 5.2, RFC 8693 section
/// 2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: &'static str,
    status: u16,
    description: String,
}

impl From<&ExchangeError> for OAuthError {
    fn from(e: &ExchangeError) -> Self {
        let (code, status) = match e {
            ExchangeError::Request(RequestError::UnsupportedGrantType(_)) => {
                ("unsupported_grant_type", 400)
            }
            ExchangeError::Subject(SubjectError::IdpUnavailable(_)) => {
                ("temporarily_unavailable", 503)
            }
            ExchangeError::NoInvokePermission(_)
            | ExchangeError::AudienceNotAFunction(_)
            | ExchangeError::AudienceOutsidePermissions { .. }
            | ExchangeError::AudienceWithoutFunctionScope => ("invalid_target", 400),
            ExchangeError::Sign(_) => ("server_error", 500),
            ExchangeError::Request(_)
            | ExchangeError::Subject(_)
            | ExchangeError::SubjectExpired(_) => ("invalid_request", 400),
        };
        OAuthError {
            code,
            status,
            description: e.to_string(),
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn body(&self) -> Value {
        json!({"error": self.code, "error_description": self.description})
    }

    fn response(&self) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = json_response(status, &self.body());
        no_store(&mut r);
        r
    }
}

pub(super) async fn token(ctx: &HttpContext, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (kind, result) = match read_form(req).await {
        Ok(form) => {
            let now = ctx.now();
            (
                Some(form.kind()),
                exchange::run(&ctx.state, &form, now).await,
            )
        }
        Err(e) => (None, Err(e.into())),
    };
    ctx.metrics
        .exchange_seconds
        .observe(started.elapsed().as_secs_f64());
    let kind = kind.map_or("none", Kind::as_str);
    match result {
        Ok(issued) => {
            ctx.metrics.exchanged(kind, "ok");
            audit_issued(&issued);
            let mut body = json!({
                "access_token": issued.access_token,
                "issued_token_type": TOKEN_TYPE_ACCESS_TOKEN,
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
            });
            if issued.kind == Kind::Function {
                body["scope"] = Value::from("function");
            }
            let mut r = json_response(StatusCode::OK, &body);
            no_store(&mut r);
            r
        }
        Err(e) => {
            ctx.metrics.exchanged(kind, e.reason());
            let oauth = OAuthError::from(&e);
            tracing::info!(
                target: "audit",
                event = "token_exchange",
                decision = "refused",
                kind,
                reason = e.reason(),
                error = oauth.code(),
                description = oauth.description(),
            );
            oauth.response()
        }
    }
}

/// Who got what. Never the token itself.
fn audit_issued(issued: &Issued) {
    let s = &issued.subject;
    tracing::info!(
        target: "audit",
        event = "token_exchange",
        decision = "issued",
        sub = s.fed_sub,
        subject_iss = s.fed_iss,
        kind = issued.kind.as_str(),
        roles = ?s.roles,
        permissions = ?issued.grant.claims.function.as_ref().map(|f| &f.permissions),
        audience = ?issued.grant.claims.function.as_ref().and_then(|f| f.audience.as_ref()),
        jti = issued.jti,
        expires_in = issued.expires_in,
    );
}

/// The exchange's parameters from the query and a form body read within
/// the size and time limits.
async fn read_form(req: Request<Incoming>) -> Result<ExchangeRequest, RequestError> {
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
    let body = tokio::time::timeout(super::BODY_READ_TIMEOUT, read)
        .await
        .map_err(|_| RequestError::BodyTimeout(super::BODY_READ_TIMEOUT.as_secs()))?
        .map_err(|_| RequestError::BodyTooLarge(MAX_TOKEN_REQUEST_BYTES))?
        .to_bytes();
    if !body.is_empty() && content_type.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(RequestError::NotAForm);
    }
    ExchangeRequest::parse(query.as_deref(), &body)
}

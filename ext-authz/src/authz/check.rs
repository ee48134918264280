//! One Check, from Envoy's `CheckRequest` to a [`Decision`], and from the
//! decision to a `CheckResponse`: [`respond`] is the only place an outcome
//! becomes a response.

use std::borrow::Cow;

use envoy_types::ext_authz::v3::pb::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse, QueryParameter,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::google::rpc;
use mesh_auth_core::bearer::{bearer_token, challenge};
use mesh_auth_core::headers::{DENIAL_HEADERS, is_forwardable};
use mesh_auth_core::invoke::body;
use mesh_auth_core::{
    Claims, GatewayClaims, InvokeDenial, TokenError, TokenKind, authorize_invoke,
};
use tonic::{Code, Status};

use super::Policy;
use super::routes::{self, Action, Body, Family, RequestParts, Resource, RouteError};

pub use mesh_auth_core::headers::SUBJECT_HEADER;

/// Envoy's marker on a body cut at `with_request_body.max_request_bytes`.
const PARTIAL_BODY_HEADER: &str = "x-envoy-auth-partial-body";

/// The realm of 401s on the API. Invocations use the core's
/// [`mesh_auth_core::invoke::REALM`], which faas-cli looks for.
pub const API_REALM: &str = "OpenFaaS API";

/// Why a request was denied. Each variant has one status, one body and one
/// `WWW-Authenticate`, applied in [`respond`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// 401: no `Authorization: Bearer` on an API call.
    #[error("no bearer token")]
    MissingToken,
    /// 401: the API token itself is bad.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// 401: a valid function token on an API call.
    #[error("not an API token (it has a function claim)")]
    NotApiToken,
    /// 403: the token's policies do not allow the action on the resource.
    #[error("{action} on {resource} is not allowed by the token's policies")]
    NotAllowed { action: Action, resource: Resource },
    /// 401 or 403: an invocation refused by the sidecar filter's rule.
    #[error(transparent)]
    Invoke(InvokeDenial),
    /// 400, 403 or 413: the route has no action, or is malformed.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// 403: the CheckRequest describes no HTTP request.
    #[error("the check request carries no HTTP request")]
    NotHttp,
}

impl Denial {
    pub fn status(&self) -> u16 {
        match self {
            Denial::MissingToken | Denial::Token(_) | Denial::NotApiToken => 401,
            Denial::NotAllowed { .. } | Denial::NotHttp => 403,
            Denial::Invoke(d) => d.status(),
            Denial::Route(e) => e.status(),
        }
    }

    /// A stable snake_case name for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingToken => "missing_token",
            Denial::Token(e) => e.code(),
            Denial::NotApiToken => "not_api_token",
            Denial::NotAllowed { .. } => "not_allowed",
            Denial::Invoke(d) => d.code(),
            Denial::Route(e) => e.code(),
            Denial::NotHttp => "not_http",
        }
    }

    /// The `WWW-Authenticate` value, for 401s only.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Denial::MissingToken => Some(challenge(API_REALM, None)),
            Denial::Token(_) | Denial::NotApiToken => Some(challenge(API_REALM, Some(self.code()))),
            Denial::Invoke(d) => d.www_authenticate(),
            Denial::NotAllowed { .. } | Denial::Route(_) | Denial::NotHttp => None,
        }
    }

    /// The response body: short, and the same words as the watchdog and the
    /// sidecar filter where they overlap.
    pub fn body(&self) -> Cow<'static, str> {
        match self {
            Denial::MissingToken => body::MISSING_TOKEN.into(),
            Denial::Token(_) => body::INVALID_TOKEN.into(),
            Denial::NotApiToken => "invalid token: not an API token\n".into(),
            Denial::Invoke(d) => d.body().into(),
            Denial::NotAllowed { action, resource } => {
                format!("insufficient permissions: {action} on {resource}\n").into()
            }
            Denial::Route(e) => format!("{e}\n").into(),
            Denial::NotHttp => "not an HTTP request\n".into(),
        }
    }
}

/// Every way a Check can end other than an allow: the errors of this
/// boundary. [`respond`] maps them; only [`CheckError::NotReady`] is a fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The live state cannot decide yet: a fault, for `failure_mode_allow`.
    #[error("ext-authz is not ready to decide")]
    NotReady,
}

/// What an allowed request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// Forwarded in [`SUBJECT_HEADER`].
    pub subject: Option<String>,
    /// Set as `?namespace=` on the forwarded request.
    pub set_query_namespace: Option<String>,
}

/// Who asked, from a verified token, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub sub: Option<String>,
    pub fed_iss: Option<String>,
    pub jti: Option<String>,
}

impl Who {
    fn of(claims: &Claims<GatewayClaims>) -> Self {
        Who {
            sub: claims.sub.clone(),
            fed_iss: claims.custom.fed_iss.clone(),
            jti: claims.jti.clone(),
        }
    }
}

/// A decision and what the audit log says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub method: String,
    /// The request path, without its query, shortened.
    pub path: String,
    /// The IAM action (or `Function:Invoke`), once the route is known.
    pub action: Option<&'static str>,
    /// The resource checked, once known.
    pub resource: Option<String>,
    /// The caller, once the token verified.
    pub who: Option<Who>,
    pub outcome: Result<Allow, CheckError>,
}

impl Decision {
    /// The HTTP status the client sees (200 when allowed upstream).
    pub fn http_status(&self) -> u16 {
        match &self.outcome {
            Ok(_) => 200,
            Err(CheckError::Denied(d)) => d.status(),
            Err(CheckError::NotReady) => 503,
        }
    }

    /// `ok`, a denial's code, or `not_ready`.
    pub fn reason(&self) -> &'static str {
        match &self.outcome {
            Ok(_) => "ok",
            Err(CheckError::Denied(d)) => d.code(),
            Err(CheckError::NotReady) => "not_ready",
        }
    }
}

/// Decide one CheckRequest. Also what `faas-mesh-auth explain` runs, with
/// a [`Policy`] that reads tokens offline.
pub fn decide(policy: &dyn Policy, req: &CheckRequest) -> Decision {
    let http = req
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let mut d = Decision {
        method: http.map(|h| h.method.clone()).unwrap_or_default(),
        path: http
            .map(|h| routes::loggable_path(&h.path).into_owned())
            .unwrap_or_default(),
        action: None,
        resource: None,
        who: None,
        outcome: Err(CheckError::Denied(Denial::NotHttp)),
    };
    let Some(http) = http else {
        return d;
    };
    if !policy.ready() {
        d.outcome = Err(CheckError::NotReady);
        return d;
    }
    let view = HttpView(http);
    d.outcome = match routes::family(&http.path) {
        Family::Api => decide_api(policy, &view, &mut d),
        Family::Invoke => decide_invoke(policy, &view, &mut d),
        Family::Other => Err(Denial::Route(RouteError::Unknown)),
    }
    .map_err(CheckError::Denied);
    d
}

fn decide_api(policy: &dyn Policy, view: &HttpView<'_>, d: &mut Decision) -> Result<Allow, Denial> {
    let auth = view.header("authorization");
    let token = auth
        .as_deref()
        .and_then(|h| bearer_token(h).ok())
        .ok_or(Denial::MissingToken)?;
    let verified = policy.verify(token)?;
    let claims = verified.claims;
    d.who = Some(Who::of(&claims));
    if claims.custom.kind() != TokenKind::Api {
        return Err(Denial::NotApiToken);
    }
    let api = routes::classify_api(&RequestParts {
        method: &view.0.method,
        path: &view.0.path,
        body: view.body(),
    })?;
    d.action = Some(api.action.as_str());
    d.resource = Some(api.resource.to_string());
    if !policy.allows(&claims, api.action, &api.resource) {
        return Err(Denial::NotAllowed {
            action: api.action,
            resource: api.resource,
        });
    }
    Ok(Allow {
        subject: claims.sub,
        set_query_namespace: api.set_query_namespace,
    })
}

fn decide_invoke(
    policy: &dyn Policy,
    view: &HttpView<'_>,
    d: &mut Decision,
) -> Result<Allow, Denial> {
    let auth = view.header("authorization");
    let token = auth
        .as_deref()
        .and_then(|h| bearer_token(h).ok())
        .ok_or(Denial::Invoke(InvokeDenial::MissingToken))?;
    let verified = policy
        .verify(token)
        .map_err(|e| Denial::Invoke(InvokeDenial::Token(e)))?;
    let claims = verified.claims;
    d.who = Some(Who::of(&claims));
    let id = routes::classify_invoke(&view.0.path)?;
    d.action = Some(Action::FunctionInvoke.as_str());
    d.resource = Some(id.to_string());
    authorize_invoke(&claims, &id).map_err(Denial::Invoke)?;
    Ok(Allow {
        subject: claims.sub,
        set_query_namespace: None,
    })
}

/// The HTTP request inside a CheckRequest.
struct HttpView<'a>(&'a HttpRequest);

impl<'a> HttpView<'a> {
    /// A request header by lower-case name. With `encode_raw_headers`, Envoy
    /// sends `header_map` instead of `headers`; repeated headers are joined
    /// with `,` as Envoy does for `headers`.
    fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        let http = self.0;
        if let Some(v) = http.headers.get(name) {
            return Some(Cow::Borrowed(v.as_str()));
        }
        if let Some((_, v)) = http
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            return Some(Cow::Borrowed(v.as_str()));
        }
        let values: Vec<Cow<'a, str>> = http
            .header_map
            .iter()
            .flat_map(|m| m.headers.iter())
            .filter(|h| h.key.eq_ignore_ascii_case(name))
            .map(|h| {
                if h.raw_value.is_empty() {
                    Cow::Borrowed(h.value.as_str())
                } else {
                    String::from_utf8_lossy(&h.raw_value)
                }
            })
            .collect();
        match values.len() {
            0 => None,
            1 => values.into_iter().next(),
            _ => Some(Cow::Owned(values.join(","))),
        }
    }

    /// The body as Envoy forwarded it, or why it is not here.
    fn body(&self) -> Body<'a> {
        let http = self.0;
        if self
            .header(PARTIAL_BODY_HEADER)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Body::Truncated;
        }
        let bytes: &'a [u8] = if http.raw_body.is_empty() {
            http.body.as_bytes()
        } else {
            &http.raw_body
        };
        if !bytes.is_empty() {
            Body::Complete(bytes)
        } else if self.may_have_body() {
            Body::NotForwarded
        } else {
            Body::Empty
        }
    }

    /// Could the request carry a body we were not sent? HTTP/1 declares one
    /// with `content-length` or `transfer-encoding`; HTTP/2 and 3 need
    /// neither, so there only `content-length: 0` proves there is none.
    fn may_have_body(&self) -> bool {
        if self.header("transfer-encoding").is_some() {
            return true;
        }
        match self.header("content-length") {
            Some(len) => len.trim() != "0",
            None => !self.0.protocol.starts_with("HTTP/1"),
        }
    }
}

/// The one place an outcome becomes Envoy's answer.
pub(crate) fn respond(outcome: &Result<Allow, CheckError>) -> Result<CheckResponse, Status> {
    match outcome {
        Ok(allow) => Ok(allowed(allow)),
        Err(CheckError::Denied(denial)) => Ok(denied(denial)),
        Err(CheckError::NotReady) => Err(Status::unavailable(CheckError::NotReady.to_string())),
    }
}

fn allowed(allow: &Allow) -> CheckResponse {
    let mut ok = OkHttpResponse::default();
    // Envoy applies `headers` before `headers_to_remove`, so the subject is
    // overwritten (which drops every client copy) rather than also removed.
    match allow.subject.as_deref().filter(|s| is_forwardable(s)) {
        Some(sub) => ok.headers.push(header(SUBJECT_HEADER, sub)),
        None => ok.headers_to_remove.push(SUBJECT_HEADER.to_owned()),
    }
    if let Some(ns) = &allow.set_query_namespace {
        ok.query_parameters_to_set.push(QueryParameter {
            key: "namespace".to_owned(),
            value: ns.clone(),
        });
    }
    CheckResponse {
        status: Some(rpc::Status {
            code: Code::Ok as i32,
            message: String::new(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::OkResponse(ok)),
        ..CheckResponse::default()
    }
}

fn denied(denial: &Denial) -> CheckResponse {
    let status = denial.status();
    let mut headers: Vec<HeaderValueOption> =
        DENIAL_HEADERS.iter().map(|(k, v)| header(k, v)).collect();
    if let Some(challenge) = denial.www_authenticate() {
        headers.push(header("www-authenticate", &challenge));
    }
    let code = match status {
        401 => Code::Unauthenticated,
        400 => Code::InvalidArgument,
        _ => Code::PermissionDenied,
    };
    CheckResponse {
        status: Some(rpc::Status {
            code: code as i32,
            message: denial.code().to_owned(),
            details: Vec::new(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body: denial.body().into_owned(),
        })),
        ..CheckResponse::default()
    }
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    #[allow(deprecated)]
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        keep_empty_value: false,
    }
}

#[cfg(test)]
mod tests;

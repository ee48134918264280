//! The OAuth 2.0 / OpenID Connect client side of `login` and `token`:
//! discovery, the three ways to get an IdP token (authorization code with
//! PKCE on a loopback redirect, the device grant, client credentials), and
//! the RFC 8693 exchange at the gateway. Blocking HTTP (ureq, rustls): a
//! command does one thing at a time and needs no async runtime.

use std::time::Duration;

use serde_json::Value;

mod device;
mod error;
mod exchange;
pub mod jwt;
mod pkce;

pub use device::device_grant;
pub use error::OauthError;
pub use exchange::{TokenKind, exchange};
pub use jwt::Claims;
pub use pkce::{AuthCodeOpts, auth_code};

/// How long one HTTP request may take, start to end.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Cap on a response body read into memory.
const MAX_BODY: u64 = 1 << 20;

/// A blocking HTTP client that hands back every status (errors are
/// decided by the caller, which knows the protocol).
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
}

/// A response's status and body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as a JSON object, or why not.
    pub fn json(&self) -> Result<serde_json::Map<String, Value>, String> {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err("the body is not a JSON object".to_owned()),
            Err(e) => Err(format!(
                "the body is not JSON ({e}): {}",
                snippet(&self.body)
            )),
        }
    }
}

/// At most 200 characters of a body, for error messages.
pub fn snippet(body: &str) -> String {
    let s: String = body.chars().take(200).collect();
    if s.len() < body.len() {
        format!("{s}…")
    } else {
        s
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new(HTTP_TIMEOUT)
    }
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("faas-mesh-auth/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
        }
    }

    pub fn get(&self, url: &str) -> Result<Reply, ureq::Error> {
        let resp = self
            .agent
            .get(url)
            .header("accept", "application/json")
            .call()?;
        read(resp)
    }

    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Reply, ureq::Error> {
        let resp = self
            .agent
            .post(url)
            .header("accept", "application/json")
            .send_form(form.iter().copied())?;
        read(resp)
    }
}

fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()?;
    Ok(Reply { status, body })
}

/// The endpoints OIDC discovery gives.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authorization: Option<String>,
    pub token: String,
    pub device_authorization: Option<String>,
}

/// `GET ISSUER/.well-known/openid-configuration`, checked: its `issuer` is
/// the one asked for (OIDC Discovery section 4.3), and S256 is offered when
/// the IdP lists its PKCE methods.
pub fn discover(http: &Http, issuer: &str) -> Result<Endpoints, OauthError> {
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let bad = |reason: String| OauthError::Discovery {
        url: url.clone(),
        reason,
    };
    let reply = http.get(&url).map_err(|e| OauthError::Unreachable {
        what: "the IdP",
        url: url.clone(),
        reason: e.to_string(),
    })?;
    if reply.status != 200 {
        return Err(bad(format!(
            "HTTP {}: {}",
            reply.status,
            snippet(&reply.body)
        )));
    }
    let doc = reply.json().map_err(bad)?;
    let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
    let found = text("issuer").ok_or_else(|| bad("no `issuer`".to_owned()))?;
    if found.trim_end_matches('/') != issuer {
        return Err(bad(format!(
            "it names issuer {found}, not {issuer}: use the exact issuer URL"
        )));
    }
    if let Some(methods) = doc
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
        && !methods.iter().any(|m| m.as_str() == Some("S256"))
    {
        return Err(bad("the IdP does not offer PKCE with S256".to_owned()));
    }
    Ok(Endpoints {
        authorization: text("authorization_endpoint"),
        token: text("token_endpoint").ok_or_else(|| bad("no `token_endpoint`".to_owned()))?,
        device_authorization: text("device_authorization_endpoint"),
    })
}

/// A token endpoint's answer: the tokens on 200, the IdP's `error` (and
/// `error_description`) otherwise.
pub fn token_response(
    url: &str,
    reply: &Reply,
) -> Result<serde_json::Map<String, Value>, OauthError> {
    let body = reply.json();
    if reply.status == 200 {
        return body.map_err(|reason| OauthError::BadResponse {
            url: url.to_owned(),
            reason,
        });
    }
    match body {
        Ok(m) if m.get("error").and_then(Value::as_str).is_some() => Err(OauthError::IdpRefused {
            error: m
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            description: m
                .get("error_description")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }),
        _ => Err(OauthError::BadResponse {
            url: url.to_owned(),
            reason: format!("HTTP {}: {}", reply.status, snippet(&reply.body)),
        }),
    }
}

/// The machine's way: the client-credentials grant (RFC 6749 section 4.4),
/// secret in the form (`client_secret_post`, as the OpenFaaS docs' Keycloak
/// example). Returns the access token, which machines exchange.
pub fn client_credentials(
    http: &Http,
    endpoints: &Endpoints,
    client_id: &str,
    client_secret: &str,
    scope: Option<&str>,
    audience: Option<&str>,
) -> Result<String, OauthError> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    if let Some(a) = audience {
        form.push(("audience", a));
    }
    let tokens = post_token(http, &endpoints.token, &form)?;
    string_field(&endpoints.token, &tokens, "access_token")
}

/// POST to a token endpoint and read its answer.
pub fn post_token(
    http: &Http,
    url: &str,
    form: &[(&str, &str)],
) -> Result<serde_json::Map<String, Value>, OauthError> {
    let reply = http
        .post_form(url, form)
        .map_err(|e| OauthError::Unreachable {
            what: "the IdP",
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    token_response(url, &reply)
}

pub fn string_field(
    url: &str,
    m: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<String, OauthError> {
    m.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| OauthError::BadResponse {
            url: url.to_owned(),
            reason: format!("no `{key}` in the answer"),
        })
}

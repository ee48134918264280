//! `POST /oauth/token`: RFC 8693 token exchange, as faas-cli and the
//! OpenFaaS go-sdk use it. An IdP token (from a trusted JwtIssuer) or one of
//! our API tokens goes in; a function token (`scope=function`) or an API
//! token comes out. Every failure is an [`OAuthError`], turned into an HTTP
//! response in exactly one place ([`OAuthError::status`] and
//! [`OAuthError::body`]).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{Audiences, Duration as JwtDuration, JWTClaims};
use mesh_auth_core::Claims;
use mesh_auth_core::claims::{FunctionGrant, GatewayClaims};
use mesh_auth_core::iam::{ClaimMap, IamConfig};
use mesh_auth_core::permission::PermissionPattern;
use mesh_auth_core::verify::{Validation, Verified, verify_with};

use crate::crypto::RingSignatures;
use rand::RngCore as _;
use serde_json::{Value, json};

use crate::iam_store::IamStore;
use crate::issuers::{Issuers, SubjectError};
use crate::signing::KeyStore;

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Subject tokens larger than this are refused before any parsing.
pub use crate::issuers::MAX_SUBJECT_TOKEN_BYTES;
/// At most this many `audience` values per request.
const MAX_AUDIENCES: usize = 64;

/// An OAuth 2.0 error response (RFC 6749 section 5.2, RFC 8693 section 2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// The subject's IdP is unreachable: retry later.
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    #[error("server_error: {0}")]
    ServerError(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::TemporarilyUnavailable(_) => "temporarily_unavailable",
            OAuthError::ServerError(_) => "server_error",
        }
    }

    pub fn description(&self) -> &str {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidTarget(d)
            | OAuthError::TemporarilyUnavailable(d)
            | OAuthError::ServerError(d) => d,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            OAuthError::TemporarilyUnavailable(_) => 503,
            OAuthError::ServerError(_) => 500,
            _ => 400,
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": self.code(), "error_description": self.description()})
    }
}

fn invalid(d: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRequest(d.into())
}

/// The request's parameters, from the query string and the form body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeRequest {
    pub grant_type: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub scope: Option<String>,
    pub audiences: Vec<String>,
}

impl ExchangeRequest {
    /// Merge the query string and a form-encoded body. `audience` may repeat
    /// (and accumulates); any other parameter given twice with different
    /// values is an error (RFC 6749 section 3.2).
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, OAuthError> {
        let mut req = ExchangeRequest::default();
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .chain(form_urlencoded::parse(body));
        for (k, v) in pairs {
            let slot = match k.as_ref() {
                "audience" => {
                    if !v.is_empty() && !req.audiences.iter().any(|a| *a == v) {
                        req.audiences.push(v.into_owned());
                    }
                    continue;
                }
                "grant_type" => &mut req.grant_type,
                "subject_token" => &mut req.subject_token,
                "subject_token_type" => &mut req.subject_token_type,
                "requested_token_type" => &mut req.requested_token_type,
                "scope" => &mut req.scope,
                // Unknown parameters are ignored (RFC 6749 section 3.2).
                _ => continue,
            };
            match slot {
                Some(existing) if *existing != v => {
                    return Err(invalid(format!("parameter {k} given more than once")));
                }
                _ => *slot = Some(v.into_owned()),
            }
        }
        if req.audiences.len() > MAX_AUDIENCES {
            return Err(invalid(format!("at most {MAX_AUDIENCES} audience values")));
        }
        Ok(req)
    }

    fn wants_function_token(&self) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "function"))
    }
}

/// Exchange settings fixed at startup.
#[derive(Debug, Clone)]
pub struct ExchangeSettings {
    /// Our issuer: the gateway's public URL.
    pub issuer: String,
    /// The jwks_uri the discovery document advertises.
    pub jwks_uri: String,
    pub leeway_seconds: u64,
    /// Issue tokens that outlive the subject token (off by default).
    pub allow_past_subject_expiry: bool,
}

/// What was issued, for the response and the audit log.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub audit: Audit,
}

/// Who asked for what: logged for every decision. Never holds a token.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub sub: Option<String>,
    pub subject_iss: Option<String>,
    pub kind: &'static str,
    pub jti: Option<String>,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub audience: Vec<String>,
}

/// The subject, verified, with what its identity is worth.
struct Subject {
    /// `fed:<sub>` as it will appear in our tokens.
    fed_sub: String,
    /// The original issuer.
    fed_iss: String,
    /// Last second the subject token is valid.
    exp: u64,
    policy_names: Vec<String>,
    permissions: Vec<String>,
    roles: Vec<String>,
    token_expiry: std::time::Duration,
    /// One of our own API tokens: what it buys never outlives it, whatever
    /// `allow_past_subject_expiry` says.
    ours: bool,
}

pub struct Exchanger {
    pub settings: ExchangeSettings,
    pub iam: Arc<IamStore>,
    pub issuers: Arc<Issuers>,
    pub keys: Arc<KeyStore>,
}

impl Exchanger {
    /// Run one exchange. `audit` is filled in as far as the request got,
    /// for the caller's log line, whatever the outcome.
    pub async fn exchange(
        &self,
        req: &ExchangeRequest,
        now: u64,
        audit: &mut Audit,
    ) -> Result<Issued, OAuthError> {
        match req.grant_type.as_deref() {
            None | Some("") => return Err(invalid("grant_type is required")),
            Some(GRANT_TOKEN_EXCHANGE) => {}
            Some(other) => {
                return Err(OAuthError::UnsupportedGrantType(format!(
                    "grant_type {other:?} is not supported; use {GRANT_TOKEN_EXCHANGE}"
                )));
            }
        }
        let token = match req.subject_token.as_deref() {
            Some(t) if !t.trim().is_empty() => t.trim(),
            _ => return Err(invalid("subject_token is required")),
        };
        match req.subject_token_type.as_deref() {
            None | Some("") => return Err(invalid("subject_token_type is required")),
            Some(TOKEN_TYPE_ID_TOKEN | TOKEN_TYPE_JWT | TOKEN_TYPE_ACCESS_TOKEN) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "subject_token_type {other:?} is not supported"
                )));
            }
        }
        match req.requested_token_type.as_deref() {
            None | Some("" | TOKEN_TYPE_ACCESS_TOKEN | TOKEN_TYPE_JWT) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "requested_token_type {other:?} is not supported"
                )));
            }
        }
        if token.len() > MAX_SUBJECT_TOKEN_BYTES {
            return Err(invalid(format!(
                "subject_token is over {MAX_SUBJECT_TOKEN_BYTES} bytes"
            )));
        }
        let function = req.wants_function_token();
        audit.kind = if function { "function" } else { "api" };
        audit.audience = req.audiences.clone();

        let iam = self.iam.current();
        let subject = self.subject(&iam, token, now, audit).await?;
        audit.roles = subject.roles.clone();

        // The verifier allowed clock leeway; this rule has none: a subject
        // past its exp buys nothing, and what it buys never outlives it.
        // Otherwise an expired API token renews itself every leeway period.
        if subject.exp <= now {
            return Err(invalid(format!(
                "subject_token expired {}s ago",
                now - subject.exp
            )));
        }
        let lifetime = subject.token_expiry.as_secs().max(1);
        let exp = if self.settings.allow_past_subject_expiry && !subject.ours {
            now + lifetime
        } else {
            (now + lifetime).min(subject.exp)
        };
        let expires_in = exp - now;

        let custom = if function {
            if subject.permissions.is_empty() {
                return Err(OAuthError::InvalidTarget(format!(
                    "{} may not invoke any function (no Function:Invoke permission)",
                    subject.fed_sub
                )));
            }
            let granted: Vec<PermissionPattern> = subject
                .permissions
                .iter()
                .map(|p| PermissionPattern::new(p))
                .collect();
            for aud in &req.audiences {
                if !is_function_pattern(aud) {
                    return Err(OAuthError::InvalidTarget(format!(
                        "audience {aud:?} is not a function (namespace:name)"
                    )));
                }
                let wanted = PermissionPattern::new(aud);
                if !granted.iter().any(|g| g.covers(&wanted)) {
                    return Err(OAuthError::InvalidTarget(format!(
                        "audience {aud:?} is outside the permissions of {}",
                        subject.fed_sub
                    )));
                }
            }
            audit.permissions = subject.permissions.clone();
            GatewayClaims {
                function: Some(FunctionGrant {
                    permissions: subject.permissions.clone(),
                    audience: (!req.audiences.is_empty()).then(|| req.audiences.clone()),
                }),
                policy: None,
                fed_iss: Some(subject.fed_iss.clone()),
            }
        } else {
            if !req.audiences.is_empty() {
                return Err(OAuthError::InvalidTarget(
                    "audience applies to function tokens only (scope=function)".into(),
                ));
            }
            GatewayClaims {
                function: None,
                policy: Some(subject.policy_names.clone()),
                fed_iss: Some(subject.fed_iss.clone()),
            }
        };

        let jti = new_jti();
        audit.jti = Some(jti.clone());
        let claims = JWTClaims {
            issued_at: Some(JwtDuration::from_secs(now)),
            expires_at: Some(JwtDuration::from_secs(exp)),
            // No nbf: OpenFaaS's watchdog allows only 1 s of clock skew, and
            // a token is valid from `iat` anyway.
            invalid_before: None,
            issuer: Some(self.settings.issuer.clone()),
            subject: Some(subject.fed_sub.clone()),
            audiences: Some(Audiences::AsSet(
                [self.settings.issuer.clone()].into_iter().collect(),
            )),
            jwt_id: Some(jti),
            nonce: None,
            custom,
        };
        let ring = self.keys.current();
        let access_token = ring
            .active(now)
            .sign(claims)
            .map_err(|e| OAuthError::ServerError(format!("signing failed: {e}")))?;
        Ok(Issued {
            access_token,
            expires_in,
            scope: if function {
                "function".into()
            } else {
                String::new()
            },
            audit: audit.clone(),
        })
    }

    /// Verify the subject token and work out what it is entitled to.
    async fn subject(
        &self,
        iam: &IamConfig,
        token: &str,
        now: u64,
        audit: &mut Audit,
    ) -> Result<Subject, OAuthError> {
        let iss = unverified_issuer(token)?;
        audit.subject_iss = Some(iss.clone());
        if iss == self.settings.issuer {
            return self.our_api_token(iam, token, now, audit);
        }
        let issuer = iam.issuer(&iss).ok_or_else(|| {
            invalid(format!(
                "subject_token issuer {iss:?} is not trusted (no JwtIssuer)"
            ))
        })?;
        let verified = self
            .issuers
            .verify(issuer, token, now)
            .await
            .map_err(|e| match e {
                SubjectError::Unavailable { .. } => {
                    OAuthError::TemporarilyUnavailable(e.to_string())
                }
                SubjectError::Token(t) => invalid(format!("subject_token rejected: {t}")),
            })?;
        let sub = verified
            .claims
            .sub
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("subject_token has no sub claim"))?;
        audit.sub = Some(sub.clone());
        let claims = full_claims(&verified);
        let eval = iam.evaluate(&claims);
        if !eval.is_match() {
            return Err(invalid(format!(
                "no Role matches subject {sub:?} from {iss}"
            )));
        }
        Ok(Subject {
            fed_sub: format!("fed:{sub}"),
            fed_iss: iss,
            exp: verified.claims.exp,
            policy_names: eval.policy_names().map(str::to_owned).collect(),
            permissions: eval
                .function_permissions()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            roles: eval.roles().iter().map(|r| r.name().to_owned()).collect(),
            token_expiry: issuer.token_expiry(),
            ours: false,
        })
    }

    /// One of our own API tokens: its policies are re-read from the current
    /// configuration, so a tightened Policy applies at once.
    fn our_api_token(
        &self,
        iam: &IamConfig,
        token: &str,
        now: u64,
        audit: &mut Audit,
    ) -> Result<Subject, OAuthError> {
        let ring = self.keys.current();
        let validation = Validation::new(
            [self.settings.issuer.as_str()],
            [self.settings.issuer.as_str()],
        )
        .map_err(|e| OAuthError::ServerError(e.to_string()))?
        .with_leeway(self.settings.leeway_seconds);
        let verified =
            verify_with::<ClaimMap>(token, &ring.key_set(now), &validation, now, &RingSignatures)
                .map_err(|e| invalid(format!("subject_token rejected: {e}")))?;
        let claims = full_claims(&verified);
        let gateway: GatewayClaims =
            serde_json::from_value(Value::Object(verified.claims.custom.clone()))
                .map_err(|_| invalid("subject_token has malformed gateway claims"))?;
        if gateway.function.is_some() {
            return Err(invalid(
                "a function token cannot be exchanged; exchange an API or identity token",
            ));
        }
        let sub = verified.claims.sub.clone().unwrap_or_default();
        audit.sub = Some(sub.clone());
        // Trust in the original issuer is re-checked at every exchange: a
        // JwtIssuer that was removed ends every chain that came from it.
        let fed_iss = gateway
            .fed_iss
            .ok_or_else(|| invalid("subject_token has no fed:iss claim"))?;
        let issuer = iam.issuer(&fed_iss).ok_or_else(|| {
            invalid(format!(
                "subject_token was issued for {fed_iss:?}, which is no longer trusted (no JwtIssuer)"
            ))
        })?;
        let names = gateway.policy.unwrap_or_default();
        if !names.iter().any(|n| iam.policy(n).is_some()) {
            return Err(invalid(format!(
                "none of the subject_token's policies {names:?} exists any more"
            )));
        }
        let grants = iam.grants_for_policies(&names, &claims);
        Ok(Subject {
            fed_sub: sub,
            fed_iss,
            exp: verified.claims.exp,
            policy_names: grants.policy_names().map(str::to_owned).collect(),
            permissions: grants
                .function_permissions()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            roles: Vec::new(),
            token_expiry: issuer.token_expiry(),
            ours: true,
        })
    }
}

/// `iss` from the payload, unverified: only to choose whose keys verify it.
fn unverified_issuer(token: &str) -> Result<String, OAuthError> {
    let not_jwt = || invalid("subject_token is not a JWT");
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt());
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| not_jwt())?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| not_jwt())?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid("subject_token has no iss claim"))
}

/// All claims, registered ones included, as the IAM engine reads them.
fn full_claims(v: &Verified<ClaimMap>) -> ClaimMap {
    let c: &Claims<ClaimMap> = &v.claims;
    let mut m = c.custom.clone();
    let mut put = |k: &str, val: Option<Value>| {
        if let Some(val) = val {
            m.insert(k.to_owned(), val);
        }
    };
    put("iss", c.iss.clone().map(Value::from));
    put("sub", c.sub.clone().map(Value::from));
    put(
        "aud",
        (!c.aud.is_empty()).then(|| Value::from(c.aud.clone())),
    );
    put("exp", Some(Value::from(c.exp)));
    put("nbf", c.nbf.map(Value::from));
    put("iat", c.iat.map(Value::from));
    put("jti", c.jti.clone().map(Value::from));
    m
}

/// `*`, `ns:*` or `ns:name` shapes: what an audience may name.
fn is_function_pattern(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let Some((ns, name)) = s.split_once(':') else {
        return false;
    };
    let label = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*')
    };
    label(ns) && label(name)
}

/// 128 random bits, base64url.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;

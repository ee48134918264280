//! One RFC 8693 token exchange, as faas-cli and the OpenFaaS go-sdk use it:
//! an IdP token (from a trusted JwtIssuer) or one of our API tokens goes
//! in; a function token (`scope=function`) or an API token comes out.
//!
//! [`run`] reads top to bottom: check the parameters, verify the subject
//! token ([`subject`]), decide what it is worth ([`grant`], pure), sign.
//! Every failure is an [`ExchangeError`], which the HTTP adapter
//! (`http/token.rs`) turns into an OAuth error body in one place.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{Audiences, Duration as JwtDuration, JWTClaims};
use mesh_auth_core::claims::{FunctionGrant, GatewayClaims};
use mesh_auth_core::permission::PermissionPattern;
use rand::RngCore as _;

use crate::signing::KeyError;
use crate::state::State;

mod request;
pub mod subject;

pub use request::{ExchangeRequest, RequestError};
pub use subject::{MAX_SUBJECT_TOKEN_BYTES, Subject, SubjectError};

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Why an exchange issued nothing.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Subject(#[from] SubjectError),
    /// The verifier allows clock leeway past `exp`; the exchange does not.
    #[error("subject_token expired {0}s ago")]
    SubjectExpired(u64),
    #[error("{0} may not invoke any function (no Function:Invoke permission)")]
    NoInvokePermission(String),
    #[error("audience {0:?} is not a function (namespace:name)")]
    AudienceNotAFunction(String),
    #[error("audience {audience:?} is outside the permissions of {sub}")]
    AudienceOutsidePermissions { audience: String, sub: String },
    #[error("audience applies to function tokens only (scope=function)")]
    AudienceWithoutFunctionScope,
    #[error(transparent)]
    Sign(#[from] KeyError),
}

impl ExchangeError {
    /// A stable snake_case name for the metric and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            ExchangeError::Request(e) => e.reason(),
            ExchangeError::Subject(e) => e.reason(),
            ExchangeError::SubjectExpired(_) => "subject_expired",
            ExchangeError::NoInvokePermission(_) => "no_invoke_permission",
            ExchangeError::AudienceNotAFunction(_) => "audience_not_a_function",
            ExchangeError::AudienceOutsidePermissions { .. } => "audience_outside_permissions",
            ExchangeError::AudienceWithoutFunctionScope => "audience_without_function_scope",
            ExchangeError::Sign(_) => "signing_failed",
        }
    }
}

/// Which kind of token the request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `scope=function`: a function token.
    Function,
    /// An API token, for the gateway's `/system/` API.
    Api,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Function => "function",
            Kind::Api => "api",
        }
    }
}

/// What was decided, before it is signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Our `sub`: `fed:<sub>` of the original identity.
    pub sub: String,
    pub exp: u64,
    pub claims: GatewayClaims,
}

impl Grant {
    pub fn expires_in(&self, now: u64) -> u64 {
        self.exp.saturating_sub(now)
    }
}

/// What was issued, for the response and the audit log. Never logged whole:
/// it holds the token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub kind: Kind,
    pub jti: String,
    pub subject: Subject,
    pub grant: Grant,
}

/// Run one exchange at `now`.
pub async fn run(state: &State, req: &ExchangeRequest, now: u64) -> Result<Issued, ExchangeError> {
    let token = req.checked_subject_token()?;
    let subject = subject::verify(state, token, now).await?;
    let grant = grant(&subject, req, now, state.own.allow_past_subject_expiry)?;
    let jti = new_jti();
    let claims = JWTClaims {
        issued_at: Some(JwtDuration::from_secs(now)),
        expires_at: Some(JwtDuration::from_secs(grant.exp)),
        // No nbf: OpenFaaS's watchdog allows only 1 s of clock skew, and a
        // token is valid from `iat` anyway.
        invalid_before: None,
        issuer: Some(state.own.issuer.clone()),
        subject: Some(grant.sub.clone()),
        audiences: Some(Audiences::AsSet(
            [state.own.issuer.clone()].into_iter().collect(),
        )),
        jwt_id: Some(jti.clone()),
        nonce: None,
        custom: grant.claims.clone(),
    };
    let access_token = state.keys.current().active(now).sign(claims)?;
    Ok(Issued {
        access_token,
        expires_in: grant.expires_in(now),
        kind: req.kind(),
        jti,
        subject,
        grant,
    })
}

/// What `subject` may have for `req` at `now`: a function token or an API
/// token, never outliving the subject (unless `allow_past_subject_expiry`
/// and the subject is an IdP's token), and with any audience inside the
/// subject's permissions.
pub fn grant(
    subject: &Subject,
    req: &ExchangeRequest,
    now: u64,
    allow_past_subject_expiry: bool,
) -> Result<Grant, ExchangeError> {
    // No leeway here: a subject past its exp buys nothing, and what it
    // buys never outlives it. Otherwise an expired API token renews itself
    // every leeway period.
    if subject.exp <= now {
        return Err(ExchangeError::SubjectExpired(now - subject.exp));
    }
    let lifetime = subject.token_expiry.as_secs().max(1);
    let exp = if allow_past_subject_expiry && !subject.ours {
        now + lifetime
    } else {
        (now + lifetime).min(subject.exp)
    };
    let claims = match req.kind() {
        Kind::Function => GatewayClaims {
            function: Some(function_grant(subject, &req.audiences)?),
            policy: None,
            fed_iss: Some(subject.fed_iss.clone()),
        },
        Kind::Api => {
            if !req.audiences.is_empty() {
                return Err(ExchangeError::AudienceWithoutFunctionScope);
            }
            GatewayClaims {
                function: None,
                policy: Some(subject.policy_names.clone()),
                fed_iss: Some(subject.fed_iss.clone()),
            }
        }
    };
    Ok(Grant {
        sub: subject.fed_sub.clone(),
        exp,
        claims,
    })
}

/// The subject's permissions, narrowed by the requested audiences, each of
/// which must name functions the permissions cover.
fn function_grant(subject: &Subject, audiences: &[String]) -> Result<FunctionGrant, ExchangeError> {
    if subject.permissions.is_empty() {
        return Err(ExchangeError::NoInvokePermission(subject.fed_sub.clone()));
    }
    let granted: Vec<PermissionPattern> = subject
        .permissions
        .iter()
        .map(|p| PermissionPattern::new(p))
        .collect();
    for aud in audiences {
        if !is_function_pattern(aud) {
            return Err(ExchangeError::AudienceNotAFunction(aud.clone()));
        }
        let wanted = PermissionPattern::new(aud);
        if !granted.iter().any(|g| g.covers(&wanted)) {
            return Err(ExchangeError::AudienceOutsidePermissions {
                audience: aud.clone(),
                sub: subject.fed_sub.clone(),
            });
        }
    }
    Ok(FunctionGrant {
        permissions: subject.permissions.clone(),
        audience: (!audiences.is_empty()).then(|| audiences.to_vec()),
    })
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

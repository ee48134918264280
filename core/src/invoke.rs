//! May this verified token invoke this function? The rule the sidecar filter
//! applies, and ext-authz too when a gateway checks `/function/` centrally.

use crate::bearer::challenge;
use crate::claims::{Claims, GatewayClaims};
use crate::permission::{FunctionId, any_matches};
use crate::verify::TokenError;

/// Why an invocation was refused, and so which response it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeDenial {
    /// 401: no usable bearer token.
    #[error("no bearer token")]
    MissingToken,
    /// 401: the token itself is bad.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// 401: a valid token of the wrong kind (an API token).
    #[error("not a function token (no function claim)")]
    NotAFunctionToken,
    /// 403: valid, but `function.permissions` does not cover the function.
    #[error("permissions do not cover {0}")]
    NotPermitted(String),
    /// 403: valid, but `function.audience` leaves the function out.
    #[error("audience does not include {0}")]
    OutsideAudience(String),
}

impl InvokeDenial {
    /// 401 or 403.
    pub fn status(&self) -> u16 {
        match self {
            InvokeDenial::NotPermitted(_) | InvokeDenial::OutsideAudience(_) => 403,
            _ => 401,
        }
    }

    /// A stable snake_case name for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeDenial::MissingToken => "missing_token",
            InvokeDenial::Token(e) => e.code(),
            InvokeDenial::NotAFunctionToken => "not_function_token",
            InvokeDenial::NotPermitted(_) => "not_permitted",
            InvokeDenial::OutsideAudience(_) => "outside_audience",
        }
    }

    /// The `WWW-Authenticate` value, for 401s only, in [`REALM`].
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            InvokeDenial::MissingToken => Some(challenge(REALM, None)),
            InvokeDenial::Token(_) | InvokeDenial::NotAFunctionToken => {
                Some(challenge(REALM, Some(self.code())))
            }
            InvokeDenial::NotPermitted(_) | InvokeDenial::OutsideAudience(_) => None,
        }
    }

    /// The response body: short, and the watchdog's words where it has them.
    pub fn body(&self) -> &'static str {
        match self {
            InvokeDenial::MissingToken => body::MISSING_TOKEN,
            InvokeDenial::Token(_) => body::INVALID_TOKEN,
            InvokeDenial::NotAFunctionToken => "invalid token: not a function token\n",
            InvokeDenial::NotPermitted(_) | InvokeDenial::OutsideAudience(_) => {
                body::INSUFFICIENT_PERMISSIONS
            }
        }
    }
}

/// Denial bodies the filter and ext-authz share, word for word.
pub mod body {
    /// The watchdog's own text for a request without a token.
    pub const MISSING_TOKEN: &str = "Bearer must be present in Authorization header\n";
    pub const INVALID_TOKEN: &str = "invalid token\n";
    pub const INSUFFICIENT_PERMISSIONS: &str = "insufficient permissions\n";
}

/// The realm faas-cli looks for before it exchanges a token and retries.
pub const REALM: &str = "IAM function invoke";

/// Authorize a verified token for `id`: a function token whose permissions
/// match, and whose audience, when present and non-empty, matches too.
pub fn authorize_invoke(
    claims: &Claims<GatewayClaims>,
    id: &FunctionId,
) -> Result<(), InvokeDenial> {
    let grant = claims
        .custom
        .function
        .as_ref()
        .ok_or(InvokeDenial::NotAFunctionToken)?;
    if !any_matches(grant.permissions.iter().map(String::as_str), id) {
        return Err(InvokeDenial::NotPermitted(id.to_string()));
    }
    match &grant.audience {
        Some(aud) if !aud.is_empty() && !any_matches(aud.iter().map(String::as_str), id) => {
            Err(InvokeDenial::OutsideAudience(id.to_string()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;

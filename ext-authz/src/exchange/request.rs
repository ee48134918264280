//! The exchange's parameters (RFC 6749 section 3.2, RFC 8693 section 2.1),
//! from the query string and the form body, and the rules they must meet
//! before any token is looked at.

use super::{
    GRANT_TOKEN_EXCHANGE, Kind, MAX_SUBJECT_TOKEN_BYTES, TOKEN_TYPE_ACCESS_TOKEN,
    TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT,
};

/// At most this many `audience` values per request.
const MAX_AUDIENCES: usize = 64;

/// A request that breaks the protocol's rules. Every one is
/// `invalid_request`, but for [`RequestError::UnsupportedGrantType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("grant_type {0:?} is not supported; use {GRANT_TOKEN_EXCHANGE}")]
    UnsupportedGrantType(String),
    #[error("{param} {value:?} is not supported")]
    UnsupportedTokenType { param: &'static str, value: String },
    #[error("parameter {0} given more than once")]
    Repeated(String),
    #[error("at most {MAX_AUDIENCES} audience values")]
    TooManyAudiences,
    #[error("subject_token is over {MAX_SUBJECT_TOKEN_BYTES} bytes")]
    SubjectTooLarge,
    #[error("request body over {0} bytes")]
    BodyTooLarge(usize),
    #[error("request body not received within {0}s")]
    BodyTimeout(u64),
    #[error("body must be application/x-www-form-urlencoded")]
    NotAForm,
}

impl RequestError {
    pub fn reason(&self) -> &'static str {
        match self {
            RequestError::Missing(_) => "missing_parameter",
            RequestError::UnsupportedGrantType(_) => "unsupported_grant_type",
            RequestError::UnsupportedTokenType { .. } => "unsupported_token_type",
            RequestError::Repeated(_) => "repeated_parameter",
            RequestError::TooManyAudiences => "too_many_audiences",
            RequestError::SubjectTooLarge => "subject_too_large",
            RequestError::BodyTooLarge(_) => "body_too_large",
            RequestError::BodyTimeout(_) => "body_timeout",
            RequestError::NotAForm => "not_a_form",
        }
    }
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
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Self, RequestError> {
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
                    return Err(RequestError::Repeated(k.into_owned()));
                }
                _ => *slot = Some(v.into_owned()),
            }
        }
        if req.audiences.len() > MAX_AUDIENCES {
            return Err(RequestError::TooManyAudiences);
        }
        Ok(req)
    }

    pub fn wants_function_token(&self) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "function"))
    }

    pub fn kind(&self) -> Kind {
        if self.wants_function_token() {
            Kind::Function
        } else {
            Kind::Api
        }
    }

    /// The subject token, once every parameter is one we support.
    pub fn checked_subject_token(&self) -> Result<&str, RequestError> {
        match self.grant_type.as_deref() {
            None | Some("") => return Err(RequestError::Missing("grant_type")),
            Some(GRANT_TOKEN_EXCHANGE) => {}
            Some(other) => return Err(RequestError::UnsupportedGrantType(other.to_owned())),
        }
        let token = match self.subject_token.as_deref() {
            Some(t) if !t.trim().is_empty() => t.trim(),
            _ => return Err(RequestError::Missing("subject_token")),
        };
        match self.subject_token_type.as_deref() {
            None | Some("") => return Err(RequestError::Missing("subject_token_type")),
            Some(TOKEN_TYPE_ID_TOKEN | TOKEN_TYPE_JWT | TOKEN_TYPE_ACCESS_TOKEN) => {}
            Some(other) => {
                return Err(RequestError::UnsupportedTokenType {
                    param: "subject_token_type",
                    value: other.to_owned(),
                });
            }
        }
        match self.requested_token_type.as_deref() {
            None | Some("" | TOKEN_TYPE_ACCESS_TOKEN | TOKEN_TYPE_JWT) => {}
            Some(other) => {
                return Err(RequestError::UnsupportedTokenType {
                    param: "requested_token_type",
                    value: other.to_owned(),
                });
            }
        }
        if token.len() > MAX_SUBJECT_TOKEN_BYTES {
            return Err(RequestError::SubjectTooLarge);
        }
        Ok(token)
    }
}

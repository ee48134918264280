//! Extracting a bearer token from an `Authorization` header value.
//!
//! The scheme is matched case-insensitively (RFC 7235 section 2.1), so
//! `bearer` is accepted as well as the `Bearer` that faas-cli sends.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("authorization scheme is not Bearer")]
    NotBearer,
    #[error("bearer token is empty")]
    Empty,
}

/// The token from `Bearer <token>`, with surrounding whitespace removed.
pub fn bearer_token(header: &str) -> Result<&str, BearerError> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_once([' ', '\t']).unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let token = rest.trim_matches([' ', '\t']);
    if token.is_empty() {
        Err(BearerError::Empty)
    } else {
        Ok(token)
    }
}

#[cfg(test)]
mod tests;

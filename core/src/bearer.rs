//! The Bearer scheme both ways: the token from an `Authorization` header
//! value, and the `WWW-Authenticate` challenge a 401 carries.
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

/// `Bearer realm="…"`, with `error="invalid_token"` and the reason's code
/// when the token was there but bad (RFC 6750 section 3). Parameters are
/// joined with `", "` because faas-cli splits them on exactly that, so a
/// code must never contain a comma or a quote (they are snake_case).
pub fn challenge(realm: &str, invalid_token: Option<&str>) -> String {
    match invalid_token {
        None => format!(r#"Bearer realm="{realm}""#),
        Some(code) => {
            format!(r#"Bearer realm="{realm}", error="invalid_token", error_description="{code}""#)
        }
    }
}

#[cfg(test)]
mod tests;

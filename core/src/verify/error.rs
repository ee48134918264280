//! Why a token was refused, and jwt-simple's errors sorted into those
//! reasons by type.

use jwt_simple::{Error as JwtError, JWTError};

use crate::jwks::Algorithm;

/// Why a token was refused. `code()` gives a stable name for metrics and
/// `error_description`s; `Display` is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TooLong { len: usize, max: usize },
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token header declares critical extensions")]
    CriticalHeader,
    #[error("token header has no kid")]
    MissingKid,
    #[error("no trusted key has kid {0:?}")]
    UnknownKid(String),
    #[error("token alg {found:?} does not match key alg {expected}")]
    AlgorithmMismatch { expected: Algorithm, found: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("token claims are not a valid JSON claims set")]
    MalformedClaims,
    #[error("token has no exp claim")]
    MissingExpiry,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token issuer is not trusted")]
    WrongIssuer,
    #[error("token audience does not include this service")]
    WrongAudience,
}

impl TokenError {
    /// A stable snake_case name: metric suffixes, logs and `error_description`.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::TooLong { .. } => "too_long",
            TokenError::Malformed(_) => "malformed",
            TokenError::CriticalHeader => "crit_header",
            TokenError::MissingKid => "missing_kid",
            TokenError::UnknownKid(_) => "unknown_kid",
            TokenError::AlgorithmMismatch { .. } => "alg_mismatch",
            TokenError::BadSignature => "bad_signature",
            TokenError::MalformedClaims => "malformed_claims",
            TokenError::MissingExpiry => "missing_exp",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
        }
    }

    /// Every variant, for pre-registering per-reason metrics.
    pub const CODES: [&'static str; 14] = [
        "too_long",
        "malformed",
        "crit_header",
        "missing_kid",
        "unknown_kid",
        "alg_mismatch",
        "bad_signature",
        "malformed_claims",
        "missing_exp",
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "wrong_issuer",
        "wrong_audience",
    ];
}

/// A rejected validation configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("at least one issuer is required")]
    NoIssuer,
    #[error("at least one audience is required")]
    NoAudience,
    #[error("max token length must be at least 64 bytes")]
    MaxTooSmall,
}

/// Map jwt-simple's errors by type. Steps 1-4 already ran, so what is left is
/// the signature, the claims encoding and the claim checks.
pub(super) fn classify(e: &JwtError) -> TokenError {
    if e.downcast_ref::<serde_json::Error>().is_some() {
        return TokenError::MalformedClaims;
    }
    match e.downcast_ref::<JWTError>() {
        Some(JWTError::InvalidSignature) => TokenError::BadSignature,
        Some(JWTError::TokenHasExpired) => TokenError::Expired,
        Some(JWTError::TokenNotValidYet) => TokenError::NotYetValid,
        Some(JWTError::ClockDrift) => TokenError::IssuedInFuture,
        Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => {
            TokenError::WrongIssuer
        }
        Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
            TokenError::WrongAudience
        }
        Some(JWTError::NotJWT) => TokenError::Malformed("typ is not JWT"),
        Some(JWTError::UnknownCriticalExtension) => TokenError::CriticalHeader,
        // Anything else (an encoding error after our own checks, a signature
        // of the wrong length) means the token is not one we could have made.
        _ => TokenError::BadSignature,
    }
}

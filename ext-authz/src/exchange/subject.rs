//! Who the subject token speaks for, and what the IAM objects give them:
//! an IdP's token is verified with the issuer's keys ([`Issuers`]) and
//! matched against the Roles; one of our API tokens is verified with our
//! keys and its policies are read again from the current configuration.
//!
//! [`Issuers`]: crate::issuers::Issuers

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mesh_auth_core::Claims;
use mesh_auth_core::claims::GatewayClaims;
use mesh_auth_core::iam::{ClaimMap, DEFAULT_TOKEN_EXPIRY, Grants, IamConfig, JwtIssuer};
use mesh_auth_core::verify::TokenError;
use serde_json::Value;

use crate::issuers::IdpError;
use crate::state::State;

/// Subject tokens larger than this are refused before any parsing.
pub const MAX_SUBJECT_TOKEN_BYTES: usize = crate::issuers::MAX_SUBJECT_TOKEN_BYTES;

/// Why the subject token buys nothing. All `invalid_request` but
/// [`SubjectError::IdpUnavailable`], which is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    #[error("subject_token is not a JWT")]
    NotAJwt,
    #[error("subject_token has no iss claim")]
    NoIssuer,
    #[error("subject_token issuer {0:?} is not trusted (no JwtIssuer)")]
    UntrustedIssuer(String),
    /// The issuer's keys cannot be had now: retry later.
    #[error(transparent)]
    IdpUnavailable(IdpError),
    #[error("subject_token rejected: {0}")]
    Token(#[from] TokenError),
    #[error("subject_token has no sub claim")]
    NoSub,
    #[error("no Role matches subject {sub:?} from {iss}")]
    NoMatchingRole { sub: String, iss: String },
    #[error("a function token cannot be exchanged; exchange an API or identity token")]
    FunctionToken,
    #[error("subject_token has malformed gateway claims")]
    MalformedClaims,
    #[error("subject_token has no fed:iss claim")]
    NoFedIss,
    /// Trust in the original issuer is checked again at every exchange.
    #[error("subject_token was issued for {0:?}, which is no longer trusted (no JwtIssuer)")]
    NoLongerTrusted(String),
    #[error("none of the subject_token's policies {0:?} exists any more")]
    PoliciesGone(Vec<String>),
}

impl From<IdpError> for SubjectError {
    fn from(e: IdpError) -> Self {
        match e {
            IdpError::Token(t) => SubjectError::Token(t),
            unavailable => SubjectError::IdpUnavailable(unavailable),
        }
    }
}

impl SubjectError {
    pub fn reason(&self) -> &'static str {
        match self {
            SubjectError::NotAJwt => "not_a_jwt",
            SubjectError::NoIssuer => "no_issuer",
            SubjectError::UntrustedIssuer(_) => "untrusted_issuer",
            SubjectError::IdpUnavailable(_) => "idp_unavailable",
            SubjectError::Token(_) => "subject_rejected",
            SubjectError::NoSub => "no_sub",
            SubjectError::NoMatchingRole { .. } => "no_matching_role",
            SubjectError::FunctionToken => "function_token",
            SubjectError::MalformedClaims => "malformed_claims",
            SubjectError::NoFedIss => "no_fed_iss",
            SubjectError::NoLongerTrusted(_) => "issuer_no_longer_trusted",
            SubjectError::PoliciesGone(_) => "policies_gone",
        }
    }
}

/// The subject, verified, with what its identity is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// `fed:<sub>` as it will appear in our tokens.
    pub fed_sub: String,
    /// The original issuer.
    pub fed_iss: String,
    /// Last second the subject token is valid.
    pub exp: u64,
    pub policy_names: Vec<String>,
    pub permissions: Vec<String>,
    /// The Roles that matched (none for our own API tokens).
    pub roles: Vec<String>,
    /// The JwtIssuer's `tokenExpiry`: how long what it buys may live.
    pub token_expiry: Duration,
    /// One of our own API tokens: what it buys never outlives it.
    pub ours: bool,
}

impl Subject {
    /// What `grants` give `fed_sub`; no Roles, the default token lifetime.
    fn new(fed_sub: String, fed_iss: String, exp: u64, grants: &Grants<'_>) -> Self {
        Subject {
            fed_sub,
            fed_iss,
            exp,
            policy_names: grants.policy_names().map(str::to_owned).collect(),
            permissions: grants
                .function_permissions()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            roles: Vec::new(),
            token_expiry: DEFAULT_TOKEN_EXPIRY,
            ours: false,
        }
    }
}

/// Verify `token` and work out what it is entitled to.
pub async fn verify(state: &State, token: &str, now: u64) -> Result<Subject, SubjectError> {
    let iss = unverified_issuer(token)?;
    let iam = state.iam.current();
    if iss == state.own.issuer {
        return our_api_token(state, &iam, token, now);
    }
    let issuer = iam
        .issuer(&iss)
        .ok_or_else(|| SubjectError::UntrustedIssuer(iss.clone()))?;
    let verified = state.issuers.verify(issuer, token, now).await?;
    of_idp_claims(&iam, issuer, &verified.claims)
}

/// What an IdP's token, verified against `issuer`, is worth: its claims
/// matched against the Roles. Pure; `faas-mesh-auth explain` calls it too.
pub fn of_idp_claims(
    iam: &IamConfig,
    issuer: &JwtIssuer,
    claims: &Claims<ClaimMap>,
) -> Result<Subject, SubjectError> {
    let sub = claims
        .sub
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or(SubjectError::NoSub)?;
    let eval = iam.evaluate(&claims.to_claim_map());
    if !eval.is_match() {
        return Err(SubjectError::NoMatchingRole {
            sub,
            iss: issuer.iss().to_owned(),
        });
    }
    let mut subject = Subject::new(
        format!("fed:{sub}"),
        issuer.iss().to_owned(),
        claims.exp,
        eval.grants(),
    );
    subject.roles = eval.roles().iter().map(|r| r.name().to_owned()).collect();
    subject.token_expiry = issuer.token_expiry();
    Ok(subject)
}

/// One of our own API tokens: its policies are read again from the current
/// configuration, so a tightened Policy applies at once, and a JwtIssuer
/// that was removed ends every chain that came from it.
fn our_api_token(
    state: &State,
    iam: &IamConfig,
    token: &str,
    now: u64,
) -> Result<Subject, SubjectError> {
    let verified = state.verify_own::<ClaimMap>(token, now)?;
    of_api_claims(iam, &verified.claims)
}

/// What one of our API tokens, verified, is worth now. Pure;
/// `faas-mesh-auth explain` calls it too.
pub fn of_api_claims(
    iam: &IamConfig,
    verified: &Claims<ClaimMap>,
) -> Result<Subject, SubjectError> {
    let claims = verified.to_claim_map();
    let gateway: GatewayClaims = serde_json::from_value(Value::Object(verified.custom.clone()))
        .map_err(|_| SubjectError::MalformedClaims)?;
    if gateway.function.is_some() {
        return Err(SubjectError::FunctionToken);
    }
    let fed_iss = gateway.fed_iss.ok_or(SubjectError::NoFedIss)?;
    let issuer = iam
        .issuer(&fed_iss)
        .ok_or_else(|| SubjectError::NoLongerTrusted(fed_iss.clone()))?;
    let names = gateway.policy.unwrap_or_default();
    if !names.iter().any(|n| iam.policy(n).is_some()) {
        return Err(SubjectError::PoliciesGone(names));
    }
    let sub = verified.sub.clone().unwrap_or_default();
    let grants = iam.grants_for_policies(&names, &claims);
    let mut subject = Subject::new(sub, fed_iss, verified.exp, &grants);
    subject.token_expiry = issuer.token_expiry();
    subject.ours = true;
    Ok(subject)
}

/// `iss` from the payload, unverified: only to choose whose keys verify it.
pub fn unverified_issuer(token: &str) -> Result<String, SubjectError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SubjectError::NotAJwt);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SubjectError::NotAJwt)?;
    let claims: Value = serde_json::from_slice(&bytes).map_err(|_| SubjectError::NotAJwt)?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(SubjectError::NoIssuer)
}

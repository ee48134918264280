//! The claims of the tokens faas-mesh-auth issues and accepts.
//!
//! Function tokens carry `function: {permissions, audience?}`; API tokens
//! carry `policy` and `fed:iss` instead. Both share the registered claims.

use jwt_simple::prelude::{Audiences, JWTClaims};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::UnixSeconds;

/// Registered claims plus a custom part, after verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims<C> {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: UnixSeconds,
    pub nbf: Option<UnixSeconds>,
    pub iat: Option<UnixSeconds>,
    pub jti: Option<String>,
    pub custom: C,
}

impl<C> Claims<C> {
    /// None when the token has no `exp`: we never accept unbounded tokens.
    pub(crate) fn from_jwt(c: JWTClaims<C>) -> Option<Self> {
        let exp = c.expires_at?.as_secs();
        let aud = match c.audiences {
            None => Vec::new(),
            Some(Audiences::AsString(s)) => vec![s],
            Some(Audiences::AsSet(set)) => {
                let mut v: Vec<String> = set.into_iter().collect();
                v.sort_unstable();
                v
            }
        };
        Some(Claims {
            iss: c.issuer,
            sub: c.subject,
            aud,
            exp,
            nbf: c.invalid_before.map(|t| t.as_secs()),
            iat: c.issued_at.map(|t| t.as_secs()),
            jti: c.jwt_id,
            custom: c.custom,
        })
    }
}

impl<C: Serialize> Claims<C> {
    /// Every claim, as IAM conditions read them: the custom claims, then the
    /// registered ones the token has (`aud` only when not empty). The one
    /// builder for exchanges and Checks, so a condition sees the same keys
    /// in both.
    pub fn to_claim_map(&self) -> crate::iam::ClaimMap {
        let mut m = match serde_json::to_value(&self.custom) {
            Ok(Value::Object(m)) => m,
            _ => crate::iam::ClaimMap::new(),
        };
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put("iss", self.iss.clone().map(Value::from));
        put("sub", self.sub.clone().map(Value::from));
        put(
            "aud",
            (!self.aud.is_empty()).then(|| Value::from(self.aud.clone())),
        );
        put("exp", Some(Value::from(self.exp)));
        put("nbf", self.nbf.map(Value::from));
        put("iat", self.iat.map(Value::from));
        put("jti", self.jti.clone().map(Value::from));
        m
    }
}

/// `function` in a function token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionGrant {
    /// `namespace:name` patterns the token may invoke.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// When present and non-empty, a further restriction: the function must
    /// match one of these too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
}

/// The custom claims of both token kinds we issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionGrant>,
    /// API tokens: the names of the policies that matched at exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Vec<String>>,
    /// API tokens: the issuer of the exchanged subject token.
    #[serde(rename = "fed:iss", default, skip_serializing_if = "Option::is_none")]
    pub fed_iss: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Function,
    Api,
}

impl GatewayClaims {
    pub fn kind(&self) -> TokenKind {
        if self.function.is_some() {
            TokenKind::Function
        } else {
            TokenKind::Api
        }
    }
}

#[cfg(test)]
mod tests;

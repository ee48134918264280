//! The compiled, validated IAM objects. Built only by
//! [`IamConfig::compile`](super::IamConfig::compile); read-only after.

use std::time::Duration;

use super::ClaimMap;
use super::action::{Action, ActionPattern, Resource, ResourcePattern};
use super::condition::Condition;

/// A trusted token issuer.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) iss: String,
    pub(crate) iss_internal: Option<String>,
    pub(crate) aud: Vec<String>,
    pub(crate) token_expiry: Duration,
}

impl JwtIssuer {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the object was read from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The `iss` tokens carry, exactly as configured.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    pub fn iss_internal(&self) -> Option<&str> {
        self.iss_internal.as_deref()
    }

    /// Where to fetch OIDC discovery and keys from: `issInternal` when set
    /// (an in-cluster address), else `iss`.
    pub fn discovery_base(&self) -> &str {
        self.iss_internal.as_deref().unwrap_or(&self.iss)
    }

    /// Accepted audiences; a token's `aud` must contain one. Never empty.
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// Lifetime of the tokens issued in exchange for this issuer's tokens.
    pub fn token_expiry(&self) -> Duration {
        self.token_expiry
    }
}

/// A named set of statements.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) origin: String,
    pub(crate) statements: Vec<Statement>,
}

impl Policy {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Never empty.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

/// One `Allow` statement: any of its actions on any of its resources,
/// when its condition (if any) holds.
#[derive(Debug, Clone)]
pub struct Statement {
    pub(crate) sid: String,
    pub(crate) actions: Vec<ActionPattern>,
    pub(crate) resources: Vec<ResourcePattern>,
    pub(crate) condition: Option<Condition>,
}

impl Statement {
    /// May be empty: `sid` is optional.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    pub fn actions(&self) -> &[ActionPattern] {
        &self.actions
    }

    pub fn resources(&self) -> &[ResourcePattern] {
        &self.resources
    }

    pub fn condition(&self) -> Option<&Condition> {
        self.condition.as_ref()
    }

    /// Does the condition hold for these claims? True without a condition.
    pub fn applies_to(&self, claims: &ClaimMap) -> bool {
        self.condition.as_ref().is_none_or(|c| c.matches(claims))
    }

    pub fn covers_action(&self, action: Action) -> bool {
        self.actions.iter().any(|a| a.matches(action))
    }

    /// Action and resource only; the caller checks [`Self::applies_to`].
    pub fn grants(&self, action: Action, resource: &Resource<'_>) -> bool {
        self.covers_action(action) && self.resources.iter().any(|r| r.matches(resource))
    }
}

/// Maps subjects whose claims match to a set of policies.
#[derive(Debug, Clone)]
pub struct Role {
    pub(crate) name: String,
    pub(crate) origin: String,
    /// The policies named, deduplicated, in spec order.
    pub(crate) policy_names: Vec<String>,
    /// The same, as indexes into the config's policies.
    pub(crate) policies: Vec<usize>,
    pub(crate) condition: Condition,
}

impl Role {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn policy_names(&self) -> &[String] {
        &self.policy_names
    }

    /// The principal and condition, merged into one AND'd condition. Never
    /// empty.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    pub fn matches(&self, claims: &ClaimMap) -> bool {
        self.condition.matches(claims)
    }
}

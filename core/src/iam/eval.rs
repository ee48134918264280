//! The result of matching a token against the config: the Roles, their
//! Policies, and what those grant.

use std::collections::HashSet;

use super::ClaimMap;
use super::action::{Action, Resource};
use super::model::{Policy, Role, Statement};

/// The Roles a subject token's claims match, and what they grant.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    pub(crate) roles: Vec<&'a Role>,
    pub(crate) grants: Grants<'a>,
    pub(crate) examined: usize,
}

impl<'a> Evaluation<'a> {
    /// False when no Role matched: the exchange must be refused.
    pub fn is_match(&self) -> bool {
        !self.roles.is_empty()
    }

    /// Matched Roles, in config order.
    pub fn roles(&self) -> &[&'a Role] {
        &self.roles
    }

    /// How many Roles were tested in full, out of all in the config: a
    /// measure of how well the index narrowed them down.
    pub fn roles_examined(&self) -> usize {
        self.examined
    }

    pub fn grants(&self) -> &Grants<'a> {
        &self.grants
    }

    /// Names of the Policies of the matched Roles: an API token's `policy`.
    pub fn policy_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.grants.policy_names()
    }

    /// See [`Grants::function_permissions`].
    pub fn function_permissions(&self) -> Vec<&'a str> {
        self.grants.function_permissions()
    }

    /// See [`Grants::allows`].
    pub fn allows(&self, action: Action, resource: &Resource<'_>) -> bool {
        self.grants.allows(action, resource)
    }
}

/// A set of Policies, with the statements whose conditions held for the
/// claims they were built with.
#[derive(Debug, Clone, Default)]
pub struct Grants<'a> {
    policies: Vec<&'a Policy>,
    statements: Vec<&'a Statement>,
    missing: Vec<String>,
}

impl<'a> Grants<'a> {
    /// `policies` must hold no repeats.
    pub(crate) fn new(policies: Vec<&'a Policy>, claims: &ClaimMap, missing: Vec<String>) -> Self {
        let statements = policies
            .iter()
            .flat_map(|p| p.statements())
            .filter(|s| s.applies_to(claims))
            .collect();
        Grants {
            policies,
            statements,
            missing,
        }
    }

    /// The Policies, in first-seen order, without repeats.
    pub fn policies(&self) -> &[&'a Policy] {
        &self.policies
    }

    pub fn policy_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.policies.iter().map(|p| p.name())
    }

    /// Statements in effect: those without a condition or whose condition
    /// held.
    pub fn statements(&self) -> &[&'a Statement] {
        &self.statements
    }

    /// Names asked for that the config no longer has (an API token minted
    /// before a Policy was deleted). They grant nothing; worth a log line.
    pub fn missing_policies(&self) -> &[String] {
        &self.missing
    }

    /// A function token's `permissions`: the resources, as written, of the
    /// statements that allow `Function:Invoke` (by name, `Function:*` or
    /// `*`). Deduplicated, in first-seen order.
    pub fn function_permissions(&self) -> Vec<&'a str> {
        let mut seen = HashSet::new();
        self.statements
            .iter()
            .filter(|s| s.covers_action(Action::FunctionInvoke))
            .flat_map(|s| s.resources())
            .map(|r| r.as_str())
            .filter(|r| seen.insert(*r))
            .collect()
    }

    /// Does any statement in effect allow `action` on `resource`?
    pub fn allows(&self, action: Action, resource: &Resource<'_>) -> bool {
        self.statements.iter().any(|s| s.grants(action, resource))
    }
}

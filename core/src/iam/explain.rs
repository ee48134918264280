//! The engine's working, shown: which Roles a subject's claims match and
//! why not, and which Policy statements grant an action on a resource.
//!
//! Nothing here decides anything. Each trace is read off the result of the
//! enforcing functions ([`IamConfig::evaluate`], [`Grants`], whose
//! [`Grants::allows`] is the decision) and each requirement's outcome is
//! [`Requirement::matches`], the test those functions apply, so an
//! explanation cannot disagree with enforcement.

use serde::Serialize;
use serde_json::Value;

use super::action::{Action, ActionFamily, ActionPattern, Resource};
use super::condition::{CLAIM_KEY_PREFIX, Condition, Requirement};
use super::eval::{Evaluation, Grants};
use super::model::Statement;
use super::{ClaimMap, IamConfig};

/// One condition entry: a claim, an operator and values OR'd.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequirementTrace {
    /// As written: `jwt:sub`.
    pub key: String,
    pub operator: &'static str,
    pub values: Vec<String>,
    /// The claim's value in the subject; None when it has none.
    pub actual: Option<Value>,
    pub held: bool,
}

/// One Role and whether it matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleTrace {
    pub name: String,
    pub origin: String,
    pub policies: Vec<String>,
    /// Matched, as the evaluation that enforces decided.
    pub matched: bool,
    /// Every requirement (principal and condition, AND'd).
    pub requirements: Vec<RequirementTrace>,
}

/// One Policy statement against one action on one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementTrace {
    pub policy: String,
    pub sid: String,
    /// Its condition held (or it has none): the statement is in force.
    pub in_effect: bool,
    /// The statement's condition, when it has one.
    pub condition: Vec<RequirementTrace>,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub covers_action: bool,
    /// The resources that cover the one asked about.
    pub matching_resources: Vec<String>,
    /// In effect, and grants the action on the resource.
    pub grants: bool,
}

fn requirement(r: &Requirement, claims: &ClaimMap) -> RequirementTrace {
    RequirementTrace {
        key: format!("{CLAIM_KEY_PREFIX}{}", r.claim()),
        operator: r.operator().as_str(),
        values: r.values().iter().map(|v| v.to_string()).collect(),
        actual: claims.get(r.claim()).cloned(),
        held: r.matches(claims),
    }
}

/// Every requirement of `condition`, each tested against `claims`.
pub fn condition_trace(condition: &Condition, claims: &ClaimMap) -> Vec<RequirementTrace> {
    condition
        .requirements()
        .iter()
        .map(|r| requirement(r, claims))
        .collect()
}

impl IamConfig {
    /// Every Role, in config order, with each requirement tested, and
    /// `matched` taken from `evaluation` (which must be this config's
    /// [`IamConfig::evaluate`] of the same claims).
    pub fn explain_roles(&self, evaluation: &Evaluation<'_>, claims: &ClaimMap) -> Vec<RoleTrace> {
        self.roles
            .iter()
            .map(|role| RoleTrace {
                name: role.name().to_owned(),
                origin: role.origin().to_owned(),
                policies: role.policy_names().to_vec(),
                matched: evaluation.roles().iter().any(|r| std::ptr::eq(*r, role)),
                requirements: condition_trace(role.condition(), claims),
            })
            .collect()
    }
}

impl Grants<'_> {
    /// Every statement of these Policies against `action` on `resource`.
    /// `claims` must be the ones the Grants were built with; `in_effect`
    /// comes from the Grants themselves.
    pub fn explain(
        &self,
        claims: &ClaimMap,
        action: Action,
        resource: &Resource<'_>,
    ) -> Vec<StatementTrace> {
        let mut out = Vec::new();
        for policy in self.policies() {
            for s in policy.statements() {
                let in_effect = self.statements().iter().any(|e| std::ptr::eq(*e, s));
                out.push(statement(
                    policy.name(),
                    s,
                    in_effect,
                    claims,
                    action,
                    resource,
                ));
            }
        }
        out
    }
}

fn statement(
    policy: &str,
    s: &Statement,
    in_effect: bool,
    claims: &ClaimMap,
    action: Action,
    resource: &Resource<'_>,
) -> StatementTrace {
    StatementTrace {
        policy: policy.to_owned(),
        sid: s.sid().to_owned(),
        in_effect,
        condition: s
            .condition()
            .map(|c| condition_trace(c, claims))
            .unwrap_or_default(),
        actions: s.actions().iter().map(|a| action_text(*a)).collect(),
        resources: s
            .resources()
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        covers_action: s.covers_action(action),
        matching_resources: s
            .resources()
            .iter()
            .filter(|r| r.matches(resource))
            .map(|r| r.as_str().to_owned())
            .collect(),
        grants: in_effect && s.grants(action, resource),
    }
}

/// An action pattern as a Policy writes it.
pub fn action_text(a: ActionPattern) -> String {
    match a {
        ActionPattern::Any => "*".to_owned(),
        ActionPattern::Family(f) => {
            let family = match f {
                ActionFamily::Function => "Function",
                ActionFamily::Secret => "Secret",
                ActionFamily::Namespace => "Namespace",
                ActionFamily::System => "System",
            };
            format!("{family}:*")
        }
        ActionPattern::Exact(a) => a.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests;

//! OpenFaaS IAM objects (`JwtIssuer`, `Policy`, `Role`, apiVersion
//! `iam.openfaas.com/v1`) and the policy engine that maps a verified
//! subject token's claims to the Roles it matches and what they grant.
//!
//! Two stages: [`parse_documents`] reads YAML into the [`wire`] structs, and
//! [`IamConfig::compile`] validates all of them at once into an immutable
//! [`IamConfig`] (durations typed, globs built, Role -> Policy names
//! resolved, Roles indexed). Every problem is reported with its source,
//! object and field, e.g. `invoke.yaml: Policy "invoke-policy":
//! spec.statement[0].action[1]: unknown action "Function:Invok"`, and all
//! of them are reported, not just the first.
//!
//! # Objects
//! - YAML sources may hold many `---`-separated documents. Empty documents
//!   (nothing or only comments) are skipped; any other document that is not
//!   an `iam.openfaas.com/v1` JwtIssuer, Policy or Role is an error.
//! - `metadata.name` must be a Kubernetes object name, unique per kind.
//!   `metadata.namespace` is usually `openfaas` and may be left out; the
//!   objects that give one must all give the same (OpenFaaS reads IAM
//!   objects from one namespace, and Roles name Policies without one).
//! - `spec` fields are checked strictly: unknown fields are errors.
//!
//! # JwtIssuer
//! - `iss` is kept exactly as written, with no trailing-slash
//!   normalisation: OIDC compares a token's `iss` as an exact string, and
//!   some providers' issuers end in `/`. It must be `https://`, or
//!   `http://` for a loopback host; no user info, query or fragment. Two
//!   JwtIssuers with the same `iss` are an error.
//! - `issInternal` (optional; an empty string counts as absent) may be
//!   http or https to any host: it is an in-cluster address to fetch keys
//!   from ([`JwtIssuer::discovery_base`]).
//! - `aud` is a non-empty list of non-empty strings.
//! - `tokenExpiry` uses Go duration syntax (`1h`, `30m`, `1h30m`, `90s`)
//!   and must be positive; when absent it is [`DEFAULT_TOKEN_EXPIRY`] (1h).
//!
//! # Policy
//! - Each statement needs `effect: Allow` (the only effect OpenFaaS has; a
//!   `Deny` is refused rather than ignored), a non-empty `action` list of
//!   known [`Action`]s or the wildcards `Function:*`, `Secret:*`,
//!   `Namespace:*`, `*` (case-sensitive), and a non-empty `resource` list
//!   of `*`, `ns:*` or `ns:name`. `sid` is optional.
//! - An optional statement `condition` has the same form as a Role's. The
//!   statement is in effect only while it holds against the claims given:
//!   the subject token's at exchange, and, when an API token's policies are
//!   re-read at check time ([`IamConfig::grants_for_policies`]), the claims
//!   the caller passes, which should be the API token's own. There `iss` is
//!   the gateway and the original issuer is `fed:iss`, so a statement
//!   condition on `jwt:iss` holds at exchange but not for the API token.
//!
//! # Role
//! - `policy` is a non-empty list of existing Policy names.
//! - `principal` (a map `jwt:<claim>` -> values) may sit at `spec.principal`
//!   or inside `spec.condition` as the OpenFaaS docs show; both are
//!   accepted, and when both are given both must match. A principal entry
//!   means the same as a `StringEqual` entry.
//! - `condition` maps an operator to a map `jwt:<claim>` -> values.
//!   Operators are AND'd, keys are AND'd, and the values of one key are
//!   OR'd; principal keys are AND'd with all of them. A Role must have a
//!   principal or a condition: one with neither would match every token.
//!   Empty maps and empty value lists are errors, since they are typos or
//!   would match nothing.
//! - Operators: `StringEqual` (alias `StringEquals`),
//!   `StringEqualIgnoreCase` (alias `StringEqualsIgnoreCase`; Unicode
//!   lower-case comparison), `StringLike` (anchored glob, `*` any run, `?`
//!   one character) and `ForAnyValue:StringEqual` (alias
//!   `ForAnyValue:StringEquals`). Anything else is an error.
//!
//! # Claims
//! - `jwt:<claim>` names a top-level claim exactly: `jwt:email`,
//!   `jwt:groups`, `jwt:repository`, `jwt:client_id`. Nested claims (the
//!   `kubernetes.io` object of service-account tokens) cannot be addressed:
//!   match service accounts on `jwt:sub`
//!   (`system:serviceaccount:<namespace>:<name>`).
//! - A string claim compares as itself; a bool or number as its JSON text
//!   (`true`, `12345`). A missing claim, null or object matches nothing.
//! - `StringEqual`, `StringEqualIgnoreCase`, `StringLike` and principals
//!   test single values: an array claim never matches them (fail closed).
//!   `ForAnyValue:StringEqual` is the operator for arrays (`groups`,
//!   `aud`): it matches when any scalar element equals any listed value; a
//!   scalar claim counts as a one-element set.
//! - Roles are not tied to a JwtIssuer by this module: the caller verifies
//!   the token against its JwtIssuer first, and a Role scopes itself with a
//!   `jwt:iss` condition. A Role without one matches tokens of any trusted
//!   issuer with the claims it asks for.
//!
//! # Evaluation
//! [`IamConfig::evaluate`] returns the matched Roles (config order) and the
//! union of their Policies (first-seen order). From it:
//! [`Evaluation::function_permissions`] (a function token's
//! `permissions`), [`Evaluation::allows`] for the gateway API (see
//! [`Resource`] for what `*`, `ns:*` and `ns:name` cover), and
//! [`Evaluation::policy_names`] (an API token's `policy`). Roles are
//! indexed by an exact-match claim value so that evaluation stays fast
//! with many thousands of Roles; only Roles with nothing but globs or
//! case-insensitive tests are tried on every token.

use std::collections::HashMap;
use std::time::Duration;

mod action;
mod compile;
mod condition;
mod duration;
mod error;
mod eval;
pub mod explain;
mod index;
mod model;
pub mod wire;

pub use action::{Action, ActionFamily, ActionPattern, Resource, ResourcePattern, UnknownAction};
pub use condition::{CLAIM_KEY_PREFIX, Condition, ConditionSpec, Operator, PrincipalSpec};
pub use duration::{DurationError, parse_go_duration};
pub use error::{IamError, IamErrorKind, IamErrors, ObjectRef, ResourceProblem, UrlProblem};
pub use eval::{Evaluation, Grants};
pub use model::{JwtIssuer, Policy, Role, Statement};
pub use wire::{API_VERSION, IamObject, ObjectKind, parse_documents};

use index::RoleIndex;

/// A token's claims, as decoded from its payload.
pub type ClaimMap = serde_json::Map<String, serde_json::Value>;

/// `tokenExpiry` when a JwtIssuer gives none.
pub const DEFAULT_TOKEN_EXPIRY: Duration = Duration::from_secs(3600);

/// The namespace assumed when no object names one.
pub const DEFAULT_IAM_NAMESPACE: &str = "openfaas";

/// A validated, indexed IAM config. Immutable; share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct IamConfig {
    namespace: String,
    issuers: Vec<JwtIssuer>,
    issuer_by_iss: HashMap<String, usize>,
    policies: Vec<Policy>,
    policy_by_name: HashMap<String, usize>,
    roles: Vec<Role>,
    index: RoleIndex,
}

impl IamConfig {
    /// Validates `(origin, object)` pairs, `origin` naming where each came
    /// from (a file name) for errors. All problems are returned together.
    pub fn compile<I, S>(objects: I) -> Result<IamConfig, IamErrors>
    where
        I: IntoIterator<Item = (S, IamObject)>,
        S: Into<String>,
    {
        compile::compile(objects)
    }

    /// Parses and compiles `(origin, yaml)` sources. When any source fails
    /// to parse, only parse errors (of every source) are returned: compiling
    /// the rest would add noise such as Roles naming Policies that did
    /// exist in a broken file.
    pub fn from_yaml_sources<I, S, Y>(sources: I) -> Result<IamConfig, IamErrors>
    where
        I: IntoIterator<Item = (S, Y)>,
        S: AsRef<str>,
        Y: AsRef<str>,
    {
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        for (origin, yaml) in sources {
            let origin = origin.as_ref();
            match parse_documents(origin, yaml.as_ref()) {
                Ok(parsed) => objects.extend(parsed.into_iter().map(|o| (origin.to_owned(), o))),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            IamConfig::compile(objects)
        } else {
            Err(IamErrors::new(errors))
        }
    }

    /// The namespace the objects are in ([`DEFAULT_IAM_NAMESPACE`] when none
    /// said).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The JwtIssuer whose `iss` is exactly `iss`.
    pub fn issuer(&self, iss: &str) -> Option<&JwtIssuer> {
        self.issuer_by_iss
            .get(iss)
            .and_then(|&i| self.issuers.get(i))
    }

    pub fn issuers(&self) -> impl ExactSizeIterator<Item = &JwtIssuer> {
        self.issuers.iter()
    }

    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policy_by_name
            .get(name)
            .and_then(|&i| self.policies.get(i))
    }

    pub fn policies(&self) -> impl ExactSizeIterator<Item = &Policy> {
        self.policies.iter()
    }

    pub fn roles(&self) -> impl ExactSizeIterator<Item = &Role> {
        self.roles.iter()
    }

    /// Valid but probably not meant, for the operator's log: with two or
    /// more trusted issuers, a Role that does not test `jwt:iss` matches
    /// subjects from every one of them (a `sub` at one IdP may be someone
    /// else's at another).
    pub fn warnings(&self) -> Vec<String> {
        if self.issuers.len() < 2 {
            return Vec::new();
        }
        self.roles
            .iter()
            .filter(|r| !r.condition().tests_claim("iss"))
            .map(|r| {
                format!(
                    "{}: Role {:?} has no jwt:iss condition, so it matches subjects from all {} trusted issuers",
                    r.origin(),
                    r.name(),
                    self.issuers.len()
                )
            })
            .collect()
    }

    /// Matches a verified subject token's claims against every Role.
    pub fn evaluate(&self, claims: &ClaimMap) -> Evaluation<'_> {
        let candidates = self.index.candidates(claims);
        let examined = candidates.len();
        let roles: Vec<&Role> = candidates
            .into_iter()
            .filter_map(|i| self.roles.get(i))
            .filter(|r| r.matches(claims))
            .collect();
        let mut seen = vec![false; self.policies.len()];
        let mut policies = Vec::new();
        for role in &roles {
            for &p in &role.policies {
                if let (Some(flag), Some(policy)) = (seen.get_mut(p), self.policies.get(p))
                    && !*flag
                {
                    *flag = true;
                    policies.push(policy);
                }
            }
        }
        Evaluation {
            grants: Grants::new(policies, claims, Vec::new()),
            roles,
            examined,
        }
    }

    /// What the named Policies grant now: for an API token, whose `policy`
    /// claim lists the names matched when it was minted. `claims` decide
    /// statement conditions (pass the API token's own). Names no longer in
    /// the config grant nothing and are listed in
    /// [`Grants::missing_policies`].
    pub fn grants_for_policies<I, S>(&self, names: I, claims: &ClaimMap) -> Grants<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut policies: Vec<&Policy> = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            let name = name.as_ref();
            match self.policy(name) {
                Some(p) if !policies.iter().any(|q| q.name() == name) => policies.push(p),
                Some(_) => {}
                None => missing.push(name.to_owned()),
            }
        }
        Grants::new(policies, claims, missing)
    }

    /// Shorthand for [`Self::grants_for_policies`] then [`Grants::allows`].
    pub fn allows_by_policy_names<I, S>(
        &self,
        names: I,
        claims: &ClaimMap,
        action: Action,
        resource: &Resource<'_>,
    ) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.grants_for_policies(names, claims)
            .allows(action, resource)
    }
}

#[cfg(test)]
mod tests;

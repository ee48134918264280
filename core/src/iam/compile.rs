//! Wire objects to [`IamConfig`]: validate every field, resolve Role ->
//! Policy names, index Roles. Every problem is collected, none stops early.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::action::{ActionPattern, ResourcePattern, is_dns_label, is_dns_subdomain};
use super::condition::{self, Condition};
use super::duration::parse_go_duration;
use super::error::{IamError, IamErrorKind, IamErrors, ObjectRef, UrlProblem};
use super::index::RoleIndex;
use super::model::{JwtIssuer, Policy, Role, Statement};
use super::wire::{
    IamObject, JwtIssuerSpec, Object, ObjectKind, PLACEHOLDER, PolicySpec, RoleSpec,
};
use super::{DEFAULT_IAM_NAMESPACE, DEFAULT_TOKEN_EXPIRY, IamConfig};

/// Errors found so far, each tagged with its source and object.
struct Errors(Vec<IamError>);

impl Errors {
    fn push(&mut self, at: &At<'_>, field: Option<String>, kind: IamErrorKind) {
        let object = ObjectRef::named(at.kind.as_str(), at.name);
        self.0
            .push(IamError::new(at.origin, Some(object), field, kind));
    }

    fn field(&mut self, at: &At<'_>, field: impl Into<String>, kind: IamErrorKind) {
        self.push(at, Some(field.into()), kind);
    }
}

/// The object being compiled.
struct At<'a> {
    origin: &'a str,
    kind: ObjectKind,
    name: &'a str,
}

pub(super) fn compile<I, S>(objects: I) -> Result<IamConfig, IamErrors>
where
    I: IntoIterator<Item = (S, IamObject)>,
    S: Into<String>,
{
    let mut errors = Errors(Vec::new());

    // Names, namespaces and duplicates first, so later steps see unique names.
    let mut namespace: Option<String> = None;
    let mut seen: HashMap<(ObjectKind, String), String> = HashMap::new();
    let mut issuers_in = Vec::new();
    let mut policies_in = Vec::new();
    let mut roles_in = Vec::new();
    for (origin, object) in objects {
        let origin: String = origin.into();
        let kind = object.kind();
        let meta = object.metadata();
        let at = At {
            origin: &origin,
            kind,
            name: &meta.name,
        };
        if !is_dns_subdomain(&meta.name) {
            let name = meta.name.clone();
            errors.field(&at, "metadata.name", IamErrorKind::InvalidName { name });
        }
        if let Some(ns) = &meta.namespace {
            if !is_dns_label(ns) {
                let name = ns.clone();
                errors.field(
                    &at,
                    "metadata.namespace",
                    IamErrorKind::InvalidName { name },
                );
            }
            match &namespace {
                None => namespace = Some(ns.clone()),
                Some(expected) if expected != ns => {
                    let kind = IamErrorKind::NamespaceMismatch {
                        found: ns.clone(),
                        expected: expected.clone(),
                    };
                    errors.field(&at, "metadata.namespace", kind);
                }
                Some(_) => {}
            }
        }
        match seen.entry((kind, meta.name.clone())) {
            Entry::Occupied(first) => {
                let kind = IamErrorKind::DuplicateName {
                    kind: kind.as_str().to_owned(),
                    first_origin: first.get().clone(),
                };
                errors.push(&at, None, kind);
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(origin.clone());
            }
        }
        match object {
            IamObject::JwtIssuer(o) => issuers_in.push((origin, o)),
            IamObject::Policy(o) => policies_in.push((origin, o)),
            IamObject::Role(o) => roles_in.push((origin, o)),
        }
    }

    let mut issuers = Vec::with_capacity(issuers_in.len());
    let mut issuer_by_iss: HashMap<String, usize> = HashMap::new();
    for (origin, object) in issuers_in {
        let issuer = compile_issuer(origin, object, &mut errors);
        match issuer_by_iss.entry(issuer.iss.clone()) {
            Entry::Occupied(other) => {
                let other = issuers
                    .get(*other.get())
                    .map(|o: &JwtIssuer| o.name.clone())
                    .unwrap_or_default();
                let at = At {
                    origin: &issuer.origin,
                    kind: ObjectKind::JwtIssuer,
                    name: &issuer.name,
                };
                let kind = IamErrorKind::DuplicateIssuer {
                    iss: issuer.iss.clone(),
                    other,
                };
                errors.field(&at, "spec.iss", kind);
            }
            Entry::Vacant(slot) => {
                slot.insert(issuers.len());
                issuers.push(issuer);
            }
        }
    }

    let policy_by_name: HashMap<String, usize> = policies_in
        .iter()
        .enumerate()
        .map(|(i, (_, o))| (o.metadata.name.clone(), i))
        .collect();
    let policies: Vec<Policy> = policies_in
        .into_iter()
        .map(|(origin, object)| compile_policy(origin, object, &mut errors))
        .collect();
    let roles: Vec<Role> = roles_in
        .into_iter()
        .map(|(origin, object)| compile_role(origin, object, &policy_by_name, &mut errors))
        .collect();

    if !errors.0.is_empty() {
        return Err(IamErrors::new(errors.0));
    }
    let index = RoleIndex::build(&roles);
    Ok(IamConfig {
        namespace: namespace.unwrap_or_else(|| DEFAULT_IAM_NAMESPACE.to_owned()),
        issuers,
        issuer_by_iss,
        policies,
        policy_by_name,
        roles,
        index,
    })
}

fn compile_issuer(origin: String, object: Object<JwtIssuerSpec>, errors: &mut Errors) -> JwtIssuer {
    let Object { metadata, spec } = object;
    let at = At {
        origin: &origin,
        kind: ObjectKind::JwtIssuer,
        name: &metadata.name,
    };
    placeholder(&at, "spec.iss", &spec.iss, errors);
    if let Some(url) = &spec.iss_internal {
        placeholder(&at, "spec.issInternal", url, errors);
    }
    for (i, aud) in spec.aud.iter().enumerate() {
        placeholder(&at, &format!("spec.aud[{i}]"), aud, errors);
    }
    if let Err(reason) = check_url(&spec.iss, false) {
        let value = spec.iss.clone();
        errors.field(&at, "spec.iss", IamErrorKind::InvalidUrl { value, reason });
    }
    // Go's zero value: an empty string means "not set".
    let iss_internal = spec.iss_internal.filter(|s| !s.is_empty());
    if let Some(url) = &iss_internal
        && let Err(reason) = check_url(url, true)
    {
        let value = url.clone();
        errors.field(
            &at,
            "spec.issInternal",
            IamErrorKind::InvalidUrl { value, reason },
        );
    }
    if spec.aud.is_empty() {
        errors.field(&at, "spec.aud", IamErrorKind::EmptyList);
    }
    for (i, aud) in spec.aud.iter().enumerate() {
        if aud.is_empty() {
            errors.field(&at, format!("spec.aud[{i}]"), IamErrorKind::EmptyValue);
        }
    }
    let token_expiry = match &spec.token_expiry {
        None => DEFAULT_TOKEN_EXPIRY,
        Some(text) => match parse_go_duration(text) {
            Ok(d) if d > Duration::ZERO => d,
            Ok(_) => {
                let value = text.clone();
                errors.field(
                    &at,
                    "spec.tokenExpiry",
                    IamErrorKind::NonPositiveDuration { value },
                );
                DEFAULT_TOKEN_EXPIRY
            }
            Err(reason) => {
                let value = text.clone();
                let kind = IamErrorKind::InvalidDuration { value, reason };
                errors.field(&at, "spec.tokenExpiry", kind);
                DEFAULT_TOKEN_EXPIRY
            }
        },
    };
    JwtIssuer {
        name: metadata.name,
        origin,
        iss: spec.iss,
        iss_internal,
        aud: spec.aud,
        token_expiry,
    }
}

fn compile_policy(origin: String, object: Object<PolicySpec>, errors: &mut Errors) -> Policy {
    let Object { metadata, spec } = object;
    let at = At {
        origin: &origin,
        kind: ObjectKind::Policy,
        name: &metadata.name,
    };
    if spec.statement.is_empty() {
        errors.field(&at, "spec.statement", IamErrorKind::EmptyList);
    }
    let mut statements = Vec::with_capacity(spec.statement.len());
    for (i, st) in spec.statement.iter().enumerate() {
        let path = format!("spec.statement[{i}]");
        if st.effect != "Allow" {
            let found = st.effect.clone();
            errors.field(
                &at,
                format!("{path}.effect"),
                IamErrorKind::UnsupportedEffect { found },
            );
        }
        if st.action.is_empty() {
            errors.field(&at, format!("{path}.action"), IamErrorKind::EmptyList);
        }
        let mut actions = Vec::with_capacity(st.action.len());
        for (j, text) in st.action.iter().enumerate() {
            match text.parse::<ActionPattern>() {
                Ok(a) => actions.push(a),
                Err(_) => {
                    let found = text.clone();
                    let field = format!("{path}.action[{j}]");
                    errors.field(&at, field, IamErrorKind::UnknownAction { found });
                }
            }
        }
        if st.resource.is_empty() {
            errors.field(&at, format!("{path}.resource"), IamErrorKind::EmptyList);
        }
        let mut resources = Vec::with_capacity(st.resource.len());
        for (j, text) in st.resource.iter().enumerate() {
            match text.parse::<ResourcePattern>() {
                Ok(r) => resources.push(r),
                Err(reason) => {
                    let found = text.clone();
                    let field = format!("{path}.resource[{j}]");
                    errors.field(&at, field, IamErrorKind::InvalidResource { found, reason });
                }
            }
        }
        let condition = st.condition.as_ref().map(|c| {
            let cpath = format!("{path}.condition");
            let mut report = |field: String, kind| errors.field(&at, field, kind);
            condition::compile(None, Some((&cpath, c)), &mut report)
        });
        statements.push(Statement {
            sid: st.sid.clone(),
            actions,
            resources,
            condition,
        });
    }
    Policy {
        name: metadata.name,
        origin,
        statements,
    }
}

fn compile_role(
    origin: String,
    object: Object<RoleSpec>,
    policy_by_name: &HashMap<String, usize>,
    errors: &mut Errors,
) -> Role {
    let Object { metadata, spec } = object;
    let at = At {
        origin: &origin,
        kind: ObjectKind::Role,
        name: &metadata.name,
    };
    if spec.policy.is_empty() {
        errors.field(&at, "spec.policy", IamErrorKind::EmptyList);
    }
    let mut policy_names = Vec::with_capacity(spec.policy.len());
    let mut policies = Vec::with_capacity(spec.policy.len());
    for (i, name) in spec.policy.iter().enumerate() {
        match policy_by_name.get(name) {
            Some(&p) if !policies.contains(&p) => {
                policies.push(p);
                policy_names.push(name.clone());
            }
            Some(_) => {}
            None => {
                let kind = IamErrorKind::UnknownPolicy { name: name.clone() };
                errors.field(&at, format!("spec.policy[{i}]"), kind);
            }
        }
    }
    // Who the Role trusts: an example's placeholder left here is refused.
    if let Some(principal) = &spec.principal {
        for (claim, values) in principal {
            for (i, v) in values.iter().enumerate() {
                placeholder(&at, &format!("spec.principal.{claim}[{i}]"), v, errors);
            }
        }
    }
    if let Some(condition) = &spec.condition {
        for (op, claims) in condition {
            for (claim, values) in claims {
                for (i, v) in values.iter().enumerate() {
                    let field = format!("spec.condition.{op}.{claim}[{i}]");
                    placeholder(&at, &field, v, errors);
                }
            }
        }
    }
    let condition = if spec.principal.is_none() && spec.condition.is_none() {
        errors.push(&at, Some("spec".to_owned()), IamErrorKind::MatchesEveryone);
        Condition::default()
    } else {
        let mut report = |field: String, kind| errors.field(&at, field, kind);
        condition::compile(
            spec.principal.as_ref().map(|p| ("spec.principal", p)),
            spec.condition.as_ref().map(|c| ("spec.condition", c)),
            &mut report,
        )
    };
    Role {
        name: metadata.name,
        origin,
        policy_names,
        policies,
        condition,
    }
}

/// Refuses a value still holding the examples' [`PLACEHOLDER`] (the CRDs'
/// CEL rule on the same fields refuses it too).
fn placeholder(at: &At<'_>, field: &str, value: &str, errors: &mut Errors) {
    if value.contains(PLACEHOLDER) {
        let kind = IamErrorKind::Placeholder {
            value: value.to_owned(),
            placeholder: PLACEHOLDER,
        };
        errors.field(at, field, kind);
    }
}

/// An issuer URL: https, or http for a loopback host (local development
/// and tests). `internal` URLs are fetched in-cluster, so plain http to any
/// host is the admin's call.
fn check_url(url: &str, internal: bool) -> Result<(), UrlProblem> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::Whitespace);
    }
    let (rest, https) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else if internal {
        return Err(UrlProblem::InternalScheme);
    } else {
        return Err(UrlProblem::Scheme);
    };
    if rest.contains(['?', '#']) {
        return Err(UrlProblem::QueryOrFragment);
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(UrlProblem::UserInfo);
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(UrlProblem::NoHost);
    }
    if !https && !internal && !is_loopback(host) {
        return Err(UrlProblem::HttpNotLoopback);
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;

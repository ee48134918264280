//! Policy actions (`Function:Invoke`, `Function:*`, `*`) and resources
//! (`*`, `ns:*`, `ns:name`), and what they match.

use std::fmt;
use std::str::FromStr;

use super::error::ResourceProblem;
use crate::permission::FunctionId;

/// One concrete action of the OpenFaaS REST API or a function invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    FunctionList,
    FunctionGet,
    FunctionCreate,
    FunctionUpdate,
    FunctionDelete,
    FunctionLogs,
    FunctionScale,
    FunctionInvoke,
    SecretList,
    SecretCreate,
    SecretUpdate,
    SecretDelete,
    NamespaceList,
    NamespaceGet,
    NamespaceCreate,
    NamespaceUpdate,
    NamespaceDelete,
    SystemInfo,
}

/// The group before the `:` of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionFamily {
    Function,
    Secret,
    Namespace,
    System,
}

impl Action {
    /// Every known action, in documentation order.
    pub const ALL: [Action; 18] = [
        Action::FunctionList,
        Action::FunctionGet,
        Action::FunctionCreate,
        Action::FunctionUpdate,
        Action::FunctionDelete,
        Action::FunctionLogs,
        Action::FunctionScale,
        Action::FunctionInvoke,
        Action::SecretList,
        Action::SecretCreate,
        Action::SecretUpdate,
        Action::SecretDelete,
        Action::NamespaceList,
        Action::NamespaceGet,
        Action::NamespaceCreate,
        Action::NamespaceUpdate,
        Action::NamespaceDelete,
        Action::SystemInfo,
    ];

    /// The name as written in a Policy, e.g. `Function:Invoke`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::FunctionList => "Function:List",
            Action::FunctionGet => "Function:Get",
            Action::FunctionCreate => "Function:Create",
            Action::FunctionUpdate => "Function:Update",
            Action::FunctionDelete => "Function:Delete",
            Action::FunctionLogs => "Function:Logs",
            Action::FunctionScale => "Function:Scale",
            Action::FunctionInvoke => "Function:Invoke",
            Action::SecretList => "Secret:List",
            Action::SecretCreate => "Secret:Create",
            Action::SecretUpdate => "Secret:Update",
            Action::SecretDelete => "Secret:Delete",
            Action::NamespaceList => "Namespace:List",
            Action::NamespaceGet => "Namespace:Get",
            Action::NamespaceCreate => "Namespace:Create",
            Action::NamespaceUpdate => "Namespace:Update",
            Action::NamespaceDelete => "Namespace:Delete",
            Action::SystemInfo => "System:Info",
        }
    }

    pub const fn family(self) -> ActionFamily {
        match self {
            Action::FunctionList
            | Action::FunctionGet
            | Action::FunctionCreate
            | Action::FunctionUpdate
            | Action::FunctionDelete
            | Action::FunctionLogs
            | Action::FunctionScale
            | Action::FunctionInvoke => ActionFamily::Function,
            Action::SecretList
            | Action::SecretCreate
            | Action::SecretUpdate
            | Action::SecretDelete => ActionFamily::Secret,
            Action::NamespaceList
            | Action::NamespaceGet
            | Action::NamespaceCreate
            | Action::NamespaceUpdate
            | Action::NamespaceDelete => ActionFamily::Namespace,
            Action::SystemInfo => ActionFamily::System,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a known action name. Case matters, as in OpenFaaS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// An action as a Policy statement grants it: one action, a family
/// wildcard (`Function:*`, `Secret:*`, `Namespace:*`) or everything (`*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionPattern {
    Any,
    Family(ActionFamily),
    Exact(Action),
}

impl ActionPattern {
    pub fn matches(self, action: Action) -> bool {
        match self {
            ActionPattern::Any => true,
            ActionPattern::Family(family) => action.family() == family,
            ActionPattern::Exact(a) => a == action,
        }
    }
}

impl FromStr for ActionPattern {
    type Err = UnknownAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "*" => ActionPattern::Any,
            "Function:*" => ActionPattern::Family(ActionFamily::Function),
            "Secret:*" => ActionPattern::Family(ActionFamily::Secret),
            "Namespace:*" => ActionPattern::Family(ActionFamily::Namespace),
            // `System:*` is not in the documented list: only `System:Info`.
            _ => ActionPattern::Exact(s.parse()?),
        })
    }
}

/// What a request acts on, for [`ActionPattern`]-plus-resource checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// Cluster-wide: `System:Info`, `Namespace:List`. Only `*` grants it.
    Cluster,
    /// A whole namespace, e.g. listing its functions. Granted by `*` and
    /// `ns:*`; a single-object grant `ns:name` does not cover it.
    Namespace(&'a str),
    /// One object (function, secret) in a namespace. Granted by `*`,
    /// `ns:*` and `ns:name`.
    Object { namespace: &'a str, name: &'a str },
}

impl<'a> From<&'a FunctionId> for Resource<'a> {
    fn from(id: &'a FunctionId) -> Self {
        Resource::Object {
            namespace: id.namespace(),
            name: id.name(),
        }
    }
}

/// A validated Policy `resource`: `*`, `ns:*` or `ns:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePattern {
    text: Box<str>,
    scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    Any,
    /// Length of the namespace prefix of `text`.
    Namespace(usize),
    /// Lengths of the namespace and name parts of `text`.
    Object(usize),
}

impl ResourcePattern {
    /// The resource exactly as written, e.g. `openfaas-fn:*`. This is what a
    /// function token's `permissions` carry.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, resource: &Resource<'_>) -> bool {
        match (&self.scope, resource) {
            (Scope::Any, _) => true,
            (Scope::Namespace(n), Resource::Namespace(ns))
            | (Scope::Namespace(n), Resource::Object { namespace: ns, .. }) => {
                self.text.get(..*n) == Some(*ns)
            }
            (Scope::Object(n), Resource::Object { namespace, name }) => {
                self.text.get(..*n) == Some(*namespace) && self.text.get(n + 1..) == Some(*name)
            }
            _ => false,
        }
    }
}

impl FromStr for ResourcePattern {
    type Err = ResourceProblem;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let scope = if s == "*" {
            Scope::Any
        } else {
            let (ns, name) = s.split_once(':').ok_or(ResourceProblem::Shape)?;
            if ns.contains('*') || (name != "*" && name.contains(['*', ':'])) {
                return Err(ResourceProblem::Shape);
            }
            if !is_dns_label(ns) {
                return Err(ResourceProblem::Namespace(ns.to_owned()));
            }
            if name == "*" {
                Scope::Namespace(ns.len())
            } else if is_dns_subdomain(name) {
                Scope::Object(ns.len())
            } else {
                return Err(ResourceProblem::Name(name.to_owned()));
            }
        };
        Ok(ResourcePattern {
            text: s.into(),
            scope,
        })
    }
}

/// RFC 1123 label, as Kubernetes requires of namespaces.
pub(crate) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// RFC 1123 subdomain, as Kubernetes requires of most object names
/// (functions use the stricter label form, which this admits).
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests;

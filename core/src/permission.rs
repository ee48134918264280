//! Function identities (`namespace:name`) and the anchored patterns that
//! grant access to them (`*`, `ns:*`, `*:name`, `ns:name`).

use std::fmt;

use crate::glob::Glob;

/// The namespace OpenFaaS uses when a path or config names none.
pub const DEFAULT_NAMESPACE: &str = "openfaas-fn";

/// A function's identity, `namespace:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionId {
    namespace: String,
    name: String,
    qualified: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionIdError {
    #[error("function {0} is empty")]
    Empty(&'static str),
    #[error("function {what} {value:?} is not a Kubernetes DNS-1123 label")]
    NotDnsLabel { what: &'static str, value: String },
    #[error("{0:?} is not a gateway function path (/function/NAME[.NAMESPACE])")]
    NotFunctionPath(String),
}

impl FunctionId {
    pub fn new(namespace: &str, name: &str) -> Result<Self, FunctionIdError> {
        check_label("namespace", namespace)?;
        check_label("name", name)?;
        Ok(FunctionId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            qualified: format!("{namespace}:{name}"),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `namespace:name`, the string permission patterns are matched against.
    pub fn as_str(&self) -> &str {
        &self.qualified
    }

    /// The function a gateway path addresses: `/function/NAME`,
    /// `/function/NAME.NAMESPACE`, and the `/async-function/` forms, each
    /// optionally followed by `/more/path` or `?query`.
    pub fn from_gateway_path(path: &str, default_namespace: &str) -> Result<Self, FunctionIdError> {
        let not = || FunctionIdError::NotFunctionPath(path.chars().take(128).collect());
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let rest = path
            .strip_prefix("/function/")
            .or_else(|| path.strip_prefix("/async-function/"))
            .ok_or_else(not)?;
        let target = rest.split('/').next().unwrap_or_default();
        let (name, namespace) = match target.split_once('.') {
            Some((name, ns)) => (name, ns),
            None => (target, default_namespace),
        };
        FunctionId::new(namespace, name).map_err(|_| not())
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qualified)
    }
}

/// RFC 1123 label: what Kubernetes allows for namespaces and OpenFaaS for
/// function names. Keeps `:`, `*` and `.` out of identities.
fn check_label(what: &'static str, value: &str) -> Result<(), FunctionIdError> {
    if value.is_empty() {
        return Err(FunctionIdError::Empty(what));
    }
    let bytes = value.as_bytes();
    let ok = bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.last().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(FunctionIdError::NotDnsLabel {
            what,
            value: value.chars().take(80).collect(),
        })
    }
}

/// One permission or audience pattern: `*` matches everything, any other
/// `*` is a wildcard, and the whole identity must match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PermissionPattern(Glob);

impl PermissionPattern {
    pub fn new(pattern: &str) -> Self {
        PermissionPattern(Glob::new(pattern))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn matches(&self, id: &FunctionId) -> bool {
        self.0.matches(id.as_str())
    }

    /// Does this pattern grant everything `narrower` grants? Used to keep a
    /// requested audience inside a token's permissions. Conservative: a
    /// wildcard `narrower` is covered only by `*`, an identical pattern, or a
    /// pattern that matches the wildcard text itself as a prefix glob.
    pub fn covers(&self, narrower: &PermissionPattern) -> bool {
        let (wide, narrow) = (self.0.as_str(), narrower.0.as_str());
        if wide == "*" || wide == narrow {
            return true;
        }
        if narrower.0.is_literal() {
            return self.0.matches(narrow);
        }
        // `ns:*` covers `ns:prefix*`; `*:name` and inner stars are only
        // covered by themselves or `*`.
        match (wide.strip_suffix('*'), narrow.strip_suffix('*')) {
            (Some(wp), Some(np)) if !wp.contains('*') && !np.contains('*') => np.starts_with(wp),
            _ => false,
        }
    }
}

/// Any of `patterns` matches `id`.
pub fn any_matches<'a>(patterns: impl IntoIterator<Item = &'a str>, id: &FunctionId) -> bool {
    patterns
        .into_iter()
        .any(|p| PermissionPattern::new(p).matches(id))
}

#[cfg(test)]
mod tests;

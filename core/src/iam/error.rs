//! Config errors. Each names where it happened (the source, usually a file
//! name), which object (kind and name, or the document number before the
//! name is known) and which field, and carries a typed [`IamErrorKind`].

use std::fmt;

use super::duration::DurationError;

/// One thing wrong with the IAM config.
#[derive(Debug)]
pub struct IamError {
    origin: String,
    object: Option<ObjectRef>,
    field: Option<String>,
    kind: IamErrorKind,
}

impl IamError {
    pub(crate) fn new(
        origin: &str,
        object: Option<ObjectRef>,
        field: Option<String>,
        kind: IamErrorKind,
    ) -> Self {
        IamError {
            origin: origin.to_owned(),
            object,
            field,
            kind,
        }
    }

    /// Where the object came from, as the caller named it (a file name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn object(&self) -> Option<&ObjectRef> {
        self.object.as_ref()
    }

    /// The field path inside the object, e.g. `spec.statement[0].action[1]`.
    /// Absent for whole-object problems, and for schema errors from the
    /// YAML decoder, whose message carries the path itself.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    pub fn kind(&self) -> &IamErrorKind {
        &self.kind
    }
}

// The message includes the kind's details, so `source()` stays `None`:
// printing an error chain must not repeat them.
impl fmt::Display for IamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for IamError {}

/// Which object an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `kind` as written; may be unknown or absent in a bad document.
    pub kind: Option<String>,
    pub name: Option<String>,
    /// 1-based position in a multi-document source, when known.
    pub document: Option<usize>,
}

impl ObjectRef {
    pub(crate) fn named(kind: &str, name: &str) -> Self {
        ObjectRef {
            kind: Some(kind.to_owned()),
            name: Some(name.to_owned()),
            document: None,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.name, self.document) {
            (Some(kind), Some(name), _) => write!(f, "{kind} {name:?}"),
            (None, Some(name), _) => write!(f, "object {name:?}"),
            (Some(kind), None, Some(doc)) => write!(f, "document {doc} ({kind})"),
            (None, None, Some(doc)) => write!(f, "document {doc}"),
            (Some(kind), None, None) => write!(f, "{kind}"),
            (None, None, None) => f.write_str("object"),
        }
    }
}

/// What is wrong. Inner errors are kept typed for callers that classify,
/// and are part of the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IamErrorKind {
    /// The text is not YAML (a syntax error, or a mapping with a duplicate
    /// key). Later documents of the source are not read.
    #[error("invalid YAML: {0}")]
    Syntax(serde_yaml::Error),
    /// Valid YAML of the wrong shape: a typo'd or missing field, a wrong
    /// type. The decoder's message names the field path and line.
    #[error("{0}")]
    Schema(serde_yaml::Error),
    #[error("document is not a mapping, so not an IAM object")]
    NotAnObject,
    #[error("field `{0}` is missing or not a string")]
    MissingField(&'static str),
    #[error("apiVersion {found:?} is not supported, expected \"iam.openfaas.com/v1\"")]
    UnsupportedApiVersion { found: String },
    #[error("kind {found:?} is not an IAM object (JwtIssuer, Policy or Role)")]
    UnknownKind { found: String },
    #[error(
        "name {name:?} is not a Kubernetes object name (lowercase letters, digits, '-' and '.', \
         at most 253 characters)"
    )]
    InvalidName { name: String },
    #[error(
        "namespace {found:?} differs from {expected:?} used by other objects; all IAM objects \
         must be in one namespace"
    )]
    NamespaceMismatch { found: String, expected: String },
    #[error("duplicate name: the same {kind} name is already defined in {first_origin}")]
    DuplicateName { kind: String, first_origin: String },
    #[error("iss {iss:?} is already used by JwtIssuer {other:?}")]
    DuplicateIssuer { iss: String, other: String },
    #[error("{value:?} is not a usable issuer URL: {reason}")]
    InvalidUrl { value: String, reason: UrlProblem },
    #[error("invalid duration {value:?}: {reason}")]
    InvalidDuration {
        value: String,
        reason: DurationError,
    },
    #[error("duration {value:?} must be greater than zero")]
    NonPositiveDuration { value: String },
    #[error("must not be empty")]
    EmptyList,
    #[error("must not be an empty string")]
    EmptyValue,
    #[error(
        "unknown action {found:?} (expected e.g. \"Function:Invoke\", \"Function:*\" or \"*\")"
    )]
    UnknownAction { found: String },
    #[error("invalid resource {found:?}: {reason}")]
    InvalidResource {
        found: String,
        reason: ResourceProblem,
    },
    #[error("effect {found:?} is not supported, only \"Allow\"")]
    UnsupportedEffect { found: String },
    #[error(
        "unknown condition operator {found:?} (expected StringEqual, StringEquals, \
         StringEqualIgnoreCase, StringLike, ForAnyValue:StringEqual or principal)"
    )]
    UnknownOperator { found: String },
    #[error("condition key {found:?} must be jwt:<claim>")]
    InvalidConditionKey { found: String },
    #[error("policy {name:?} does not exist")]
    UnknownPolicy { name: String },
    #[error("a Role needs a principal or a condition: without one it would match every token")]
    MatchesEveryone,
    #[error(
        "{value:?} is an example's placeholder ({placeholder}): replace it with your own value"
    )]
    Placeholder {
        value: String,
        placeholder: &'static str,
    },
}

/// Why an issuer URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("it contains whitespace or control characters")]
    Whitespace,
    #[error("it must start with https:// (or http:// for a loopback host)")]
    Scheme,
    #[error("it must start with http:// or https://")]
    InternalScheme,
    #[error("plain http is only allowed for a loopback host")]
    HttpNotLoopback,
    #[error("it has no host")]
    NoHost,
    #[error("it must not carry user info")]
    UserInfo,
    #[error("it must not have a query or fragment")]
    QueryOrFragment,
}

/// Why a policy resource was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceProblem {
    #[error("expected \"*\", \"namespace:*\" or \"namespace:name\"")]
    Shape,
    #[error("namespace {0:?} is not a Kubernetes namespace name")]
    Namespace(String),
    #[error("name {0:?} is not a Kubernetes object name")]
    Name(String),
}

/// All errors from parsing or compiling, in the order found. Never empty.
#[derive(Debug)]
pub struct IamErrors(Vec<IamError>);

impl IamErrors {
    pub(crate) fn new(errors: Vec<IamError>) -> Self {
        IamErrors(errors)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, IamError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: kept for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<IamError> {
        self.0
    }
}

/// One error per line.
impl fmt::Display for IamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for IamErrors {}

impl IntoIterator for IamErrors {
    type Item = IamError;
    type IntoIter = std::vec::IntoIter<IamError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a IamErrors {
    type Item = &'a IamError;
    type IntoIter = std::slice::Iter<'a, IamError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

//! What a request names: the namespace and object it acts on, read from the
//! query, the path and the JSON body the way the Go providers read them,
//! and checked as Kubernetes names. Ambiguity is an error, never a guess.

use super::gojson::{self, GoJsonError, GoObject};
use super::{BadRequest, Body, DEFAULT_NAMESPACE, NameFrom, NsFrom, RouteError};

pub(super) const NAMESPACE_KEY: &str = "namespace";

/// The decoded `namespace` and `name` query parameters: every value of
/// each, in order (Go's `url.ParseQuery` decoding: `+` is a space).
#[derive(Debug, Default)]
pub(super) struct Query {
    namespace: Vec<String>,
    name: Vec<String>,
}

impl Query {
    pub(super) fn parse(query: &str) -> Self {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                NAMESPACE_KEY => q.namespace.push(v.into_owned()),
                "name" => q.name.push(v.into_owned()),
                _ => {}
            }
        }
        q
    }
}

/// The one value of a repeated parameter: `None` when absent or empty (Go
/// treats `""` as unset); an error when two occurrences differ, since Go
/// handlers disagree on whether the first or the last one counts.
pub(super) fn single(
    values: &[String],
    ambiguous: BadRequest,
) -> Result<Option<String>, RouteError> {
    let mut it = values.iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    if it.any(|v| v != first) {
        return Err(ambiguous.into());
    }
    Ok(non_empty(first).map(str::to_owned))
}

pub(super) fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// A string field of the body, `None` when absent, null or empty.
pub(super) fn body_string(
    body: &GoObject,
    field: &str,
    ambiguous: BadRequest,
) -> Result<Option<String>, RouteError> {
    match body.string(field) {
        Ok(v) => Ok(v.filter(|s| !s.is_empty())),
        Err(GoJsonError::Conflicting) => Err(ambiguous.into()),
        Err(_) => Err(BadRequest::FieldNotString.into()),
    }
}

/// The namespace to check, and the query value to set on the forwarded
/// request (see the module docs).
pub(super) fn namespace(
    from: NsFrom,
    query: &Query,
    body: &GoObject,
) -> Result<(String, Option<String>), RouteError> {
    let q = single(&query.namespace, BadRequest::AmbiguousNamespace)?;
    let (ns, set_query) = match from {
        NsFrom::Query => (q, None),
        NsFrom::Body | NsFrom::QueryOrBody => {
            let b = body_string(body, NAMESPACE_KEY, BadRequest::AmbiguousNamespace)?;
            match (q, b) {
                (Some(q), Some(b)) if q != b => {
                    return Err(BadRequest::ConflictingNamespace.into());
                }
                // Deploy and update read only the body: a query naming
                // another namespace than the body's (or the default) is
                // refused rather than trusted.
                (Some(q), None) if from == NsFrom::Body && q != DEFAULT_NAMESPACE => {
                    return Err(BadRequest::ConflictingNamespace.into());
                }
                (Some(q), _) => (Some(q), None),
                (None, Some(b)) => (Some(b.clone()), Some(b)),
                (None, None) => (None, None),
            }
        }
    };
    let ns = ns.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    if !is_dns_label(&ns) {
        return Err(BadRequest::InvalidNamespace.into());
    }
    Ok((ns, set_query))
}

pub(super) fn object_name(
    from: NameFrom,
    path_name: &str,
    query: &Query,
    body: &GoObject,
) -> Result<String, RouteError> {
    let name = match from {
        NameFrom::Path => non_empty(path_name).map(str::to_owned),
        NameFrom::PathAndBody(field) => {
            let b = body_string(body, field, BadRequest::AmbiguousName)?;
            match (non_empty(path_name), b) {
                (Some(p), Some(b)) if p != b => return Err(BadRequest::ConflictingName.into()),
                (p, _) => p.map(str::to_owned),
            }
        }
        NameFrom::Body(field) => body_string(body, field, BadRequest::AmbiguousName)?,
        NameFrom::Query(_) => single(&query.name, BadRequest::AmbiguousName)?,
    };
    name.ok_or(RouteError::BadRequest(BadRequest::MissingName))
}

/// Parse the body's top-level fields when the route reads any.
pub(super) fn read_body(body: Body<'_>, fields: &[&'static str]) -> Result<GoObject, RouteError> {
    match body {
        Body::Empty => Ok(GoObject::default()),
        Body::Complete(bytes) => {
            gojson::parse(bytes, fields).map_err(|_| BadRequest::BodyNotJson.into())
        }
        Body::NotForwarded => Err(RouteError::BodyNotForwarded),
        Body::Truncated => Err(RouteError::BodyTruncated),
    }
}

/// RFC 1123 label: Kubernetes namespace names and OpenFaaS function names.
pub(super) fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// RFC 1123 subdomain: Kubernetes secret names. No `..` (faasd stores
/// secrets as files).
pub(super) fn is_secret_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && !s.contains("..")
}

//! The OpenFaaS gateway's routes, and the IAM action and resource of each.
//!
//! # Sources read
//! * openfaas/faas `gateway/main.go` (the CE gateway's gorilla/mux router,
//!   2024): the routes and their methods; names match
//!   `[-a-zA-Z_0-9.]+` (`*` for `/system/namespace/`); no `StrictSlash`, so a
//!   trailing slash is another path; and mux redirects unclean paths
//!   (`//`, `/./`, `/../`) instead of serving them.
//! * openfaas/faas-provider `serve.go` (the same table on the provider side)
//!   and `logs/handler.go` (`/system/logs` reads `name` and `namespace` from
//!   the query, taking the *last* value of a repeated key).
//! * openfaas/faas `api-docs/spec.openapi.yml` (the gateway's API reference).
//! * openfaas/faas-netes `pkg/handlers/*.go` and openfaas/faasd
//!   `pkg/provider/handlers/*.go` (where each provider reads the namespace):
//!   list, get, delete and scale read `?namespace=` (`Query().Get`: the
//!   *first* value); deploy and update read `namespace` from the JSON body;
//!   faas-netes reads the secrets' namespace from the body for
//!   POST/PUT/DELETE, faasd from the body for POST/PUT and the query for
//!   DELETE; faasd scales the body's `serviceName`, faas-netes the path's.
//! * openfaas/go-sdk `client.go` and openfaas/faas-cli `proxy/*.go` (what
//!   clients send): the go-sdk sends delete's and scale's namespace in the
//!   body only, faas-cli sends delete's in the query only and scale's in the
//!   body only; secrets go in the body.
//!
//! # The table
//! | Method | Path | Action | Resource | Namespace from |
//! |---|---|---|---|---|
//! | GET | `/system/info` | `System:Info` | `*` | - |
//! | GET | `/system/functions` | `Function:List` | `ns:*` | query |
//! | POST | `/system/functions` | `Function:Create` | `ns:<body service>` | body |
//! | PUT | `/system/functions` | `Function:Update` | `ns:<body service>` | body |
//! | DELETE | `/system/functions` | `Function:Delete` | `ns:<body functionName>` | query or body |
//! | GET | `/system/function/NAME` | `Function:Get` | `ns:NAME` | query |
//! | POST | `/system/scale-function/NAME` | `Function:Scale` | `ns:NAME` | query or body |
//! | GET | `/system/logs?name=NAME` | `Function:Logs` | `ns:NAME` | query |
//! | GET | `/system/secrets` | `Secret:List` | `ns:*` | query |
//! | POST | `/system/secrets` | `Secret:Create` | `ns:<body name>` | body |
//! | PUT | `/system/secrets` | `Secret:Update` | `ns:<body name>` | body |
//! | DELETE | `/system/secrets` | `Secret:Delete` | `ns:<body name>` | body |
//! | GET | `/system/namespaces` | `Namespace:List` | `*` | - |
//! | GET | `/system/namespace/NS` | `Namespace:Get` | `NS:*` | path |
//! | POST | `/system/namespace/` | `Namespace:Create` | `NS:*` | body `name` (or path) |
//! | PUT | `/system/namespace/NS` | `Namespace:Update` | `NS:*` | path (body `name` must agree) |
//! | DELETE | `/system/namespace/NS` | `Namespace:Delete` | `NS:*` | path (body `name` must agree) |
//!
//! Everything else under `/system/` (`/system/alert`, `/system/telemetry`,
//! `/system/async-report`, other methods, trailing slashes, `..`, `//`,
//! percent-encoded paths) has no IAM action and is denied with 403.
//!
//! # Namespaces
//! The default namespace is `openfaas-fn`; an empty value means the default,
//! as in every provider. Because providers and clients disagree on where the
//! namespace travels, the rule is: the namespace we check is the one every
//! provider we read would act on, or the request is refused.
//! * *query*: `?namespace=`. A key repeated with different values is
//!   refused (400): Go's `Query().Get` takes the first, the logs handler the
//!   last. A `;` in the query is refused (Go drops such pairs).
//! * *body*: the JSON body's `namespace`, read the way Go's `encoding/json`
//!   reads it into a struct (case-insensitive keys, the last duplicate wins,
//!   so differing duplicates are refused). A `?namespace=` that names another
//!   namespace is refused.
//! * *query or body*: whichever is given; both given and different is
//!   refused. Residual assumption: no provider reads *only* the body here
//!   (faas-cli sends delete's namespace only in the query).
//!
//! When the namespace came from the body and the query had none, the allow
//! also sets `?namespace=` on the forwarded request, so providers that read
//! the query (faas-netes and faasd for delete and scale, faasd for secret
//! deletion) act on the namespace that was checked rather than the default.
//!
//! # Resources
//! Requests that name an object check `ns:name`; listing checks `ns:*`,
//! which only a grant on the whole namespace (`ns:*`, `*`) matches; the
//! namespace routes check `NS:*`; cluster-wide reads check `*`. Creating a
//! function or a secret names it in the body, so `ns:name` grants creating
//! that one object and `ns:*` any object in the namespace.

use std::borrow::Cow;
use std::fmt;

use mesh_auth_core::iam;
pub use mesh_auth_core::iam::Action;
use mesh_auth_core::{FunctionId, FunctionIdError};

use super::gojson::{self, GoObject};

/// The namespace OpenFaaS uses when a request names none.
pub const DEFAULT_NAMESPACE: &str = mesh_auth_core::permission::DEFAULT_NAMESPACE;

/// What an action applies to, as the IAM resource string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `*`: cluster-wide.
    All,
    /// `ns:*`: a whole namespace.
    Namespace(String),
    /// `ns:name`: one function or secret.
    Object { namespace: String, name: String },
}

impl Resource {
    /// The namespace this resource lies in, if any.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Resource::All => None,
            Resource::Namespace(ns) | Resource::Object { namespace: ns, .. } => Some(ns),
        }
    }
}

impl<'a> From<&'a Resource> for iam::Resource<'a> {
    /// The IAM engine's view of the same resource.
    fn from(r: &'a Resource) -> Self {
        match r {
            Resource::All => iam::Resource::Cluster,
            Resource::Namespace(ns) => iam::Resource::Namespace(ns),
            Resource::Object { namespace, name } => iam::Resource::Object { namespace, name },
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::All => f.write_str("*"),
            Resource::Namespace(ns) => write!(f, "{ns}:*"),
            Resource::Object { namespace, name } => write!(f, "{namespace}:{name}"),
        }
    }
}

/// A `/system/` request, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub action: Action,
    pub resource: Resource,
    /// When set, the allow sets `?namespace=` to this on the forwarded
    /// request: the namespace came from the body and the query had none.
    pub set_query_namespace: Option<String>,
}

/// Which rules a path falls under, from its prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/system/...`: an IAM action, checked against an API token.
    Api,
    /// `/function/...` or `/async-function/...`: the invoke rule.
    Invoke,
    /// Anything else: denied.
    Other,
}

/// The family of `path` (the request target, query included).
pub fn family(path: &str) -> Family {
    if path.starts_with("/system/") {
        Family::Api
    } else if path.starts_with("/function/") || path.starts_with("/async-function/") {
        Family::Invoke
    } else {
        Family::Other
    }
}

/// The request body as ext-authz received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// The request has no body.
    Empty,
    /// The whole body.
    Complete(&'a [u8]),
    /// The request has a body, but Envoy did not forward it
    /// (`with_request_body` is not configured).
    NotForwarded,
    /// Envoy forwarded only the first `max_request_bytes`.
    Truncated,
}

/// Where the providers read a route's namespace (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NsFrom {
    Query,
    Body,
    QueryOrBody,
}

/// Where a route's object name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameFrom {
    /// The path segment after the route's prefix.
    Path,
    /// The path segment, and the body field when present must agree.
    PathAndBody(&'static str),
    /// A required top-level string field of the JSON body.
    Body(&'static str),
    /// A required query parameter.
    Query(&'static str),
}

/// What a route checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `*`.
    Cluster,
    /// `ns:*`, namespace from `NsFrom`.
    WholeNamespace(NsFrom),
    /// `ns:name`.
    Object(NsFrom, NameFrom, ObjectKind),
    /// `NS:*` where NS is the namespace object the route manages.
    NamespaceObject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Function,
    Secret,
}

/// The route table: method and path (without query) to action and shape,
/// plus the path segment that names the object, if any.
fn lookup<'p>(method: &str, path: &'p str) -> Option<(Action, Shape, &'p str)> {
    use Action as A;
    use NsFrom::{Body as B, Query as Q, QueryOrBody as QB};
    use ObjectKind::{Function as F, Secret as S};
    let hit = |action, shape| Some((action, shape, ""));
    match (method, path) {
        ("GET", "/system/info") => hit(A::SystemInfo, Shape::Cluster),
        ("GET", "/system/functions") => hit(A::FunctionList, Shape::WholeNamespace(Q)),
        ("POST", "/system/functions") => hit(
            A::FunctionCreate,
            Shape::Object(B, NameFrom::Body("service"), F),
        ),
        ("PUT", "/system/functions") => hit(
            A::FunctionUpdate,
            Shape::Object(B, NameFrom::Body("service"), F),
        ),
        ("DELETE", "/system/functions") => hit(
            A::FunctionDelete,
            Shape::Object(QB, NameFrom::Body("functionname"), F),
        ),
        ("GET", "/system/logs") => hit(
            A::FunctionLogs,
            Shape::Object(Q, NameFrom::Query("name"), F),
        ),
        ("GET", "/system/secrets") => hit(A::SecretList, Shape::WholeNamespace(Q)),
        ("POST", "/system/secrets") => {
            hit(A::SecretCreate, Shape::Object(B, NameFrom::Body("name"), S))
        }
        ("PUT", "/system/secrets") => {
            hit(A::SecretUpdate, Shape::Object(B, NameFrom::Body("name"), S))
        }
        ("DELETE", "/system/secrets") => {
            hit(A::SecretDelete, Shape::Object(B, NameFrom::Body("name"), S))
        }
        ("GET", "/system/namespaces") => hit(A::NamespaceList, Shape::Cluster),
        _ => {
            if let Some(name) = segment(path, "/system/function/") {
                (method == "GET").then_some((
                    A::FunctionGet,
                    Shape::Object(Q, NameFrom::Path, F),
                    name,
                ))
            } else if let Some(name) = segment(path, "/system/scale-function/") {
                (method == "POST").then_some((
                    A::FunctionScale,
                    Shape::Object(QB, NameFrom::PathAndBody("servicename"), F),
                    name,
                ))
            } else if let Some(name) = path.strip_prefix("/system/namespace/") {
                if name.contains('/') {
                    return None;
                }
                let action = match method {
                    "GET" => A::NamespaceGet,
                    "POST" => A::NamespaceCreate,
                    "PUT" => A::NamespaceUpdate,
                    "DELETE" => A::NamespaceDelete,
                    _ => return None,
                };
                Some((action, Shape::NamespaceObject, name))
            } else {
                None
            }
        }
    }
}

/// The single non-empty path segment after `prefix`, as mux's `{name:...+}`.
fn segment<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix)
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
}

/// The request facts classification needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The request target: path and query, as Envoy sent it.
    pub path: &'a str,
    pub body: Body<'a>,
}

/// Classify a `/system/` request: its action and resource, or why it has
/// none. Never allows by default: anything not in the table is
/// [`RouteError::Unknown`].
pub fn classify_api(req: &RequestParts<'_>) -> Result<ApiRequest, RouteError> {
    let (path, query) = req.path.split_once('?').unwrap_or((req.path, ""));
    let (action, shape, path_name) = lookup(req.method, path).ok_or(RouteError::Unknown)?;
    if query.contains(';') {
        return Err(BadRequest::SemicolonInQuery.into());
    }
    let query = Query::parse(query);
    let body_fields: &[&'static str] = match shape {
        Shape::Object(ns, name, _) => match (ns, name) {
            (NsFrom::Body | NsFrom::QueryOrBody, NameFrom::Body(f) | NameFrom::PathAndBody(f)) => {
                &[NAMESPACE_KEY, f][..]
            }
            (NsFrom::Body | NsFrom::QueryOrBody, _) => &[NAMESPACE_KEY][..],
            (NsFrom::Query, NameFrom::Body(f) | NameFrom::PathAndBody(f)) => &[f][..],
            (NsFrom::Query, _) => &[][..],
        },
        Shape::NamespaceObject if req.method != "GET" => &["name"][..],
        _ => &[][..],
    };
    let body = if body_fields.is_empty() {
        GoObject::default()
    } else {
        read_body(req.body, body_fields)?
    };

    let resource = match shape {
        Shape::Cluster => Resource::All,
        Shape::WholeNamespace(from) => {
            let (ns, _) = namespace(from, &query, &body)?;
            Resource::Namespace(ns)
        }
        Shape::NamespaceObject => {
            let from_body = body_string(&body, "name", BadRequest::AmbiguousName)?;
            let ns = match (non_empty(path_name), from_body) {
                (Some(p), Some(b)) if p != b => return Err(BadRequest::ConflictingName.into()),
                (Some(p), _) => p.to_owned(),
                (None, Some(b)) => b,
                (None, None) => return Err(BadRequest::MissingName.into()),
            };
            if !is_dns_label(&ns) {
                return Err(BadRequest::InvalidName.into());
            }
            Resource::Namespace(ns)
        }
        Shape::Object(from, name_from, kind) => {
            let (ns, set_query) = namespace(from, &query, &body)?;
            let name = object_name(name_from, path_name, &query, &body)?;
            let valid = match kind {
                ObjectKind::Function => FunctionId::new(&ns, &name).is_ok(),
                ObjectKind::Secret => is_secret_name(&name),
            };
            if !valid {
                return Err(BadRequest::InvalidName.into());
            }
            return Ok(ApiRequest {
                action,
                resource: Resource::Object {
                    namespace: ns,
                    name,
                },
                set_query_namespace: set_query,
            });
        }
    };
    Ok(ApiRequest {
        action,
        resource,
        set_query_namespace: None,
    })
}

/// The function an invocation path addresses, with the sidecar filter's
/// parser. Unclean paths are refused first: the gateway would only redirect
/// them, and the redirect target is checked on its own.
pub fn classify_invoke(path: &str) -> Result<FunctionId, RouteError> {
    let target = path.split(['?', '#']).next().unwrap_or_default();
    if is_unclean(target) {
        return Err(BadRequest::UncleanPath.into());
    }
    FunctionId::from_gateway_path(path, DEFAULT_NAMESPACE).map_err(|e| match e {
        FunctionIdError::Empty(_) => BadRequest::MissingName.into(),
        FunctionIdError::NotDnsLabel { .. } | FunctionIdError::NotFunctionPath(_) => {
            BadRequest::InvalidName.into()
        }
    })
}

/// A path with `//`, `/./`, `/../`, or ending in `/.` or `/..`.
fn is_unclean(path: &str) -> bool {
    path.contains("//") || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// A path for logs: without the query, at most 256 characters.
pub(crate) fn loggable_path(path: &str) -> Cow<'_, str> {
    let path = path.split('?').next().unwrap_or_default();
    match path.char_indices().nth(256) {
        Some((i, _)) => Cow::Owned(format!("{}...", &path[..i])),
        None => Cow::Borrowed(path),
    }
}

mod error;
mod facts;

pub use error::{BadRequest, RouteError};
use facts::*;

#[cfg(test)]
mod tests;

//! Why a request has no IAM action: each reason with its status and code.

/// Why a request has no IAM action, or cannot be classified safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// 403: not a route the gateway serves with an IAM action.
    #[error("no IAM action is defined for this method and path")]
    Unknown,
    /// 400: the request is malformed or ambiguous.
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// 403: the namespace or name may be in a body Envoy did not send.
    #[error(
        "the request body was not forwarded to ext-authz (configure with_request_body on the ext_authz filter)"
    )]
    BodyNotForwarded,
    /// 413: Envoy sent only part of the body.
    #[error("the request body is larger than ext-authz accepts")]
    BodyTruncated,
}

impl RouteError {
    /// The HTTP status of the denial.
    pub fn status(&self) -> u16 {
        match self {
            RouteError::Unknown | RouteError::BodyNotForwarded => 403,
            RouteError::BadRequest(_) => 400,
            RouteError::BodyTruncated => 413,
        }
    }

    /// A stable snake_case name for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::Unknown => "unknown_route",
            RouteError::BadRequest(b) => b.code(),
            RouteError::BodyNotForwarded => "body_not_forwarded",
            RouteError::BodyTruncated => "body_truncated",
        }
    }
}

/// How a request is malformed or ambiguous (each a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("the namespace is given more than once with different values")]
    AmbiguousNamespace,
    #[error("the query and the body name different namespaces")]
    ConflictingNamespace,
    #[error("the namespace is not a valid Kubernetes namespace name")]
    InvalidNamespace,
    #[error("the name is given more than once with different values")]
    AmbiguousName,
    #[error("the path and the body name different objects")]
    ConflictingName,
    #[error("the request does not name the object it acts on")]
    MissingName,
    #[error("the name is not a valid function, secret or namespace name")]
    InvalidName,
    #[error("the request body is not a JSON object")]
    BodyNotJson,
    #[error("a JSON field this route reads is not a string")]
    FieldNotString,
    #[error("the query contains ';'")]
    SemicolonInQuery,
    #[error("the path contains empty, '.' or '..' segments")]
    UncleanPath,
}

impl BadRequest {
    pub fn code(self) -> &'static str {
        match self {
            BadRequest::AmbiguousNamespace => "ambiguous_namespace",
            BadRequest::ConflictingNamespace => "conflicting_namespace",
            BadRequest::InvalidNamespace => "invalid_namespace",
            BadRequest::AmbiguousName => "ambiguous_name",
            BadRequest::ConflictingName => "conflicting_name",
            BadRequest::MissingName => "missing_name",
            BadRequest::InvalidName => "invalid_name",
            BadRequest::BodyNotJson => "body_not_json",
            BadRequest::FieldNotString => "field_not_string",
            BadRequest::SemicolonInQuery => "semicolon_in_query",
            BadRequest::UncleanPath => "unclean_path",
        }
    }
}

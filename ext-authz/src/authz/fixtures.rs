//! A fake [`Policy`] over a fixed test key, and builders for tokens and
//! CheckRequests, shared by this module's tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use mesh_auth_core::glob::Glob;
use mesh_auth_core::testing::{TestKey, jwks};
use mesh_auth_core::{
    Claims, GatewayClaims, KeySet, TokenError, Validation, Verified, clock::Clock,
    clock::SystemClock, verify,
};
use serde_json::{Value, json};

use super::{Action, Policy, Resource};

pub const ISSUER: &str = "https://gateway.example.com";

/// Our tokens verified with one test key; policies from a fixed map of
/// policy name to (action glob, resource glob) statements.
pub struct FakePolicy {
    pub key: TestKey,
    keys: KeySet,
    validation: Validation,
    policies: HashMap<String, Vec<(Glob, Glob)>>,
    pub ready: AtomicBool,
}

impl FakePolicy {
    pub fn new() -> Self {
        let key = TestKey::generate();
        let (keys, skipped) = KeySet::from_jwks_json(jwks(&[&key]).as_bytes()).unwrap();
        assert!(skipped.is_empty());
        FakePolicy {
            key,
            keys,
            validation: Validation::new([ISSUER], [ISSUER]).unwrap(),
            policies: HashMap::new(),
            ready: AtomicBool::new(true),
        }
    }

    /// Add a policy `name` allowing each `(action, resource)` glob pair.
    pub fn with(mut self, name: &str, statements: &[(&str, &str)]) -> Self {
        self.policies.insert(
            name.to_owned(),
            statements
                .iter()
                .map(|(a, r)| (Glob::new(a), Glob::new(r)))
                .collect(),
        );
        self
    }

    /// An API token for `sub` holding `policies`.
    pub fn api_token(&self, sub: &str, policies: &[&str]) -> String {
        let now = SystemClock.now();
        self.key.sign(&json!({
            "iss": ISSUER,
            "aud": [ISSUER],
            "sub": sub,
            "fed:iss": "https://idp.example.com",
            "policy": policies,
            "iat": now,
            "exp": now + 600,
            "jti": format!("jti-{sub}"),
        }))
    }

    /// A function token for `sub` with these permissions.
    pub fn function_token(&self, sub: &str, permissions: &[&str]) -> String {
        let now = SystemClock.now();
        self.key.sign(&json!({
            "iss": ISSUER,
            "aud": [ISSUER],
            "sub": sub,
            "iat": now,
            "exp": now + 600,
            "jti": format!("fn-{sub}"),
            "function": {"permissions": permissions},
        }))
    }

    /// Sign arbitrary claims.
    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(claims)
    }
}

impl Policy for FakePolicy {
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        verify(token, &self.keys, &self.validation, SystemClock.now())
    }

    fn allows(&self, claims: &Claims<GatewayClaims>, action: Action, resource: &Resource) -> bool {
        let (action, resource) = (action.as_str(), resource.to_string());
        claims
            .custom
            .policy
            .iter()
            .flatten()
            .filter_map(|name| self.policies.get(name))
            .flatten()
            .any(|(a, r)| a.matches(action) && r.matches(&resource))
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// A CheckRequest builder.
#[derive(Debug, Clone)]
pub struct Req {
    pub http: HttpRequest,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Self {
        Req {
            http: HttpRequest {
                method: method.to_owned(),
                path: path.to_owned(),
                protocol: "HTTP/1.1".to_owned(),
                size: -1,
                ..HttpRequest::default()
            },
        }
    }

    pub fn get(path: &str) -> Self {
        Req::new("GET", path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.http.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body, forwarded whole, with its content-length.
    pub fn json(mut self, body: &Value) -> Self {
        let body = body.to_string();
        self.http
            .headers
            .insert("content-length".to_owned(), body.len().to_string());
        self.http.raw_body = body.into_bytes();
        self
    }

    /// A raw body, forwarded whole, with its content-length.
    pub fn raw(mut self, body: &[u8]) -> Self {
        self.http
            .headers
            .insert("content-length".to_owned(), body.len().to_string());
        self.http.raw_body = body.to_vec();
        self
    }

    pub fn build(self) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(Request {
                    time: None,
                    http: Some(self.http),
                }),
                ..AttributeContext::default()
            }),
        }
    }
}

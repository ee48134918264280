//! The live state both servers share, and its view for the Check service.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mesh_auth_core::iam::{Action, ClaimMap, Resource};
use mesh_auth_core::verify::{TokenError, Validation, Verified, verify_with};

use crate::crypto::RingSignatures;
use mesh_auth_core::{Claims, Clock, GatewayClaims, SystemClock};
use serde_json::Value;

use crate::authz::Policy;
use crate::exchange::Exchanger;
use crate::metrics::Metrics;

pub struct App {
    pub exchanger: Exchanger,
    pub metrics: Metrics,
    /// Rendered Prometheus text comes from here.
    pub registry: prometheus_client::registry::Registry,
    /// Set on SIGTERM: /readyz answers 503 so load balancers stop sending.
    pub draining: AtomicBool,
    validation: Validation,
}

impl App {
    pub fn new(
        exchanger: Exchanger,
        metrics: Metrics,
        registry: prometheus_client::registry::Registry,
    ) -> Result<Self, mesh_auth_core::ValidationError> {
        let issuer = exchanger.settings.issuer.clone();
        let validation = Validation::new([issuer.as_str()], [issuer.as_str()])?
            .with_leeway(exchanger.settings.leeway_seconds);
        Ok(App {
            exchanger,
            metrics,
            registry,
            draining: AtomicBool::new(false),
            validation,
        })
    }

    pub fn now(&self) -> u64 {
        SystemClock.now()
    }

    pub fn issuer(&self) -> &str {
        &self.exchanger.settings.issuer
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// The API token's claims as the IAM engine reads them (statement
/// conditions at check time see these).
fn claim_map(c: &Claims<GatewayClaims>) -> ClaimMap {
    let mut m = ClaimMap::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    };
    put("iss", c.iss.clone().map(Value::from));
    put("sub", c.sub.clone().map(Value::from));
    put("aud", Some(Value::from(c.aud.clone())));
    put("exp", Some(Value::from(c.exp)));
    put("iat", c.iat.map(Value::from));
    put("jti", c.jti.clone().map(Value::from));
    put("fed:iss", c.custom.fed_iss.clone().map(Value::from));
    put("policy", c.custom.policy.clone().map(Value::from));
    m
}

/// `*`, `ns:*` or `ns:name` as the IAM engine's resource.
fn parse_resource(resource: &str) -> Option<Resource<'_>> {
    if resource == "*" {
        return Some(Resource::Cluster);
    }
    match resource.split_once(':')? {
        (ns, "*") if !ns.is_empty() => Some(Resource::Namespace(ns)),
        (ns, name) if !ns.is_empty() && !name.is_empty() => Some(Resource::Object {
            namespace: ns,
            name,
        }),
        _ => None,
    }
}

impl Policy for App {
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        let now = self.now();
        let keys = self.exchanger.keys.current().key_set(now);
        verify_with::<GatewayClaims>(token, &keys, &self.validation, now, &RingSignatures)
    }

    fn allows(&self, claims: &Claims<GatewayClaims>, action: &str, resource: &str) -> bool {
        let (Ok(action), Some(resource)) = (action.parse::<Action>(), parse_resource(resource))
        else {
            tracing::warn!(action, resource, "unknown action or resource shape: denied");
            return false;
        };
        let names = claims.custom.policy.as_deref().unwrap_or_default();
        self.exchanger.iam.current().allows_by_policy_names(
            names,
            &claim_map(claims),
            action,
            &resource,
        )
    }
}

/// Shared handle.
pub type SharedApp = Arc<App>;

#[cfg(test)]
mod tests {
    use super::parse_resource;
    use mesh_auth_core::iam::Resource;

    #[test]
    fn resource_shapes() {
        assert_eq!(parse_resource("*"), Some(Resource::Cluster));
        assert_eq!(parse_resource("dev:*"), Some(Resource::Namespace("dev")));
        assert_eq!(
            parse_resource("dev:env"),
            Some(Resource::Object {
                namespace: "dev",
                name: "env"
            })
        );
        assert_eq!(parse_resource("dev"), None);
        assert_eq!(parse_resource(":env"), None);
        assert_eq!(parse_resource("dev:"), None);
    }
}

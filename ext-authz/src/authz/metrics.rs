//! Check decisions, counted by action and result.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::check::{CheckError, Decision};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    /// `Function:List`, ..., `Function:Invoke`, or `none` before the route
    /// is known (a missing or bad token, an unknown route).
    action: &'static str,
    /// `allowed`, `denied` or `error`.
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    /// A denial's code: `missing_token`, `expired`, `not_allowed`, ...
    reason: &'static str,
}

/// The Check service's counters. Cheap to clone (shared cells).
/// `Default` gives counters that are not registered anywhere.
#[derive(Debug, Clone, Default)]
pub struct AuthzMetrics {
    decisions: Family<DecisionLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
}

impl AuthzMetrics {
    /// Register `faas_mesh_auth_ext_authz_decisions_total{action,result}`
    /// and `faas_mesh_auth_ext_authz_denials_total{reason}` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = AuthzMetrics::default();
        registry.register(
            "faas_mesh_auth_ext_authz_decisions",
            "ext_authz Check decisions, by IAM action and result",
            metrics.decisions.clone(),
        );
        registry.register(
            "faas_mesh_auth_ext_authz_denials",
            "ext_authz Check denials, by reason",
            metrics.denials.clone(),
        );
        metrics
    }

    pub(crate) fn record(&self, decision: &Decision) {
        let result = match &decision.outcome {
            Ok(_) => "allowed",
            Err(CheckError::Denied(_)) => "denied",
            Err(CheckError::NotReady) => "error",
        };
        let action = decision.action.unwrap_or("none");
        self.decisions
            .get_or_create(&DecisionLabels { action, result })
            .inc();
        if let Err(CheckError::Denied(d)) = &decision.outcome {
            self.denials
                .get_or_create(&DenialLabels { reason: d.code() })
                .inc();
        }
    }

    /// How many decisions had this action and result (for tests and
    /// diagnostics).
    pub fn decisions(&self, action: &'static str, result: &'static str) -> u64 {
        self.decisions
            .get_or_create(&DecisionLabels { action, result })
            .get()
    }
}

//! Prometheus metrics for the HTTP side (the gRPC side registers its own in
//! `authz::AuthzMetrics`), served at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExchangeLabels {
    /// `ok` or the OAuth error code.
    pub result: String,
    /// `function`, `api`, or `none` when the request never got that far.
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub what: String,
    pub result: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub exchanges: Family<ExchangeLabels, Counter>,
    pub exchange_seconds: Histogram,
    pub jwks_served: Counter,
    pub reloads: Family<ReloadLabels, Counter>,
    pub published_keys: Gauge,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            exchanges: Family::default(),
            exchange_seconds: Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ]),
            jwks_served: Counter::default(),
            reloads: Family::default(),
            published_keys: Gauge::default(),
        };
        registry.register(
            "faas_mesh_auth_token_exchanges",
            "Token exchanges by result and issued token kind",
            m.exchanges.clone(),
        );
        registry.register(
            "faas_mesh_auth_token_exchange_duration_seconds",
            "Time to answer a token exchange",
            m.exchange_seconds.clone(),
        );
        registry.register(
            "faas_mesh_auth_jwks_served",
            "JWKS documents served",
            m.jwks_served.clone(),
        );
        registry.register(
            "faas_mesh_auth_config_reloads",
            "Reloads of the IAM configuration and the signing keys, by result",
            m.reloads.clone(),
        );
        registry.register(
            "faas_mesh_auth_published_keys",
            "Public keys in the JWKS",
            m.published_keys.clone(),
        );
        m
    }

    pub fn reload(&self, what: &str, result: &str) {
        self.reloads
            .get_or_create(&ReloadLabels {
                what: what.into(),
                result: result.into(),
            })
            .inc();
    }
}

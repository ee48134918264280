//! The HTTP server's counters, served at `/metrics` next to the Check
//! service's ([`crate::authz::AuthzMetrics`]) and the reloads'.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExchangeLabels {
    /// `ok` or why not: an [`crate::exchange::ExchangeError`]'s reason.
    result: &'static str,
    /// `function`, `api`, or `none` when the form did not parse.
    kind: &'static str,
}

#[derive(Clone)]
pub struct HttpMetrics {
    exchanges: Family<ExchangeLabels, Counter>,
    pub exchange_seconds: Histogram,
    jwks_served: Counter,
    published_keys: Gauge,
    /// Set when `/metrics` is rendered, from the state at that moment.
    ready: Gauge,
    signing_key_since: Gauge,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = HttpMetrics {
            exchanges: Family::default(),
            exchange_seconds: Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
            ]),
            jwks_served: Counter::default(),
            published_keys: Gauge::default(),
            ready: Gauge::default(),
            signing_key_since: Gauge::default(),
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
            "faas_mesh_auth_published_keys",
            "Public keys in the JWKS",
            m.published_keys.clone(),
        );
        registry.register(
            "faas_mesh_auth_ready",
            "1 while /readyz answers ready, 0 while draining",
            m.ready.clone(),
        );
        registry.register(
            "faas_mesh_auth_signing_key_since_timestamp_seconds",
            "Since when the signing key may sign (its file name's time; 0 when undated)",
            m.signing_key_since.clone(),
        );
        m
    }

    /// What is read at scrape time rather than counted as it happens.
    pub fn observe(&self, ready: bool, signing_key_since: u64) {
        self.ready.set(i64::from(ready));
        self.signing_key_since
            .set(i64::try_from(signing_key_since).unwrap_or(i64::MAX));
    }

    pub fn exchanged(&self, kind: &'static str, result: &'static str) {
        self.exchanges
            .get_or_create(&ExchangeLabels { result, kind })
            .inc();
    }

    pub fn jwks_served(&self, keys: usize) {
        self.jwks_served.inc();
        self.published_keys
            .set(i64::try_from(keys).unwrap_or(i64::MAX));
    }
}

//! The live state both servers share, owned in one place: the IAM objects,
//! our signing keys and the trusted issuers' keys. It is reloaded here
//! ([`State::reload`]), and our own tokens are checked here
//! ([`State::verify_own`]), for the Check service and the exchange alike.

use std::time::Duration;

use mesh_auth_core::iam::{self, DEFAULT_TOKEN_EXPIRY};
use mesh_auth_core::verify::{TokenError, Validation, Verified, verify_with};
use mesh_auth_core::{Claims, Clock, GatewayClaims, SystemClock};
use serde::de::DeserializeOwned;

use crate::authz::{Action, Policy, Resource};
use crate::config::Settings;
use crate::fetch::HttpFetcher;
use crate::iam_store::{IamStore, Reload};
use crate::issuers::{IssuerSettings, Issuers};
use crate::signatures::RingSignatures;
use crate::signing::{KeySettings, KeyStore};

/// Who we are as an issuer, fixed at startup.
#[derive(Debug, Clone)]
pub struct OwnIssuer {
    /// Our `iss` and `aud`: the gateway's public URL.
    pub issuer: String,
    /// The jwks_uri the discovery document advertises.
    pub jwks_uri: String,
    pub leeway_seconds: u64,
    /// Tokens exchanged for an IdP's token may outlive it (off by default).
    pub allow_past_subject_expiry: bool,
}

/// Why the state could not be built at startup.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Iam(#[from] crate::iam_store::IamLoadError),
    #[error(transparent)]
    Keys(#[from] crate::signing::KeyError),
    #[error(transparent)]
    Fetcher(#[from] crate::fetch::FetchError),
    #[error("issuer {0:?}: {1}")]
    Issuer(String, mesh_auth_core::ValidationError),
}

pub struct State {
    pub own: OwnIssuer,
    pub iam: IamStore,
    pub keys: KeyStore,
    pub issuers: Issuers,
    /// How our own tokens are checked: `iss` and `aud` are us.
    validation: Validation,
}

/// What one reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub iam: Reload,
    /// A new key ring took effect.
    pub keys: bool,
}

impl State {
    pub fn new(
        own: OwnIssuer,
        iam: IamStore,
        keys: KeyStore,
        issuers: Issuers,
    ) -> Result<Self, StateError> {
        let validation = Validation::new([own.issuer.as_str()], [own.issuer.as_str()])
            .map_err(|e| StateError::Issuer(own.issuer.clone(), e))?
            .with_leeway(own.leeway_seconds);
        Ok(State {
            own,
            iam,
            keys,
            issuers,
            validation,
        })
    }

    /// Load everything the settings name. Any error is fatal at startup.
    pub fn open(settings: &Settings) -> Result<Self, StateError> {
        let leeway = settings.clock_skew.as_secs();
        let iam = IamStore::open(&settings.iam_dir)?;
        let key_settings = KeySettings {
            leeway,
            publish_delay: settings.key_publish_delay,
        };
        let keys = KeyStore::open(&settings.signing_key_dir, key_settings, SystemClock.now())?;
        let fetcher = HttpFetcher::new(settings.idp_timeout, settings.idp_ca_file.as_deref())?;
        let issuers = Issuers::new(
            fetcher,
            IssuerSettings {
                refresh: settings.idp_jwks_refresh,
                min_refetch: settings.idp_min_refetch,
                max_stale: settings.idp_keys_max_age,
                leeway_seconds: leeway,
                ..IssuerSettings::default()
            },
        );
        let own = OwnIssuer {
            issuer: settings.issuer.clone(),
            jwks_uri: settings.jwks_uri.clone(),
            leeway_seconds: leeway,
            allow_past_subject_expiry: settings.allow_past_subject_expiry,
        };
        State::new(own, iam, keys, issuers)
    }

    /// Verify one of our own tokens at `now`: our published keys, our `iss`
    /// and `aud`, `exp` with the clock leeway.
    pub fn verify_own<C: DeserializeOwned>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Verified<C>, TokenError> {
        let keys = self.keys.current().key_set(now);
        verify_with::<C>(token, &keys, &self.validation, now, &RingSignatures)
    }

    /// Pick up changed IAM files and key files, and let time act on the
    /// keys (a scheduled key starts signing, a retired one is forgotten).
    /// Blocking: it reads files and parses YAML.
    pub fn reload(&self, now: u64) -> Reloaded {
        let iam = self.iam.reload();
        // Keys that leave the directory stay published this long after they
        // stop signing: other replicas' tokens may still be live.
        let keys = self.keys.reload(now, self.max_token_lifetime().as_secs());
        self.keys.tick(now);
        Reloaded { iam, keys }
    }

    /// The longest lifetime of any token we issue now.
    pub fn max_token_lifetime(&self) -> Duration {
        self.iam
            .current()
            .issuers()
            .map(|i| i.token_expiry())
            .chain([DEFAULT_TOKEN_EXPIRY])
            .max()
            .unwrap_or(DEFAULT_TOKEN_EXPIRY)
    }
}

impl Policy for State {
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        self.verify_own(token, SystemClock.now())
    }

    fn allows(&self, claims: &Claims<GatewayClaims>, action: Action, resource: &Resource) -> bool {
        api_token_allows(&self.iam.current(), claims, action, resource)
    }
}

/// May this verified API token perform `action` on `resource` under `iam`?
/// Its `policy` names read again now, statement conditions against its own
/// claims. The Check's rule; `faas-mesh-auth explain` calls it too.
pub fn api_token_allows(
    iam: &iam::IamConfig,
    claims: &Claims<GatewayClaims>,
    action: Action,
    resource: &Resource,
) -> bool {
    let names = claims.custom.policy.as_deref().unwrap_or_default();
    iam.allows_by_policy_names(
        names,
        &claims.to_claim_map(),
        action,
        &iam::Resource::from(resource),
    )
}

//! Everything that can go wrong talking to the IdP and the gateway, each
//! with the message a person can act on.

#[derive(Debug, thiserror::Error)]
pub enum OauthError {
    #[error("cannot reach {what} at {url}: {reason}")]
    Unreachable {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("OIDC discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the IdP does not offer {0}: use another way to log in")]
    NotOffered(&'static str),
    #[error("the IdP refused: {error}{}", describe(.description.as_deref()))]
    IdpRefused {
        error: String,
        description: Option<String>,
    },
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("sign-in was not completed: {error}{}", describe(.description.as_deref()))]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error(
        "the sign-in callback's `state` does not match this login: refused (another login, or a forged redirect)"
    )]
    StateMismatch,
    #[error("the ID token's `nonce` does not match this login: refused")]
    NonceMismatch,
    #[error("no sign-in callback within {0} s (--timeout)")]
    CallbackTimeout(u64),
    #[error("cannot listen for the sign-in callback on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("the device code expired before sign-in was completed; run the login again")]
    DeviceExpired,
    #[error("the gateway refused the exchange (HTTP {status}): {error}{}", describe(.description.as_deref()))]
    GatewayRefused {
        status: u16,
        error: String,
        description: Option<String>,
    },
}

fn describe(d: Option<&str>) -> String {
    d.map(|d| format!(": {d}")).unwrap_or_default()
}

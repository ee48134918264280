//! One issuer's keys, the OIDC way: its discovery document, checked to
//! name the issuer we expect, then the JWKS it points to (fetched from the
//! internal origin when the JwtIssuer has `issInternal`).

use mesh_auth_core::iam::JwtIssuer;
use mesh_auth_core::jwks::KeySet;
use serde_json::Value;

use super::DiscoveryError;
use crate::fetch::HttpFetcher;

pub(super) async fn fetch(
    fetcher: &HttpFetcher,
    issuer: &JwtIssuer,
) -> Result<KeySet, DiscoveryError> {
    let base = issuer.discovery_base().trim_end_matches('/');
    let url = format!("{base}/.well-known/openid-configuration");
    let doc = fetcher.get_json(&url).await?;
    let found = doc
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != issuer.iss() {
        return Err(DiscoveryError::IssuerMismatch {
            url,
            expected: issuer.iss().to_owned(),
            found: found.to_owned(),
        });
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| DiscoveryError::NoJwksUri { url: url.clone() })?;
    let jwks_uri = internal_jwks_uri(issuer, jwks_uri);
    let jwks = fetcher.get_json(&jwks_uri).await?;
    let (set, skipped) = KeySet::from_jwks_json(jwks.to_string().as_bytes()).map_err(|source| {
        DiscoveryError::Jwks {
            url: jwks_uri.clone(),
            source,
        }
    })?;
    for s in skipped {
        tracing::debug!(iss = issuer.iss(), "{s}");
    }
    Ok(set)
}

/// With `issInternal`, the discovery document still advertises public
/// URLs. A `jwks_uri` on the public issuer's origin is fetched from the
/// internal origin instead; any other `jwks_uri` is used as given.
fn internal_jwks_uri(issuer: &JwtIssuer, jwks_uri: &str) -> String {
    let Some(internal) = issuer.iss_internal() else {
        return jwks_uri.to_owned();
    };
    match (origin(issuer.iss()), origin(internal)) {
        (Some(public), Some(inside)) if jwks_uri.starts_with(public) => {
            format!("{inside}{}", &jwks_uri[public.len()..])
        }
        _ => jwks_uri.to_owned(),
    }
}

/// `scheme://authority` of a URL.
pub(super) fn origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    Some(&url[..end])
}

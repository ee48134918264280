//! A person's way in from a machine without a browser: the device
//! authorization grant (RFC 8628). It shows the user code and where to
//! enter it, then polls, honouring `interval`, `slow_down` (+5 s, section
//! 3.5) and `expires_in`. Returns the ID token.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Endpoints, Http, OauthError, post_token, string_field, token_response};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 section 3.2: the interval when the IdP names none.
const DEFAULT_INTERVAL: u64 = 5;
const SLOW_DOWN_STEP: u64 = 5;

pub fn device_grant(
    http: &Http,
    endpoints: &Endpoints,
    client_id: &str,
    scope: &str,
    audience: Option<&str>,
) -> Result<String, OauthError> {
    let url = endpoints
        .device_authorization
        .as_deref()
        .ok_or(OauthError::NotOffered("the device authorization grant"))?;
    let mut form = vec![("client_id", client_id), ("scope", scope)];
    if let Some(a) = audience {
        form.push(("audience", a));
    }
    let started = Instant::now();
    let m = post_token(http, url, &form)?;
    let device_code = string_field(url, &m, "device_code")?;
    let user_code = string_field(url, &m, "user_code")?;
    let verification = string_field(url, &m, "verification_uri")?;
    let num = |k: &str| m.get(k).and_then(Value::as_u64);
    let expires_in = num("expires_in").ok_or_else(|| OauthError::BadResponse {
        url: url.to_owned(),
        reason: "no `expires_in` in the answer".to_owned(),
    })?;
    let mut interval = num("interval").unwrap_or(DEFAULT_INTERVAL).max(1);
    eprintln!("To sign in, open {verification} and enter the code\n\n  {user_code}\n");
    if let Some(complete) = m.get("verification_uri_complete").and_then(Value::as_str) {
        eprintln!("(or open {complete})");
    }
    eprintln!("Waiting for the sign-in (the code expires in {expires_in} s) …");

    let deadline = started + Duration::from_secs(expires_in);
    loop {
        let wait = Duration::from_secs(interval);
        if Instant::now() + wait > deadline {
            return Err(OauthError::DeviceExpired);
        }
        std::thread::sleep(wait);
        let reply = http
            .post_form(
                &endpoints.token,
                &[
                    ("grant_type", GRANT),
                    ("device_code", &device_code),
                    ("client_id", client_id),
                ],
            )
            .map_err(|e| OauthError::Unreachable {
                what: "the IdP",
                url: endpoints.token.clone(),
                reason: e.to_string(),
            })?;
        match next(token_response(&endpoints.token, &reply), interval)? {
            Poll::Done(tokens) => return string_field(&endpoints.token, &tokens, "id_token"),
            Poll::Again(i) => interval = i,
        }
    }
}

enum Poll {
    Done(serde_json::Map<String, Value>),
    /// Poll again after this many seconds.
    Again(u64),
}

/// What one poll's answer means (RFC 8628 section 3.5).
fn next(
    answer: Result<serde_json::Map<String, Value>, OauthError>,
    interval: u64,
) -> Result<Poll, OauthError> {
    match answer {
        Ok(tokens) => Ok(Poll::Done(tokens)),
        Err(OauthError::IdpRefused { error, description }) => match error.as_str() {
            "authorization_pending" => Ok(Poll::Again(interval)),
            "slow_down" => Ok(Poll::Again(interval + SLOW_DOWN_STEP)),
            "expired_token" => Err(OauthError::DeviceExpired),
            "access_denied" => Err(OauthError::Denied { error, description }),
            _ => Err(OauthError::IdpRefused { error, description }),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(e: &str) -> Result<serde_json::Map<String, Value>, OauthError> {
        Err(OauthError::IdpRefused {
            error: e.to_owned(),
            description: None,
        })
    }

    #[test]
    fn polling_follows_rfc_8628() {
        assert!(matches!(
            next(refused("authorization_pending"), 2),
            Ok(Poll::Again(2))
        ));
        assert!(matches!(next(refused("slow_down"), 2), Ok(Poll::Again(7))));
        assert!(matches!(
            next(refused("expired_token"), 2),
            Err(OauthError::DeviceExpired)
        ));
        assert!(matches!(
            next(refused("access_denied"), 2),
            Err(OauthError::Denied { .. })
        ));
        assert!(matches!(
            next(refused("invalid_client"), 2),
            Err(OauthError::IdpRefused { .. })
        ));
        assert!(matches!(
            next(Ok(serde_json::Map::new()), 2),
            Ok(Poll::Done(_))
        ));
    }
}

//! The RFC 8693 exchange at `GATEWAY/oauth/token`, with the form fields
//! faas-cli and the OpenFaaS docs send. Without `scope=function` it gives
//! an API token (for `/system/`, and faas-cli's config); with it, a
//! function token, attenuated by each `audience`.

use super::{Http, OauthError, Reply, snippet, string_field};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// What the subject token is, as `subject_token_type` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A person's ID token from the IdP. faas-cli sends this type for every
    /// subject, the gateway's own API token included.
    IdToken,
    /// An IdP's access token (machines).
    AccessToken,
}

impl TokenKind {
    fn urn(self) -> &'static str {
        match self {
            TokenKind::IdToken => "urn:ietf:params:oauth:token-type:id_token",
            TokenKind::AccessToken => "urn:ietf:params:oauth:token-type:access_token",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Exchanged {
    pub access_token: String,
    pub expires_in: Option<u64>,
}

/// Exchange `subject` at `gateway` (already normalised). `function`:
/// `Some(audiences)` asks for a function token.
pub fn exchange(
    http: &Http,
    gateway: &str,
    subject: &str,
    kind: TokenKind,
    function: Option<&[String]>,
) -> Result<Exchanged, OauthError> {
    let url = format!("{gateway}/oauth/token");
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", kind.urn()),
    ];
    if let Some(audiences) = function {
        form.push(("scope", "function"));
        form.extend(audiences.iter().map(|a| ("audience", a.as_str())));
    }
    let reply = http
        .post_form(&url, &form)
        .map_err(|e| OauthError::Unreachable {
            what: "the gateway",
            url: url.clone(),
            reason: e.to_string(),
        })?;
    answer(&url, &reply)
}

fn answer(url: &str, reply: &Reply) -> Result<Exchanged, OauthError> {
    let body = reply.json();
    if reply.status != 200 {
        let (error, description) = match &body {
            Ok(m) => (
                m.get("error").and_then(|v| v.as_str()).map(str::to_owned),
                m.get("error_description")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            ),
            Err(_) => (None, None),
        };
        return Err(OauthError::GatewayRefused {
            status: reply.status,
            error: error.unwrap_or_else(|| "no OAuth error in the answer".to_owned()),
            description: description.or_else(|| {
                body.is_err()
                    .then(|| snippet(&reply.body))
                    .filter(|s| !s.is_empty())
            }),
        });
    }
    let m = body.map_err(|reason| OauthError::BadResponse {
        url: url.to_owned(),
        reason,
    })?;
    Ok(Exchanged {
        access_token: string_field(url, &m, "access_token")?,
        expires_in: m.get("expires_in").and_then(|v| v.as_u64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
        }
    }

    #[test]
    fn refusals_carry_the_gateways_words() {
        let e = answer(
            "u",
            &reply(
                400,
                r#"{"error":"invalid_target","error_description":"no policy allows dev:x"}"#,
            ),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("invalid_target") && msg.contains("no policy allows dev:x"),
            "{msg}"
        );
        let e = answer("u", &reply(502, "upstream connect error")).unwrap_err();
        assert!(
            e.to_string().contains("HTTP 502") && e.to_string().contains("upstream connect error")
        );
        let ok = answer("u", &reply(200, r#"{"access_token":"t","expires_in":60}"#)).unwrap();
        assert_eq!((ok.access_token.as_str(), ok.expires_in), ("t", Some(60)));
        assert!(answer("u", &reply(200, r#"{"token_type":"Bearer"}"#)).is_err());
    }
}

use serde_json::json;

use super::*;
use crate::iam::ClaimMap;

fn registered<C>(custom: C) -> Claims<C> {
    Claims {
        iss: Some("https://idp".into()),
        sub: Some("alice".into()),
        aud: vec!["gw".into()],
        exp: 200,
        nbf: Some(100),
        iat: Some(100),
        jti: Some("j1".into()),
        custom,
    }
}

#[test]
fn an_idp_token_keeps_every_claim() {
    let mut custom = ClaimMap::new();
    custom.insert("email".into(), json!("alice@example.com"));
    custom.insert("groups".into(), json!(["dev"]));
    let m = registered(custom).to_claim_map();
    assert_eq!(
        serde_json::Value::Object(m),
        json!({
            "email": "alice@example.com", "groups": ["dev"],
            "iss": "https://idp", "sub": "alice", "aud": ["gw"],
            "exp": 200, "nbf": 100, "iat": 100, "jti": "j1",
        })
    );
}

#[test]
fn an_api_token_has_its_gateway_claims_under_their_wire_names() {
    let mut c = registered(GatewayClaims {
        function: None,
        policy: Some(vec!["read".into()]),
        fed_iss: Some("https://idp".into()),
    });
    c.aud.clear();
    c.nbf = None;
    let m = c.to_claim_map();
    assert_eq!(m["fed:iss"], json!("https://idp"));
    assert_eq!(m["policy"], json!(["read"]));
    // Absent and empty claims are left out rather than set to null or [].
    assert!(!m.contains_key("aud"));
    assert!(!m.contains_key("nbf"));
    assert!(!m.contains_key("function"));
}

#[test]
fn registered_claims_win_over_custom_ones_of_the_same_name() {
    let mut custom = ClaimMap::new();
    custom.insert("sub".into(), json!("mallory"));
    assert_eq!(registered(custom).to_claim_map()["sub"], json!("alice"));
}

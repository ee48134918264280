use super::*;
use crate::claims::FunctionGrant;
use crate::permission::FunctionId;

fn claims(function: Option<FunctionGrant>) -> Claims<GatewayClaims> {
    Claims {
        iss: Some("https://gw".into()),
        sub: Some("fed:alice".into()),
        aud: vec!["https://gw".into()],
        exp: 2_000_000_000,
        nbf: None,
        iat: None,
        jti: None,
        custom: GatewayClaims {
            function,
            ..Default::default()
        },
    }
}

fn grant(perms: &[&str], aud: Option<&[&str]>) -> Option<FunctionGrant> {
    Some(FunctionGrant {
        permissions: perms.iter().map(|s| s.to_string()).collect(),
        audience: aud.map(|a| a.iter().map(|s| s.to_string()).collect()),
    })
}

fn env() -> FunctionId {
    FunctionId::new("openfaas-fn", "env").unwrap()
}

#[test]
fn permission_match_allows() {
    assert_eq!(
        authorize_invoke(&claims(grant(&["openfaas-fn:*"], None)), &env()),
        Ok(())
    );
    assert_eq!(
        authorize_invoke(&claims(grant(&["dev:env", "*"], None)), &env()),
        Ok(())
    );
}

#[test]
fn api_token_is_unauthorized() {
    let d = authorize_invoke(&claims(None), &env()).unwrap_err();
    assert_eq!(d, InvokeDenial::NotAFunctionToken);
    assert_eq!(d.status(), 401);
    assert!(
        d.www_authenticate()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
}

#[test]
fn missing_permission_is_forbidden() {
    let d = authorize_invoke(&claims(grant(&["dev:*"], None)), &env()).unwrap_err();
    assert!(matches!(d, InvokeDenial::NotPermitted(_)));
    assert_eq!(d.status(), 403);
    assert_eq!(d.www_authenticate(), None);
    let empty = authorize_invoke(&claims(grant(&[], None)), &env()).unwrap_err();
    assert_eq!(empty.status(), 403);
}

#[test]
fn audience_attenuates() {
    let c = claims(grant(&["*"], Some(&["dev:env"])));
    let d = authorize_invoke(&c, &env()).unwrap_err();
    assert!(matches!(d, InvokeDenial::OutsideAudience(_)));
    assert_eq!(d.status(), 403);
    assert_eq!(
        authorize_invoke(&claims(grant(&["*"], Some(&["*:env"]))), &env()),
        Ok(())
    );
    // Absent or empty audience: permissions alone decide.
    assert_eq!(
        authorize_invoke(&claims(grant(&["*"], Some(&[]))), &env()),
        Ok(())
    );
}

#[test]
fn audience_never_widens_permissions() {
    let c = claims(grant(&["dev:*"], Some(&["openfaas-fn:env"])));
    assert!(matches!(
        authorize_invoke(&c, &env()),
        Err(InvokeDenial::NotPermitted(_))
    ));
}

#[test]
fn challenges_follow_faas_cli_parsing() {
    let missing = InvokeDenial::MissingToken.www_authenticate().unwrap();
    assert_eq!(missing, r#"Bearer realm="IAM function invoke""#);
    let bad = InvokeDenial::Token(crate::verify::TokenError::Expired)
        .www_authenticate()
        .unwrap();
    // faas-cli: split once on the first space, then on ", ", find realm=.
    let (scheme, params) = bad.split_once(' ').unwrap();
    assert_eq!(scheme, "Bearer");
    let items: Vec<&str> = params.split(", ").collect();
    assert!(items.contains(&r#"realm="IAM function invoke""#));
    assert!(items.contains(&r#"error="invalid_token""#));
    assert!(items.contains(&r#"error_description="expired""#));
}

use super::{BearerError, bearer_token, challenge};

#[test]
fn faas_cli_form() {
    assert_eq!(bearer_token("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
}

#[test]
fn scheme_is_case_insensitive() {
    assert_eq!(bearer_token("bearer abc"), Ok("abc"));
    assert_eq!(bearer_token("BEARER abc"), Ok("abc"));
}

#[test]
fn extra_whitespace_is_tolerated() {
    assert_eq!(bearer_token("  Bearer   abc  "), Ok("abc"));
    assert_eq!(bearer_token("Bearer\tabc"), Ok("abc"));
}

#[test]
fn other_schemes_are_refused() {
    assert_eq!(
        bearer_token("Basic dXNlcjpwYXNz"),
        Err(BearerError::NotBearer)
    );
    assert_eq!(bearer_token("Bearerabc"), Err(BearerError::NotBearer));
    assert_eq!(bearer_token("abc.def.ghi"), Err(BearerError::NotBearer));
    assert_eq!(bearer_token(""), Err(BearerError::NotBearer));
}

#[test]
fn empty_token_is_refused() {
    assert_eq!(bearer_token("Bearer"), Err(BearerError::Empty));
    assert_eq!(bearer_token("Bearer    "), Err(BearerError::Empty));
}

#[test]
fn challenges_are_joined_as_faas_cli_splits_them() {
    assert_eq!(
        challenge("IAM function invoke", None),
        r#"Bearer realm="IAM function invoke""#
    );
    let c = challenge("OpenFaaS API", Some("expired"));
    assert_eq!(
        c,
        r#"Bearer realm="OpenFaaS API", error="invalid_token", error_description="expired""#
    );
    assert_eq!(c.split(", ").count(), 3);
}

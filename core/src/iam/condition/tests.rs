use serde_json::json;

use super::*;

fn claims(value: serde_json::Value) -> ClaimMap {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Compiles a `condition` (and optional `principal`) written as YAML.
fn try_build(
    principal: Option<&str>,
    condition: Option<&str>,
) -> (Condition, Vec<(String, String)>) {
    let principal: Option<PrincipalSpec> = principal.map(|p| serde_yaml::from_str(p).unwrap());
    let condition: Option<ConditionSpec> = condition.map(|c| serde_yaml::from_str(c).unwrap());
    let mut errors = Vec::new();
    let mut report = |field: String, kind: IamErrorKind| errors.push((field, kind.to_string()));
    let built = compile(
        principal.as_ref().map(|p| ("spec.principal", p)),
        condition.as_ref().map(|c| ("spec.condition", c)),
        &mut report,
    );
    (built, errors)
}

fn build(condition: &str) -> Condition {
    let (c, errors) = try_build(None, Some(condition));
    assert!(errors.is_empty(), "{errors:?}");
    c
}

#[test]
fn string_equal_and_its_alias_compare_exactly() {
    for op in ["StringEqual", "StringEquals"] {
        let c = build(&format!("{op}: {{jwt:iss: [\"https://idp.example.com\"]}}"));
        assert!(c.matches(&claims(json!({"iss": "https://idp.example.com"}))));
        assert!(!c.matches(&claims(json!({"iss": "https://idp.example.com/"}))));
        assert!(!c.matches(&claims(json!({"iss": "HTTPS://IDP.EXAMPLE.COM"}))));
        assert!(!c.matches(&claims(json!({}))));
    }
}

#[test]
fn values_of_one_key_are_ored() {
    let c = build("StringEqual: {jwt:sub: [alice, bob]}");
    assert!(c.matches(&claims(json!({"sub": "alice"}))));
    assert!(c.matches(&claims(json!({"sub": "bob"}))));
    assert!(!c.matches(&claims(json!({"sub": "carol"}))));
}

#[test]
fn keys_are_anded() {
    let c = build("StringEqual: {jwt:iss: [https://a], jwt:client_id: [openfaas]}");
    assert!(c.matches(&claims(
        json!({"iss": "https://a", "client_id": "openfaas"})
    )));
    assert!(!c.matches(&claims(json!({"iss": "https://a", "client_id": "other"}))));
    assert!(!c.matches(&claims(json!({"iss": "https://a"}))));
}

#[test]
fn operators_are_anded() {
    let c = build(
        "StringEqual: {jwt:iss: [https://a]}\n\
         StringLike: {jwt:email: ['*@example.com']}\n\
         ForAnyValue:StringEqual: {jwt:groups: [admins]}",
    );
    let all = json!({"iss": "https://a", "email": "x@example.com", "groups": ["dev", "admins"]});
    assert!(c.matches(&claims(all)));
    let wrong_group = json!({"iss": "https://a", "email": "x@example.com", "groups": ["dev"]});
    assert!(!c.matches(&claims(wrong_group)));
    let wrong_email = json!({"iss": "https://a", "email": "x@evil.com", "groups": ["admins"]});
    assert!(!c.matches(&claims(wrong_email)));
}

#[test]
fn ignore_case_folds_both_sides_including_unicode() {
    for op in ["StringEqualIgnoreCase", "StringEqualsIgnoreCase"] {
        let c = build(&format!(
            "{op}: {{jwt:email: [Alice@Example.COM, ÉLODIE@x.fr]}}"
        ));
        assert!(c.matches(&claims(json!({"email": "alice@example.com"}))));
        assert!(c.matches(&claims(json!({"email": "ALICE@EXAMPLE.COM"}))));
        assert!(c.matches(&claims(json!({"email": "élodie@X.FR"}))));
        assert!(!c.matches(&claims(json!({"email": "alice@example.co"}))));
    }
}

#[test]
fn string_like_is_an_anchored_glob_with_star_and_question_mark() {
    let c = build("StringLike: {jwt:repository: ['openfaas/*'], jwt:ref: ['refs/heads/v?']}");
    let ok = json!({"repository": "openfaas/faas", "ref": "refs/heads/v2"});
    assert!(c.matches(&claims(ok)));
    let deep = json!({"repository": "openfaas/faas/x", "ref": "refs/heads/v2"});
    assert!(c.matches(&claims(deep)), "* crosses '/'");
    let long = json!({"repository": "openfaas/faas", "ref": "refs/heads/v22"});
    assert!(!c.matches(&claims(long)), "? is exactly one character");
    let prefix = json!({"repository": "x-openfaas/faas", "ref": "refs/heads/v2"});
    assert!(!c.matches(&claims(prefix)), "anchored at the start");

    let sub = build("StringLike: {jwt:sub: ['repo:org/*:ref:refs/heads/main']}");
    assert!(sub.matches(&claims(json!({"sub": "repo:org/app:ref:refs/heads/main"}))));
    assert!(!sub.matches(&claims(json!({"sub": "repo:org/app:ref:refs/heads/main2"}))));
}

#[test]
fn for_any_value_matches_any_element_of_an_array_or_a_scalar() {
    for op in ["ForAnyValue:StringEqual", "ForAnyValue:StringEquals"] {
        let c = build(&format!("{op}: {{jwt:groups: [admins, ops]}}"));
        assert!(c.matches(&claims(json!({"groups": ["dev", "ops"]}))));
        assert!(c.matches(&claims(json!({"groups": "admins"}))));
        assert!(!c.matches(&claims(json!({"groups": ["dev"]}))));
        assert!(!c.matches(&claims(json!({"groups": []}))));
        assert!(
            !c.matches(&claims(json!({"groups": [["admins"]]}))),
            "nested arrays"
        );
        assert!(!c.matches(&claims(json!({"groups": [{"name": "admins"}]}))));
        assert!(!c.matches(&claims(json!({}))));
    }
}

#[test]
fn single_value_operators_never_match_array_claims() {
    let eq = build("StringEqual: {jwt:aud: [openfaas]}");
    assert!(eq.matches(&claims(json!({"aud": "openfaas"}))));
    assert!(!eq.matches(&claims(json!({"aud": ["openfaas"]}))));
    let like = build("StringLike: {jwt:aud: ['*']}");
    assert!(!like.matches(&claims(json!({"aud": ["openfaas"]}))));
    let ci = build("StringEqualIgnoreCase: {jwt:aud: [openfaas]}");
    assert!(!ci.matches(&claims(json!({"aud": ["OpenFaaS"]}))));
}

#[test]
fn bools_and_numbers_compare_as_json_text() {
    let c = build("StringEqual: {jwt:email_verified: ['true'], jwt:repository_id: ['12345']}");
    assert!(c.matches(&claims(
        json!({"email_verified": true, "repository_id": 12345})
    )));
    assert!(c.matches(&claims(
        json!({"email_verified": "true", "repository_id": "12345"})
    )));
    assert!(!c.matches(&claims(
        json!({"email_verified": false, "repository_id": 12345})
    )));
    // Unquoted YAML scalars are read as their text too.
    let unquoted = build("StringEqual: {jwt:email_verified: [true], jwt:repository_id: [12345]}");
    assert!(unquoted.matches(&claims(
        json!({"email_verified": true, "repository_id": 12345})
    )));
    let any = build("ForAnyValue:StringEqual: {jwt:ids: ['7']}");
    assert!(any.matches(&claims(json!({"ids": [1, 7]}))));
}

#[test]
fn null_objects_and_missing_claims_match_nothing() {
    let star = build("StringLike: {jwt:x: ['*']}");
    assert!(star.matches(&claims(json!({"x": ""}))));
    assert!(!star.matches(&claims(json!({"x": null}))));
    assert!(!star.matches(&claims(json!({"x": {"a": "b"}}))));
    assert!(!star.matches(&claims(json!({}))));
    let eq = build("StringEqual: {jwt:x: ['null']}");
    assert!(!eq.matches(&claims(json!({"x": null}))));
}

#[test]
fn claim_keys_address_top_level_claims_exactly() {
    let c = build("StringEqual: {jwt:kubernetes.io/namespace: [dev]}");
    let nested = json!({"kubernetes.io": {"namespace": "dev"}});
    assert!(!c.matches(&claims(nested)));
    let dotted = build("StringEqual: {jwt:fed:iss: [https://a]}");
    assert!(dotted.matches(&claims(json!({"fed:iss": "https://a"}))));
}

#[test]
fn principal_inside_condition_means_string_equal_and_is_anded() {
    let c = build(
        "principal: {jwt:sub: [a9e0e67a]}\n\
         StringEqual: {jwt:iss: [https://kc]}",
    );
    assert!(c.matches(&claims(json!({"sub": "a9e0e67a", "iss": "https://kc"}))));
    assert!(!c.matches(&claims(json!({"sub": "a9e0e67a", "iss": "https://other"}))));
    assert!(!c.matches(&claims(json!({"sub": "other", "iss": "https://kc"}))));
}

#[test]
fn principal_beside_condition_is_anded_too() {
    let (c, errors) = try_build(
        Some("{jwt:sub: [alice, bob]}"),
        Some("principal: {jwt:email: [alice@x]}"),
    );
    assert!(errors.is_empty());
    assert!(c.matches(&claims(json!({"sub": "alice", "email": "alice@x"}))));
    assert!(!c.matches(&claims(json!({"sub": "bob", "email": "bob@x"}))));
    assert!(!c.matches(&claims(json!({"email": "alice@x"}))));
}

#[test]
fn an_empty_condition_is_always_true() {
    let (c, errors) = try_build(None, None);
    assert!(errors.is_empty());
    assert!(c.is_empty());
    assert!(c.matches(&claims(json!({}))));
}

#[test]
fn bad_operators_keys_and_empty_lists_are_reported_with_paths() {
    let (_, errors) = try_build(
        Some("{sub: [x], jwt:email: []}"),
        Some(
            "StringEquel: {jwt:iss: [x]}\n\
             StringLike: {'jwt:': [x], iss: [y]}\n\
             StringEqual: {}",
        ),
    );
    let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            r#"spec.principal.jwt:email"#,
            r#"spec.principal.sub"#,
            r#"spec.condition.StringEqual"#,
            r#"spec.condition.StringEquel"#,
            r#"spec.condition.StringLike.iss"#,
            r#"spec.condition.StringLike.jwt:"#,
        ]
    );
    let messages: Vec<&str> = errors.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(messages[0], "must not be empty");
    assert_eq!(messages[1], r#"condition key "sub" must be jwt:<claim>"#);
    assert!(messages[3].starts_with(r#"unknown condition operator "StringEquel""#));
}

#[test]
fn operator_names_parse_with_aliases_and_case_matters() {
    assert_eq!(Operator::parse("StringEqual"), Some(Operator::StringEqual));
    assert_eq!(Operator::parse("StringEquals"), Some(Operator::StringEqual));
    assert_eq!(
        Operator::parse("ForAnyValue:StringEqual"),
        Some(Operator::ForAnyValueStringEqual)
    );
    assert_eq!(Operator::parse("StringLike"), Some(Operator::StringLike));
    assert_eq!(Operator::parse("stringequal"), None);
    assert_eq!(Operator::parse("StringNotEqual"), None);
    assert_eq!(Operator::parse("ForAllValues:StringEqual"), None);
    assert_eq!(Operator::parse(PRINCIPAL), None);
}

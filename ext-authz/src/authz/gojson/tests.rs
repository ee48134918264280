use super::*;

fn ns(body: &str) -> Result<Option<String>, GoJsonError> {
    parse(body.as_bytes(), &["namespace"])?.string("namespace")
}

#[test]
fn folding_matches_go() {
    assert!(go_fold_eq("namespace", "namespace"));
    assert!(go_fold_eq("NameSpace", "namespace"));
    assert!(go_fold_eq("name\u{017F}pace", "namespace"));
    assert!(go_fold_eq("NAME\u{017F}PACE", "namespace"));
    assert!(go_fold_eq("\u{212A}ey", "key"));
    assert!(!go_fold_eq("namespaces", "namespace"));
    assert!(!go_fold_eq("namespac", "namespace"));
    assert!(!go_fold_eq("name_space", "namespace"));
    assert!(!go_fold_eq("namespace ", "namespace"));
    assert!(!go_fold_eq("n\u{0430}mespace", "namespace")); // Cyrillic a
}

#[test]
fn values_absent_null_and_present() {
    assert_eq!(ns(r#"{}"#), Ok(None));
    assert_eq!(ns(r#"{"namespace":null}"#), Ok(None));
    assert_eq!(ns(r#"{"namespace":""}"#), Ok(Some(String::new())));
    assert_eq!(ns(r#"{"namespace":"dev"}"#), Ok(Some("dev".into())));
    assert_eq!(ns(r#" {"NAMESPACE" : "dev"} "#), Ok(Some("dev".into())));
    assert_eq!(
        ns(r#"{"namespace":"dev","namespace":null}"#),
        Ok(Some("dev".into()))
    );
}

#[test]
fn differing_duplicates_conflict() {
    assert_eq!(
        ns(r#"{"namespace":"a","Namespace":"b"}"#),
        Err(GoJsonError::Conflicting)
    );
    assert_eq!(
        ns(r#"{"namespace":"a","namespace":"a"}"#),
        Ok(Some("a".into()))
    );
}

#[test]
fn non_strings_and_non_objects_fail() {
    assert_eq!(ns(r#"{"namespace":1}"#), Err(GoJsonError::NotAString));
    assert_eq!(ns(r#"{"namespace":{"a":1}}"#), Err(GoJsonError::NotAString));
    for body in ["", "[]", "null", "1", "{", r#"{"a":1} x"#, r#"{"a":1}{}"#] {
        assert_eq!(ns(body), Err(GoJsonError::NotAnObject), "{body:?}");
    }
}

#[test]
fn other_fields_are_validated_but_not_kept() {
    let obj = parse(
        br#"{"service":"env","envVars":{"namespace":"x"},"namespace":"dev"}"#,
        &["namespace"],
    )
    .unwrap();
    assert_eq!(obj.string("namespace"), Ok(Some("dev".into())));
    assert_eq!(obj.string("service"), Ok(None));
    assert_eq!(
        parse(br#"{"service":tru}"#, &["namespace"]).err(),
        Some(GoJsonError::NotAnObject)
    );
}

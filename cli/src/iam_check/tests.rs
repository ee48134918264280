use super::*;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

const ISSUER: &str = "apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata: {name: idp, namespace: openfaas}
spec: {iss: https://idp.example.com, aud: [gw]}
";

#[test]
fn a_good_directory_is_summarised() {
    let d = dir_with(&[("issuer.yaml", ISSUER)]);
    let s = check(d.path()).unwrap();
    assert!(
        s.line
            .contains("OK: 1 JwtIssuer(s), 0 Policy(ies), 0 Role(s)"),
        "{}",
        s.line
    );
    assert!(s.warnings.is_empty());
}

#[test]
fn an_unknown_field_names_file_object_and_field() {
    let bad = ISSUER.replace("aud: [gw]", "aud: [gw], audience: [x]");
    let d = dir_with(&[("issuer.yaml", &bad)]);
    let e = check(d.path()).unwrap_err().to_string();
    assert!(e.contains("issuer.yaml"), "{e}");
    assert!(e.contains("audience"), "{e}");
}

#[test]
fn a_missing_directory_is_a_read_error() {
    let d = tempfile::tempdir().unwrap();
    let e = check(&d.path().join("nope")).unwrap_err();
    assert!(matches!(e, IamLoadError::Read { .. }), "{e}");
}

#[test]
fn bad_yaml_is_refused() {
    let d = dir_with(&[("a.yaml", "kind: [unclosed")]);
    let e = check(d.path()).unwrap_err();
    assert!(matches!(e, IamLoadError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("a.yaml"), "{e}");
}

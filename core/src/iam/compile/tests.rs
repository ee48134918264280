//! The examples' placeholder: refused wherever a Role or JwtIssuer says
//! whom to trust, with the file, object and field named.
#![allow(clippy::panic)]

use crate::iam::IamConfig;

const POLICY: &str = "apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: p}
spec:
  statement:
  - {effect: Allow, action: [Function:Invoke], resource: [\"*\"]}
";

fn errors(yaml: &str) -> Vec<String> {
    let sources = [("my.yaml", yaml), ("policy.yaml", POLICY)];
    match IamConfig::from_yaml_sources(sources) {
        Ok(_) => panic!("compiled:\n{yaml}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn placeholders_in_an_issuer_are_refused_per_field() {
    let found = errors(
        "apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata: {name: idp}
spec:
  iss: https://EDIT-ME.auth0.com/
  issInternal: http://EDIT-ME.internal
  aud: [ok, EDIT-ME-gateway-url]
",
    );
    assert_eq!(
        found,
        [
            "my.yaml: JwtIssuer \"idp\": spec.iss: \"https://EDIT-ME.auth0.com/\" is an \
             example's placeholder (EDIT-ME): replace it with your own value",
            "my.yaml: JwtIssuer \"idp\": spec.issInternal: \"http://EDIT-ME.internal\" is an \
             example's placeholder (EDIT-ME): replace it with your own value",
            "my.yaml: JwtIssuer \"idp\": spec.aud[1]: \"EDIT-ME-gateway-url\" is an \
             example's placeholder (EDIT-ME): replace it with your own value",
        ]
    );
}

#[test]
fn placeholders_in_a_roles_principal_and_condition_are_refused() {
    let found = errors(
        "apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: r}
spec:
  policy: [p]
  principal:
    jwt:repository_id: [\"123\", EDIT-ME-repository-id]
  condition:
    StringLike:
      jwt:email: [\"*@EDIT-ME.example\"]
    principal:
      jwt:sub: [EDIT-ME]
",
    );
    let fields: Vec<&str> = found
        .iter()
        .map(|e| e.split(": ").nth(2).unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.principal.jwt:repository_id[1]",
            "spec.condition.StringLike.jwt:email[0]",
            "spec.condition.principal.jwt:sub[0]",
        ],
        "{found:#?}"
    );
    assert!(found.iter().all(|e| e.starts_with("my.yaml: Role \"r\": ")));
}

#[test]
fn edited_values_and_lookalikes_compile() {
    let yaml = "apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: r}
spec:
  policy: [p]
  principal:
    jwt:sub: [edit-me, EDIT_ME, EDIT-ME]
";
    // Case matters: only the examples' exact marker is refused.
    assert_eq!(errors(yaml).len(), 1);
    let edited = yaml.replace(", EDIT-ME]", "]");
    let sources = [("my.yaml", edited.as_str()), ("policy.yaml", POLICY)];
    if let Err(e) = IamConfig::from_yaml_sources(sources) {
        panic!("{e}");
    }
}

use super::*;

const ISSUER: &str = "apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata:
  name: keycloak
  namespace: openfaas
spec:
  iss: https://keycloak.example.com/realms/openfaas
  aud:
    - openfaas
  tokenExpiry: 30m
";

const POLICY_AND_ROLE: &str = "apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: invoke-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-invoke-policy
    action:
      - \"Function:Invoke\"
    effect: Allow
    resource:
      - \"openfaas-fn:*\"
      - \"dev:env\"
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: invoke-role
  namespace: openfaas
spec:
  policy:
  - invoke-policy
  condition:
    principal:
      jwt:sub:
        - a9e0e67a-5758-4373-a4ba-23957fa66e6b
    StringEqual:
      jwt:iss: [\"https://keycloak.example.com/realms/openfaas\"]
";

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

#[test]
fn loads_the_docs_objects() {
    let dir = dir_with(&[
        ("issuer.yaml", ISSUER),
        ("invoke.yml", POLICY_AND_ROLE),
        ("notes.txt", "ignored"),
    ]);
    let store = IamStore::open(dir.path()).unwrap();
    let c = store.current();
    assert!(
        c.issuer("https://keycloak.example.com/realms/openfaas")
            .is_some()
    );
    assert!(c.policy("invoke-policy").is_some());
    assert_eq!(c.roles().len(), 1);
}

#[test]
fn a_bad_start_is_fatal_and_names_file_object_and_field() {
    let bad = POLICY_AND_ROLE.replace("Function:Invoke", "Function:Invok");
    let dir = dir_with(&[("issuer.yaml", ISSUER), ("invoke.yaml", &bad)]);
    let err = IamStore::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("invoke.yaml"), "{err}");
    assert!(err.contains("invoke-policy"), "{err}");
    assert!(err.contains("action"), "{err}");
    let dir = dir_with(&[("broken.yaml", "kind: [unclosed")]);
    let err = IamStore::open(dir.path()).err().unwrap().to_string();
    assert!(err.contains("broken.yaml"), "{err}");
    assert!(IamStore::open(Path::new("/nonexistent/iam")).is_err());
}

#[test]
fn reloads_good_changes_and_keeps_the_last_good_on_bad_ones() {
    let dir = dir_with(&[("issuer.yaml", ISSUER), ("invoke.yaml", POLICY_AND_ROLE)]);
    let store = IamStore::open(dir.path()).unwrap();
    assert_eq!(store.reload(), Reload::Unchanged);

    // A broken edit: rejected, nothing partial takes effect.
    let broken = format!(
        "{POLICY_AND_ROLE}---\nkind: Role\napiVersion: iam.openfaas.com/v1\nmetadata: {{name: r2}}\nspec: {{policy: [missing]}}\n"
    );
    std::fs::write(dir.path().join("invoke.yaml"), broken).unwrap();
    assert_eq!(store.reload(), Reload::Rejected);
    assert_eq!(store.current().roles().len(), 1);
    assert_eq!(
        store.reload(),
        Reload::Unchanged,
        "a rejected change is not retried every poll"
    );

    // A good edit: applied.
    let grown = POLICY_AND_ROLE.replace("dev:env", "dev:*");
    std::fs::write(dir.path().join("invoke.yaml"), grown).unwrap();
    assert_eq!(store.reload(), Reload::Applied);
    let c = store.current();
    let p = c.policy("invoke-policy").unwrap();
    assert!(format!("{p:?}").contains("dev:*"));
}

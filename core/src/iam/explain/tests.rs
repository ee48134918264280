use serde_json::json;

use super::*;

const IAM: &str = r#"apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: read}
spec:
  statement:
  - sid: list
    action: ["Function:List", "Function:Get"]
    effect: Allow
    resource: ["dev:*"]
  - sid: only-admins
    action: ["*"]
    effect: Allow
    resource: ["*"]
    condition:
      ForAnyValue:StringEqual:
        jwt:groups: [admins]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: devs}
spec:
  policy: [read]
  principal:
    jwt:sub: [alice, bob]
  condition:
    StringLike:
      jwt:email: ["*@example.com"]
    StringEqualIgnoreCase:
      jwt:team: [Blue]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: ops}
spec:
  policy: [read]
  condition:
    StringEqual:
      jwt:sub: [carol]
"#;

fn claims(v: Value) -> ClaimMap {
    match v {
        Value::Object(m) => m,
        _ => ClaimMap::new(),
    }
}

fn config() -> IamConfig {
    IamConfig::from_yaml_sources([("iam.yaml", IAM)]).unwrap()
}

#[test]
fn roles_show_each_requirement_with_the_actual_value() {
    let iam = config();
    let c = claims(json!({"sub": "alice", "email": "alice@evil.com", "team": "BLUE"}));
    let eval = iam.evaluate(&c);
    let roles = iam.explain_roles(&eval, &c);
    assert_eq!(roles.len(), 2);
    let devs = &roles[0];
    assert!(!devs.matched);
    let failed: Vec<_> = devs.requirements.iter().filter(|r| !r.held).collect();
    assert_eq!(failed.len(), 1, "{:#?}", devs.requirements);
    assert_eq!(failed[0].key, "jwt:email");
    assert_eq!(failed[0].operator, "StringLike");
    assert_eq!(failed[0].values, ["*@example.com"]);
    assert_eq!(failed[0].actual, Some(json!("alice@evil.com")));
    // Case-insensitive: the value as written, not folded.
    let team = devs
        .requirements
        .iter()
        .find(|r| r.key == "jwt:team")
        .unwrap();
    assert_eq!(
        (team.operator, team.values.as_slice(), team.held),
        ("StringEqualIgnoreCase", &["Blue".to_owned()][..], true)
    );
    // A claim the token lacks.
    let ops = &roles[1];
    assert!(!ops.matched);
    assert_eq!(ops.requirements[0].actual, Some(json!("alice")));
}

#[test]
fn matched_comes_from_the_evaluation() {
    let iam = config();
    let c = claims(json!({"sub": "bob", "email": "bob@example.com", "team": "blue"}));
    let eval = iam.evaluate(&c);
    let roles = iam.explain_roles(&eval, &c);
    assert!(roles[0].matched);
    assert!(roles[0].requirements.iter().all(|r| r.held));
    assert_eq!(
        roles.iter().filter(|r| r.matched).count(),
        eval.roles().len()
    );
}

#[test]
fn statements_show_condition_action_and_resource() {
    let iam = config();
    let c = claims(json!({"sub": "carol", "groups": ["devs"]}));
    let eval = iam.evaluate(&c);
    let grants = eval.grants();
    let ns = Resource::Namespace("prod");
    let trace = grants.explain(&c, Action::FunctionList, &ns);
    assert_eq!(trace.len(), 2);
    assert!(trace[0].in_effect && trace[0].covers_action);
    assert!(trace[0].matching_resources.is_empty() && !trace[0].grants);
    assert!(!trace[1].in_effect && !trace[1].grants);
    assert_eq!(trace[1].condition[0].actual, Some(json!(["devs"])));
    assert_eq!(trace[1].actions, ["*"]);
    assert!(!grants.allows(Action::FunctionList, &ns));

    let c = claims(json!({"sub": "carol", "groups": ["devs", "admins"]}));
    let eval = iam.evaluate(&c);
    let trace = eval.grants().explain(&c, Action::FunctionList, &ns);
    assert!(trace[1].in_effect && trace[1].grants);
    assert_eq!(trace[1].matching_resources, ["*"]);
    assert!(eval.allows(Action::FunctionList, &ns));
}

#[test]
fn action_patterns_read_as_written() {
    assert_eq!(action_text("Function:*".parse().unwrap()), "Function:*");
    assert_eq!(action_text("System:Info".parse().unwrap()), "System:Info");
    assert_eq!(action_text("*".parse().unwrap()), "*");
}

use super::*;

const IDP: &str = "https://idp.example.com";
const GW: &str = "https://gw.example.com";
const NOW: u64 = 1_800_000_000;

const IAM: &str = r#"apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata: {name: idp}
spec: {iss: "https://idp.example.com", aud: [openfaas], tokenExpiry: 30m}
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: dev}
spec:
  statement:
  - sid: invoke
    action: ["Function:Invoke", "Function:List"]
    effect: Allow
    resource: ["dev:*"]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: devs}
spec:
  policy: [dev]
  condition:
    StringEqual:
      jwt:iss: ["https://idp.example.com"]
    ForAnyValue:StringEqual:
      jwt:groups: [dev]
"#;

fn iam_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("iam.yaml"), IAM).unwrap();
    d
}

fn args(dir: &tempfile::TempDir, claims: Value) -> ExplainArgs {
    ExplainArgs {
        iam_dir: dir.path().to_owned(),
        claims: Some(claims.to_string()),
        issuer: Some(GW.into()),
        clock_skew: DEFAULT_CLOCK_SKEW.into(),
        ..ExplainArgs::default()
    }
}

fn function(mut a: ExplainArgs, f: &str) -> Report {
    a.function = Some(f.into());
    explain(&a, NOW).unwrap()
}

fn request(mut a: ExplainArgs, r: &str) -> Report {
    a.request = Some(r.into());
    explain(&a, NOW).unwrap()
}

fn dev() -> Value {
    json!({"iss": IDP, "sub": "alice", "groups": ["dev", "ops"]})
}

#[test]
fn a_matching_role_grants_the_function() {
    let d = iam_dir();
    let r = function(args(&d, dev()), "dev:env");
    assert_eq!(r.decision.status, 200, "{r}");
    assert!(r.decision.allowed);
    assert_eq!(r.subject.issuer.as_ref().unwrap().name, "idp");
    assert!(r.roles[0].matched);
    assert_eq!(r.permissions, ["dev:*"]);
    let grant = r.function_token.clone().unwrap();
    assert_eq!(grant.audience, Some(vec!["dev:env".to_owned()]));
    assert!(r.statements[0].grants);
    assert!(r.notes.iter().any(|n| n.contains("exp was not given")));
    assert!(
        r.to_string()
            .contains("Decision (exchange): ALLOWED 200 ok"),
        "{r}"
    );
}

#[test]
fn a_function_outside_the_policies_is_invalid_target() {
    let d = iam_dir();
    let r = function(args(&d, dev()), "prod:env");
    assert_eq!(
        (r.decision.status, r.decision.reason, r.decision.error),
        (400, "audience_outside_permissions", Some("invalid_target"))
    );
    assert!(!r.statements[0].grants && r.statements[0].covers_action);
}

#[test]
fn an_unmatched_role_shows_the_failing_condition() {
    let d = iam_dir();
    let r = function(
        args(&d, json!({"iss": IDP, "sub": "bob", "groups": ["ops"]})),
        "dev:env",
    );
    assert_eq!(
        (r.decision.status, r.decision.reason),
        (400, "no_matching_role")
    );
    let failed: Vec<_> = r.roles[0].requirements.iter().filter(|q| !q.held).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].key, "jwt:groups");
    assert_eq!(failed[0].operator, "ForAnyValue:StringEqual");
    assert_eq!(failed[0].actual, Some(json!(["ops"])));
    let text = r.to_string();
    assert!(
        text.contains(r#"- jwt:groups ForAnyValue:StringEqual ["dev"]: the token has ["ops"]"#),
        "{text}"
    );
}

#[test]
fn an_issuer_mismatch_lists_the_trusted_issuers() {
    let d = iam_dir();
    let mut c = dev();
    c["iss"] = json!(format!("{IDP}/"));
    let r = function(args(&d, c), "dev:env");
    assert_eq!(
        (r.decision.status, r.decision.reason),
        (400, "untrusted_issuer")
    );
    assert_eq!(r.subject.trusted, [IDP]);
}

#[test]
fn claims_are_checked_as_ext_authz_checks_them() {
    let d = iam_dir();
    let mut c = dev();
    c["exp"] = json!(NOW - 3600);
    let r = function(args(&d, c), "dev:env");
    assert_eq!(
        (r.decision.reason, r.decision.error),
        ("subject_rejected", Some("invalid_request"))
    );
    assert!(r.subject.claims_check.is_some());
    let mut c = dev();
    c["aud"] = json!("someone-else");
    let r = function(args(&d, c), "dev:env");
    assert_eq!(r.decision.reason, "subject_rejected");
}

#[test]
fn an_api_token_is_checked_by_the_check() {
    let d = iam_dir();
    let api =
        json!({"iss": GW, "aud": [GW], "sub": "fed:alice", "fed:iss": IDP, "policy": ["dev"]});
    let r = request(args(&d, api.clone()), "GET /system/functions?namespace=dev");
    assert_eq!(
        (r.decision.status, r.decision.reason, r.decision.by),
        (200, "ok", "check"),
        "{r}"
    );
    assert_eq!(r.policies, ["dev"]);
    let r = request(args(&d, api), "GET /system/functions?namespace=prod");
    assert_eq!((r.decision.status, r.decision.reason), (403, "not_allowed"));
    assert_eq!(r.target["resource"], "prod:*");
    assert!(!r.statements[0].grants);
}

#[test]
fn an_idp_token_on_the_api_is_explained_through_the_exchange() {
    let d = iam_dir();
    let r = request(args(&d, dev()), "GET /system/functions?namespace=dev");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("presented as it is, this token gets 401")),
        "{r}"
    );
    assert_eq!((r.decision.status, r.decision.reason), (200, "ok"));
    assert!(r.roles[0].matched);
}

#[test]
fn a_function_tokens_audience_narrows_it() {
    let d = iam_dir();
    let token = json!({"iss": GW, "aud": [GW], "sub": "fed:alice",
        "function": {"permissions": ["dev:*"], "audience": ["dev:env"]}});
    let r = function(args(&d, token.clone()), "dev:env");
    assert_eq!((r.decision.status, r.decision.by), (200, "filter"), "{r}");
    let r = function(args(&d, token), "dev:other");
    assert_eq!(
        (r.decision.status, r.decision.reason),
        (403, "outside_audience"),
        "{r}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let d = iam_dir();
    let mut a = args(&d, dev());
    a.function = Some("no-colon".into());
    assert!(matches!(explain(&a, NOW), Err(ExplainError::Function(..))));
    let mut a = args(&d, dev());
    a.request = Some("/system/functions".into());
    assert!(matches!(explain(&a, NOW), Err(ExplainError::Request(_))));
    let mut a = args(&d, dev());
    a.claims = Some("[1]".into());
    a.function = Some("dev:env".into());
    assert!(matches!(explain(&a, NOW), Err(ExplainError::Claims(_))));
    let mut a = args(&d, dev());
    a.iam_dir = d.path().join("missing");
    a.function = Some("dev:env".into());
    assert!(matches!(explain(&a, NOW), Err(ExplainError::Iam(_))));
}

#[test]
fn json_output_has_the_decision() {
    let d = iam_dir();
    let r = function(args(&d, dev()), "prod:env");
    let v: Value = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(v["decision"]["error"], "invalid_target");
    assert_eq!(v["roles"][0]["requirements"][0]["key"], "jwt:groups");
}

#[test]
fn an_api_token_as_exchange_subject_rereads_its_policies() {
    let d = iam_dir();
    let api =
        json!({"iss": GW, "aud": [GW], "sub": "fed:alice", "fed:iss": IDP, "policy": ["dev"]});
    let r = function(args(&d, api), "dev:env");
    assert_eq!((r.decision.status, r.decision.by), (200, "exchange"), "{r}");
    assert_eq!(r.subject.kind, "api");
    assert_eq!(r.policies, ["dev"]);
    let gone =
        json!({"iss": GW, "aud": [GW], "sub": "fed:alice", "fed:iss": IDP, "policy": ["old"]});
    let r = function(args(&d, gone), "dev:env");
    assert_eq!(
        (r.decision.status, r.decision.reason),
        (400, "policies_gone"),
        "{r}"
    );
    let untrusted = json!({"iss": GW, "aud": [GW], "sub": "fed:alice", "fed:iss": "https://gone.example.com", "policy": ["dev"]});
    let r = function(args(&d, untrusted), "dev:env");
    assert_eq!(r.decision.reason, "issuer_no_longer_trusted", "{r}");
}

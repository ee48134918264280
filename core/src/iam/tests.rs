use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::*;

fn claims(value: serde_json::Value) -> ClaimMap {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn config(sources: &[(&str, &str)]) -> IamConfig {
    match IamConfig::from_yaml_sources(sources.iter().copied()) {
        Ok(c) => c,
        Err(e) => panic!("config did not compile:\n{e}"),
    }
}

/// The config's errors, one message each.
fn errors(sources: &[(&str, &str)]) -> Vec<String> {
    match IamConfig::from_yaml_sources(sources.iter().copied()) {
        Ok(_) => panic!("config compiled"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn one_error(sources: &[(&str, &str)]) -> String {
    let mut all = errors(sources);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

// The examples of function-authentication.md, verbatim.
const DOCS_POLICY: &str = r#"apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: invoke-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-invoke-policy
    action:
      - "Function:Invoke"
    effect: Allow
    resource:
      - "openfaas-fn:*"
      - "dev:env"

"#;

const DOCS_ROLE: &str = r#"apiVersion: iam.openfaas.com/v1
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
      jwt:iss: ["https://keycloak.example.com/realms/openfaas"]
"#;

// The blog post's JwtIssuer and Role (its Policy is the docs' one).
const BLOG_ISSUER: &str = r#"---
apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata:
  name: keycloak.example.com
  namespace: openfaas
spec:
  iss: https://keycloak.example.com/realms/openfaas
  aud:
  - openfaas
  tokenExpiry: 1h
"#;

const BLOG_ROLE: &str = r#"apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: invoke-role
  namespace: openfaas
spec:
  policy:
  - invoke-policy
  condition:
    StringEqual:
      jwt:iss: ["https://keycloak.example.com/realms/openfaas"]
      jwt:client_id: ["openfaas"]
"#;

const KEYCLOAK: &str = "https://keycloak.example.com/realms/openfaas";

#[test]
fn the_docs_example_grants_the_documented_permissions() {
    let c = config(&[("policy.yaml", DOCS_POLICY), ("role.yaml", DOCS_ROLE)]);
    let subject = claims(json!({
        "iss": KEYCLOAK,
        "sub": "a9e0e67a-5758-4373-a4ba-23957fa66e6b",
        "aud": "openfaas",
        "email": "user@example.com",
    }));
    let e = c.evaluate(&subject);
    assert!(e.is_match());
    assert_eq!(
        e.roles().iter().map(|r| r.name()).collect::<Vec<_>>(),
        ["invoke-role"]
    );
    assert_eq!(e.policy_names().collect::<Vec<_>>(), ["invoke-policy"]);
    assert_eq!(e.function_permissions(), ["openfaas-fn:*", "dev:env"]);

    let env = FunctionIdFixture::new("dev", "env");
    assert!(e.allows(Action::FunctionInvoke, &env.resource()));
    assert!(!e.allows(Action::FunctionGet, &env.resource()));
    assert!(!e.allows(
        Action::FunctionInvoke,
        &Resource::Object {
            namespace: "dev",
            name: "env2"
        }
    ));

    let other_sub = claims(json!({"iss": KEYCLOAK, "sub": "someone-else"}));
    assert!(!c.evaluate(&other_sub).is_match());
    let other_iss = claims(json!({
        "iss": "https://evil.example.com",
        "sub": "a9e0e67a-5758-4373-a4ba-23957fa66e6b",
    }));
    assert!(!c.evaluate(&other_iss).is_match());
}

#[test]
fn the_blog_example_matches_on_issuer_and_client_id() {
    let c = config(&[
        ("issuer.yaml", BLOG_ISSUER),
        ("invoke-policy.yaml", DOCS_POLICY),
        ("role.yaml", BLOG_ROLE),
    ]);
    let issuer = c.issuer(KEYCLOAK).unwrap();
    assert_eq!(issuer.name(), "keycloak.example.com");
    assert_eq!(issuer.aud(), ["openfaas"]);
    assert_eq!(issuer.token_expiry(), Duration::from_secs(3600));
    assert_eq!(issuer.iss_internal(), None);
    assert_eq!(issuer.discovery_base(), KEYCLOAK);
    assert_eq!(issuer.origin(), "issuer.yaml");
    assert_eq!(c.namespace(), "openfaas");

    // A Keycloak client-credentials token.
    let token = claims(json!({
        "iss": KEYCLOAK,
        "sub": "a9e0e67a-5758-4373-a4ba-23957fa66e6b",
        "azp": "openfaas",
        "client_id": "openfaas",
        "scope": "profile email",
        "email_verified": false,
    }));
    let e = c.evaluate(&token);
    assert_eq!(e.function_permissions(), ["openfaas-fn:*", "dev:env"]);
    let other_client = claims(json!({"iss": KEYCLOAK, "client_id": "grafana"}));
    assert!(!c.evaluate(&other_client).is_match());
}

/// Builds a function resource the way ext-authz will.
struct FunctionIdFixture(crate::FunctionId);

impl FunctionIdFixture {
    fn new(ns: &str, name: &str) -> Self {
        FunctionIdFixture(crate::FunctionId::new(ns, name).unwrap())
    }
    fn resource(&self) -> Resource<'_> {
        Resource::from(&self.0)
    }
}

#[test]
fn multi_document_sources_with_empty_documents_parse_in_order() {
    let yaml = format!(
        "---\n# IAM for OpenFaaS\n---\n{BLOG_ISSUER}---\n{DOCS_POLICY}---\n{DOCS_ROLE}---\n"
    );
    let objects = parse_documents("all.yaml", &yaml).unwrap();
    let kinds: Vec<ObjectKind> = objects.iter().map(IamObject::kind).collect();
    assert_eq!(
        kinds,
        [ObjectKind::JwtIssuer, ObjectKind::Policy, ObjectKind::Role]
    );
    assert_eq!(objects[1].metadata().name, "invoke-policy");
    assert_eq!(objects[1].metadata().namespace.as_deref(), Some("openfaas"));
    assert!(parse_documents("empty.yaml", "").unwrap().is_empty());
    assert!(
        parse_documents("comments.yaml", "# nothing\n---\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_wire_form_keeps_fields_as_written() {
    let objects = parse_documents("role.yaml", DOCS_ROLE).unwrap();
    let IamObject::Role(role) = &objects[0] else {
        panic!("not a role")
    };
    assert_eq!(role.spec.policy, ["invoke-policy"]);
    assert_eq!(role.spec.principal, None);
    let condition = role.spec.condition.as_ref().unwrap();
    assert_eq!(
        condition["principal"]["jwt:sub"],
        ["a9e0e67a-5758-4373-a4ba-23957fa66e6b"]
    );
    assert_eq!(condition["StringEqual"]["jwt:iss"], [KEYCLOAK]);
}

#[test]
fn kubectl_exports_with_status_and_extra_metadata_parse() {
    let yaml = r#"apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: p
  namespace: openfaas
  uid: 0b0c4b6e-0000-0000-0000-000000000000
  resourceVersion: "1234"
  labels: {team: a}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  statement:
  - {sid: s, effect: Allow, action: ["*"], resource: ["*"]}
status: {}
"#;
    assert_eq!(parse_documents("p.yaml", yaml).unwrap().len(), 1);
}

#[test]
fn other_kinds_and_api_versions_are_errors_naming_the_document() {
    let yaml = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
---
apiVersion: iam.openfaas.com/v2
kind: Role
metadata: {name: r}
---
apiVersion: iam.openfaas.com/v1
kind: Rolle
metadata: {name: r2}
---
kind: Role
metadata: {name: r3}
---
apiVersion: iam.openfaas.com/v1
metadata: {name: r4}
---
- just
- a list
"#;
    let all = errors(&[("mixed.yaml", yaml)]);
    assert_eq!(
        all,
        [
            r#"mixed.yaml: ConfigMap "cm": apiVersion "v1" is not supported, expected "iam.openfaas.com/v1""#,
            r#"mixed.yaml: Role "r": apiVersion "iam.openfaas.com/v2" is not supported, expected "iam.openfaas.com/v1""#,
            r#"mixed.yaml: Rolle "r2": kind "Rolle" is not an IAM object (JwtIssuer, Policy or Role)"#,
            r#"mixed.yaml: Role "r3": field `apiVersion` is missing or not a string"#,
            r#"mixed.yaml: object "r4": field `kind` is missing or not a string"#,
            "mixed.yaml: document 6: document is not a mapping, so not an IAM object",
        ]
    );
}

#[test]
fn yaml_syntax_errors_name_the_file_and_do_not_hang_or_panic() {
    let yaml = format!("{DOCS_POLICY}---\nkind: Role\nspec: [\n---\n{DOCS_ROLE}");
    let e = IamConfig::from_yaml_sources([("broken.yaml", yaml.as_str())]).unwrap_err();
    assert_eq!(e.len(), 1);
    let err = e.iter().next().unwrap();
    assert!(matches!(err.kind(), IamErrorKind::Syntax(_)));
    assert_eq!(err.origin(), "broken.yaml");
    let text = err.to_string();
    assert!(
        text.starts_with("broken.yaml: document 2: invalid YAML: "),
        "{text}"
    );
    assert!(text.contains("line"), "{text}");

    for garbage in ["\t- :", "a: b: c", "key: \"unterminated", "{", "]"] {
        let e = parse_documents("g.yaml", garbage).unwrap_err();
        assert!(
            e.to_string().starts_with("g.yaml: document 1: "),
            "{garbage}: {e}"
        );
    }
}

#[test]
fn parse_errors_of_every_file_are_reported_before_compiling() {
    let bad_kind = "apiVersion: iam.openfaas.com/v1\nkind: Group\nmetadata: {name: g}\n";
    let all = errors(&[
        ("a.yaml", bad_kind),
        ("b.yaml", "spec: ["),
        ("c.yaml", DOCS_ROLE), // names a policy defined nowhere: not reported
    ]);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all[0].starts_with("a.yaml: "));
    assert!(all[1].starts_with("b.yaml: "));
}

#[test]
fn typos_in_spec_are_schema_errors_with_path_and_line() {
    let yaml = DOCS_POLICY.replace("    effect: Allow", "    efect: Allow");
    let message = one_error(&[("invoke.yaml", &yaml)]);
    assert!(
        message.starts_with(
            r#"invoke.yaml: Policy "invoke-policy": spec.statement[0]: unknown field `efect`"#
        ),
        "{message}"
    );
    assert!(message.contains("line 11"), "{message}");

    let top = format!("{DOCS_POLICY}extra: 1\n");
    let message = one_error(&[("invoke.yaml", &top)]);
    assert!(message.contains("unknown field `extra`"), "{message}");

    let missing = BLOG_ISSUER.replace("  aud:\n  - openfaas\n", "");
    let message = one_error(&[("issuer.yaml", &missing)]);
    assert!(
        message.starts_with(
            r#"issuer.yaml: JwtIssuer "keycloak.example.com": spec: missing field `aud`"#
        ),
        "{message}"
    );

    let wrong_type = DOCS_POLICY.replace("    effect: Allow", "    effect: [Allow]");
    let message = one_error(&[("invoke.yaml", &wrong_type)]);
    assert!(
        message.contains("spec.statement[0].effect: invalid type"),
        "{message}"
    );
}

#[test]
fn duplicate_yaml_keys_are_errors_not_last_wins() {
    let yaml = BLOG_ROLE.replace(
        "      jwt:client_id: [\"openfaas\"]\n",
        "      jwt:client_id: [\"openfaas\"]\n      jwt:client_id: [\"other\"]\n",
    );
    let message = one_error(&[("role.yaml", &yaml)]);
    // YAML 1.2 requires unique keys: this is invalid YAML, not a schema slip.
    assert!(
        message.starts_with("role.yaml: document 1: invalid YAML: "),
        "{message}"
    );
    assert!(message.contains("duplicate entry"), "{message}");
    assert!(message.contains("jwt:client_id"), "{message}");
}

#[test]
fn an_unknown_action_names_file_object_and_field() {
    let yaml = DOCS_POLICY.replace(
        "      - \"Function:Invoke\"\n",
        "      - \"Function:Invoke\"\n      - \"Function:Invok\"\n",
    );
    let message = one_error(&[("invoke.yaml", &yaml)]);
    assert!(
        message.starts_with(
            r#"invoke.yaml: Policy "invoke-policy": spec.statement[0].action[1]: unknown action "Function:Invok""#
        ),
        "{message}"
    );
    let e = IamConfig::from_yaml_sources([("invoke.yaml", yaml.as_str())]).unwrap_err();
    let err = e.into_vec().remove(0);
    assert_eq!(err.field(), Some("spec.statement[0].action[1]"));
    assert_eq!(
        err.object(),
        Some(&ObjectRef {
            kind: Some("Policy".into()),
            name: Some("invoke-policy".into()),
            document: None
        })
    );
    assert!(
        matches!(err.kind(), IamErrorKind::UnknownAction { found } if found == "Function:Invok")
    );
}

fn policy(name: &str, statements: &str) -> String {
    format!(
        "apiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata: {{name: {name}, namespace: openfaas}}\n\
         spec:\n  statement:\n{statements}"
    )
}

fn role(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: iam.openfaas.com/v1\nkind: Role\nmetadata: {{name: {name}, namespace: openfaas}}\n\
         spec:\n{spec}"
    )
}

fn issuer(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: iam.openfaas.com/v1\nkind: JwtIssuer\nmetadata: {{name: {name}}}\nspec:\n{spec}"
    )
}

#[test]
fn policy_statement_errors_each_name_their_field() {
    let yaml = policy(
        "bad",
        r#"  - sid: a
    effect: Deny
    action: []
    resource: ["*"]
  - sid: b
    effect: allow
    action: ["Function:Get", "function:list"]
    resource: []
  - sid: c
    effect: Allow
    action: ["*"]
    resource: ["openfaas-fn", "dev:*", "*:env", "Dev:x"]
    condition:
      StringEqual: {iss: [x]}
"#,
    );
    let all = errors(&[("bad.yaml", &yaml)]);
    let p = r#"bad.yaml: Policy "bad": "#;
    assert_eq!(
        all,
        [
            format!(r#"{p}spec.statement[0].effect: effect "Deny" is not supported, only "Allow""#),
            format!("{p}spec.statement[0].action: must not be empty"),
            format!(
                r#"{p}spec.statement[1].effect: effect "allow" is not supported, only "Allow""#
            ),
            format!(
                r#"{p}spec.statement[1].action[1]: unknown action "function:list" (expected e.g. "Function:Invoke", "Function:*" or "*")"#
            ),
            format!("{p}spec.statement[1].resource: must not be empty"),
            format!(
                r#"{p}spec.statement[2].resource[0]: invalid resource "openfaas-fn": expected "*", "namespace:*" or "namespace:name""#
            ),
            format!(
                r#"{p}spec.statement[2].resource[2]: invalid resource "*:env": expected "*", "namespace:*" or "namespace:name""#
            ),
            format!(
                r#"{p}spec.statement[2].resource[3]: invalid resource "Dev:x": namespace "Dev" is not a Kubernetes namespace name"#
            ),
            format!(
                r#"{p}spec.statement[2].condition.StringEqual.iss: condition key "iss" must be jwt:<claim>"#
            ),
        ]
    );
    let empty = policy("empty", "    []\n");
    assert_eq!(
        one_error(&[("e.yaml", &empty)]),
        r#"e.yaml: Policy "empty": spec.statement: must not be empty"#
    );
}

#[test]
fn role_errors_each_name_their_field() {
    let p = policy(
        "p",
        "  - {effect: Allow, action: [\"*\"], resource: [\"*\"]}\n",
    );
    let everyone = role("everyone", "  policy: [p]\n");
    let missing = role(
        "missing",
        "  policy: [p, nope]\n  principal: {jwt:sub: [x]}\n",
    );
    let empty = role(
        "empty",
        "  policy: []\n  principal: {}\n  condition: {StringLike: {jwt:sub: []}}\n",
    );
    let bad_op = role(
        "bad-op",
        "  policy: [p]\n  condition: {StringNotEqual: {jwt:sub: [x]}}\n",
    );
    let all = errors(&[
        ("p.yaml", &p),
        ("everyone.yaml", &everyone),
        ("missing.yaml", &missing),
        ("empty.yaml", &empty),
        ("bad-op.yaml", &bad_op),
    ]);
    assert_eq!(
        all,
        [
            r#"everyone.yaml: Role "everyone": spec: a Role needs a principal or a condition: without one it would match every token"#,
            r#"missing.yaml: Role "missing": spec.policy[1]: policy "nope" does not exist"#,
            r#"empty.yaml: Role "empty": spec.policy: must not be empty"#,
            r#"empty.yaml: Role "empty": spec.principal: must not be empty"#,
            r#"empty.yaml: Role "empty": spec.condition.StringLike.jwt:sub: must not be empty"#,
            r#"bad-op.yaml: Role "bad-op": spec.condition.StringNotEqual: unknown condition operator "StringNotEqual" (expected StringEqual, StringEquals, StringEqualIgnoreCase, StringLike, ForAnyValue:StringEqual or principal)"#,
        ]
    );
}

#[test]
fn issuer_errors_each_name_their_field() {
    let bad = issuer(
        "bad",
        "  iss: http://keycloak.example.com\n  issInternal: ftp://x\n  aud: []\n  tokenExpiry: 1d\n",
    );
    let zero = issuer(
        "zero",
        "  iss: https://a.example.com\n  aud: [a, '']\n  tokenExpiry: 0s\n",
    );
    let all = errors(&[("bad.yaml", &bad), ("zero.yaml", &zero)]);
    assert_eq!(
        all,
        [
            r#"bad.yaml: JwtIssuer "bad": spec.iss: "http://keycloak.example.com" is not a usable issuer URL: plain http is only allowed for a loopback host"#,
            r#"bad.yaml: JwtIssuer "bad": spec.issInternal: "ftp://x" is not a usable issuer URL: it must start with http:// or https://"#,
            r#"bad.yaml: JwtIssuer "bad": spec.aud: must not be empty"#,
            r#"bad.yaml: JwtIssuer "bad": spec.tokenExpiry: invalid duration "1d": unknown unit "d" (use ns, us, ms, s, m or h)"#,
            r#"zero.yaml: JwtIssuer "zero": spec.aud[1]: must not be an empty string"#,
            r#"zero.yaml: JwtIssuer "zero": spec.tokenExpiry: duration "0s" must be greater than zero"#,
        ]
    );
}

#[test]
fn issuer_urls_follow_the_documented_rules() {
    let check = |iss: &str| {
        let yaml = issuer("i", &format!("  iss: '{iss}'\n  aud: [a]\n"));
        IamConfig::from_yaml_sources([("i.yaml", yaml.as_str())]).map(|c| c.issuer(iss).is_some())
    };
    for ok in [
        "https://keycloak.example.com/realms/openfaas",
        "https://tenant.auth0.com/",
        "https://token.actions.githubusercontent.com",
        "https://kubernetes.default.svc.cluster.local",
        "http://127.0.0.1:8080/realms/x",
        "http://localhost:5556",
        "http://[::1]:9000",
        "https://[2001:db8::1]:8443",
    ] {
        assert!(check(ok).unwrap(), "{ok}");
    }
    let problem = |iss: &str| {
        let e = check(iss).unwrap_err().into_vec().remove(0);
        match e.kind() {
            IamErrorKind::InvalidUrl { reason, .. } => *reason,
            other => panic!("{other}"),
        }
    };
    assert_eq!(problem("keycloak.example.com"), UrlProblem::Scheme);
    assert_eq!(problem("HTTPS://a.example.com"), UrlProblem::Scheme);
    assert_eq!(problem("http://10.0.0.1"), UrlProblem::HttpNotLoopback);
    assert_eq!(
        problem("http://localhost.evil.com"),
        UrlProblem::HttpNotLoopback
    );
    assert_eq!(problem("https://"), UrlProblem::NoHost);
    assert_eq!(problem("https:///path"), UrlProblem::NoHost);
    assert_eq!(problem("https://user@a.example.com"), UrlProblem::UserInfo);
    assert_eq!(
        problem("https://a.example.com/?x=1"),
        UrlProblem::QueryOrFragment
    );
    assert_eq!(
        problem("https://a.example.com/#x"),
        UrlProblem::QueryOrFragment
    );
    assert_eq!(problem("https://a.example.com /x"), UrlProblem::Whitespace);
}

#[test]
fn issuers_keep_iss_verbatim_and_default_the_expiry() {
    let c = config(&[(
        "i.yaml",
        &issuer(
            "auth0",
            "  iss: https://tenant.auth0.com/\n  issInternal: ''\n  aud: [https://gw.example.com]\n",
        ),
    )]);
    let i = c.issuer("https://tenant.auth0.com/").unwrap();
    assert!(
        c.issuer("https://tenant.auth0.com").is_none(),
        "no normalisation"
    );
    assert_eq!(i.token_expiry(), DEFAULT_TOKEN_EXPIRY);
    assert_eq!(i.iss_internal(), None, "empty issInternal means unset");

    let c = config(&[(
        "k.yaml",
        &issuer(
            "kc",
            "  iss: https://kc.example.com/realms/x\n  issInternal: http://keycloak.keycloak.svc:8080/realms/x\n  aud: [a]\n  tokenExpiry: 1h30m\n",
        ),
    )]);
    let i = c.issuers().next().unwrap();
    assert_eq!(
        i.discovery_base(),
        "http://keycloak.keycloak.svc:8080/realms/x"
    );
    assert_eq!(i.token_expiry(), Duration::from_secs(5400));
}

#[test]
fn duplicates_are_errors() {
    let a = issuer("a", "  iss: https://idp.example.com\n  aud: [x]\n");
    let b = issuer("b", "  iss: https://idp.example.com\n  aud: [y]\n");
    let p = policy(
        "p",
        "  - {effect: Allow, action: [\"*\"], resource: [\"*\"]}\n",
    );
    let r = role("r", "  policy: [p]\n  principal: {jwt:sub: [x]}\n");
    let all = errors(&[
        ("a.yaml", &a),
        ("b.yaml", &b),
        ("p1.yaml", &p),
        ("p2.yaml", &p),
        ("r.yaml", &format!("{r}---\n{r}")),
    ]);
    assert_eq!(
        all,
        [
            r#"p2.yaml: Policy "p": duplicate name: the same Policy name is already defined in p1.yaml"#,
            r#"r.yaml: Role "r": duplicate name: the same Role name is already defined in r.yaml"#,
            r#"b.yaml: JwtIssuer "b": spec.iss: iss "https://idp.example.com" is already used by JwtIssuer "a""#,
        ]
    );
    // The same name in different kinds is fine.
    let same = role("p", "  policy: [p]\n  principal: {jwt:sub: [x]}\n");
    config(&[("p.yaml", &p), ("r.yaml", &same)]);
}

#[test]
fn names_and_namespaces_are_checked() {
    let p = "apiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata: {name: Bad_Name, namespace: openfaas}\n\
             spec: {statement: [{effect: Allow, action: ['*'], resource: ['*']}]}\n";
    let q = "apiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata: {name: q, namespace: openfaas-fn}\n\
             spec: {statement: [{effect: Allow, action: ['*'], resource: ['*']}]}\n";
    let all = errors(&[("p.yaml", p), ("q.yaml", q)]);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all[0].starts_with(r#"p.yaml: Policy "Bad_Name": metadata.name: name "Bad_Name""#));
    assert_eq!(
        all[1],
        r#"q.yaml: Policy "q": metadata.namespace: namespace "openfaas-fn" differs from "openfaas" used by other objects; all IAM objects must be in one namespace"#
    );

    // A namespace other than openfaas is fine when all agree or are unset.
    let r = q.replace("name: q, ", "name: r, ");
    let s = "apiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata: {name: s}\n\
             spec: {statement: [{effect: Allow, action: ['*'], resource: ['*']}]}\n";
    let c = config(&[("q.yaml", q), ("r.yaml", &r), ("s.yaml", s)]);
    assert_eq!(c.namespace(), "openfaas-fn");
    assert_eq!(config(&[("s.yaml", s)]).namespace(), DEFAULT_IAM_NAMESPACE);
}

#[test]
fn compile_collects_errors_across_objects() {
    let yaml = format!(
        "{}---\n{}---\n{}",
        issuer("i", "  iss: nope\n  aud: []\n"),
        policy("p", "  - {effect: Deny, action: [x], resource: [y]}\n"),
        role("r", "  policy: [q]\n"),
    );
    let e = IamConfig::from_yaml_sources([("all.yaml", yaml.as_str())]).unwrap_err();
    assert_eq!(e.len(), 7, "{e}");
    assert_eq!(e.to_string().lines().count(), 7);
    assert!(!e.is_empty());
}

#[test]
fn compile_takes_wire_objects_directly() {
    let objects = parse_documents("p.yaml", DOCS_POLICY).unwrap();
    let c = IamConfig::compile(objects.into_iter().map(|o| ("p.yaml", o))).unwrap();
    assert_eq!(c.policy("invoke-policy").unwrap().origin(), "p.yaml");
    assert_eq!(c.policies().len(), 1);
    assert_eq!(c.roles().len(), 0);
    assert!(!c.evaluate(&claims(json!({"sub": "x"}))).is_match());
    assert!(IamConfig::compile(Vec::<(String, IamObject)>::new()).is_ok());
}

const MANY_POLICIES: &str = r#"apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: invoke-dev}
spec:
  statement:
  - sid: invoke
    effect: Allow
    action: ["Function:Invoke"]
    resource: ["dev:*", "staging:env"]
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: read-all}
spec:
  statement:
  - sid: read
    effect: Allow
    action: ["Function:List", "Function:Get", "Function:Logs"]
    resource: ["*"]
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: fn-admin}
spec:
  statement:
  - sid: admin
    effect: Allow
    action: ["Function:*"]
    resource: ["staging:*", "dev:*"]
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: god}
spec:
  statement:
  - sid: all
    effect: Allow
    action: ["*"]
    resource: ["*"]
---
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: secrets}
spec:
  statement:
  - sid: secrets
    effect: Allow
    action: ["Secret:*", "Namespace:List"]
    resource: ["dev:*"]
"#;

fn engine(roles: &str) -> IamConfig {
    config(&[("policies.yaml", MANY_POLICIES), ("roles.yaml", roles)])
}

#[test]
fn permissions_are_the_deduplicated_union_of_invoke_statements() {
    let roles = [
        role("devs", "  policy: [invoke-dev, read-all]\n  principal: {jwt:sub: [alice]}\n"),
        role(
            "admins",
            "  policy: [fn-admin, invoke-dev, invoke-dev]\n  condition: {ForAnyValue:StringEqual: {jwt:groups: [admins]}}\n",
        ),
        role("secrets", "  policy: [secrets]\n  principal: {jwt:sub: [alice]}\n"),
    ]
    .join("---\n");
    let c = engine(&roles);

    let alice = claims(json!({"sub": "alice", "groups": ["admins"]}));
    let e = c.evaluate(&alice);
    assert_eq!(
        e.roles().iter().map(|r| r.name()).collect::<Vec<_>>(),
        ["devs", "admins", "secrets"]
    );
    assert_eq!(
        e.policy_names().collect::<Vec<_>>(),
        ["invoke-dev", "read-all", "fn-admin", "secrets"]
    );
    // Function:List on read-all and Secret:* do not grant invoke.
    assert_eq!(
        e.function_permissions(),
        ["dev:*", "staging:env", "staging:*"]
    );
    assert_eq!(e.grants().policies().len(), 4);
    assert_eq!(e.grants().statements().len(), 4);

    let bob = claims(json!({"sub": "bob", "groups": "admins"}));
    assert_eq!(
        c.evaluate(&bob).function_permissions(),
        ["staging:*", "dev:*", "staging:env"]
    );

    let carol = claims(json!({"sub": "carol"}));
    let e = c.evaluate(&carol);
    assert!(!e.is_match());
    assert!(e.function_permissions().is_empty());
    assert_eq!(e.policy_names().count(), 0);
}

#[test]
fn wildcard_actions_grant_invoke_and_everything_else() {
    let roles = role("root", "  policy: [god]\n  principal: {jwt:sub: [root]}\n");
    let c = engine(&roles);
    let e = c.evaluate(&claims(json!({"sub": "root"})));
    assert_eq!(e.function_permissions(), ["*"]);
    for action in Action::ALL {
        assert!(e.allows(action, &Resource::Cluster), "{action}");
        assert!(e.allows(action, &Resource::Namespace("any")), "{action}");
    }
}

#[test]
fn allows_checks_action_and_resource_together() {
    let roles = role(
        "dev",
        "  policy: [read-all, fn-admin, secrets]\n  principal: {jwt:sub: [dev]}\n",
    );
    let c = engine(&roles);
    let e = c.evaluate(&claims(json!({"sub": "dev"})));
    let obj = |namespace, name| Resource::Object { namespace, name };

    assert!(e.allows(Action::FunctionList, &Resource::Namespace("prod")));
    assert!(e.allows(Action::FunctionGet, &obj("prod", "env")));
    assert!(!e.allows(Action::FunctionDelete, &obj("prod", "env")));
    assert!(e.allows(Action::FunctionDelete, &obj("staging", "env")));
    assert!(e.allows(Action::FunctionScale, &Resource::Namespace("dev")));
    assert!(!e.allows(Action::FunctionScale, &Resource::Cluster));
    assert!(e.allows(Action::SecretCreate, &obj("dev", "db-password")));
    assert!(!e.allows(Action::SecretCreate, &obj("staging", "db-password")));
    assert!(e.allows(Action::NamespaceList, &Resource::Namespace("dev")));
    assert!(!e.allows(Action::NamespaceList, &Resource::Cluster));
    assert!(!e.allows(Action::NamespaceDelete, &Resource::Namespace("dev")));
    assert!(!e.allows(Action::SystemInfo, &Resource::Cluster));
    assert_eq!(e.function_permissions(), ["staging:*", "dev:*"]);
}

#[test]
fn both_principal_placements_work_and_combine() {
    let roles = [
        role(
            "spec-principal",
            "  policy: [invoke-dev]\n  principal:\n    jwt:sub: [a, b]\n  condition:\n    StringEqual: {jwt:iss: [https://idp]}\n",
        ),
        role(
            "both",
            "  policy: [god]\n  principal: {jwt:sub: [a]}\n  condition:\n    principal: {jwt:email: [a@x]}\n",
        ),
    ]
    .join("---\n");
    let c = engine(&roles);
    let names = |v: serde_json::Value| {
        c.evaluate(&claims(v))
            .roles()
            .iter()
            .map(|r| r.name().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(json!({"sub": "b", "iss": "https://idp"})),
        ["spec-principal"]
    );
    assert!(names(json!({"sub": "b", "iss": "https://other"})).is_empty());
    assert_eq!(
        names(json!({"sub": "a", "iss": "https://idp", "email": "a@x"})),
        ["spec-principal", "both"]
    );
    assert_eq!(
        names(json!({"sub": "a", "iss": "https://idp"})),
        ["spec-principal"]
    );
}

#[test]
fn statement_conditions_filter_what_a_policy_grants() {
    let p = policy(
        "conditional",
        r#"  - sid: always
    effect: Allow
    action: ["Function:Invoke"]
    resource: ["dev:*"]
  - sid: verified-only
    effect: Allow
    action: ["Function:Invoke", "Function:Delete"]
    resource: ["prod:*"]
    condition:
      StringEqual: {jwt:email_verified: ["true"]}
"#,
    );
    let r = role(
        "r",
        "  policy: [conditional]\n  condition: {StringLike: {jwt:email: ['*@example.com']}}\n",
    );
    let c = config(&[("p.yaml", &p), ("r.yaml", &r)]);

    let verified = claims(json!({"email": "a@example.com", "email_verified": true}));
    let e = c.evaluate(&verified);
    assert_eq!(e.function_permissions(), ["dev:*", "prod:*"]);
    assert!(e.allows(Action::FunctionDelete, &Resource::Namespace("prod")));

    let unverified = claims(json!({"email": "a@example.com", "email_verified": false}));
    let e = c.evaluate(&unverified);
    assert_eq!(e.function_permissions(), ["dev:*"]);
    assert!(!e.allows(Action::FunctionDelete, &Resource::Namespace("prod")));
    // The policy still matched: an API token lists it, and its conditions
    // are evaluated again at check time.
    assert_eq!(e.policy_names().collect::<Vec<_>>(), ["conditional"]);
    let statement = &c.policy("conditional").unwrap().statements()[1];
    assert_eq!(statement.sid(), "verified-only");
    assert!(statement.condition().is_some());
    assert!(!statement.applies_to(&unverified));
}

#[test]
fn api_tokens_re_read_their_policies_by_name() {
    let c = engine(&role("x", "  policy: [god]\n  principal: {jwt:sub: [x]}\n"));
    let api_claims = claims(json!({
        "iss": "https://gw.example.com",
        "sub": "fed:alice",
        "fed:iss": KEYCLOAK,
        "policy": ["read-all", "deleted-since", "secrets", "read-all"],
    }));
    let names = ["read-all", "deleted-since", "secrets", "read-all"];
    let g = c.grants_for_policies(names, &api_claims);
    assert_eq!(
        g.policy_names().collect::<Vec<_>>(),
        ["read-all", "secrets"]
    );
    assert_eq!(g.missing_policies(), ["deleted-since"]);
    assert!(g.allows(Action::FunctionList, &Resource::Namespace("prod")));
    assert!(g.allows(Action::SecretDelete, &Resource::Namespace("dev")));
    assert!(!g.allows(Action::FunctionDelete, &Resource::Namespace("dev")));
    assert!(g.function_permissions().is_empty());

    let names = vec!["fn-admin".to_owned()];
    let staging_env = Resource::Object {
        namespace: "staging",
        name: "env",
    };
    assert!(c.allows_by_policy_names(&names, &api_claims, Action::FunctionUpdate, &staging_env));
    assert!(!c.allows_by_policy_names(&names, &api_claims, Action::SecretUpdate, &staging_env));
    assert!(!c.allows_by_policy_names(["nope"], &api_claims, Action::FunctionGet, &staging_env));
}

#[test]
fn ten_thousand_roles_evaluate_through_the_index() {
    const N: usize = 10_000;
    let mut yaml = String::with_capacity(N * 400);
    for i in 0..N {
        writeln!(
            yaml,
            "apiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata: {{name: p{i}}}\nspec:\n  statement:\n  - {{sid: s, effect: Allow, action: [\"Function:Invoke\"], resource: [\"ns{i}:*\"]}}\n---"
        )
        .unwrap();
        // All Roles share the issuer; the index must pick `sub` instead.
        writeln!(
            yaml,
            "apiVersion: iam.openfaas.com/v1\nkind: Role\nmetadata: {{name: r{i}}}\nspec:\n  policy: [p{i}]\n  principal: {{jwt:sub: [\"user-{i}\"]}}\n  condition:\n    StringEqual: {{jwt:iss: [\"{KEYCLOAK}\"]}}\n---"
        )
        .unwrap();
    }
    // A few Roles only a scan can find.
    for (i, cond) in [
        "StringLike: {jwt:email: ['*@globs.example.com']}",
        "StringEqualIgnoreCase: {jwt:email: [Someone@Example.com]}",
    ]
    .iter()
    .enumerate()
    {
        writeln!(
            yaml,
            "apiVersion: iam.openfaas.com/v1\nkind: Role\nmetadata: {{name: scan{i}}}\nspec:\n  policy: [p0]\n  condition: {{{cond}}}\n---"
        )
        .unwrap();
    }
    // And some grouped by an array claim.
    writeln!(
        yaml,
        "apiVersion: iam.openfaas.com/v1\nkind: Role\nmetadata: {{name: group}}\nspec:\n  policy: [p1]\n  condition: {{ForAnyValue:StringEqual: {{jwt:groups: [team-7]}}, StringEqual: {{jwt:iss: [\"{KEYCLOAK}\"]}}}}\n"
    )
    .unwrap();

    let c = config(&[("big.yaml", &yaml)]);
    assert_eq!(c.roles().len(), N + 3);

    let user =
        claims(json!({"iss": KEYCLOAK, "sub": "user-7777", "email": "u@x", "groups": ["team-7"]}));
    let e = c.evaluate(&user);
    assert_eq!(
        e.roles().iter().map(|r| r.name()).collect::<Vec<_>>(),
        ["r7777", "group"]
    );
    assert_eq!(e.function_permissions(), ["ns7777:*", "ns1:*"]);
    assert!(e.roles_examined() <= 4, "examined {}", e.roles_examined());

    let globbed = claims(json!({"iss": KEYCLOAK, "sub": "nobody", "email": "x@globs.example.com"}));
    let e = c.evaluate(&globbed);
    assert_eq!(
        e.roles().iter().map(|r| r.name()).collect::<Vec<_>>(),
        ["scan0"]
    );
    assert!(e.roles_examined() <= 3, "examined {}", e.roles_examined());

    let stranger = claims(json!({"iss": "https://other", "sub": "user-1"}));
    assert!(!c.evaluate(&stranger).is_match());
}

#[test]
fn the_config_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<IamConfig>();
    assert_send_sync::<IamErrors>();
}

#[test]
fn with_two_issuers_a_role_without_an_iss_condition_is_warned_about() {
    let issuer = |name: &str, iss: &str| {
        format!(
            "apiVersion: iam.openfaas.com/v1\nkind: JwtIssuer\nmetadata: {{name: {name}}}\nspec:\n  iss: {iss}\n  aud: [openfaas]\n"
        )
    };
    let roles = r#"apiVersion: iam.openfaas.com/v1
kind: Policy
metadata: {name: p}
spec:
  statement:
  - {sid: "1", effect: Allow, action: ["Function:Invoke"], resource: ["*"]}
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: any-issuer}
spec:
  policy: [p]
  principal:
    jwt:sub: [alice]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata: {name: pinned}
spec:
  policy: [p]
  principal:
    jwt:sub: [alice]
  condition:
    StringEqual:
      jwt:iss: ["https://a.example"]
"#;
    let one = config(&[
        ("a.yaml", &issuer("a", "https://a.example")),
        ("r.yaml", roles),
    ]);
    assert!(one.warnings().is_empty());
    let two = config(&[
        ("a.yaml", &issuer("a", "https://a.example")),
        ("b.yaml", &issuer("b", "https://b.example")),
        ("r.yaml", roles),
    ]);
    let w = two.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("any-issuer") && w[0].contains("jwt:iss"),
        "{w:?}"
    );
}

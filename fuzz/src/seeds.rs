//! Seed inputs for every target, made by code: `cargo run -p
//! mesh-auth-fuzz --bin fuzz-seeds -- DIR` writes them to `DIR/<target>/`,
//! where `make fuzz` starts from them next to the committed corpus.

use mesh_auth_core::jwks::Algorithm;
use serde_json::{Value, json};

use crate::filter::headers::serialize;
use crate::keys::{AUDIENCES, ISSUERS, NOW, es256_header_json, keys, sign_with};

/// `(target, inputs)` for each target of [`crate::TARGETS`].
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("verify", verify()),
        ("jwks", jwks()),
        ("iam_compile", iam_compile()),
        ("system_routes", system_routes()),
        ("token_form", token_form()),
        ("filter_headers", filter_headers()),
        ("filter_config", filter_config()),
    ]
}

/// Claims our validation accepts, function-token or IdP shaped.
fn good_claims() -> Vec<Value> {
    vec![
        json!({"iss": ISSUERS[0], "sub": "fed:user", "aud": [AUDIENCES[0]], "iat": NOW,
               "nbf": NOW, "exp": NOW + 300, "jti": "j1",
               "function": {"permissions": ["openfaas-fn:*", "dev:env"], "audience": ["dev:env"]}}),
        json!({"iss": ISSUERS[0], "sub": "fed:user", "aud": AUDIENCES[0], "iat": NOW,
               "exp": NOW + 3600, "policy": ["admin"], "fed:iss": ISSUERS[1]}),
        json!({"iss": ISSUERS[1], "sub": "u-1", "aud": AUDIENCES[1], "exp": NOW + 60,
               "email": "a@example.com", "groups": ["dev", "ops"], "email_verified": true}),
    ]
}

fn verify() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA] {
        for claims in good_claims() {
            out.push(sign_with(alg, &claims).into_bytes());
        }
    }
    // Refused ones, each for one reason.
    let base = good_claims().swap_remove(0);
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    for claims in [
        with("exp", json!(NOW - 100)),
        with("nbf", json!(NOW + 100)),
        with("iat", json!(NOW + 100)),
        with("iss", json!("https://evil.example.com")),
        with("aud", json!(["someone-else"])),
        with("function", json!({"permissions": "not-a-list"})),
    ] {
        out.push(sign_with(Algorithm::ES256, &claims).into_bytes());
    }
    // Sign-mode inputs: header NUL payload, signed by the target.
    let payload = base.to_string();
    for header in [
        es256_header_json(),
        json!({"alg": "ES256", "kid": "es256-a", "crit": ["exp"]}),
        json!({"alg": "ES256", "kid": "es256-a", "typ": "at+jwt"}),
        json!({"alg": "ES256", "kid": "es256-a", "typ": "JWE"}),
        json!({"alg": "RS256", "kid": "es256-a"}),
        json!({"alg": "none", "kid": "es256-a"}),
        json!({"alg": "ES256"}),
        json!({"alg": "ES256", "kid": "nope", "jku": "https://evil.example.com/jwks"}),
    ] {
        let mut input = header.to_string().into_bytes();
        input.push(0);
        input.extend_from_slice(payload.as_bytes());
        out.push(input);
    }
    out
}

fn jwks() -> Vec<Vec<u8>> {
    let k = keys();
    vec![
        k.jwks.clone().into_bytes(),
        mesh_auth_core::testing::jwks(&[&mesh_auth_core::testing::TestKey::from_pem(
            crate::keys::ES256_PEM,
        )
        .expect("the ES256 test key")])
        .into_bytes(),
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "a", "x": "AAAA", "y": "AAAA"},
            {"kty": "EC", "crv": "P-384", "kid": "b", "x": "AAAA", "y": "AAAA"},
            {"kty": "RSA", "kid": "c", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "d", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "X25519", "kid": "e", "x": "AAAA"},
            {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "use": "enc"},
            "not an object",
        ]})
        .to_string()
        .into_bytes(),
        b"{\"keys\": []}".to_vec(),
    ]
}

const ISSUER_YAML: &str = "apiVersion: iam.openfaas.com/v1
kind: JwtIssuer
metadata:
  name: idp
  namespace: openfaas
spec:
  iss: https://idp.example.com
  issInternal: http://idp.idp.svc:8080
  aud:
  - openfaas
  tokenExpiry: 1h30m
";

const POLICY_YAML: &str = "apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: admin
spec:
  statement:
  - sid: all
    effect: Allow
    action: [\"Function:*\", \"Secret:List\", \"Namespace:*\", \"System:Info\"]
    resource: [\"*\", \"dev:*\", \"openfaas-fn:env\"]
    condition:
      StringLike:
        jwt:email: [\"*@example.com\"]
";

const ROLE_YAML: &str = "apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: admins
spec:
  policy: [admin]
  principal:
    jwt:sub: [u-1, u-2]
  condition:
    StringEqual:
      jwt:iss: [https://idp.example.com]
    StringEqualIgnoreCase:
      jwt:email: [A@Example.com]
    ForAnyValue:StringEquals:
      jwt:groups: [ops]
";

fn iam_compile() -> Vec<Vec<u8>> {
    let claims = json!({"iss": "https://idp.example.com", "sub": "u-1", "email": "a@example.com",
                        "groups": ["dev", "ops"], "client_id": "openfaas"})
    .to_string();
    let mut out = Vec::new();
    let mut add = |yaml: &str, claims: &str| {
        let mut v = yaml.as_bytes().to_vec();
        v.push(0);
        v.extend_from_slice(claims.as_bytes());
        out.push(v);
    };
    for example in [
        include_str!("../../k8s/examples/keycloak.yaml"),
        include_str!("../../k8s/examples/auth0.yaml"),
        include_str!("../../k8s/examples/github-actions.yaml"),
        include_str!("../../k8s/examples/kubernetes-serviceaccounts.yaml"),
    ] {
        add(example, &claims);
    }
    add(
        &format!("{ISSUER_YAML}---\n{POLICY_YAML}---\n{ROLE_YAML}"),
        &claims,
    );
    // Two sources, and a Role whose Policy is in the other one.
    add(
        &format!("{ISSUER_YAML}---\n{POLICY_YAML}\u{1}{ROLE_YAML}"),
        &claims,
    );
    // Refused: a Role naming a missing Policy, a bad action, a Deny.
    add(ROLE_YAML, "{}");
    add(
        &POLICY_YAML
            .replace("Function:*", "Function:Invok")
            .replace("Allow", "Deny"),
        "{}",
    );
    out
}

fn system_routes() -> Vec<Vec<u8>> {
    // (method index into METHODS, body kind, target, body)
    let cases: &[(u8, u8, &str, &str)] = &[
        (0, 0, "/system/info", ""),
        (0, 0, "/system/functions?namespace=dev", ""),
        (
            1,
            1,
            "/system/functions",
            r#"{"service":"env","namespace":"dev","image":"x"}"#,
        ),
        (
            2,
            1,
            "/system/functions?namespace=dev",
            r#"{"service":"env","namespace":"dev"}"#,
        ),
        (
            3,
            1,
            "/system/functions",
            r#"{"functionName":"env","namespace":"dev"}"#,
        ),
        (
            3,
            0,
            "/system/functions?namespace=dev",
            r#"{"functionName":"env"}"#,
        ),
        (0, 0, "/system/function/env?namespace=dev", ""),
        (
            1,
            1,
            "/system/scale-function/env",
            r#"{"serviceName":"env","replicas":2,"namespace":"dev"}"#,
        ),
        (0, 0, "/system/logs?name=env&namespace=dev&follow=true", ""),
        (0, 0, "/system/secrets?namespace=dev", ""),
        (
            1,
            1,
            "/system/secrets",
            r#"{"name":"db.password","namespace":"dev","value":"x"}"#,
        ),
        (
            2,
            1,
            "/system/secrets",
            r#"{"name":"db","namespace":"dev"}"#,
        ),
        (
            3,
            1,
            "/system/secrets",
            r#"{"name":"db","NameSpace":"dev"}"#,
        ),
        (0, 0, "/system/namespaces", ""),
        (0, 0, "/system/namespace/dev", ""),
        (
            1,
            1,
            "/system/namespace/",
            r#"{"name":"dev","labels":{"a":"b"}}"#,
        ),
        (2, 1, "/system/namespace/dev", r#"{"name":"dev"}"#),
        (3, 1, "/system/namespace/dev", ""),
        (1, 2, "/system/functions", ""),
        (1, 3, "/system/functions", ""),
        (
            0,
            0,
            "/system/function/env?namespace=dev&namespace=prod",
            "",
        ),
        (0, 0, "/system/function/../info", ""),
        (0, 0, "/system/functions?namespace=dev;x", ""),
        (
            1,
            1,
            "/system/functions",
            r#"{"service":"env","namespace":"dev","namespace":"prod"}"#,
        ),
        (
            1,
            1,
            "/system/functions",
            r#"{"service":"env","\u006eamespace":"dev"}"#,
        ),
    ];
    cases
        .iter()
        .map(|(m, b, target, body)| {
            let mut v = vec![*m, *b];
            v.extend_from_slice(target.as_bytes());
            v.push(0);
            v.extend_from_slice(body.as_bytes());
            v
        })
        .collect()
}

fn token_form() -> Vec<Vec<u8>> {
    let subject = sign_with(Algorithm::RS256, &good_claims()[2]);
    let body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
         &subject_token={subject}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token\
         &scope=function&audience=dev%3Aenv&audience=openfaas-fn%3A*"
    );
    let many: String = (0..70).map(|i| format!("audience=a{i}&")).collect();
    [
        ("", body.as_str()),
        ("scope=function", body.as_str()),
        ("grant_type=password", body.as_str()),
        ("", many.as_str()),
        ("audience=x", "audience=x&audience=&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"),
        ("", "scope=a+b%20function&unknown=1&grant_type=x&grant_type=x"),
    ]
    .iter()
    .map(|(q, b)| [q.as_bytes(), b"\0", b.as_bytes()].concat())
    .collect()
}

fn filter_headers() -> Vec<Vec<u8>> {
    let token = sign_with(Algorithm::ES256, &good_claims()[0]);
    let bearer = format!("Bearer {token}");
    let maps: Vec<Vec<(&[u8], &[u8])>> = vec![
        vec![
            (b":authority", b"env.openfaas-fn"),
            (b":path", b"/function/env?x=1"),
            (b":method", b"POST"),
            (b"authorization", bearer.as_bytes()),
            (b"x-faas-mesh-auth-subject", b"spoofed"),
        ],
        vec![(b"authorization", b"bearer \t tok \t"), (b"", b"")],
        vec![(b"authorization", b"Basic dXNlcjpwYXNz")],
        vec![],
    ];
    let mut out: Vec<Vec<u8>> = maps.into_iter().map(serialize).collect();
    out.push(b"Bearer  abc.def.ghi  ".to_vec());
    out.push(b":path\0/x\0authorization\0BEARER t".to_vec());
    out
}

fn filter_config() -> Vec<Vec<u8>> {
    let k = keys();
    let configs = [
        json!({"issuer": ISSUERS[0], "jwks": {"cluster": "outbound|8080||ext-authz.openfaas.svc.cluster.local"},
               "function": {"name": "env", "namespace": "openfaas-fn"}}),
        json!({"issuer": ISSUERS[0], "audience": ["a", "b"], "local_jwks": k.jwks,
               "exempt_paths": ["/_/health", "/public/*"], "mode": "audit", "crypto": "wasm",
               "clock_skew_seconds": 5, "max_token_bytes": 4096, "cache": {"max_entries": 10},
               "forward_subject": true}),
        json!({"issuer": ISSUERS[0], "local_jwks": serde_json::from_str::<Value>(&k.jwks).expect("JSON"),
               "function": null}),
        json!({"issuer": ISSUERS[0], "jwks": {"cluster": "c", "authority": "a", "path": "/jwks",
               "refresh_seconds": 60, "timeout_ms": 500, "min_refetch_seconds": 0, "retry_seconds": 5}}),
        json!({"issuer": " ", "jwks": {"cluster": "c"}, "exempt_path": []}),
    ];
    let mut out = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let mut v = vec![i as u8];
        v.extend_from_slice(c.to_string().as_bytes());
        out.push(v);
    }
    out
}

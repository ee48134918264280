use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue as PbHeaderValue};
use serde_json::json;

use super::*;
use crate::authz::fixtures::{FakePolicy, ISSUER, Req};

fn policy() -> FakePolicy {
    FakePolicy::new()
        .with("admin", &[("*", "*")])
        .with("dev-rw", &[("Function:*", "dev:*"), ("Secret:*", "dev:*")])
        .with("env-reader", &[("Function:Get", "openfaas-fn:env")])
        .with("namespace-lister", &[("Namespace:List", "*")])
}

fn decide_req(p: &FakePolicy, req: Req) -> Decision {
    decide(p, &req.build())
}

fn denial(d: &Decision) -> &Denial {
    match &d.outcome {
        Err(CheckError::Denied(denial)) => denial,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn allow(d: &Decision) -> &Allow {
    d.outcome.as_ref().unwrap()
}

/// The denied response's status, headers and body.
fn denied_parts(d: &Decision) -> (i32, Vec<(String, String)>, String) {
    let resp = respond(&d.outcome).unwrap();
    assert_ne!(resp.status.as_ref().unwrap().code, Code::Ok as i32);
    match resp.http_response {
        Some(HttpResponse::DeniedResponse(r)) => (
            r.status.unwrap().code,
            r.headers
                .into_iter()
                .map(|h| {
                    assert_eq!(
                        h.append_action,
                        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
                    );
                    let h = h.header.unwrap();
                    (h.key, h.value)
                })
                .collect(),
            r.body,
        ),
        other => panic!("expected a denied response, got {other:?}"),
    }
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn api_token_with_a_matching_policy_is_allowed() {
    let p = policy();
    let token = p.api_token("fed:alice", &["dev-rw"]);
    let d = decide_req(
        &p,
        Req::get("/system/function/env?namespace=dev").bearer(&token),
    );
    assert_eq!(
        allow(&d),
        &Allow {
            subject: Some("fed:alice".into()),
            set_query_namespace: None
        }
    );
    assert_eq!(d.action, Some("Function:Get"));
    assert_eq!(d.resource.as_deref(), Some("dev:env"));
    let who = d.who.clone().unwrap();
    assert_eq!(who.sub.as_deref(), Some("fed:alice"));
    assert_eq!(who.fed_iss.as_deref(), Some("https://idp.example.com"));
    assert_eq!(who.jti.as_deref(), Some("jti-fed:alice"));
    assert_eq!((d.http_status(), d.reason()), (200, "ok"));

    let resp = respond(&d.outcome).unwrap();
    assert_eq!(resp.status.unwrap().code, Code::Ok as i32);
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("expected an ok response");
    };
    let set = ok.headers[0].header.as_ref().unwrap();
    assert_eq!(
        (set.key.as_str(), set.value.as_str()),
        (SUBJECT_HEADER, "fed:alice")
    );
    // Overwriting drops any client-supplied copy; removing as well would
    // remove ours, since Envoy applies removals after sets.
    assert_eq!(
        ok.headers[0].append_action,
        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );
    assert!(ok.headers_to_remove.is_empty());
    assert!(ok.query_parameters_to_set.is_empty());
}

#[test]
fn policies_are_checked_per_action_and_resource() {
    let p = policy();
    let dev = p.api_token("fed:alice", &["dev-rw"]);
    let reader = p.api_token("fed:bob", &["env-reader"]);
    let admin = p.api_token("fed:root", &["admin"]);
    let cases: &[(&str, Req, bool)] = &[
        (
            "dev lists dev",
            Req::get("/system/functions?namespace=dev"),
            true,
        ),
        ("dev lists default", Req::get("/system/functions"), false),
        ("dev reads info", Req::get("/system/info"), false),
        (
            "dev deletes in dev",
            Req::new("DELETE", "/system/functions?namespace=dev")
                .json(&json!({"functionName": "env"})),
            true,
        ),
        (
            "dev deploys to prod",
            Req::new("POST", "/system/functions")
                .json(&json!({"service": "env", "namespace": "prod"})),
            false,
        ),
        (
            "dev creates a secret in dev",
            Req::new("POST", "/system/secrets")
                .json(&json!({"name": "db", "namespace": "dev", "value": "x"})),
            true,
        ),
        (
            "dev lists namespaces",
            Req::get("/system/namespaces"),
            false,
        ),
    ];
    for (what, req, allowed) in cases {
        let d = decide_req(&p, req.clone().bearer(&dev));
        assert_eq!(d.outcome.is_ok(), *allowed, "{what}: {:?}", d.outcome);
    }
    // A grant on one function does not list its namespace.
    assert!(
        decide_req(&p, Req::get("/system/function/env").bearer(&reader))
            .outcome
            .is_ok()
    );
    let d = decide_req(&p, Req::get("/system/functions").bearer(&reader));
    assert_eq!(
        denial(&d),
        &Denial::NotAllowed {
            action: Action::FunctionList,
            resource: Resource::Namespace("openfaas-fn".into())
        }
    );
    assert!(
        decide_req(&p, Req::get("/system/function/env2").bearer(&reader))
            .outcome
            .is_err()
    );
    // Admin may do anything with an action.
    for req in [
        Req::get("/system/info"),
        Req::get("/system/namespaces"),
        Req::get("/system/namespace/dev"),
        Req::get("/system/logs?name=env"),
    ] {
        assert!(decide_req(&p, req.bearer(&admin)).outcome.is_ok());
    }
    // An unknown policy name grants nothing.
    let ghost = p.api_token("fed:ghost", &["no-such-policy"]);
    assert!(
        decide_req(&p, Req::get("/system/info").bearer(&ghost))
            .outcome
            .is_err()
    );
}

#[test]
fn not_allowed_is_a_403_without_a_challenge() {
    let p = policy();
    let token = p.api_token("fed:alice", &["dev-rw"]);
    let d = decide_req(&p, Req::get("/system/secrets").bearer(&token));
    assert_eq!((d.http_status(), d.reason()), (403, "not_allowed"));
    assert_eq!(d.resource.as_deref(), Some("openfaas-fn:*"));
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 403);
    assert_eq!(header_value(&headers, "www-authenticate"), None);
    assert_eq!(
        header_value(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header_value(&headers, "cache-control"), Some("no-store"));
    assert_eq!(
        body,
        "insufficient permissions: Secret:List on openfaas-fn:*\n"
    );
}

#[test]
fn missing_and_bad_api_tokens_are_401s() {
    let p = policy();
    let d = decide_req(&p, Req::get("/system/info"));
    assert_eq!(denial(&d), &Denial::MissingToken);
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 401);
    assert_eq!(
        header_value(&headers, "www-authenticate"),
        Some(r#"Bearer realm="OpenFaaS API""#)
    );
    assert_eq!(body, "Bearer must be present in Authorization header\n");

    for auth in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer   ", "token"] {
        let d = decide_req(&p, Req::get("/system/info").header("authorization", auth));
        assert_eq!(denial(&d), &Denial::MissingToken, "{auth}");
    }

    let d = decide_req(&p, Req::get("/system/info").bearer("not.a.jwt"));
    assert_eq!(d.reason(), "malformed");
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 401);
    assert_eq!(
        header_value(&headers, "www-authenticate"),
        Some(
            r#"Bearer realm="OpenFaaS API", error="invalid_token", error_description="malformed""#
        )
    );
    assert_eq!(body, "invalid token\n");

    // Another key, the wrong issuer, expired.
    let other = FakePolicy::new().api_token("fed:eve", &["admin"]);
    let d = decide_req(&p, Req::get("/system/info").bearer(&other));
    assert_eq!(d.reason(), "unknown_kid");
    let expired = p.sign(&json!({
        "iss": ISSUER, "aud": ISSUER, "sub": "fed:eve", "policy": ["admin"],
        "exp": 1_000_000, "iat": 999_000,
    }));
    assert_eq!(
        decide_req(&p, Req::get("/system/info").bearer(&expired)).reason(),
        "expired"
    );
    let wrong_iss = p.sign(&json!({
        "iss": "https://evil.example.com", "aud": ISSUER, "sub": "fed:eve",
        "policy": ["admin"], "exp": 4_000_000_000u64,
    }));
    assert_eq!(
        decide_req(&p, Req::get("/system/info").bearer(&wrong_iss)).reason(),
        "wrong_issuer"
    );
    // Nobody was identified: no who.
    assert_eq!(decide_req(&p, Req::get("/system/info")).who, None);
}

#[test]
fn function_tokens_cannot_call_the_api() {
    let p = policy();
    let token = p.function_token("fed:alice", &["*"]);
    let d = decide_req(&p, Req::get("/system/info").bearer(&token));
    assert_eq!(denial(&d), &Denial::NotApiToken);
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 401);
    assert!(
        header_value(&headers, "www-authenticate")
            .unwrap()
            .ends_with(r#"error_description="not_api_token""#)
    );
    assert_eq!(body, "invalid token: not an API token\n");
    // Who it was is still audited.
    assert_eq!(d.who.unwrap().jti.as_deref(), Some("fn-fed:alice"));
}

#[test]
fn route_errors_come_after_authentication() {
    let p = policy();
    // Unauthenticated: a 401 whatever the route.
    for path in ["/system/alert", "/system/functions?namespace=a&namespace=b"] {
        assert_eq!(decide_req(&p, Req::get(path)).http_status(), 401, "{path}");
    }
    let token = p.api_token("fed:root", &["admin"]);
    let d = decide_req(&p, Req::new("POST", "/system/alert").bearer(&token));
    assert_eq!(denial(&d), &Denial::Route(RouteError::Unknown));
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 403);
    assert_eq!(header_value(&headers, "www-authenticate"), None);
    assert_eq!(body, "no IAM action is defined for this method and path\n");
    assert_eq!(d.action, None);

    let d = decide_req(
        &p,
        Req::get("/system/functions?namespace=a&namespace=b").bearer(&token),
    );
    assert_eq!((d.http_status(), d.reason()), (400, "ambiguous_namespace"));
    let (status, _, _) = denied_parts(&d);
    assert_eq!(status, 400);
}

#[test]
fn other_paths_are_denied() {
    let p = policy();
    let token = p.api_token("fed:root", &["admin"]);
    for path in ["/", "/ui/", "/healthz", "/oauth/token", "/metrics"] {
        let d = decide_req(&p, Req::get(path).bearer(&token));
        assert_eq!(denial(&d), &Denial::Route(RouteError::Unknown), "{path}");
    }
}

#[test]
fn body_namespaces_set_the_query() {
    let p = policy();
    let token = p.api_token("fed:alice", &["dev-rw"]);
    let d = decide_req(
        &p,
        Req::new("DELETE", "/system/functions")
            .json(&json!({"functionName": "env", "namespace": "dev"}))
            .bearer(&token),
    );
    assert_eq!(allow(&d).set_query_namespace.as_deref(), Some("dev"));
    let resp = respond(&d.outcome).unwrap();
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("expected an ok response");
    };
    assert_eq!(
        ok.query_parameters_to_set,
        vec![QueryParameter {
            key: "namespace".into(),
            value: "dev".into()
        }]
    );
}

#[test]
fn bodies_must_reach_ext_authz() {
    let p = policy();
    let token = p.api_token("fed:root", &["admin"]);
    // A declared body that Envoy did not forward.
    let d = decide_req(
        &p,
        Req::new("POST", "/system/functions")
            .header("content-length", "42")
            .bearer(&token),
    );
    assert_eq!(denial(&d), &Denial::Route(RouteError::BodyNotForwarded));
    assert_eq!(d.http_status(), 403);
    let d = decide_req(
        &p,
        Req::new("POST", "/system/secrets")
            .header("transfer-encoding", "chunked")
            .bearer(&token),
    );
    assert_eq!(d.reason(), "body_not_forwarded");
    // HTTP/2 needs no content-length.
    let mut req = Req::new("DELETE", "/system/functions").bearer(&token);
    req.http.protocol = "HTTP/2".into();
    assert_eq!(decide_req(&p, req).reason(), "body_not_forwarded");
    // A body cut at max_request_bytes.
    let d = decide_req(
        &p,
        Req::new("POST", "/system/functions")
            .json(&json!({"service": "env"}))
            .header("x-envoy-auth-partial-body", "true")
            .bearer(&token),
    );
    assert_eq!((d.http_status(), d.reason()), (413, "body_truncated"));
    // A whole body says "false".
    let d = decide_req(
        &p,
        Req::new("POST", "/system/functions")
            .json(&json!({"service": "env"}))
            .header("x-envoy-auth-partial-body", "false")
            .bearer(&token),
    );
    assert!(d.outcome.is_ok());
    // No body at all: HTTP/1.1 without content-length, or content-length 0.
    let d = decide_req(
        &p,
        Req::new("POST", "/system/scale-function/env").bearer(&token),
    );
    assert!(d.outcome.is_ok(), "{:?}", d.outcome);
    let mut req = Req::new("POST", "/system/scale-function/env")
        .header("content-length", "0")
        .bearer(&token);
    req.http.protocol = "HTTP/2".into();
    assert!(decide_req(&p, req).outcome.is_ok());
    // The body as a string (without pack_as_bytes) is read too.
    let mut req = Req::new("POST", "/system/functions").bearer(&token);
    req.http.body = json!({"service": "env", "namespace": "dev"}).to_string();
    req.http
        .headers
        .insert("content-length".into(), req.http.body.len().to_string());
    let d = decide_req(&p, req);
    assert_eq!(d.resource.as_deref(), Some("dev:env"));
}

#[test]
fn bodies_that_are_not_utf8_json_are_refused() {
    let p = policy();
    let token = p.api_token("fed:root", &["admin"]);
    let d = decide_req(
        &p,
        Req::new("POST", "/system/secrets")
            .raw(b"{\"name\":\"db\",\"namespace\":\"d\xffv\"}")
            .bearer(&token),
    );
    assert_eq!((d.http_status(), d.reason()), (400, "body_not_json"));
}

#[test]
fn raw_header_maps_are_read() {
    let p = policy();
    let token = p.api_token("fed:root", &["admin"]);
    let mut req = Req::get("/system/info");
    req.http.header_map = Some(HeaderMap {
        headers: vec![PbHeaderValue {
            key: "authorization".into(),
            value: String::new(),
            raw_value: format!("Bearer {token}").into_bytes(),
        }],
    });
    assert!(decide_req(&p, req).outcome.is_ok());
    // Two Authorization headers are joined, and the result is no token.
    let mut req = Req::get("/system/info");
    req.http.header_map = Some(HeaderMap {
        headers: ["Bearer a.b.c", &format!("Bearer {token}")]
            .iter()
            .map(|v| PbHeaderValue {
                key: "authorization".into(),
                value: String::new(),
                raw_value: v.as_bytes().to_vec(),
            })
            .collect(),
    });
    assert_eq!(decide_req(&p, req).http_status(), 401);
}

#[test]
fn invocations_follow_the_filter_rules() {
    let p = policy();
    let env = p.function_token("fed:alice", &["openfaas-fn:env"]);
    let d = decide_req(
        &p,
        Req::new("POST", "/function/env.openfaas-fn").bearer(&env),
    );
    assert_eq!(allow(&d).subject.as_deref(), Some("fed:alice"));
    assert_eq!(d.action, Some("Function:Invoke"));
    assert_eq!(d.resource.as_deref(), Some("openfaas-fn:env"));
    assert!(
        decide_req(&p, Req::get("/async-function/env/x?y=1").bearer(&env))
            .outcome
            .is_ok()
    );

    // Anchored: env does not grant env2.
    let d = decide_req(&p, Req::get("/function/env2").bearer(&env));
    assert_eq!(d.reason(), "not_permitted");
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 403);
    assert_eq!(header_value(&headers, "www-authenticate"), None);
    assert_eq!(body, "insufficient permissions\n");

    // No token: the realm faas-cli looks for.
    let d = decide_req(&p, Req::get("/function/env"));
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 401);
    assert_eq!(
        header_value(&headers, "www-authenticate"),
        Some(r#"Bearer realm="IAM function invoke""#)
    );
    assert_eq!(body, "Bearer must be present in Authorization header\n");

    // An API token cannot invoke.
    let api = p.api_token("fed:root", &["admin"]);
    let d = decide_req(&p, Req::get("/function/env").bearer(&api));
    let (status, headers, body) = denied_parts(&d);
    assert_eq!(status, 401);
    assert_eq!(
        header_value(&headers, "www-authenticate"),
        Some(
            r#"Bearer realm="IAM function invoke", error="invalid_token", error_description="not_function_token""#
        )
    );
    assert_eq!(body, "invalid token: not a function token\n");

    // A bad token.
    let d = decide_req(&p, Req::get("/function/env").bearer("x.y.z"));
    let (status, headers, _) = denied_parts(&d);
    assert_eq!(status, 401);
    assert!(
        header_value(&headers, "www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    // Path tricks.
    let all = p.function_token("fed:root", &["*"]);
    let d = decide_req(&p, Req::get("/function/env/../secret").bearer(&all));
    assert_eq!((d.http_status(), d.reason()), (400, "unclean_path"));
    let d = decide_req(&p, Req::get("/function/%65nv").bearer(&all));
    assert_eq!((d.http_status(), d.reason()), (400, "invalid_name"));
}

#[test]
fn audience_narrows_function_tokens() {
    let p = policy();
    let now = mesh_auth_core::clock::Clock::now(&mesh_auth_core::SystemClock);
    let token = p.sign(&json!({
        "iss": ISSUER, "aud": [ISSUER], "sub": "fed:alice", "exp": now + 60,
        "function": {"permissions": ["openfaas-fn:*"], "audience": ["openfaas-fn:env"]},
    }));
    assert!(
        decide_req(&p, Req::get("/function/env").bearer(&token))
            .outcome
            .is_ok()
    );
    assert_eq!(
        decide_req(&p, Req::get("/function/other").bearer(&token)).reason(),
        "outside_audience"
    );
}

#[test]
fn subjects_that_cannot_be_headers_are_not_forwarded() {
    let resp = respond(&Ok(Allow {
        subject: Some("fed:bad\r\nx-injected: 1".into()),
        set_query_namespace: None,
    }))
    .unwrap();
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("expected an ok response");
    };
    assert!(ok.headers.is_empty());
    assert_eq!(ok.headers_to_remove, vec![SUBJECT_HEADER.to_owned()]);
    // No sub at all: the client's copy is still removed.
    let resp = respond(&Ok(Allow {
        subject: None,
        set_query_namespace: None,
    }))
    .unwrap();
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("expected an ok response");
    };
    assert_eq!(ok.headers_to_remove, vec![SUBJECT_HEADER.to_owned()]);
}

#[test]
fn not_ready_is_the_only_fault() {
    let p = policy();
    p.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let token = p.api_token("fed:root", &["admin"]);
    let d = decide_req(&p, Req::get("/system/info").bearer(&token));
    assert_eq!(d.outcome, Err(CheckError::NotReady));
    assert_eq!(d.reason(), "not_ready");
    let err = respond(&d.outcome).unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

#[test]
fn a_check_without_http_attributes_is_denied() {
    let p = policy();
    let d = decide(&p, &CheckRequest::default());
    assert_eq!(denial(&d), &Denial::NotHttp);
    let (status, _, _) = denied_parts(&d);
    assert_eq!(status, 403);
}

#[test]
fn every_denial_has_one_status_and_code() {
    let cases: Vec<(Denial, u16, &str, bool)> = vec![
        (Denial::MissingToken, 401, "missing_token", true),
        (Denial::Token(TokenError::Expired), 401, "expired", true),
        (Denial::NotApiToken, 401, "not_api_token", true),
        (
            Denial::NotAllowed {
                action: Action::SystemInfo,
                resource: Resource::All,
            },
            403,
            "not_allowed",
            false,
        ),
        (
            Denial::Invoke(InvokeDenial::MissingToken),
            401,
            "missing_token",
            true,
        ),
        (
            Denial::Invoke(InvokeDenial::NotPermitted("a:b".into())),
            403,
            "not_permitted",
            false,
        ),
        (
            Denial::Route(RouteError::Unknown),
            403,
            "unknown_route",
            false,
        ),
        (
            Denial::Route(RouteError::BodyTruncated),
            413,
            "body_truncated",
            false,
        ),
        (Denial::NotHttp, 403, "not_http", false),
    ];
    for (denial, status, code, challenge) in cases {
        assert_eq!(denial.status(), status, "{denial:?}");
        assert_eq!(denial.code(), code, "{denial:?}");
        assert_eq!(denial.www_authenticate().is_some(), challenge, "{denial:?}");
        assert!(denial.body().ends_with('\n'));
    }
}

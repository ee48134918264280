use serde_json::{Value, json};

use super::*;

fn req<'a>(method: &'a str, path: &'a str, body: Body<'a>) -> RequestParts<'a> {
    RequestParts { method, path, body }
}

fn classify(method: &str, path: &str) -> Result<ApiRequest, RouteError> {
    classify_api(&req(method, path, Body::Empty))
}

fn classify_json(method: &str, path: &str, body: &Value) -> Result<ApiRequest, RouteError> {
    let bytes = body.to_string().into_bytes();
    classify_api(&req(method, path, Body::Complete(&bytes)))
}

/// `(action, resource)` of an allowed classification.
fn ok(r: Result<ApiRequest, RouteError>) -> (&'static str, String) {
    let r = r.unwrap();
    (r.action.as_str(), r.resource.to_string())
}

fn bad(r: Result<ApiRequest, RouteError>) -> &'static str {
    match r {
        Err(RouteError::BadRequest(b)) => b.code(),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[test]
fn resources_convert_to_the_iam_engine_shapes() {
    let all = Resource::All;
    let ns = Resource::Namespace("dev".into());
    let obj = Resource::Object {
        namespace: "dev".into(),
        name: "env".into(),
    };
    assert_eq!(iam::Resource::from(&all), iam::Resource::Cluster);
    assert_eq!(iam::Resource::from(&ns), iam::Resource::Namespace("dev"));
    assert_eq!(
        iam::Resource::from(&obj),
        iam::Resource::Object {
            namespace: "dev",
            name: "env"
        }
    );
    assert_eq!(
        (all.to_string(), ns.to_string(), obj.to_string()),
        ("*".into(), "dev:*".into(), "dev:env".into())
    );
    assert_eq!(obj.namespace(), Some("dev"));
    assert_eq!(all.namespace(), None);
}

#[test]
fn families_by_prefix() {
    assert_eq!(family("/system/functions"), Family::Api);
    assert_eq!(family("/function/env"), Family::Invoke);
    assert_eq!(family("/async-function/env"), Family::Invoke);
    for other in [
        "/",
        "/system",
        "/functions",
        "/function",
        "/healthz",
        "/ui/",
        "/oauth/token",
        "//system/functions",
        "/SYSTEM/functions",
    ] {
        assert_eq!(family(other), Family::Other, "{other}");
    }
}

#[test]
fn every_route_and_method() {
    let cases: &[(&str, &str, Value, &str, &str)] = &[
        ("GET", "/system/info", json!(null), "System:Info", "*"),
        (
            "GET",
            "/system/functions",
            json!(null),
            "Function:List",
            "openfaas-fn:*",
        ),
        (
            "POST",
            "/system/functions",
            json!({"service": "env", "image": "ghcr.io/openfaas/alpine"}),
            "Function:Create",
            "openfaas-fn:env",
        ),
        (
            "PUT",
            "/system/functions",
            json!({"service": "env", "image": "x"}),
            "Function:Update",
            "openfaas-fn:env",
        ),
        (
            "DELETE",
            "/system/functions",
            json!({"functionName": "env"}),
            "Function:Delete",
            "openfaas-fn:env",
        ),
        (
            "GET",
            "/system/function/env",
            json!(null),
            "Function:Get",
            "openfaas-fn:env",
        ),
        (
            "POST",
            "/system/scale-function/env",
            json!({"serviceName": "env", "replicas": 2}),
            "Function:Scale",
            "openfaas-fn:env",
        ),
        (
            "GET",
            "/system/logs?name=env&tail=10",
            json!(null),
            "Function:Logs",
            "openfaas-fn:env",
        ),
        (
            "GET",
            "/system/secrets",
            json!(null),
            "Secret:List",
            "openfaas-fn:*",
        ),
        (
            "POST",
            "/system/secrets",
            json!({"name": "db-pass", "value": "s3cret"}),
            "Secret:Create",
            "openfaas-fn:db-pass",
        ),
        (
            "PUT",
            "/system/secrets",
            json!({"name": "db-pass", "value": "s3cret"}),
            "Secret:Update",
            "openfaas-fn:db-pass",
        ),
        (
            "DELETE",
            "/system/secrets",
            json!({"name": "db-pass"}),
            "Secret:Delete",
            "openfaas-fn:db-pass",
        ),
        (
            "GET",
            "/system/namespaces",
            json!(null),
            "Namespace:List",
            "*",
        ),
        (
            "GET",
            "/system/namespace/dev",
            json!(null),
            "Namespace:Get",
            "dev:*",
        ),
        (
            "POST",
            "/system/namespace/",
            json!({"name": "dev", "labels": {"openfaas": "1"}}),
            "Namespace:Create",
            "dev:*",
        ),
        (
            "PUT",
            "/system/namespace/dev",
            json!({"name": "dev", "annotations": {"openfaas": "1"}}),
            "Namespace:Update",
            "dev:*",
        ),
        (
            "DELETE",
            "/system/namespace/dev",
            json!({"name": "dev"}),
            "Namespace:Delete",
            "dev:*",
        ),
    ];
    for (method, path, body, action, resource) in cases {
        let got = if body.is_null() {
            classify(method, path)
        } else {
            classify_json(method, path, body)
        };
        assert_eq!(
            ok(got),
            (*action, (*resource).to_owned()),
            "{method} {path}"
        );
    }
    // Every API action is reachable from the table (invocations are not
    // API routes).
    for action in Action::ALL
        .into_iter()
        .filter(|a| *a != Action::FunctionInvoke)
    {
        assert!(
            cases.iter().any(|c| c.3 == action.as_str()),
            "{action} has no route"
        );
    }
}

#[test]
fn namespace_comes_from_the_query_for_reads() {
    assert_eq!(
        ok(classify("GET", "/system/function/env?namespace=dev")),
        ("Function:Get", "dev:env".into())
    );
    assert_eq!(
        ok(classify("GET", "/system/functions?namespace=staging")),
        ("Function:List", "staging:*".into())
    );
    assert_eq!(
        ok(classify("GET", "/system/secrets?namespace=staging")),
        ("Secret:List", "staging:*".into())
    );
    assert_eq!(
        ok(classify(
            "GET",
            "/system/logs?namespace=dev&name=env&follow=1"
        )),
        ("Function:Logs", "dev:env".into())
    );
    // An empty value is the default, as in every provider.
    assert_eq!(
        ok(classify("GET", "/system/function/env?namespace=")),
        ("Function:Get", "openfaas-fn:env".into())
    );
    // Percent-encoding and `+` decode as Go decodes them.
    assert_eq!(
        ok(classify("GET", "/system/function/env?%6Eamespace=d%65v")),
        ("Function:Get", "dev:env".into())
    );
    // The body of a read is ignored: providers do not read it.
    let body = json!({"namespace": "prod"}).to_string();
    assert_eq!(
        ok(classify_api(&req(
            "GET",
            "/system/function/env?namespace=dev",
            Body::Complete(body.as_bytes())
        ))),
        ("Function:Get", "dev:env".into())
    );
}

#[test]
fn repeated_query_keys_must_agree() {
    assert_eq!(
        bad(classify(
            "GET",
            "/system/function/env?namespace=a&namespace=b"
        )),
        "ambiguous_namespace"
    );
    // Go's Get takes the first (""), the logs handler the last ("dev").
    assert_eq!(
        bad(classify(
            "GET",
            "/system/logs?name=env&namespace=&namespace=dev"
        )),
        "ambiguous_namespace"
    );
    assert_eq!(
        bad(classify("GET", "/system/logs?name=env&name=other")),
        "ambiguous_name"
    );
    // The same value twice is one value.
    assert_eq!(
        ok(classify(
            "GET",
            "/system/functions?namespace=dev&namespace=dev"
        )),
        ("Function:List", "dev:*".into())
    );
}

#[test]
fn semicolons_in_the_query_are_refused() {
    // Go drops `namespace=dev;x` entirely (the default namespace), a naive
    // parser reads `dev;x`: neither is guessed.
    assert_eq!(
        bad(classify("GET", "/system/functions?namespace=dev;x=1")),
        "semicolon_in_query"
    );
    assert_eq!(
        bad(classify("GET", "/system/functions?x=1;namespace=dev")),
        "semicolon_in_query"
    );
}

#[test]
fn invalid_namespaces_and_names_are_refused() {
    for path in [
        "/system/functions?namespace=Dev",
        "/system/functions?namespace=dev%2Fx",
        "/system/functions?namespace=dev:x",
        "/system/functions?namespace=*",
        "/system/functions?namespace=-dev",
        "/system/functions?namespace=%zz",
        "/system/functions?namespace=a+b",
    ] {
        assert_eq!(bad(classify("GET", path)), "invalid_namespace", "{path}");
    }
    for path in [
        "/system/function/Env",
        "/system/function/env.dev",
        "/system/function/e_v",
        "/system/function/env%2F..",
        "/system/function/*",
        "/system/logs?name=ENV",
    ] {
        assert_eq!(bad(classify("GET", path)), "invalid_name", "{path}");
    }
    assert_eq!(bad(classify("GET", "/system/logs")), "missing_name");
    assert_eq!(bad(classify("GET", "/system/logs?name=")), "missing_name");
}

#[test]
fn unknown_routes_are_never_allowed() {
    for (method, path) in [
        ("POST", "/system/alert"),
        ("GET", "/system/telemetry"),
        ("GET", "/system/async-report"),
        ("GET", "/system/"),
        ("GET", "/system/unknown"),
        ("PATCH", "/system/functions"),
        ("HEAD", "/system/functions"),
        ("OPTIONS", "/system/functions"),
        ("get", "/system/functions"),
        ("POST", "/system/info"),
        ("DELETE", "/system/function/env"),
        ("GET", "/system/scale-function/env"),
        ("POST", "/system/logs"),
        ("POST", "/system/namespaces"),
        ("PATCH", "/system/namespace/dev"),
        // Trailing slashes: mux has no StrictSlash, these are other paths.
        ("GET", "/system/functions/"),
        ("GET", "/system/info/"),
        ("GET", "/system/function/env/"),
        ("GET", "/system/function/"),
        ("POST", "/system/scale-function/"),
        ("GET", "/system/namespace/dev/"),
        // Dot segments and double slashes: mux redirects, never serves.
        ("GET", "/system/functions/../secrets"),
        ("GET", "/system/./functions"),
        ("GET", "/system//functions"),
        ("GET", "/system/function/env/../../secrets"),
        // Encoded slashes and letters: mux would decode, we do not guess.
        ("GET", "/system%2Ffunctions"),
        ("GET", "/system/secret%73"),
        ("GET", "/system/function%2Fenv"),
        ("GET", "/system/functions#x"),
    ] {
        assert_eq!(
            classify(method, path),
            Err(RouteError::Unknown),
            "{method} {path}"
        );
    }
}

#[test]
fn body_namespace_is_read_like_go() {
    let cases: &[(Value, &str)] = &[
        (json!({"service": "env", "namespace": "dev"}), "dev:env"),
        // Case-insensitive keys, Unicode folding included.
        (json!({"service": "env", "Namespace": "dev"}), "dev:env"),
        (json!({"service": "env", "NAMESPACE": "dev"}), "dev:env"),
        (
            json!({"service": "env", "name\u{017F}pace": "dev"}),
            "dev:env",
        ),
        (json!({"Service": "env"}), "openfaas-fn:env"),
        // null leaves the field unset; "" means the default.
        (
            json!({"service": "env", "namespace": null}),
            "openfaas-fn:env",
        ),
        (
            json!({"service": "env", "namespace": ""}),
            "openfaas-fn:env",
        ),
        // Nested fields are not the top-level one.
        (
            json!({"service": "env", "labels": {"namespace": "prod"}}),
            "openfaas-fn:env",
        ),
    ];
    for (body, resource) in cases {
        assert_eq!(
            ok(classify_json("POST", "/system/functions", body)).1,
            *resource,
            "{body}"
        );
    }
    // JSON escapes in keys are decoded first.
    let escaped = br#"{"service":"env","\u006eamespace":"dev"}"#;
    assert_eq!(
        ok(classify_api(&req(
            "POST",
            "/system/functions",
            Body::Complete(escaped)
        )))
        .1,
        "dev:env"
    );
}

#[test]
fn duplicate_body_keys_must_agree() {
    // Go lets the last win; we refuse rather than pick.
    for body in [
        r#"{"service":"env","namespace":"dev","namespace":"prod"}"#,
        r#"{"service":"env","namespace":"dev","Namespace":"prod"}"#,
        r#"{"service":"env","namespace":"dev","namespace":""}"#,
    ] {
        assert_eq!(
            bad(classify_api(&req(
                "POST",
                "/system/functions",
                Body::Complete(body.as_bytes())
            ))),
            "ambiguous_namespace",
            "{body}"
        );
    }
    let same = r#"{"service":"env","namespace":"dev","NameSpace":"dev"}"#;
    assert_eq!(
        ok(classify_api(&req(
            "POST",
            "/system/functions",
            Body::Complete(same.as_bytes())
        )))
        .1,
        "dev:env"
    );
    let two_names = r#"{"service":"env","Service":"other"}"#;
    assert_eq!(
        bad(classify_api(&req(
            "PUT",
            "/system/functions",
            Body::Complete(two_names.as_bytes())
        ))),
        "ambiguous_name"
    );
}

#[test]
fn bodies_that_are_not_one_json_object_are_refused() {
    for body in [
        &b"not json"[..],
        b"[1,2]",
        b"null",
        b"\"dev\"",
        br#"{"service":"env"} {"namespace":"prod"}"#,
        br#"{"service":"env""#,
        b"\xEF\xBB\xBF{\"service\":\"env\"}",
    ] {
        assert_eq!(
            bad(classify_api(&req(
                "POST",
                "/system/functions",
                Body::Complete(body)
            ))),
            "body_not_json",
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/functions",
            &json!({"service": "env", "namespace": 7})
        )),
        "field_not_string"
    );
    assert_eq!(
        bad(classify_json(
            "DELETE",
            "/system/functions",
            &json!({"functionName": ["env"]})
        )),
        "field_not_string"
    );
}

#[test]
fn deploy_and_update_take_the_body_namespace() {
    let body = json!({"service": "env", "namespace": "dev"});
    let r = classify_json("POST", "/system/functions", &body).unwrap();
    assert_eq!(r.resource.to_string(), "dev:env");
    // Set on the query too, for any provider reading it there.
    assert_eq!(r.set_query_namespace.as_deref(), Some("dev"));
    // The same namespace in the query is fine.
    let r = classify_json("PUT", "/system/functions?namespace=dev", &body).unwrap();
    assert_eq!(r.resource.to_string(), "dev:env");
    assert_eq!(r.set_query_namespace, None);
    // A different one is refused.
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/functions?namespace=prod",
            &body
        )),
        "conflicting_namespace"
    );
    // The provider would deploy to the default namespace, not to the query's.
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/functions?namespace=dev",
            &json!({"service": "env"})
        )),
        "conflicting_namespace"
    );
    assert_eq!(
        ok(classify_json(
            "POST",
            "/system/functions?namespace=openfaas-fn",
            &json!({"service": "env"})
        ))
        .1,
        "openfaas-fn:env"
    );
    // The body must name the function.
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/functions",
            &json!({"image": "x"})
        )),
        "missing_name"
    );
    assert_eq!(bad(classify("POST", "/system/functions")), "missing_name");
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/functions",
            &json!({"service": "Bad_Name"})
        )),
        "invalid_name"
    );
}

#[test]
fn delete_and_scale_take_the_query_or_the_body() {
    // faas-cli: the namespace in the query only.
    let r = classify_json(
        "DELETE",
        "/system/functions?namespace=dev",
        &json!({"functionName": "env"}),
    )
    .unwrap();
    assert_eq!(r.resource.to_string(), "dev:env");
    assert_eq!(r.set_query_namespace, None);
    // go-sdk: in the body only; the query is set so faas-netes and faasd,
    // which read the query, act on the same namespace.
    let r = classify_json(
        "DELETE",
        "/system/functions",
        &json!({"functionName": "env", "namespace": "dev"}),
    )
    .unwrap();
    assert_eq!(r.resource.to_string(), "dev:env");
    assert_eq!(r.set_query_namespace.as_deref(), Some("dev"));
    // faas-cli scale: the body only.
    let r = classify_json(
        "POST",
        "/system/scale-function/env",
        &json!({"serviceName": "env", "namespace": "dev", "replicas": 1}),
    )
    .unwrap();
    assert_eq!(
        (r.action, r.resource.to_string()),
        (Action::FunctionScale, "dev:env".into())
    );
    assert_eq!(r.set_query_namespace.as_deref(), Some("dev"));
    // Both, different: refused.
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/scale-function/env?namespace=prod",
            &json!({"serviceName": "env", "namespace": "dev"})
        )),
        "conflicting_namespace"
    );
    assert_eq!(
        bad(classify_json(
            "DELETE",
            "/system/functions?namespace=prod",
            &json!({"functionName": "env", "namespace": "dev"})
        )),
        "conflicting_namespace"
    );
    // faasd scales the body's serviceName, faas-netes the path's.
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/scale-function/env",
            &json!({"serviceName": "other", "replicas": 1})
        )),
        "conflicting_name"
    );
    // Scale without a body names the function in the path.
    assert_eq!(
        ok(classify("POST", "/system/scale-function/env?namespace=dev")),
        ("Function:Scale", "dev:env".into())
    );
    assert_eq!(
        bad(classify_json("DELETE", "/system/functions", &json!({}))),
        "missing_name"
    );
}

#[test]
fn secrets_take_the_body_namespace() {
    let r = classify_json(
        "DELETE",
        "/system/secrets",
        &json!({"name": "db-pass", "namespace": "dev"}),
    )
    .unwrap();
    assert_eq!(r.resource.to_string(), "dev:db-pass");
    // faasd deletes secrets in the query's namespace.
    assert_eq!(r.set_query_namespace.as_deref(), Some("dev"));
    // faas-netes would write to the body's namespace (the default here).
    assert_eq!(
        bad(classify_json(
            "POST",
            "/system/secrets?namespace=dev",
            &json!({"name": "db-pass", "value": "x"})
        )),
        "conflicting_namespace"
    );
    for name in ["", "Db", "../etc", "a..b", "a/b", "-a"] {
        let got = classify_json("POST", "/system/secrets", &json!({"name": name}));
        assert!(
            matches!(
                got,
                Err(RouteError::BadRequest(
                    BadRequest::InvalidName | BadRequest::MissingName
                ))
            ),
            "{name:?}: {got:?}"
        );
    }
    assert_eq!(
        ok(classify_json(
            "PUT",
            "/system/secrets",
            &json!({"name": "tls.crt", "namespace": "dev"})
        ))
        .1,
        "dev:tls.crt"
    );
}

#[test]
fn namespace_routes_use_the_path_and_body_name() {
    assert_eq!(
        bad(classify_json(
            "PUT",
            "/system/namespace/dev",
            &json!({"name": "prod"})
        )),
        "conflicting_name"
    );
    assert_eq!(
        ok(classify_json(
            "DELETE",
            "/system/namespace/dev",
            &json!({"labels": {"openfaas": "1"}})
        ))
        .1,
        "dev:*"
    );
    assert_eq!(
        bad(classify_json("POST", "/system/namespace/", &json!({}))),
        "missing_name"
    );
    assert_eq!(bad(classify("GET", "/system/namespace/")), "missing_name");
    assert_eq!(
        bad(classify("GET", "/system/namespace/Kube_System")),
        "invalid_name"
    );
    // The query's namespace plays no part in the namespace routes.
    assert_eq!(
        ok(classify("GET", "/system/namespace/dev?namespace=prod")).1,
        "dev:*"
    );
}

#[test]
fn bodies_ext_authz_did_not_get_are_not_guessed() {
    for (method, path) in [
        ("POST", "/system/functions"),
        ("PUT", "/system/functions"),
        ("DELETE", "/system/functions?namespace=dev"),
        ("POST", "/system/scale-function/env"),
        ("POST", "/system/secrets"),
        ("DELETE", "/system/namespace/dev"),
    ] {
        assert_eq!(
            classify_api(&req(method, path, Body::NotForwarded)),
            Err(RouteError::BodyNotForwarded),
            "{method} {path}"
        );
        assert_eq!(
            classify_api(&req(method, path, Body::Truncated)),
            Err(RouteError::BodyTruncated),
            "{method} {path}"
        );
    }
    // Routes that do not read the body do not need it.
    assert_eq!(
        ok(classify_api(&req(
            "GET",
            "/system/functions",
            Body::NotForwarded
        ))),
        ("Function:List", "openfaas-fn:*".into())
    );
}

#[test]
fn route_error_statuses_and_codes() {
    assert_eq!(RouteError::Unknown.status(), 403);
    assert_eq!(RouteError::BodyNotForwarded.status(), 403);
    assert_eq!(RouteError::BodyTruncated.status(), 413);
    assert_eq!(RouteError::from(BadRequest::UncleanPath).status(), 400);
    assert_eq!(RouteError::Unknown.code(), "unknown_route");
    assert_eq!(
        RouteError::from(BadRequest::AmbiguousNamespace).code(),
        "ambiguous_namespace"
    );
}

#[test]
fn invocation_paths_use_the_filter_parser() {
    let id = |p: &str| classify_invoke(p).map(|id| id.to_string());
    assert_eq!(id("/function/env"), Ok("openfaas-fn:env".into()));
    assert_eq!(id("/function/env.dev"), Ok("dev:env".into()));
    assert_eq!(id("/function/env.dev/sub/path?x=1"), Ok("dev:env".into()));
    assert_eq!(id("/async-function/env.dev"), Ok("dev:env".into()));
    assert_eq!(id("/function/env/"), Ok("openfaas-fn:env".into()));
    for (path, code) in [
        ("/function/", "invalid_name"),
        ("/function/Env", "invalid_name"),
        ("/function/%65nv", "invalid_name"),
        ("/function/env%2F..%2Fother", "invalid_name"),
        ("/function/env.dev.x", "invalid_name"),
        ("/function/env/../other", "unclean_path"),
        ("/function/env/./x", "unclean_path"),
        ("/function//env", "unclean_path"),
        ("/function/env//x", "unclean_path"),
        ("/function/env/..", "unclean_path"),
    ] {
        match classify_invoke(path) {
            Err(RouteError::BadRequest(b)) => assert_eq!(b.code(), code, "{path}"),
            other => panic!("{path}: {other:?}"),
        }
    }
    // Dots in the query are the function's business.
    assert_eq!(id("/function/env?path=../x"), Ok("openfaas-fn:env".into()));
}

#[test]
fn loggable_paths_drop_the_query_and_are_bounded() {
    assert_eq!(
        loggable_path("/system/functions?namespace=dev"),
        "/system/functions"
    );
    let long = format!("/function/env/{}", "a".repeat(1000));
    let logged = loggable_path(&long);
    assert!(logged.len() < 300 && logged.ends_with("..."));
}

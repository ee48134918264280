//! The Kubernetes manifests in `k8s/` against the real parts they configure:
//!
//! * every IAM example is refused as shipped, by the IAM engine and by the
//!   real ext-authz binary, for its placeholders alone (each error naming
//!   the file, object and field); edited as `tests/manifests/examples-edited.yaml`
//!   says, each loads alone and as the whole `k8s/examples` folder (which
//!   is also what the ConfigMap mounts), and in the real ext-authz binary;
//! * the shared accept/reject cases in `tests/manifests/cases` get the same
//!   verdict from the engine as from the CRD schemas (`make manifests`
//!   checks the schema side);
//! * the WasmPlugin's `pluginConfig`, enforce and audit, loads in the built
//!   filter in real Envoy, fetches keys from real ext-authz through a
//!   cluster named as Istio names the ext-authz Service, and identifies the
//!   sample function from node metadata built from `k8s/function`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_auth_core::iam::{IamConfig, IamErrorKind};
use mesh_auth_tests::testing::function_claims;
use mesh_auth_tests::{
    EchoUpstream, ExtAuthz, ExtAuthzOpts, PemKey, SidecarBootstrap, WasmFilter, get, repo_root,
};
use serde_json::{Value, json};

const REALM: &str = r#"Bearer realm="IAM function invoke""#;
const EXPECT: &str = "faas-mesh-auth.test/expect";

fn k8s(rel: &str) -> PathBuf {
    repo_root().join("k8s").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON values (empty ones skipped).
fn docs(path: &Path) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(&read(path))
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .map(|v| serde_json::to_value(v).unwrap())
        .collect()
}

fn the_doc(path: &Path, kind: &str) -> Value {
    let mut found: Vec<Value> = docs(path)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{}: expected one {kind}", path.display());
    found.remove(0)
}

/// The files ext-authz would read from a directory: `*.yaml`, `*.yml`,
/// `*.json`, not hidden.
fn iam_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.starts_with('.') && [".yaml", ".yml", ".json"].iter().any(|s| name.ends_with(s))
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read(&p),
            )
        })
        .collect();
    files.sort();
    files
}

/// The examples as a user edits them: every placeholder replaced as
/// `tests/manifests/examples-edited.yaml` says (longest first).
fn edited_examples() -> Vec<(String, String)> {
    let path = repo_root().join("tests/manifests/examples-edited.yaml");
    let table: std::collections::BTreeMap<String, String> =
        serde_yaml::from_str(&read(&path)).unwrap();
    assert_eq!(
        table["EDIT-ME-gateway-url"],
        issuer(),
        "the gateway URL is params.yaml's"
    );
    let mut keys: Vec<&String> = table.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    iam_files(&k8s("examples"))
        .into_iter()
        .map(|(name, mut text)| {
            for k in &keys {
                text = text.replace(k.as_str(), &table[*k]);
            }
            (name, text)
        })
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn issuer() -> String {
    let params = the_doc(&k8s("params/params.yaml"), "ConfigMap");
    params["data"]["issuer"].as_str().unwrap().to_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn every_example_is_refused_as_shipped_for_its_placeholders_alone() {
    for (name, yaml) in iam_files(&k8s("examples")) {
        let errors = match IamConfig::from_yaml_sources([(&name, &yaml)]) {
            Ok(_) => {
                panic!("k8s/examples/{name} compiles as shipped: it must be refused until edited")
            }
            Err(e) => e.into_vec(),
        };
        for e in &errors {
            assert!(
                matches!(e.kind(), IamErrorKind::Placeholder { .. }),
                "k8s/examples/{name}: refused for more than a placeholder: {e}"
            );
            assert_eq!(e.origin(), name);
            let object = e.object().unwrap();
            assert!(object.kind.is_some() && object.name.is_some(), "{e}");
            let field = e.field().unwrap();
            assert!(field.starts_with("spec."), "{e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "{name}: {} {:?}: {field}: ",
                    object.kind.as_deref().unwrap(),
                    object.name.as_deref().unwrap()
                )),
                "the message names file, object and field: {e}"
            );
        }
    }
}

#[test]
fn every_edited_example_compiles_alone_and_the_folder_compiles_as_an_iam_dir() {
    let files = edited_examples();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "auth0.yaml",
            "github-actions.yaml",
            "keycloak.yaml",
            "kubernetes-serviceaccounts.yaml"
        ],
        "k8s/examples must hold only IAM files (its kustomization is named `Kustomization`)"
    );
    for (name, yaml) in &files {
        if let Err(e) = IamConfig::from_yaml_sources([(name, yaml)]) {
            panic!("k8s/examples/{name} does not compile on its own:\n{e}");
        }
    }
    let config = IamConfig::from_yaml_sources(files.clone())
        .unwrap_or_else(|e| panic!("k8s/examples does not compile as one directory:\n{e}"));
    assert_eq!(config.namespace(), "openfaas");
    assert_eq!(config.issuers().len(), 4);
    for iss in [
        "https://keycloak.corp.test/realms/openfaas",
        "https://corp.eu.auth0.test/",
        "https://token.actions.githubusercontent.com",
        "https://kubernetes.default.svc.cluster.local",
    ] {
        assert!(config.issuer(iss).is_some(), "no JwtIssuer for {iss}");
    }
}

#[test]
fn examples_grant_what_their_comments_say() {
    let config = IamConfig::from_yaml_sources(edited_examples()).unwrap();
    let claims = |v: Value| v.as_object().unwrap().clone();
    let perms = |c: &serde_json::Map<String, Value>| {
        config
            .evaluate(c)
            .function_permissions()
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // The GitHub Actions role: this repository (by id, of this owner, by
    // id) and its main branch only; names count for nothing.
    let gha = json!({"iss": "https://token.actions.githubusercontent.com",
                     "repository": "someone/else", "repository_owner": "someone",
                     "repository_id": "123456789", "repository_owner_id": "987654",
                     "ref": "refs/heads/main"});
    let policies = config
        .evaluate(&claims(gha.clone()))
        .policy_names()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(policies, ["github-deployer"]);
    for (claim, other) in [
        ("ref", "refs/heads/feature"),
        ("repository_id", "123456780"),
        ("repository_owner_id", "987650"),
    ] {
        let mut token = gha.clone();
        token[claim] = json!(other);
        assert!(
            config
                .evaluate(&claims(token))
                .policy_names()
                .next()
                .is_none(),
            "{claim} = {other} must get nothing"
        );
    }
    // The service account may invoke openfaas-fn:env and nothing else.
    let sa = json!({"iss": "https://kubernetes.default.svc.cluster.local",
                    "sub": "system:serviceaccount:apps:invoker"});
    assert_eq!(perms(&claims(sa)), ["openfaas-fn:env"]);
    let other = json!({"iss": "https://kubernetes.default.svc.cluster.local",
                       "sub": "system:serviceaccount:apps:other"});
    assert!(perms(&claims(other)).is_empty());
    // The docs' Keycloak role, and the machine client by azp.
    let kc = json!({"iss": "https://keycloak.corp.test/realms/openfaas",
                    "sub": "a9e0e67a-5758-4373-a4ba-23957fa66e6b"});
    assert_eq!(perms(&claims(kc)), ["openfaas-fn:*", "dev:env"]);
    let client = json!({"iss": "https://keycloak.corp.test/realms/openfaas",
                        "sub": "5d1c8b6e-0000-4000-8000-000000000000", "azp": "faas-deployer"});
    assert_eq!(perms(&claims(client)), ["openfaas-fn:*", "dev:env"]);
    let other_client = json!({"iss": "https://keycloak.corp.test/realms/openfaas",
                              "sub": "5d1c8b6e-0000-4000-8000-000000000000", "azp": "other",
                              "client_id": "faas-deployer"});
    assert!(
        perms(&claims(other_client)).is_empty(),
        "azp decides, not client_id"
    );
}

/// The object a reject case is about carries the annotation
/// `faas-mesh-auth.test/expect: reject`.
fn marked(doc: &Value) -> bool {
    doc["metadata"]["annotations"][EXPECT] == "reject"
}

#[test]
fn accept_cases_compile() {
    let dir = repo_root().join("tests/manifests/cases/accept");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 4,
        "too few accept cases in {}",
        dir.display()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = IamConfig::from_yaml_sources([(&name, read(&path))]) {
            panic!("accept case {name} does not compile:\n{e}");
        }
    }
}

#[test]
fn reject_cases_fail_on_the_marked_object() {
    let dir = repo_root().join("tests/manifests/cases/reject");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 10,
        "too few reject cases in {}",
        dir.display()
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bad: Vec<Value> = docs(&path).into_iter().filter(marked).collect();
        assert_eq!(
            bad.len(),
            1,
            "{name}: mark exactly one object `{EXPECT}: reject`"
        );
        let (kind, object) = (
            bad[0]["kind"].as_str().unwrap(),
            bad[0]["metadata"]["name"].as_str().unwrap(),
        );
        match IamConfig::from_yaml_sources([(&name, read(&path))]) {
            Ok(_) => panic!("reject case {name} compiles, but the engine must refuse it"),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.contains(kind) && text.contains(&format!("{object:?}")),
                    "reject case {name}: the errors do not name {kind} {object:?}:\n{text}"
                );
            }
        }
    }
}

/// Node metadata as Istio builds it for the sample function's pod.
fn function_node_metadata() -> (String, Value) {
    let kustomization = the_doc(&k8s("function/kustomization.yaml"), "Kustomization");
    let namespace = kustomization["namespace"].as_str().unwrap().to_owned();
    let deployment = the_doc(&k8s("function/env.yaml"), "Deployment");
    let labels = deployment["spec"]["template"]["metadata"]["labels"].clone();
    assert_eq!(labels["faas_function"], "env");
    assert_eq!(labels["openfaas.com/jwt-auth"], "true");
    (namespace, labels)
}

/// The WasmPlugin's pluginConfig, with the audit overlay's JSON patch
/// applied when `audit`.
fn plugin_config(audit: bool) -> Value {
    let plugin = the_doc(&k8s("istio/enforce/wasmplugin.yaml"), "WasmPlugin");
    let mut config = plugin["spec"]["pluginConfig"].clone();
    assert_eq!(
        config["issuer"],
        issuer().as_str(),
        "the WasmPlugin's placeholder issuer"
    );
    if audit {
        let overlay = the_doc(&k8s("istio/audit/kustomization.yaml"), "Kustomization");
        let patch: Value =
            serde_yaml::from_str(overlay["patches"][0]["patch"].as_str().unwrap()).unwrap();
        assert_eq!(patch[0]["op"], "replace");
        assert_eq!(patch[0]["path"], "/spec/pluginConfig/mode");
        config["mode"] = patch[0]["value"].clone();
    }
    config
}

async fn examples_ext_authz(key: &PemKey) -> ExtAuthz {
    let mut opts = ExtAuthzOpts::new(issuer()).key("2026-11-24.pem", key.clone());
    for (name, yaml) in edited_examples() {
        opts = opts.iam(&name, yaml);
    }
    ExtAuthz::start(opts).await.unwrap()
}

#[tokio::test]
async fn ext_authz_refuses_to_start_with_the_unedited_examples() {
    let key = PemKey::generate().unwrap();
    let mut opts = ExtAuthzOpts::new(issuer()).key("2026-11-24.pem", key);
    for (name, yaml) in iam_files(&k8s("examples")) {
        opts = opts.iam(&name, yaml);
    }
    let err = match ExtAuthz::start(opts).await {
        Ok(_) => panic!("ext-authz started with placeholders in its IAM objects"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("exit status: 64"),
        "exit code 64 (bad config):\n{err}"
    );
    for named in [
        "github-actions.yaml: JwtIssuer \"token.actions.githubusercontent.com\": spec.aud[0]: \"EDIT-ME-gateway-url\" is an example's placeholder",
        "github-actions.yaml: Role \"github-actions-deploy\": spec.principal.jwt:repository_id[0]",
        "keycloak.yaml: JwtIssuer \"keycloak\": spec.iss",
    ] {
        assert!(err.contains(named), "the log names {named:?}:\n{err}");
    }
}

#[tokio::test]
async fn ext_authz_starts_with_the_examples_and_publishes_the_key() {
    let key = PemKey::generate().unwrap();
    let authz = examples_ext_authz(&key).await;
    assert_eq!(
        authz.published_kids().await.unwrap(),
        [key.kid().to_owned()]
    );
    let discovery = get(
        &format!("{}/.well-known/openid-configuration", authz.http_url()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.json().unwrap()["issuer"], issuer().as_str());
}

#[tokio::test]
async fn the_wasmplugin_config_runs_in_envoy_against_ext_authz() {
    let key = PemKey::generate().unwrap();
    let authz = examples_ext_authz(&key).await;
    let (namespace, labels) = function_node_metadata();
    for audit in [false, true] {
        let config = plugin_config(audit);
        let cluster = config["jwks"]["cluster"].as_str().unwrap().to_owned();
        assert_eq!(
            cluster,
            "outbound|8080||ext-authz.openfaas.svc.cluster.local"
        );
        let echo = EchoUpstream::start().await.unwrap();
        let envoy = SidecarBootstrap::new(echo.addr())
            .filter(WasmFilter::new(config.to_string()))
            .node_metadata("NAMESPACE", json!(namespace))
            .node_metadata("LABELS", labels.clone())
            .cluster(json!({
                "name": cluster,
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": authz.http_addr().port()}}}}]}]},
            }))
            .start()
            .await
            .unwrap();
        let url = envoy.listener_url(SidecarBootstrap::LISTENER).unwrap();
        let token = |perms: &[&str]| {
            format!(
                "Bearer {}",
                key.key.sign(&function_claims(&issuer(), now(), 300, perms))
            )
        };

        let health = get(&format!("{url}/_/health"), &[]).await.unwrap();
        assert_eq!(health.status, 200, "exempt path");
        let none = get(&format!("{url}/"), &[]).await.unwrap();
        let granted = get(
            &format!("{url}/"),
            &[("authorization", &token(&["openfaas-fn:env"]))],
        )
        .await
        .unwrap();
        let other = get(
            &format!("{url}/"),
            &[("authorization", &token(&["openfaas-fn:other"]))],
        )
        .await
        .unwrap();
        assert_eq!(
            granted.status,
            200,
            "a token for openfaas-fn:env:\n{}",
            envoy.log()
        );
        if audit {
            assert_eq!(none.status, 200, "audit mode never blocks");
            assert_eq!(other.status, 200, "audit mode never blocks");
            let seen = echo.requests();
            assert!(
                seen.iter().any(|r| r
                    .header("x-faas-mesh-auth-audit")
                    .is_some_and(|v| v.contains("401"))),
                "audit mode marks what it would deny: {seen:?}"
            );
        } else {
            assert_eq!(none.status, 401);
            assert_eq!(none.header("www-authenticate"), Some(REALM));
            assert_eq!(
                other.status, 403,
                "identity {namespace}:env from node metadata"
            );
        }
    }
}

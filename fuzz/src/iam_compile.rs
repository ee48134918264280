//! The IAM compile (`IamConfig::from_yaml_sources`, what ext-authz's
//! `iam_store` runs on every file of the IAM directory), then evaluation.
//!
//! Input: YAML, optionally followed by a NUL and a JSON claims object. A
//! `\x01` byte in the YAML starts a second source file.
//!
//! Properties:
//! * a refusal lists at least one error; the same sources compile the same
//!   way twice;
//! * a compiled config finds each JwtIssuer by its `iss`, each Policy by
//!   its name, and every Policy each Role names; issuers have an audience
//!   and a positive token expiry;
//! * evaluating the claims finds exactly the Roles that match when each is
//!   tested in full (the role index may only narrow the search, never miss),
//!   and the union of their Policies, each once.

use mesh_auth_core::iam::{ClaimMap, IamConfig};

pub fn iam_compile(data: &[u8]) {
    let (yaml, claims) = crate::split_nul(data);
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    let sources: Vec<(String, &str)> = yaml
        .split('\u{1}')
        .enumerate()
        .map(|(i, text)| (format!("source-{i}.yaml"), text))
        .collect();
    let config = IamConfig::from_yaml_sources(sources.clone());
    let again = IamConfig::from_yaml_sources(sources);
    let config = match (config, again) {
        (Err(e), Err(e2)) => {
            assert!(!e.is_empty(), "a refusal with no error");
            assert_eq!(
                e.iter().map(ToString::to_string).collect::<Vec<_>>(),
                e2.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
            return;
        }
        (Ok(c), Ok(_)) => c,
        _ => panic!("the same sources compiled once and failed once"),
    };

    for issuer in config.issuers() {
        assert!(std::ptr::eq(
            config.issuer(issuer.iss()).expect("found by iss"),
            issuer
        ));
        assert!(!issuer.aud().is_empty());
        assert!(!issuer.token_expiry().is_zero());
        assert!(issuer.iss().starts_with("https://") || issuer.iss().starts_with("http://"));
    }
    for policy in config.policies() {
        assert!(std::ptr::eq(
            config.policy(policy.name()).expect("found by name"),
            policy
        ));
        assert!(!policy.statements().is_empty());
    }
    for role in config.roles() {
        assert!(!role.policy_names().is_empty());
        assert!(!role.condition().is_empty(), "a Role matching every token");
        for name in role.policy_names() {
            assert!(config.policy(name).is_some(), "Role names a missing Policy");
        }
    }

    let claims: ClaimMap = serde_json::from_slice(claims).unwrap_or_default();
    let evaluation = config.evaluate(&claims);
    let found: Vec<&str> = evaluation.roles().iter().map(|r| r.name()).collect();
    let expected: Vec<&str> = config
        .roles()
        .filter(|r| r.matches(&claims))
        .map(|r| r.name())
        .collect();
    assert_eq!(found, expected, "the role index missed or added a Role");
    let mut policies: Vec<&str> = Vec::new();
    for role in evaluation.roles() {
        for name in role.policy_names() {
            if !policies.contains(&name.as_str()) {
                policies.push(name);
            }
        }
    }
    let evaluated: Vec<&str> = evaluation.policy_names().collect();
    assert_eq!(evaluated, policies);
    // The API-token path re-reads the same Policies by name.
    let grants = config.grants_for_policies(&policies, &claims);
    assert!(grants.missing_policies().is_empty());
    assert_eq!(
        grants.function_permissions(),
        evaluation.function_permissions()
    );
}

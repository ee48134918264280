//! The IAM objects ext-authz loads: a JwtIssuer for the stand-in IdP and
//! as many Roles and Policies as the row asks for.

use std::fmt::Write as _;

use super::{IDP_AUDIENCE, SUBJECT};

/// The IAM objects: a JwtIssuer for the stand-in IdP, and `n` Policies and
/// Roles, each Role with its own `jwt:sub` principal and its own Policy;
/// Role `n - 3` is the bench's subject's.
pub fn iam_yaml(idp: &str, n: usize) -> String {
    let mut y = String::with_capacity(n * 420 + 300);
    let _ = write!(
        y,
        "apiVersion: iam.openfaas.com/v1\nkind: JwtIssuer\nmetadata:\n  name: bench-idp\n  namespace: openfaas\nspec:\n  iss: {idp}\n  aud:\n    - {IDP_AUDIENCE}\n  tokenExpiry: 30m\n"
    );
    let target = n.saturating_sub(3);
    for i in 0..n {
        let sub = if i == target {
            SUBJECT.to_owned()
        } else {
            format!("client-{i}")
        };
        let _ = write!(
            y,
            "---\napiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata:\n  name: policy-{i}\n  namespace: openfaas\nspec:\n  statement:\n  - sid: team-{i}\n    action: [\"Function:Invoke\", \"Function:List\", \"Function:Get\"]\n    effect: Allow\n    resource: [\"team-{i}:*\"]\n---\napiVersion: iam.openfaas.com/v1\nkind: Role\nmetadata:\n  name: role-{i}\n  namespace: openfaas\nspec:\n  policy: [policy-{i}]\n  principal:\n    jwt:sub: [\"{sub}\"]\n  condition:\n    StringEqual:\n      jwt:iss: [\"{idp}\"]\n"
        );
    }
    y
}

/// The team whose functions the subject may use, with `n` Roles.
pub(super) fn team(n: usize) -> String {
    format!("team-{}", n.saturating_sub(3))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iam_has_n_roles_and_policies_and_one_for_the_subject() {
        let y = iam_yaml("http://127.0.0.1:1", 10);
        assert_eq!(y.matches("kind: Role\n").count(), 10);
        assert_eq!(y.matches("kind: Policy\n").count(), 10);
        assert_eq!(y.matches(SUBJECT).count(), 1);
        assert!(y.contains("name: role-7\n  namespace: openfaas\nspec:\n  policy: [policy-7]\n  principal:\n    jwt:sub: [\"bench-client\"]"));
        for doc in y.split("---\n") {
            let v: serde_yaml::Value = serde_yaml::from_str(doc).unwrap();
            assert!(v.get("kind").is_some());
        }
    }
}

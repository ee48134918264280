use std::collections::HashSet;

use super::*;
use crate::iam::ResourceProblem;

#[test]
fn every_action_round_trips_through_its_name() {
    let names: HashSet<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(names.len(), Action::ALL.len());
    for action in Action::ALL {
        assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        assert_eq!(action.to_string(), action.as_str());
        let (family, _) = action.as_str().split_once(':').unwrap();
        assert_eq!(format!("{:?}", action.family()), family);
    }
}

#[test]
fn the_documented_list_is_known() {
    for name in [
        "Function:List",
        "Function:Get",
        "Function:Create",
        "Function:Update",
        "Function:Delete",
        "Function:Logs",
        "Function:Scale",
        "Function:Invoke",
        "Secret:List",
        "Secret:Create",
        "Secret:Update",
        "Secret:Delete",
        "Namespace:List",
        "Namespace:Get",
        "Namespace:Create",
        "Namespace:Update",
        "Namespace:Delete",
        "System:Info",
    ] {
        assert!(name.parse::<Action>().is_ok(), "{name}");
    }
}

#[test]
fn unknown_and_miscased_actions_are_refused() {
    for bad in [
        "Function:Invok",
        "function:invoke",
        "Function:invoke",
        "Function",
        "Secret:Get",
        "System:*",
        "**",
        "Function:**",
        "",
        " Function:Invoke",
    ] {
        assert_eq!(
            bad.parse::<ActionPattern>(),
            Err(UnknownAction(bad.to_owned())),
            "{bad}"
        );
    }
}

#[test]
fn wildcards_cover_their_family_only() {
    let any: ActionPattern = "*".parse().unwrap();
    let function: ActionPattern = "Function:*".parse().unwrap();
    let secret: ActionPattern = "Secret:*".parse().unwrap();
    let namespace: ActionPattern = "Namespace:*".parse().unwrap();
    for action in Action::ALL {
        assert!(any.matches(action));
        assert_eq!(
            function.matches(action),
            action.family() == ActionFamily::Function
        );
        assert_eq!(
            secret.matches(action),
            action.family() == ActionFamily::Secret
        );
        assert_eq!(
            namespace.matches(action),
            action.family() == ActionFamily::Namespace
        );
    }
    let invoke: ActionPattern = "Function:Invoke".parse().unwrap();
    assert!(invoke.matches(Action::FunctionInvoke));
    assert!(!invoke.matches(Action::FunctionList));
}

fn pattern(s: &str) -> ResourcePattern {
    s.parse().unwrap()
}

#[test]
fn resources_accept_the_three_documented_shapes() {
    for ok in [
        "*",
        "openfaas-fn:*",
        "dev:env",
        "staging:*",
        "dev:my.secret",
        "a1:b-2",
    ] {
        assert_eq!(pattern(ok).as_str(), ok);
    }
}

#[test]
fn malformed_resources_are_refused_with_a_reason() {
    for bad in [
        "openfaas-fn",
        "*:env",
        "dev:env*",
        "dev:*x",
        "d*v:env",
        "dev:a:b",
        "**",
    ] {
        assert_eq!(
            bad.parse::<ResourcePattern>(),
            Err(ResourceProblem::Shape),
            "{bad}"
        );
    }
    assert_eq!(
        "Dev:env".parse::<ResourcePattern>(),
        Err(ResourceProblem::Namespace("Dev".into()))
    );
    assert_eq!(
        ":env".parse::<ResourcePattern>(),
        Err(ResourceProblem::Namespace("".into()))
    );
    assert_eq!(
        "dev:".parse::<ResourcePattern>(),
        Err(ResourceProblem::Name("".into()))
    );
    assert_eq!(
        "dev:Env".parse::<ResourcePattern>(),
        Err(ResourceProblem::Name("Env".into()))
    );
    assert_eq!(
        "dev:a..b".parse::<ResourcePattern>(),
        Err(ResourceProblem::Name("a..b".into()))
    );
}

#[test]
fn resource_scopes_match_cluster_namespace_and_object_checks() {
    let cluster = Resource::Cluster;
    let dev = Resource::Namespace("dev");
    let dev_env = Resource::Object {
        namespace: "dev",
        name: "env",
    };
    let dev_env2 = Resource::Object {
        namespace: "dev",
        name: "env2",
    };
    let prod_env = Resource::Object {
        namespace: "prod",
        name: "env",
    };

    let any = pattern("*");
    assert!(any.matches(&cluster) && any.matches(&dev) && any.matches(&dev_env));

    let ns = pattern("dev:*");
    assert!(!ns.matches(&cluster));
    assert!(ns.matches(&dev));
    assert!(ns.matches(&dev_env) && ns.matches(&dev_env2));
    assert!(!ns.matches(&prod_env));
    assert!(!ns.matches(&Resource::Namespace("dev2")));
    assert!(!pattern("de:*").matches(&dev_env));

    let one = pattern("dev:env");
    assert!(!one.matches(&cluster));
    assert!(
        !one.matches(&dev),
        "a single grant does not cover its namespace"
    );
    assert!(one.matches(&dev_env));
    assert!(!one.matches(&dev_env2), "anchored: env does not match env2");
    assert!(!one.matches(&prod_env));
}

#[test]
fn function_ids_convert_to_object_resources() {
    let id = FunctionId::new("openfaas-fn", "env").unwrap();
    assert_eq!(
        Resource::from(&id),
        Resource::Object {
            namespace: "openfaas-fn",
            name: "env"
        }
    );
    assert!(pattern("openfaas-fn:*").matches(&Resource::from(&id)));
}

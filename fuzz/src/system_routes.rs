//! The `/system/` route mapping (`ext_authz::authz::routes::classify_api`):
//! method, path and query, and body, to an IAM action and resource.
//!
//! Input: a byte choosing the method, a byte choosing how the body
//! arrived (none, whole, not forwarded, truncated), then the request target
//! (path and query), a NUL, and the body.
//!
//! Properties of every allowed mapping:
//! * the path is under `/system/`, clean (no empty, `.` or `..` segments),
//!   and its query has no `;`;
//! * namespaces are DNS labels, function names DNS labels, secret names
//!   DNS subdomains without `..`; the resource reads back as a Policy
//!   resource pattern that covers it;
//! * the action belongs to the method (reads are GETs, and back);
//! * `set_query_namespace` is only set when the query named no namespace,
//!   and then names the resource's namespace;
//! * a body the route needs but did not get is refused, never guessed.

use ext_authz::authz::routes::{Body, Family, RequestParts, Resource, classify_api, family};
use mesh_auth_core::FunctionId;
use mesh_auth_core::iam::{self, Action, ResourcePattern};

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", "OPTIONS",
];

pub fn system_routes(data: &[u8]) {
    let [m, b, rest @ ..] = data else {
        return;
    };
    let (target, body) = crate::split_nul(rest);
    let Ok(path) = std::str::from_utf8(target) else {
        return;
    };
    let method = METHODS[usize::from(*m) % METHODS.len()];
    let body = match b % 4 {
        0 if body.is_empty() => Body::Empty,
        0 | 1 => Body::Complete(body),
        2 => Body::NotForwarded,
        _ => Body::Truncated,
    };
    let req = RequestParts { method, path, body };
    let result = classify_api(&req);
    if let Err(e) = &result {
        assert!(matches!(e.status(), 400 | 403 | 413));
        assert!(!e.code().is_empty());
        return;
    }
    let Ok(api) = result else { return };
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    assert_eq!(family(path), Family::Api);
    assert!(route.starts_with("/system/"));
    let segments: Vec<&str> = route["/system/".len()..].split('/').collect();
    assert!(
        segments
            .iter()
            .enumerate()
            .all(|(i, s)| !matches!(*s, "." | "..") && (!s.is_empty() || i + 1 == segments.len())),
        "an unclean path was mapped: {path:?}"
    );
    assert!(
        !route.contains('%'),
        "a percent-encoded path was mapped: {path:?}"
    );
    assert!(!query.contains(';'));

    assert_eq!(
        is_read(api.action),
        method == "GET",
        "{method} mapped to {:?}",
        api.action
    );

    match &api.resource {
        Resource::All => {}
        Resource::Namespace(ns) => assert!(is_dns_label(ns), "namespace {ns:?}"),
        Resource::Object { namespace, name } => {
            assert!(is_dns_label(namespace), "namespace {namespace:?}");
            let ok = if matches!(
                api.action,
                Action::SecretCreate | Action::SecretUpdate | Action::SecretDelete
            ) {
                is_dns_subdomain(name) && !name.contains("..")
            } else {
                FunctionId::new(namespace, name).is_ok()
            };
            assert!(ok, "object name {name:?}");
        }
    }
    let text = api.resource.to_string();
    let pattern: ResourcePattern = text
        .parse()
        .unwrap_or_else(|e| panic!("resource {text:?} is not a resource pattern: {e:?}"));
    assert!(pattern.matches(&iam::Resource::from(&api.resource)));
    if matches!(api.resource, Resource::Object { .. }) {
        // `ns:*` covers any object in it; `ns:name` not the whole namespace.
        let ns = api.resource.namespace().unwrap_or_default();
        let whole: ResourcePattern = format!("{ns}:*").parse().expect("ns:* parses");
        assert!(whole.matches(&iam::Resource::from(&api.resource)));
        assert!(!pattern.matches(&iam::Resource::Namespace(ns)));
    }

    if let Some(ns) = &api.set_query_namespace {
        assert_eq!(Some(ns.as_str()), api.resource.namespace());
        let named = form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k == "namespace" && !v.is_empty());
        assert!(!named, "query namespace overridden: {path:?}");
    }
    if matches!(req.body, Body::NotForwarded | Body::Truncated) {
        // Only routes that read nothing from the body may pass without it.
        assert!(
            is_read(api.action),
            "{:?} passed without its body",
            api.action
        );
    }
}

/// The actions of GET routes: the only ones that read nothing from a body.
fn is_read(action: Action) -> bool {
    matches!(
        action,
        Action::SystemInfo
            | Action::FunctionList
            | Action::FunctionGet
            | Action::FunctionLogs
            | Action::SecretList
            | Action::NamespaceList
            | Action::NamespaceGet
    )
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

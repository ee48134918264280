use std::collections::HashMap;

use super::*;

fn args(list: &[&str]) -> Args {
    Args::try_parse_from(std::iter::once("ext-authz").chain(list.iter().copied())).unwrap()
}

#[test]
fn defaults_with_only_the_issuer() {
    let s = Settings::resolve(
        args(&["--issuer", "https://gw.example.com/"]),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(s.issuer, "https://gw.example.com", "trailing slash dropped");
    assert_eq!(s.http_addr.to_string(), "0.0.0.0:8080");
    assert_eq!(s.grpc_addr.to_string(), "0.0.0.0:9000");
    assert_eq!(s.reload_interval, Duration::from_secs(5));
    assert_eq!(s.idp_keys_max_age, Duration::from_secs(86_400));
    assert_eq!(s.log_format, LogFormat::Text);
    assert!(!s.allow_past_subject_expiry);
}

#[test]
fn environment_fills_in_and_flags_win() {
    let env: HashMap<&str, &str> = HashMap::from([
        (ENV_ISSUER, "https://from-env.example.com"),
        (ENV_HTTP_ADDR, "127.0.0.1:18080"),
        (ENV_RELOAD_INTERVAL, "1s"),
        (ENV_LOG_FORMAT, "json"),
        (ENV_PAST_SUBJECT_EXPIRY, "true"),
    ]);
    let s = Settings::resolve(args(&["--http-addr", "127.0.0.1:1"]), &env).unwrap();
    assert_eq!(s.issuer, "https://from-env.example.com");
    assert_eq!(s.http_addr.to_string(), "127.0.0.1:1");
    assert_eq!(s.reload_interval, Duration::from_secs(1));
    assert_eq!(s.log_format, LogFormat::Json);
    assert!(s.allow_past_subject_expiry);
}

#[test]
fn bad_settings_name_the_flag_and_variable() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "--issuer (EXT_AUTHZ_ISSUER): required"),
        (vec!["--issuer", "gateway"], "--issuer"),
        (
            vec!["--issuer", "https://gw", "--http-addr", "localhost"],
            "--http-addr (EXT_AUTHZ_HTTP_ADDR)",
        ),
        (
            vec!["--issuer", "https://gw", "--reload-interval", "5"],
            "--reload-interval",
        ),
        (
            vec!["--issuer", "https://gw", "--reload-interval", "1ms"],
            "at least 100ms",
        ),
        (
            vec!["--issuer", "https://gw", "--log-format", "xml"],
            "--log-format",
        ),
        (
            vec!["--issuer", "https://gw", "--clock-skew", "1h"],
            "--clock-skew",
        ),
    ];
    for (list, needle) in cases {
        let e = Settings::resolve(args(&list), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{list:?}: {e}");
    }
    let env = HashMap::from([(ENV_ISSUER, "https://gw"), (ENV_PAST_SUBJECT_EXPIRY, "yes")]);
    assert!(Settings::resolve(args(&[]), &env).is_err());
}

#[test]
fn jwks_uri_defaults_under_the_issuer_and_can_be_overridden() {
    let s = Settings::resolve(args(&["--issuer", "https://gw"]), &HashMap::new()).unwrap();
    assert_eq!(s.jwks_uri, "https://gw/.well-known/jwks.json");
    let env = HashMap::from([(
        ENV_JWKS_URI,
        "http://gateway.openfaas:8080/.well-known/jwks.json",
    )]);
    let s = Settings::resolve(args(&["--issuer", "https://gw"]), &env).unwrap();
    assert_eq!(
        s.jwks_uri,
        "http://gateway.openfaas:8080/.well-known/jwks.json"
    );
    assert!(
        Settings::resolve(
            args(&["--issuer", "https://gw", "--jwks-uri", "gw/jwks"]),
            &HashMap::new()
        )
        .is_err()
    );
}

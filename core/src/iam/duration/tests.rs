use std::time::Duration;

use super::{DurationError, parse_go_duration};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn parses_the_forms_openfaas_users_write() {
    assert_eq!(parse_go_duration("1h"), Ok(secs(3600)));
    assert_eq!(parse_go_duration("30m"), Ok(secs(1800)));
    assert_eq!(parse_go_duration("90s"), Ok(secs(90)));
    assert_eq!(parse_go_duration("1h30m"), Ok(secs(5400)));
    assert_eq!(parse_go_duration("2h45m30s"), Ok(secs(9930)));
    assert_eq!(parse_go_duration("24h"), Ok(secs(86400)));
}

#[test]
fn parses_fractions_small_units_and_signs_like_go() {
    assert_eq!(parse_go_duration("1.5h"), Ok(secs(5400)));
    assert_eq!(parse_go_duration(".5s"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_go_duration("1.s"), Ok(secs(1)));
    assert_eq!(parse_go_duration("1.0000000001s"), Ok(Duration::new(1, 0)));
    assert_eq!(parse_go_duration("100ms"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_go_duration("7us"), Ok(Duration::from_micros(7)));
    assert_eq!(parse_go_duration("7\u{b5}s"), Ok(Duration::from_micros(7)));
    assert_eq!(parse_go_duration("7\u{3bc}s"), Ok(Duration::from_micros(7)));
    assert_eq!(parse_go_duration("5ns"), Ok(Duration::from_nanos(5)));
    assert_eq!(parse_go_duration("+5m"), Ok(secs(300)));
    assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_go_duration("1m1m"), Ok(secs(120)));
}

#[test]
fn refuses_what_go_refuses_and_negatives() {
    assert_eq!(parse_go_duration(""), Err(DurationError::Empty));
    assert_eq!(parse_go_duration("+"), Err(DurationError::Empty));
    assert_eq!(parse_go_duration("-1h"), Err(DurationError::Negative));
    assert_eq!(parse_go_duration("1"), Err(DurationError::MissingUnit));
    assert_eq!(parse_go_duration("3600"), Err(DurationError::MissingUnit));
    assert_eq!(parse_go_duration("1h30"), Err(DurationError::MissingUnit));
    assert_eq!(parse_go_duration("1.5.5h"), Err(DurationError::MissingUnit));
    assert_eq!(parse_go_duration("h"), Err(DurationError::InvalidNumber));
    assert_eq!(parse_go_duration(".h"), Err(DurationError::InvalidNumber));
    assert_eq!(
        parse_go_duration("1 h"),
        Err(DurationError::UnknownUnit(" h".into()))
    );
    assert_eq!(
        parse_go_duration("1d"),
        Err(DurationError::UnknownUnit("d".into()))
    );
    assert_eq!(
        parse_go_duration("1H"),
        Err(DurationError::UnknownUnit("H".into()))
    );
}

#[test]
fn refuses_overflow_past_go_limits() {
    // Go's maximum is 2562047h47m16.854775807s.
    assert!(parse_go_duration("2562047h").is_ok());
    assert_eq!(parse_go_duration("2562048h"), Err(DurationError::Overflow));
    assert_eq!(
        parse_go_duration("99999999999999999999999999999999999999999h"),
        Err(DurationError::Overflow)
    );
}

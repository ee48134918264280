use super::*;

#[test]
fn record_round_trips() {
    let s = SharedState {
        version: 7,
        next_fetch_ms: 1_700_000_000_123,
        lease_until_ms: 0,
        last_attempt_ms: 1_699_999_999_000,
        failures: 2,
        digest: 0xdead_beef_0123,
    };
    assert_eq!(SharedState::decode(s.encode().as_bytes()), Some(s));
}

#[test]
fn garbage_records_are_absent() {
    for bad in [
        "",
        "v1 1 2 3 4 5",
        "v2 1 2 3 4 5",
        "v2 1 2 3",
        "v2 a b c d e f",
        "v2 1 2 3 4 99999999999 f",
        "v2 1 2 3 4 5 zz",
        "v2 1 2 3 4 5 f 6",
    ] {
        assert_eq!(SharedState::decode(bad.as_bytes()), None, "{bad}");
    }
    assert_eq!(SharedState::decode(&[0xff, 0xfe]), None);
}

#[test]
fn first_fetch_is_due_at_once() {
    assert!(SharedState::default().fetch_due(1, false, 10_000));
}

#[test]
fn lease_blocks_other_workers_until_it_expires() {
    let leased = SharedState::default().leased(1_000, 5_000);
    assert!(!leased.fetch_due(2_000, true, 0));
    assert!(!leased.fetch_due(6_999, false, 0));
    assert!(
        leased.fetch_due(7_000, false, 0),
        "a dead holder's lease lapses"
    );
}

#[test]
fn periodic_refresh_and_rate_limited_refetch() {
    let s = SharedState::default().leased(1_000, 5_000).after_fetch(
        1_200,
        FetchResult::Changed { digest: 1 },
        300_000,
        5_000,
    );
    assert_eq!(s.version, 1);
    assert_eq!(s.lease_until_ms, 0);
    assert!(!s.fetch_due(2_000, false, 10_000));
    assert!(s.fetch_due(301_200, false, 10_000));
    // An unknown kid may trigger a refetch, but not more often than allowed.
    assert!(!s.fetch_due(5_000, true, 10_000));
    assert!(s.fetch_due(11_000, true, 10_000));
}

#[test]
fn unchanged_fetch_keeps_the_version() {
    let s = SharedState {
        version: 3,
        ..Default::default()
    };
    assert_eq!(s.after_fetch(0, FetchResult::Unchanged, 10, 5).version, 3);
}

#[test]
fn failures_back_off_but_never_past_refresh() {
    let mut s = SharedState {
        version: 1,
        ..Default::default()
    };
    let mut waits = Vec::new();
    for _ in 0..10 {
        s = s
            .leased(0, 1_000)
            .after_fetch(0, FetchResult::Failed, 60_000, 5_000);
        waits.push(s.next_fetch_ms);
    }
    assert_eq!(&waits[..5], &[5_000, 10_000, 20_000, 40_000, 60_000]);
    assert!(waits.iter().all(|w| *w <= 60_000));
    assert_eq!(s.version, 1, "a failure keeps the last good document");
    assert_eq!(s.failures, 10);
    let ok = s.after_fetch(0, FetchResult::Unchanged, 60_000, 5_000);
    assert_eq!(ok.failures, 0);
}

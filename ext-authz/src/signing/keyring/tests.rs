use std::path::Path;

use jwt_simple::prelude::ES256KeyPair;
use p256::pkcs8::{EncodePrivateKey, LineEnding};

use super::*;

const T0: u64 = 1_800_000_000;
const DELAY: u64 = 600;
const RETIRE: Retirement = Retirement {
    leeway: 30,
    max_lifetime: 3600,
};

fn pem() -> String {
    let secret = p256::SecretKey::from_slice(&ES256KeyPair::generate().to_bytes()).unwrap();
    secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

/// The same key material under another file name.
fn named(name: &str, pem: &str) -> SigningKey {
    SigningKey::from_pem(Path::new(name), pem).unwrap()
}

/// `YYYY-MM-DDTHHMMSSZ` for a time, as an operator would name the file.
fn stamp(t: u64) -> String {
    let days = (t / 86_400) as i64;
    // Inverse of days_from_civil, by search: tests only.
    let mut date = (1970, 1, 1);
    'found: for y in 1970..2200 {
        for m in 1..=12 {
            for d in 1..=days_in_month(y, m) {
                if days_from_civil(i64::from(y), m, d) == days {
                    date = (y, m, d);
                    break 'found;
                }
            }
        }
    }
    let s = t % 86_400;
    format!(
        "{:04}-{:02}-{:02}T{:02}{:02}{:02}Z",
        date.0,
        date.1,
        date.2,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[test]
fn file_names_give_the_time_a_key_may_sign() {
    let day = 1_764_633_600; // 2025-12-02T00:00:00Z
    assert_eq!(not_before_of("2025-12-02.pem"), Ok(Some(day)));
    assert_eq!(
        not_before_of("2025-12-02T1530Z.pem"),
        Ok(Some(day + 55_800))
    );
    assert_eq!(
        not_before_of("2025-12-02T153007Z.pem"),
        Ok(Some(day + 55_807))
    );
    assert_eq!(
        not_before_of("2025-12-02T15:30:07Z.pem"),
        Ok(Some(day + 55_807))
    );
    assert_eq!(not_before_of("2025-12-02-b.key"), Ok(Some(day)));
    assert_eq!(not_before_of("2024-02-29.pem"), Ok(Some(1_709_164_800)));
    assert_eq!(not_before_of("1970-01-01.pem"), Ok(Some(0)));
    for undated in [
        "0001.pem",
        "0001-dev.pem",
        "2026-01.pem",
        "key.pem",
        "2026.pem",
    ] {
        assert_eq!(not_before_of(undated), Ok(None), "{undated}");
    }
    for bad in [
        "2025-13-02.pem",
        "2025-02-29.pem",
        "2025-12-00.pem",
        "2025-12-02T2460Z.pem",
        "2025-12-02T15.pem",
        "2025-12-02x.pem",
    ] {
        assert!(not_before_of(bad).is_err(), "{bad}");
    }
    assert_eq!(not_before_of(&stamp(T0)), Ok(Some(T0)));
}

#[test]
fn a_badly_dated_file_name_is_refused_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("2026-02-30.pem"), pem()).unwrap();
    let e = crate::signing::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("2026-02-30.pem") && e.contains("date"), "{e}");
}

#[test]
fn a_key_added_while_running_is_published_at_once_but_signs_from_its_time() {
    let old_pem = pem();
    let ring = KeyRing::new(vec![named("0001.pem", &old_pem)]).unwrap();
    let first = ring.active(T0).kid.clone();
    let new_pem = pem();
    let name = format!("{}.pem", stamp(T0 + 1800));
    let ring = ring
        .rotate(
            vec![named("0001.pem", &old_pem), named(&name, &new_pem)],
            T0,
            DELAY,
            RETIRE,
        )
        .unwrap();
    let second = named("x.pem", &new_pem).kid;
    assert!(ring.kids(T0).contains(&second), "published at once");
    assert_eq!(ring.active(T0).kid, first, "but not signing yet");
    assert_eq!(ring.active(T0 + 1799).kid, first);
    assert_eq!(ring.active(T0 + 1800).kid, second);
    assert_eq!(ring.jwks(T0 + 1800)["keys"][0]["kid"], second.as_str());
}

#[test]
fn a_name_dated_too_early_still_waits_for_the_publish_delay() {
    let old_pem = pem();
    let ring = KeyRing::new(vec![named("0001.pem", &old_pem)]).unwrap();
    let first = ring.active(T0).kid.clone();
    // Dated an hour ago, delivered now: the other replicas and the filters
    // cannot have it yet.
    let new_pem = pem();
    let name = format!("{}.pem", stamp(T0 - 3600));
    let ring = ring
        .rotate(
            vec![named("0001.pem", &old_pem), named(&name, &new_pem)],
            T0,
            DELAY,
            RETIRE,
        )
        .unwrap();
    assert_eq!(ring.active(T0).kid, first);
    assert_eq!(ring.active(T0 + DELAY - 1).kid, first);
    assert_eq!(ring.active(T0 + DELAY).kid, named("x.pem", &new_pem).kid);
}

#[test]
fn two_replicas_that_get_a_key_at_different_times_switch_together_and_publish_first() {
    let (old_pem, new_pem) = (pem(), pem());
    let switch = T0 + 1200;
    let name = format!("{}.pem", stamp(switch));
    let start = || KeyRing::new(vec![named("2025-01-01.pem", &old_pem)]).unwrap();
    let with_both = || vec![named("2025-01-01.pem", &old_pem), named(&name, &new_pem)];
    // Replica A's kubelet delivers the key at T0, B's 90 s later.
    let a = start().rotate(with_both(), T0, DELAY, RETIRE).unwrap();
    let b_before = start();
    let b = start().rotate(with_both(), T0 + 90, DELAY, RETIRE).unwrap();
    let b_at = |t: u64| if t < T0 + 90 { &b_before } else { &b };
    for t in (T0 - 10..switch + 100).step_by(5) {
        let (sa, sb) = (&a.active(t).kid, &b_at(t).active(t).kid);
        assert_eq!(sa, sb, "both sign with the same key at {t}");
        // Whatever one signs with, the other already publishes.
        assert!(b_at(t).kids(t).contains(sa), "B lacks A's key at {t}");
        assert!(a.kids(t).contains(sb), "A lacks B's key at {t}");
    }
    assert_eq!(a.active(switch).kid, named("x.pem", &new_pem).kid);
}

#[test]
fn startup_keys_count_as_published_since_their_time() {
    let (a, b) = (pem(), pem());
    let ring = KeyRing::new(vec![
        named("2025-01-01.pem", &a),
        named(&format!("{}.pem", stamp(T0 - 60)), &b),
    ])
    .unwrap();
    assert_eq!(ring.active(T0).kid, named("x.pem", &b).kid);
    // A key dated in the future waits for its time, even at startup.
    let ring = KeyRing::new(vec![
        named("2025-01-01.pem", &a),
        named(&format!("{}.pem", stamp(T0 + 60)), &b),
    ])
    .unwrap();
    assert_eq!(ring.active(T0).kid, named("x.pem", &a).kid);
    assert_eq!(ring.active(T0 + 60).kid, named("x.pem", &b).kid);
    // Only keys from the future: the first one signs rather than nothing.
    let ring = KeyRing::new(vec![named(&format!("{}.pem", stamp(T0 + 60)), &b)]).unwrap();
    assert_eq!(ring.active(T0).kid, named("x.pem", &b).kid);
}

#[test]
fn a_removed_key_stays_published_for_tokens_other_replicas_signed() {
    let (a, b) = (pem(), pem());
    let ring = KeyRing::new(vec![named("2025-01-01.pem", &a)]).unwrap();
    let old = ring.active(T0).kid.clone();
    // It never signed here, but other replicas used it until it left.
    let ring = ring.rotate(vec![named("2025-02-01.pem", &b)], T0, DELAY, RETIRE);
    let ring = ring.unwrap();
    assert!(ring.kids(T0 + 3600 + 29).contains(&old));
    assert!(!ring.kids(T0 + 3600 + 31).contains(&old));
    assert!(ring.without_expired(T0 + 3600 + 29).is_none());
    let pruned = ring.without_expired(T0 + 3600 + 31).unwrap();
    assert_eq!(pruned.kids(T0).len(), 1);
}

#[test]
fn a_key_superseded_long_ago_is_dropped_at_once_when_removed() {
    let (a, b) = (pem(), pem());
    let ring = KeyRing::new(vec![
        named("2025-01-01.pem", &a),
        named("2025-02-01.pem", &b),
    ])
    .unwrap();
    let old = named("x.pem", &a).kid;
    // 2025-02-01 took over long before T0 (2027): every token of the old
    // key has expired.
    let ring = ring
        .rotate(vec![named("2025-02-01.pem", &b)], T0, DELAY, RETIRE)
        .unwrap();
    assert!(!ring.kids(T0).contains(&old));
}

#[test]
fn a_renamed_key_keeps_its_state_and_takes_the_new_time() {
    let (a, b) = (pem(), pem());
    let ring = KeyRing::new(vec![named("2025-01-01.pem", &a), named("0009.pem", &b)]).unwrap();
    assert_eq!(ring.active(T0).kid, named("x.pem", &a).kid);
    let later = format!("{}.pem", stamp(T0 + 100));
    let ring = ring
        .rotate(
            vec![named("2025-01-01.pem", &a), named(&later, &b)],
            T0,
            DELAY,
            RETIRE,
        )
        .unwrap();
    // Known since startup: no publish delay, only its new name's time.
    assert_eq!(ring.active(T0 + 99).kid, named("x.pem", &a).kid);
    assert_eq!(ring.active(T0 + 100).kid, named("x.pem", &b).kid);
}

#[test]
fn the_signing_key_signs_since_its_names_time_or_the_epoch_when_undated() {
    let (a, b) = (pem(), pem());
    let ring = KeyRing::new(vec![named("0001.pem", &a)]).unwrap();
    assert_eq!(ring.active_since(T0), 0);
    let dated = format!("{}.pem", stamp(T0 + 1800));
    let ring = ring
        .rotate(
            vec![named("0001.pem", &a), named(&dated, &b)],
            T0,
            DELAY,
            RETIRE,
        )
        .unwrap();
    assert_eq!(ring.active_since(T0 + 1799), 0);
    assert_eq!(ring.active_since(T0 + 1800), T0 + 1800);
    let ring = KeyRing::new(vec![named(&format!("{}.pem", stamp(T0 - 60)), &b)]).unwrap();
    assert_eq!(ring.active_since(T0), T0 - 60);
}

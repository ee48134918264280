use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn args(dir: &Path, not_before: Option<&str>) -> NewArgs {
    NewArgs {
        dir: dir.to_owned(),
        not_before: not_before.map(str::to_owned),
        publish_delay: DEFAULT_KEY_PUBLISH_DELAY.to_owned(),
    }
}

fn default_publish_delay() -> std::time::Duration {
    parse_go_duration(DEFAULT_KEY_PUBLISH_DELAY).unwrap()
}

// 2026-12-02T15:30:00Z
const T: u64 = 1_796_225_400;

#[test]
fn file_names_round_trip_through_ext_authz_reading() {
    assert_eq!(civil::file_stamp(T), "2026-12-02T153000Z");
    assert_eq!(civil::rfc3339(T), "2026-12-02T15:30:00Z");
    for t in [0, 951_782_400, 4_107_542_399, T, T + 86_399] {
        let name = format!("{}.pem", civil::file_stamp(t));
        assert_eq!(not_before_of(&name), Ok(Some(t)), "{name}");
    }
}

#[test]
fn the_default_is_now_plus_the_publish_delay() {
    let d = tempfile::tempdir().unwrap();
    let made = new_key(&args(d.path(), None), T).unwrap();
    assert_eq!(made.not_before, T + default_publish_delay().as_secs());
    assert_eq!(made.file, d.path().join("2026-12-02T154000Z.pem"));
    let mode = std::fs::metadata(&made.file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // ext-authz's loader reads it, with the same kid, and nothing else is left.
    let keys = load_dir(d.path()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, made.kid);
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn not_before_takes_the_file_name_forms() {
    let d = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("2026-12-02", T - 15 * 3600 - 1800),
        ("2026-12-02T1530Z", T),
        ("2026-12-02T15:30:00Z", T),
        ("now", 5),
    ] {
        assert_eq!(
            signs_from(&args(d.path(), Some(text)), 5).unwrap(),
            want,
            "{text}"
        );
    }
    for bad in [
        "2026-13-01",
        "tomorrow",
        "2026-12-02T15:30:00Z.pem",
        "2026-12-02T25:00Z",
    ] {
        let e = signs_from(&args(d.path(), Some(bad)), 5).unwrap_err();
        assert!(matches!(e, KeysError::NotBefore { .. }), "{bad}: {e}");
    }
    let mut a = args(d.path(), None);
    a.publish_delay = "soon".into();
    assert!(matches!(
        signs_from(&a, 5),
        Err(KeysError::PublishDelay(..))
    ));
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("2026-12-02T153000Z.pem");
    std::fs::write(&path, "mine").unwrap();
    let e = new_key(&args(d.path(), Some("2026-12-02T1530Z")), 0).unwrap_err();
    assert!(matches!(e, KeysError::Exists(_)), "{e}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let e = new_key(&args(&d.path().join("nope"), Some("now")), T).unwrap_err();
    assert!(matches!(e, KeysError::Write { .. }), "{e}");
}

#[test]
fn jwks_is_the_key_rings_with_the_signing_key_first() {
    let d = tempfile::tempdir().unwrap();
    let old = new_key(&args(d.path(), Some("2026-12-01")), 0).unwrap();
    let next = new_key(&args(d.path(), Some("2026-12-03")), 0).unwrap();
    let kids = |v: serde_json::Value| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = kids(jwks(d.path(), T).unwrap());
    assert_eq!(before[0], old.kid);
    assert_eq!(before.len(), 2);
    let after = kids(jwks(d.path(), T + 2 * 86_400).unwrap());
    assert_eq!(after[0], next.kid);
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        jwks(empty.path(), T),
        Err(KeysError::Key(KeyError::NoKeys(_)))
    ));
}

use super::*;

#[test]
fn one_root_serves_every_stream_without_recording() {
    let mut r = Roots::new();
    r.add_root(1, "a");
    r.stream_created(2, 1);
    assert!(r.recorded.is_empty());
    assert_eq!(r.for_stream(2), Some(&mut "a"));
    assert_eq!(r.for_stream(99), Some(&mut "a"));
}

#[test]
fn with_several_roots_each_stream_gets_its_own() {
    let mut r = Roots::new();
    r.add_root(1, "a");
    r.add_root(2, "b");
    r.stream_created(3, 2);
    r.stream_created(4, 1);
    assert_eq!(r.for_stream(4), Some(&mut "a"));
    assert_eq!(r.for_stream(3), Some(&mut "b"));
    // Asked once: the record is gone, and a stream from after the second
    // root that was never recorded cannot be placed.
    assert_eq!(r.for_stream(3), None);
    assert_eq!(r.for_stream(5), None);
}

/// A configuration replaced while a request waited in an earlier filter:
/// its stream was created when the old root was alone.
#[test]
fn a_stream_from_before_the_second_root_belongs_to_the_first() {
    let mut r = Roots::new();
    r.add_root(1, "old");
    r.stream_created(7, 1);
    r.add_root(9, "new");
    r.stream_created(10, 9);
    assert_eq!(r.for_stream(7), Some(&mut "old"));
    assert_eq!(r.for_stream(10), Some(&mut "new"));
}

#[test]
fn forgotten_records_are_refused_not_guessed() {
    let mut r = Roots::new();
    r.add_root(1, "a");
    r.add_root(2, "b");
    for s in 0..MAX_RECORDED as u32 {
        r.stream_created(100 + s, 2);
    }
    r.stream_created(100_000, 1);
    assert_eq!(r.recorded.len(), MAX_RECORDED / 2 + 1);
    assert_eq!(r.for_stream(100), None);
    assert_eq!(r.for_stream(100_000), Some(&mut "a"));
}

#[test]
fn dropped_roots_take_their_streams_with_them() {
    let mut r = Roots::new();
    r.add_root(1, "old");
    r.stream_created(3, 1);
    r.add_root(5, "new");
    r.add_root(6, "other");
    r.stream_created(7, 1);
    r.stream_created(8, 6);
    assert_eq!(r.retain(|id| id != 1), 1);
    assert_eq!(r.len(), 2);
    assert_eq!(r.for_stream(7), None);
    assert_eq!(r.for_stream(3), None);
    assert_eq!(r.for_stream(8), Some(&mut "other"));
    assert_eq!(r.retain(|_| true), 0);
}

use super::*;

#[test]
fn round_trip() {
    let h: Vec<(&[u8], &[u8])> = vec![
        (b":path", b"/x?y"),
        (b"authorization", b"Bearer t"),
        (b"empty", b""),
    ];
    let buf = serialize(h.clone());
    assert_eq!(pairs(&buf).collect::<Vec<_>>(), h);
    assert_eq!(pairs(&[]).count(), 0);
}

#[test]
fn malformed_maps_stop_without_panicking() {
    let buf = serialize(vec![(b"a".as_slice(), b"b".as_slice()), (b"c", b"d")]);
    for cut in 0..buf.len() {
        let _ = pairs(&buf[..cut]).count();
    }
    // A count far larger than the buffer.
    let mut lying = buf.clone();
    lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(pairs(&lying).count() <= 2);
    // Lengths pointing past the end.
    let mut long = buf.clone();
    long[4..8].copy_from_slice(&1000u32.to_le_bytes());
    assert_eq!(pairs(&long).count(), 0);
}

use std::cell::Cell;

use mesh_auth_core::KeySet;
use mesh_auth_core::testing::{TestKey, jwks};

use super::*;
use crate::host::mock::MockHost;

#[test]
fn arguments_are_the_protobuf_envoy_expects() {
    let args = encode_arguments(&[1, 2], &[3], &[4; 200]);
    assert_eq!(&args[..8], &[0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6']);
    assert_eq!(&args[8..12], &[0x12, 2, 1, 2]);
    assert_eq!(&args[12..15], &[0x1a, 1, 3]);
    // 200 needs a two-byte varint.
    assert_eq!(&args[15..18], &[0x22, 0xc8, 0x01]);
    assert_eq!(args.len(), 18 + 200);
}

#[test]
fn results_decode_strictly() {
    assert!(decode_result(&[0x08, 0x01]));
    assert!(decode_result(&[0x08, 0x01, 0x12, 0x00]));
    assert!(!decode_result(&[0x08, 0x00, 0x12, 0x03, b'b', b'a', b'd']));
    assert!(!decode_result(&[]), "no result field: not valid");
    assert!(!decode_result(&[0x12, 0x05, b'x']), "truncated");
    assert!(!decode_result(&[0x08]), "truncated varint");
    assert!(!decode_result(&[0x0d, 0, 0, 0, 0]), "unknown wire type");
}

fn key_and_set() -> (TestKey, KeySet) {
    let key = TestKey::generate();
    let (set, _) = KeySet::from_jwks_json(jwks(&[&key]).as_bytes()).unwrap();
    (key, set)
}

#[test]
fn calls_the_host_and_learns_when_it_is_missing() {
    let (key, set) = key_and_set();
    let vk = set.get(&key.kid).unwrap();
    let host = MockHost::new(0);
    let state = Cell::new(Native::Unknown);
    let hs = HostSignatures::new(&host, &state);
    *host.foreign.borrow_mut() = Some(Box::new(|_, _| Ok(vec![0x08, 0x01])));
    assert_eq!(hs.verify(vk, b"msg", &[7; 64]), Some(true));
    assert_eq!(state.get(), Native::Available);
    let call = host.foreign_calls.borrow()[0].clone();
    assert_eq!(call.0, "verify_signature");
    // The host said no.
    *host.foreign.borrow_mut() = Some(Box::new(|_, _| Ok(vec![0x08, 0x00])));
    assert_eq!(hs.verify(vk, b"msg", &[7; 64]), Some(false));
    // A signature that is not 64 bytes never reaches the host.
    assert_eq!(hs.verify(vk, b"msg", &[7; 63]), Some(false));
    assert_eq!(host.foreign_calls.borrow().len(), 2);
    // Missing: fall back, and stop asking.
    *host.foreign.borrow_mut() = None;
    assert_eq!(hs.verify(vk, b"msg", &[7; 64]), None);
    assert_eq!(state.get(), Native::Unavailable);
    assert!(host.logged("verifying in wasm"));
    *host.foreign.borrow_mut() = Some(Box::new(|_, _| Ok(vec![0x08, 0x01])));
    assert_eq!(hs.verify(vk, b"msg", &[7; 64]), None);
    assert_eq!(host.foreign_calls.borrow().len(), 3);
}

#[test]
fn host_failures_fall_back_to_wasm() {
    let (key, set) = key_and_set();
    let host = MockHost::new(0);
    let state = Cell::new(Native::Unknown);
    *host.foreign.borrow_mut() = Some(Box::new(|_, _| Err(ForeignError::Failed)));
    let hs = HostSignatures::new(&host, &state);
    assert_eq!(hs.verify(set.get(&key.kid).unwrap(), b"m", &[1; 64]), None);
    assert_eq!(state.get(), Native::Unknown);
}

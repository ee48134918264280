//! The filter's reading of Envoy's serialized header map
//! (`filter/src/headers.rs`) and of the bearer token in it
//! (`mesh_auth_core::bearer`), on bytes as the host could hand them.
//!
//! Properties:
//! * `pairs` never yields more pairs than the map declares, and each name
//!   and value lies inside the buffer;
//! * what `pairs` read, serialized again, reads back the same; and a
//!   well-formed map (all pairs read, NULs in place, nothing after) is
//!   exactly the serialization of what was read;
//! * headers built from the input (split at NULs) survive `serialize` then
//!   `pairs` unchanged;
//! * a bearer token taken from any value (and from the whole input) is
//!   non-empty, inside the header, free of surrounding blanks, and follows
//!   a case-insensitive `Bearer` scheme.

use mesh_auth_core::bearer::{BearerError, bearer_token};

use crate::filter::headers::{pairs, serialize};

pub fn filter_headers(data: &[u8]) {
    let read: Vec<(&[u8], &[u8])> = pairs(data).collect();
    let declared = data
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    assert!(read.len() <= declared);
    for (name, value) in &read {
        assert!(within(data, name) && within(data, value));
    }
    let again = serialize(read.iter().copied());
    assert_eq!(pairs(&again).collect::<Vec<_>>(), read);
    if read.len() == declared && well_formed(data, &read) {
        assert_eq!(again, data, "a well-formed map is its own serialization");
    }

    // The other way: headers first, then the wire form.
    let built: Vec<(&[u8], &[u8])> = data
        .split(|b| *b == 0)
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|c| (c[0], c.get(1).copied().unwrap_or_default()))
        .collect();
    let wire = serialize(built.iter().copied());
    assert_eq!(pairs(&wire).collect::<Vec<_>>(), built);

    for (_, value) in read.iter().chain(&built) {
        if let Ok(text) = std::str::from_utf8(value) {
            check_bearer(text);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_bearer(text);
    }
}

fn check_bearer(header: &str) {
    match bearer_token(header) {
        Ok(token) => {
            assert!(!token.is_empty());
            assert!(!token.starts_with([' ', '\t']) && !token.ends_with([' ', '\t']));
            let at = (token.as_ptr() as usize).wrapping_sub(header.as_ptr() as usize);
            assert!(at + token.len() <= header.len(), "token outside the header");
            let scheme = header.trim_start().get(..6).unwrap_or_default();
            assert!(
                scheme.eq_ignore_ascii_case("bearer"),
                "scheme of {header:?}"
            );
        }
        Err(BearerError::Empty) => {
            let scheme = header.trim_start().get(..6).unwrap_or_default();
            assert!(scheme.eq_ignore_ascii_case("bearer"));
        }
        Err(BearerError::NotBearer) => {}
    }
}

fn within(buf: &[u8], part: &[u8]) -> bool {
    let start = buf.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    p >= start && p + part.len() <= start + buf.len()
}

/// Every name and value followed by its NUL, the data right after the
/// length table, and nothing after the last value.
fn well_formed(data: &[u8], read: &[(&[u8], &[u8])]) -> bool {
    let mut at = 4 + read.len() * 8;
    for (name, value) in read {
        for part in [name, value] {
            let end = at + part.len();
            if data.as_ptr() as usize + at != part.as_ptr() as usize || data.get(end) != Some(&0) {
                return false;
            }
            at = end + 1;
        }
    }
    at == data.len()
}

//! The HTTP headers the filter and ext-authz both write, and the rule for
//! what may be copied from a token into one.

/// Carries the caller's `sub` upstream. Only the filter and ext-authz set
/// it: a client's copy is replaced or removed on every request that goes on.
pub const SUBJECT_HEADER: &str = "x-faas-mesh-auth-subject";

/// The longest value copied from a token into a header. A longer `sub` is
/// not forwarded (the header is removed instead): a token must not be able
/// to blow up upstream header limits.
pub const MAX_FORWARDED_VALUE_BYTES: usize = 256;

/// The headers of every denial we answer ourselves.
pub const DENIAL_HEADERS: [(&str, &str); 2] = [
    ("content-type", "text/plain; charset=utf-8"),
    ("cache-control", "no-store"),
];

/// May `value`, taken from a token, be sent as a header value? Printable
/// ASCII and spaces only (no tab, no control bytes, no obs-text), not
/// empty, without leading or trailing space, at most
/// [`MAX_FORWARDED_VALUE_BYTES`].
pub fn is_forwardable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_FORWARDED_VALUE_BYTES
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests;

//! The bodies of faas-mesh-auth's fuzz targets, one `pub fn(&[u8])` each,
//! shared by the libFuzzer driver (`fuzz/libfuzzer/`, `make fuzz`) and the
//! corpus replay that `make unit` runs (`tests/corpus.rs`). A target checks
//! a property of what it parsed, not only that nothing panicked.
// A panic is how a target reports a broken property (or a crash) to
// libFuzzer and to the replay test: assertions and expects are the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The lib has no unit tests, but `clippy --all-targets` still builds it as
// one, and the filter's sources included here end in `#[cfg(test)] mod
// tests;`, which resolves only inside filter/: that build is left empty.
#![cfg(not(test))]

pub mod exchange_form;
pub mod filter;
pub mod filter_config;
pub mod filter_headers;
pub mod iam_compile;
pub mod jwks;
pub mod keys;
pub mod seeds;
pub mod system_routes;
pub mod verify;

pub use exchange_form::token_form;
pub use filter_config::filter_config;
pub use filter_headers::filter_headers;
pub use iam_compile::iam_compile;
pub use jwks::jwks;
pub use system_routes::system_routes;
pub use verify::verify;

/// A target: panics when the input breaks one of its properties.
pub type Target = fn(&[u8]);

/// Every target by name: the names of `fuzz/libfuzzer`'s binaries and of
/// the `corpus/` and `regressions/` folders.
pub const TARGETS: [(&str, Target); 7] = [
    ("verify", verify),
    ("jwks", jwks),
    ("iam_compile", iam_compile),
    ("system_routes", system_routes),
    ("token_form", token_form),
    ("filter_headers", filter_headers),
    ("filter_config", filter_config),
];

/// `data` cut at its first NUL: how targets taking two inputs read them.
pub(crate) fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

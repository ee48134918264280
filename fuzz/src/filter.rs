//! The filter's own modules, compiled here from its source: the filter is a
//! cdylib only (an rlib would cost the .wasm its LTO), so it cannot be a
//! dependency. Neither uses anything of the filter crate itself.

// Not formatted from here: rustfmt would look for their `tests` modules
// beside this file. `cargo fmt` formats them in filter/.
#[rustfmt::skip]
#[path = "../../filter/src/config.rs"]
pub mod config;
#[rustfmt::skip]
#[path = "../../filter/src/headers.rs"]
pub mod headers;

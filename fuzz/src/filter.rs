//! The filter's own modules, compiled here from its source: the filter is a
//! cdylib only (an rlib would cost the .wasm its LTO), so it cannot be a
//! dependency. Neither uses anything of the filter crate itself.

// Not formatted from here: rustfmt would look for their `tests` modules
// beside this file. `cargo fmt` formats them in filter/.
// An inline module with a path, so that their own submodules
// (`config/wire.rs`...) resolve inside filter/src as they do there.
#[rustfmt::skip]
#[path = "../../filter/src"]
mod source {
    pub mod config;
    pub mod headers;
}
pub use source::{config, headers};

//! Where the Envoy binary, the built filter and the CLI are. Both come from the
//! environment first (the Makefile sets them), then from the repository's
//! conventional locations. A missing file is an error that says how to make
//! it: these tests never skip.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Absolute path of the Envoy binary.
pub const ENVOY_BIN_ENV: &str = "ENVOY_BIN";
/// Absolute path of `mesh_auth_filter.wasm`.
pub const FILTER_WASM_ENV: &str = "FILTER_WASM";
/// Absolute path of the `faas-mesh-auth` command.
pub const CLI_BIN_ENV: &str = "CLI_BIN";

/// The workspace root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// `$ENVOY_BIN`, else `<repo>/.venv/bin/envoy` (installed by `make setup`).
pub fn envoy_bin() -> Result<PathBuf> {
    existing(
        ENVOY_BIN_ENV,
        repo_root().join(".venv/bin/envoy"),
        "run `make setup` to install Envoy 1.40 into .venv",
    )
}

/// `$FILTER_WASM`, else the release build under `<repo>/target`.
pub fn filter_wasm() -> Result<PathBuf> {
    existing(
        FILTER_WASM_ENV,
        repo_root().join("target/wasm32-wasip1/release/mesh_auth_filter.wasm"),
        "run `make wasm` to build the filter",
    )
}

/// `$CLI_BIN`, else the debug build under `<repo>/target`.
pub fn cli_bin() -> Result<PathBuf> {
    existing(
        CLI_BIN_ENV,
        repo_root().join("target/debug/faas-mesh-auth"),
        "run `cargo build -p faas-mesh-auth`",
    )
}

fn existing(var: &str, default: PathBuf, hint: &str) -> Result<PathBuf> {
    let (path, from) = match std::env::var_os(var) {
        Some(v) if !v.is_empty() => (PathBuf::from(v), format!("${var}")),
        _ => (default, format!("the default (${var} is not set)")),
    };
    if !path.is_file() {
        bail!("{} from {from} does not exist: {hint}", path.display());
    }
    Ok(std::path::absolute(&path)?)
}

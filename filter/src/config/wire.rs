//! The wire stage of the plugin configuration: the JSON users write, as
//! serde structs with explicit defaults. [`super::compile`] turns it into
//! the validated [`super::Compiled`].

use mesh_auth_core::verify::{DEFAULT_LEEWAY_SECONDS, DEFAULT_MAX_TOKEN_BYTES};
use serde::Deserialize;

/// The JSON users write. Unknown keys are errors: a typo such as
/// `"exempt_path"` must not silently leave a path unprotected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub issuer: String,
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    #[serde(default)]
    pub jwks: Option<JwksSource>,
    #[serde(default)]
    pub local_jwks: Option<LocalJwks>,
    #[serde(default)]
    pub function: Option<FunctionConfig>,
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: u64,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_exempt")]
    pub exempt_paths: Vec<String>,
    #[serde(default = "default_max_token")]
    pub max_token_bytes: usize,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub crypto: Crypto,
    /// Put the caller's `sub` in `x-faas-mesh-auth-subject` (off by default:
    /// it costs a hostcall per request).
    #[serde(default)]
    pub forward_subject: bool,
}

/// Where ES256 signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crypto {
    /// Envoy's native `verify_signature` when the host has it, else wasm.
    #[default]
    Auto,
    /// Always pure Rust inside the VM.
    Wasm,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `local_jwks` may be the JWKS as a JSON string (as DESIGN.md shows) or
/// inline as an object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum LocalJwks {
    Text(String),
    Inline(serde_json::Value),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    pub cluster: String,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_jwks_path")]
    pub path: String,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_min_refetch")]
    pub min_refetch_seconds: u64,
    #[serde(default = "default_retry")]
    pub retry_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: default_cache_entries(),
        }
    }
}

fn default_skew() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}
fn default_exempt() -> Vec<String> {
    vec!["/_/health".into(), "/_/ready".into()]
}
fn default_max_token() -> usize {
    DEFAULT_MAX_TOKEN_BYTES
}
fn default_jwks_path() -> String {
    "/.well-known/jwks.json".into()
}
fn default_refresh() -> u64 {
    300
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_min_refetch() -> u64 {
    10
}
fn default_retry() -> u64 {
    5
}
fn default_cache_entries() -> usize {
    1024
}

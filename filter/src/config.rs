//! The plugin configuration (`WasmPlugin.spec.pluginConfig`), in two stages:
//! serde wire structs with explicit defaults, then one compile step into an
//! immutable, validated [`Compiled`]. A bad configuration is refused with an
//! error that names the field; nothing is dropped silently. This file is
//! the compile stage; `wire` holds the serde structs.

mod wire;

use std::sync::Arc;

use mesh_auth_core::jwks::{JwksError, KeySet};
use mesh_auth_core::permission::{DEFAULT_NAMESPACE, FunctionId, FunctionIdError};
use mesh_auth_core::verify::{Validation, ValidationError};

pub use wire::{Crypto, Mode};
use wire::{JwksSource, LocalJwks, OneOrMany, PluginConfig};

/// Upper bounds that keep a typo from becoming an outage or a memory sink.
const MAX_SKEW_SECONDS: u64 = 600;
const MAX_CACHE_ENTRIES: usize = 100_000;
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// Why a configuration was refused. Each names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("plugin configuration is missing")]
    Empty,
    #[error("plugin configuration is not valid JSON for this filter: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("\"issuer\" must be a non-empty URL")]
    EmptyIssuer,
    #[error("\"audience\" must not be empty or contain empty strings")]
    EmptyAudience,
    #[error("set exactly one of \"jwks\" and \"local_jwks\"")]
    KeySource,
    #[error("\"local_jwks\" is not a usable JWKS: {0}")]
    LocalJwks(#[source] JwksError),
    #[error("\"jwks.{field}\": {problem}")]
    Jwks {
        field: &'static str,
        problem: &'static str,
    },
    #[error("\"function\": {0}")]
    Function(#[source] FunctionIdError),
    #[error("\"clock_skew_seconds\" must be at most {MAX_SKEW_SECONDS}")]
    Skew,
    #[error("\"max_token_bytes\" must be between 64 and {MAX_TOKEN_BYTES_LIMIT}")]
    MaxTokenBytes,
    #[error("\"cache.max_entries\" must be at most {MAX_CACHE_ENTRIES}")]
    CacheSize,
    #[error(
        "\"exempt_paths\"[{0}] must start with '/' and be a plain path: no '//', '.' or '..' segments, '\\', '?', '#' or %-escapes of those (a trailing '*' makes it a prefix)"
    )]
    ExemptPath(usize),
    #[error("token validation: {0}")]
    Validation(#[from] ValidationError),
}

/// Where keys come from once compiled.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Static keys from `local_jwks`.
    Local(Arc<KeySet>),
    /// Fetched from an Envoy cluster and shared across workers.
    Remote(RemoteJwks),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub refresh_ms: u64,
    pub timeout_ms: u64,
    pub min_refetch_ms: u64,
    pub retry_ms: u64,
}

impl RemoteJwks {
    /// The shared-data namespace: workers (and plugins in the same VM) using
    /// the same source share one key set and one fetch.
    pub fn shared_key_prefix(&self) -> String {
        format!(
            "faas-mesh-auth/v1/{}|{}|{}/",
            self.cluster, self.authority, self.path
        )
    }
}

/// Why the function's identity is unknown. Not a config error: node metadata
/// may be missing at runtime, and the filter then fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityUnavailable {
    #[error(
        "no \"function\" in the config and no NAMESPACE and LABELS.faas_function in node metadata"
    )]
    NotFound,
    #[error("node metadata names an invalid function: {0}")]
    Invalid(#[source] FunctionIdError),
}

/// How the function's identity was found, for the startup log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    Config,
    NodeMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExemptPath {
    Exact(String),
    Prefix(String),
}

impl ExemptPath {
    fn matches(&self, path: &str) -> bool {
        match self {
            ExemptPath::Exact(p) => p == path,
            ExemptPath::Prefix(p) => path.starts_with(p.as_str()),
        }
    }
}

/// The validated, immutable configuration one root context runs with.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub validation: Validation,
    pub keys: KeySource,
    /// An error when neither the config nor node metadata names the
    /// function: then every request is refused (fail closed).
    pub function: Result<(FunctionId, IdentitySource), IdentityUnavailable>,
    pub mode: Mode,
    pub exempt: Vec<ExemptPath>,
    pub cache_entries: usize,
    pub crypto: Crypto,
    pub forward_subject: bool,
}

impl Compiled {
    /// Is this `:path` (query and fragment ignored) exempt from checks?
    /// Only a path in plain form can be: `/public/../admin`, `//x` or
    /// `/public/%2e%2e/admin` would match a prefix here and reach another
    /// route upstream, so they need a token like any other path.
    pub fn is_exempt(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        plain_path(path) && self.exempt.iter().any(|e| e.matches(path))
    }
}

/// Starts with `/`, and nothing a server might resolve to another path:
/// no empty, `.` or `..` segment, no backslash, no percent-escape of `.`,
/// `/`, `\\` or `%` itself (double encoding).
fn plain_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if path.contains('\\') {
        return false;
    }
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return false;
    }
    // The last segment may be empty (`/public/`); no other may.
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    segments
        .iter()
        .enumerate()
        .all(|(i, s)| !matches!(*s, "." | "..") && (i == last || !s.is_empty()))
}

/// What node metadata said about the workload, if anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    pub namespace: Option<String>,
    pub function: Option<String>,
}

/// Parse and compile. `node` is consulted only when `function` is absent.
pub fn compile(raw: &[u8], node: &NodeIdentity) -> Result<Compiled, ConfigError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::Empty);
    }
    let wire: PluginConfig = serde_json::from_slice(raw)?;
    compile_wire(wire, node)
}

fn compile_wire(wire: PluginConfig, node: &NodeIdentity) -> Result<Compiled, ConfigError> {
    let issuer = wire.issuer.trim().to_owned();
    if issuer.is_empty() {
        return Err(ConfigError::EmptyIssuer);
    }
    let audiences = match wire.audience {
        None => vec![issuer.clone()],
        Some(OneOrMany::One(a)) => vec![a],
        Some(OneOrMany::Many(v)) => v,
    };
    if audiences.is_empty() || audiences.iter().any(|a| a.trim().is_empty()) {
        return Err(ConfigError::EmptyAudience);
    }
    if wire.clock_skew_seconds > MAX_SKEW_SECONDS {
        return Err(ConfigError::Skew);
    }
    if !(64..=MAX_TOKEN_BYTES_LIMIT).contains(&wire.max_token_bytes) {
        return Err(ConfigError::MaxTokenBytes);
    }
    if wire.cache.max_entries > MAX_CACHE_ENTRIES {
        return Err(ConfigError::CacheSize);
    }
    let validation = Validation::new([issuer], audiences)?
        .with_leeway(wire.clock_skew_seconds)
        .with_max_token_bytes(wire.max_token_bytes)?;

    let keys = match (wire.jwks, wire.local_jwks) {
        (Some(source), None) => KeySource::Remote(compile_remote(source)?),
        (None, Some(local)) => {
            let text = match local {
                LocalJwks::Text(s) => s,
                LocalJwks::Inline(v) => v.to_string(),
            };
            let (set, _skipped) =
                KeySet::from_jwks_json(text.as_bytes()).map_err(ConfigError::LocalJwks)?;
            KeySource::Local(Arc::new(set))
        }
        _ => return Err(ConfigError::KeySource),
    };

    let function = match wire.function {
        Some(f) => {
            let ns = f.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            let id = FunctionId::new(ns, &f.name).map_err(ConfigError::Function)?;
            Ok((id, IdentitySource::Config))
        }
        None => match (&node.namespace, &node.function) {
            (Some(ns), Some(name)) => FunctionId::new(ns, name)
                .map(|id| (id, IdentitySource::NodeMetadata))
                .map_err(IdentityUnavailable::Invalid),
            _ => Err(IdentityUnavailable::NotFound),
        },
    };

    let exempt = wire
        .exempt_paths
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let plain = p.strip_suffix('*').unwrap_or(&p);
            if !plain_path(plain) || plain.contains(['?', '#', '*']) {
                return Err(ConfigError::ExemptPath(i));
            }
            Ok(match p.strip_suffix('*') {
                Some(prefix) => ExemptPath::Prefix(prefix.to_owned()),
                None => ExemptPath::Exact(p),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Compiled {
        validation,
        keys,
        function,
        mode: wire.mode,
        exempt,
        cache_entries: wire.cache.max_entries,
        crypto: wire.crypto,
        forward_subject: wire.forward_subject,
    })
}

fn compile_remote(s: JwksSource) -> Result<RemoteJwks, ConfigError> {
    let bad = |field, problem| Err(ConfigError::Jwks { field, problem });
    if s.cluster.trim().is_empty() {
        return bad("cluster", "must name an Envoy cluster");
    }
    if !s.path.starts_with('/') {
        return bad("path", "must start with '/'");
    }
    if !(1..=86_400).contains(&s.refresh_seconds) {
        return bad("refresh_seconds", "must be between 1 and 86400");
    }
    if !(100..=60_000).contains(&s.timeout_ms) {
        return bad("timeout_ms", "must be between 100 and 60000");
    }
    if s.min_refetch_seconds > 3_600 {
        return bad("min_refetch_seconds", "must be at most 3600");
    }
    if !(1..=3_600).contains(&s.retry_seconds) {
        return bad("retry_seconds", "must be between 1 and 3600");
    }
    // Istio cluster names look like `outbound|8080||host`; the authority
    // defaults to that host so the call routes like any other.
    let authority = match s.authority {
        Some(a) if !a.trim().is_empty() => a,
        Some(_) => return bad("authority", "must not be empty"),
        None => s
            .cluster
            .rsplit('|')
            .next()
            .filter(|h| !h.is_empty())
            .unwrap_or(&s.cluster)
            .to_owned(),
    };
    Ok(RemoteJwks {
        cluster: s.cluster,
        authority,
        path: s.path,
        refresh_ms: s.refresh_seconds * 1000,
        timeout_ms: s.timeout_ms,
        min_refetch_ms: s.min_refetch_seconds * 1000,
        retry_ms: s.retry_seconds * 1000,
    })
}

#[cfg(test)]
mod tests;

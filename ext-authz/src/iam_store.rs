//! The live IAM configuration, loaded from a directory of YAML files
//! (`*.yaml`, `*.yml`, `*.json`; multi-document allowed) and reloaded when
//! the directory changes. A change that does not compile does not take
//! effect: every error is logged with its file, object and field, and the
//! last good configuration keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use mesh_auth_core::iam::{IamConfig, IamErrors};

use crate::dir_fingerprint::{ChangeTracker, fingerprint, read_files};

#[derive(Debug, thiserror::Error)]
pub enum IamLoadError {
    #[error("cannot read IAM directory {dir}: {source}")]
    Read {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} is not UTF-8")]
    NotUtf8 { file: PathBuf },
    #[error("{} invalid IAM object(s):\n{}", .0.len(), list(.0))]
    Invalid(IamErrors),
}

fn list(errors: &IamErrors) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_iam_file(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")
}

/// Read and compile the directory. Returns the config and its fingerprint.
pub fn load(dir: &Path) -> Result<(IamConfig, [u8; 32]), IamLoadError> {
    let files = read_files(dir, is_iam_file).map_err(|source| IamLoadError::Read {
        dir: dir.to_owned(),
        source,
    })?;
    let print = fingerprint(&files);
    let mut sources = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        let text =
            String::from_utf8(bytes).map_err(|_| IamLoadError::NotUtf8 { file: path.clone() })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sources.push((name, text));
    }
    let config = IamConfig::from_yaml_sources(sources).map_err(IamLoadError::Invalid)?;
    for w in config.warnings() {
        tracing::warn!("IAM: {w}");
    }
    Ok((config, print))
}

/// The current configuration, swapped atomically on reload.
pub struct IamStore {
    dir: PathBuf,
    current: RwLock<Arc<IamConfig>>,
    tracker: std::sync::Mutex<ChangeTracker>,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Applied,
    Rejected,
}

impl IamStore {
    /// Load at startup: any error is fatal, the caller exits.
    pub fn open(dir: &Path) -> Result<Self, IamLoadError> {
        let (config, print) = load(dir)?;
        Ok(IamStore {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(config)),
            tracker: std::sync::Mutex::new(ChangeTracker::new(print)),
        })
    }

    pub fn current(&self) -> Arc<IamConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reload if the directory changed.
    pub fn reload(&self) -> Reload {
        let files = match read_files(&self.dir, is_iam_file) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read IAM directory; keeping the last good configuration");
                return Reload::Rejected;
            }
        };
        let changed = match self.tracker.lock() {
            Ok(mut t) => t.changed(fingerprint(&files)),
            Err(_) => true,
        };
        if !changed {
            return Reload::Unchanged;
        }
        match load(&self.dir) {
            Ok((config, _)) => {
                tracing::info!(
                    issuers = config.issuers().len(),
                    policies = config.policies().len(),
                    roles = config.roles().len(),
                    "IAM configuration reloaded"
                );
                if let Ok(mut c) = self.current.write() {
                    *c = Arc::new(config);
                }
                Reload::Applied
            }
            Err(e) => {
                tracing::error!(
                    "IAM configuration change rejected; keeping the last good configuration: {e}"
                );
                Reload::Rejected
            }
        }
    }
}

#[cfg(test)]
mod tests;

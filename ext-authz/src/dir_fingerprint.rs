//! Noticing that a mounted directory changed, by content rather than by
//! inotify: a Kubernetes ConfigMap or Secret volume swaps an `..data`
//! symlink atomically, which inotify reports on the symlink, not on the
//! files. Polling a fingerprint of every visible file sees every kind of
//! update (symlink swap, edit in place, new file) and costs one small read
//! per interval.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Visible regular files (following symlinks) of `dir` for which `accept`
/// holds, sorted by name, with their contents.
pub fn read_files(
    dir: &Path,
    accept: impl Fn(&str) -> bool,
) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && accept(name) && p.is_file()
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(&p).map(|c| (p, c)))
        .collect()
}

/// A digest of names and contents: equal iff nothing visible changed.
pub fn fingerprint(files: &[(PathBuf, Vec<u8>)]) -> [u8; 32] {
    let mut h = Sha256::new();
    for (path, contents) in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((contents.len() as u64).to_le_bytes());
        h.update(contents);
    }
    h.finalize().into()
}

/// Tracks the last fingerprint seen, so each change is handled once (and a
/// bad change is logged once, not on every poll).
#[derive(Debug, Default)]
pub struct ChangeTracker {
    last: Option<[u8; 32]>,
}

impl ChangeTracker {
    pub fn new(initial: [u8; 32]) -> Self {
        ChangeTracker {
            last: Some(initial),
        }
    }

    /// True (and remembered) when `current` differs from the last one.
    pub fn changed(&mut self, current: [u8; 32]) -> bool {
        if self.last == Some(current) {
            false
        } else {
            self.last = Some(current);
            true
        }
    }
}

#[cfg(test)]
mod tests;

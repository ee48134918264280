//! faas-cli's own config file, read and written as faas-cli does: where it
//! lives (`$OPENFAAS_CONFIG/config.yml`, `~/.openfaas/config.yml`, or
//! `./.openfaas/config.yml` in CI), its `auths` entries keyed by the
//! normalised gateway URL, and everything else in the file kept as it was.
//!
//! A file that cannot be read or parsed is an error and is never written:
//! the user's other gateways are worth more than this login. Writes go to a
//! temporary file (mode 0600) in the same folder, then rename over it.
//! A change is made by [`FaasConfig::update`]: under a lock file beside the
//! config, the file is read again, changed and written, so two of our
//! processes never lose each other's entries, and a sign-in that took
//! minutes writes onto the file as it is now, not as it was.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_yaml::{Mapping, Value};

/// faas-cli's folder and file names.
const DIR: &str = ".openfaas";
const FILE: &str = "config.yml";
/// faas-cli's `auth` value for a bearer token.
pub const OAUTH2: &str = "oauth2";
/// How long a change waits for another process's change to the file.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot find faas-cli's config: neither $OPENFAAS_CONFIG nor $HOME is set (set OPENFAAS_CONFIG to a folder)"
    )]
    NoHome,
    #[error("cannot read faas-cli's config {path}: {source} (left as it is)")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "faas-cli's config {path} is not valid: {reason} (left as it is; fix or move it, then log in again)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write faas-cli's config {path}: {source}")]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "faas-cli's config {path} is being changed by another faas-mesh-auth (its lock {lock} was held for {waited:?}); left as it is: try again"
    )]
    Busy {
        path: PathBuf,
        lock: PathBuf,
        waited: Duration,
    },
}

/// What decides the location, read from the environment once.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub openfaas_config: Option<OsString>,
    pub ci: Option<String>,
    pub home: Option<OsString>,
}

impl Env {
    pub fn from_process() -> Self {
        Env {
            openfaas_config: std::env::var_os("OPENFAAS_CONFIG"),
            ci: std::env::var("CI").ok(),
            home: std::env::var_os("HOME"),
        }
    }

    fn in_ci(&self) -> bool {
        matches!(self.ci.as_deref(), Some("true" | "1"))
    }
}

/// The config file faas-cli reads, by its rules.
pub fn config_path(env: &Env) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = env.openfaas_config.as_ref().filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join(FILE));
    }
    if env.in_ci() {
        return Ok(PathBuf::from(".").join(DIR).join(FILE));
    }
    match env.home.as_ref().filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(DIR).join(FILE)),
        None => Err(ConfigError::NoHome),
    }
}

/// The gateway URL as faas-cli resolves it before looking it up: trailing
/// `/`s trimmed, `http://` added when there is no scheme, lowercased.
pub fn normalize_gateway(url: &str) -> String {
    let url = url.trim().trim_end_matches('/').to_lowercase();
    if url.starts_with("http") {
        url
    } else {
        format!("http://{url}")
    }
}

/// One `auths` entry, as faas-cli reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEntry {
    pub gateway: String,
    pub auth: String,
    pub token: String,
}

/// The whole file, loaded and checked; unknown fields kept.
#[derive(Debug)]
pub struct FaasConfig {
    path: PathBuf,
    doc: Mapping,
}

impl FaasConfig {
    /// Read and check the file; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let corrupt = |reason: String| ConfigError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let doc = match serde_yaml::from_str::<Value>(&text).map_err(|e| corrupt(e.to_string()))? {
            Value::Null => Mapping::new(),
            Value::Mapping(m) => m,
            _ => return Err(corrupt("the top level is not a mapping".to_owned())),
        };
        let config = FaasConfig {
            path: path.to_owned(),
            doc,
        };
        config.entries().map_err(corrupt)?;
        Ok(config)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the file again under its lock, let `change` edit it, and write
    /// it when `change` says it changed something. Returns that answer.
    pub fn update(
        path: &Path,
        change: impl FnOnce(&mut FaasConfig) -> bool,
    ) -> Result<bool, ConfigError> {
        Self::update_waiting(path, LOCK_WAIT, change)
    }

    fn update_waiting(
        path: &Path,
        wait: Duration,
        change: impl FnOnce(&mut FaasConfig) -> bool,
    ) -> Result<bool, ConfigError> {
        let _lock = lock(path, wait)?;
        let mut config = FaasConfig::load(path)?;
        let changed = change(&mut config);
        if changed {
            config.save()?;
        }
        Ok(changed)
    }

    /// Every entry, checked: `auths` is a list of mappings whose
    /// `gateway`, `auth` and `token` are strings when present.
    fn entries(&self) -> Result<Vec<AuthEntry>, String> {
        let Some(auths) = self.doc.get("auths") else {
            return Ok(Vec::new());
        };
        let list = match auths {
            Value::Null => return Ok(Vec::new()),
            Value::Sequence(s) => s,
            _ => return Err("`auths` is not a list".to_owned()),
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let Value::Mapping(m) = item else {
                return Err(format!("auths[{i}] is not a mapping"));
            };
            let field = |name: &str| match m.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("auths[{i}].{name} is not a string")),
            };
            out.push(AuthEntry {
                gateway: field("gateway")?,
                auth: field("auth")?,
                token: field("token")?,
            });
        }
        Ok(out)
    }

    /// The entry faas-cli would use for `gateway` (the first equal one).
    pub fn lookup(&self, gateway: &str) -> Option<AuthEntry> {
        let gateway = normalize_gateway(gateway);
        self.entries()
            .ok()?
            .into_iter()
            .find(|e| e.gateway == gateway)
    }

    /// Run `f` on the `auths` list (`null` or missing: a new one in place).
    fn with_auths<R>(&mut self, f: impl FnOnce(&mut Vec<Value>) -> R) -> R {
        if let Some(Value::Sequence(list)) = self.doc.get_mut("auths") {
            return f(list);
        }
        let mut list = Vec::new();
        let out = f(&mut list);
        self.doc.insert("auths".into(), Value::Sequence(list));
        out
    }

    /// Set `gateway`'s entry to `auth: oauth2` with `token`, keeping any
    /// other field of that entry (such as `options`), or append one.
    pub fn set_oauth2(&mut self, gateway: &str, token: &str) {
        let gateway = normalize_gateway(gateway);
        self.with_auths(|auths| {
            let existing = auths.iter_mut().find_map(|v| match v {
                Value::Mapping(m) if m.get("gateway").and_then(Value::as_str) == Some(&gateway) => {
                    Some(m)
                }
                _ => None,
            });
            match existing {
                Some(m) => {
                    m.insert("auth".into(), OAUTH2.into());
                    m.insert("token".into(), token.into());
                }
                None => {
                    let mut m = Mapping::new();
                    m.insert("gateway".into(), gateway.into());
                    m.insert("auth".into(), OAUTH2.into());
                    m.insert("token".into(), token.into());
                    auths.push(Value::Mapping(m));
                }
            }
        });
    }

    /// Remove `gateway`'s entries; how many there were.
    pub fn remove(&mut self, gateway: &str) -> usize {
        let gateway = normalize_gateway(gateway);
        self.with_auths(|auths| {
            let before = auths.len();
            auths.retain(|v| v.get("gateway").and_then(Value::as_str) != Some(&gateway));
            before - auths.len()
        })
    }

    /// Write the file atomically with mode 0600, creating its folder as
    /// faas-cli does (0700). A symlinked config (dotfiles) stays a link:
    /// the file it points to is replaced.
    pub fn save(&self) -> Result<(), ConfigError> {
        let unwritable = |source| ConfigError::Unwritable {
            path: self.path.clone(),
            source,
        };
        let text = serde_yaml::to_string(&Value::Mapping(self.doc.clone()))
            .map_err(|e| unwritable(std::io::Error::other(e)))?;
        let target = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(&self.path).map_err(unwritable)?
            }
            _ => self.path.clone(),
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        create_dir_private(&dir).map_err(unwritable)?;
        let mut tmp = tempfile_in(&dir).map_err(unwritable)?;
        tmp.file.write_all(text.as_bytes()).map_err(unwritable)?;
        tmp.file.sync_all().map_err(unwritable)?;
        std::fs::rename(&tmp.path, &target).map_err(unwritable)?;
        tmp.committed = true;
        Ok(())
    }
}

/// An exclusive lock on `.config.yml.lock` beside the config (beside the
/// link, for a symlinked one), held until the file is dropped. The lock
/// file stays: removing it would let a waiter lock a file nobody else sees.
fn lock(path: &Path, wait: Duration) -> Result<std::fs::File, ConfigError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| FILE.into(), |n| n.to_string_lossy().into_owned());
    let lock_path = dir.join(format!(".{name}.lock"));
    let unwritable = |source| ConfigError::Unwritable {
        path: path.to_owned(),
        source,
    };
    create_dir_private(&dir).map_err(unwritable)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let file = opts.open(&lock_path).map_err(unwritable)?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(LOCK_POLL);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ConfigError::Busy {
                    path: path.to_owned(),
                    lock: lock_path,
                    waited: wait,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(unwritable(e)),
        }
    }
}

fn create_dir_private(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

/// A new file beside the target, removed unless renamed into place.
struct TempFile {
    path: PathBuf,
    file: std::fs::File,
    committed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn tempfile_in(dir: &Path) -> std::io::Result<TempFile> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut last = None;
    for _ in 0..16 {
        let name = format!(".{FILE}.{:016x}.tmp", rand::random::<u64>());
        let path = dir.join(name);
        match opts.open(&path) {
            Ok(file) => {
                return Ok(TempFile {
                    path,
                    file,
                    committed: false,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary file name was free")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(config: Option<&str>, ci: Option<&str>, home: Option<&str>) -> Env {
        Env {
            openfaas_config: config.map(Into::into),
            ci: ci.map(Into::into),
            home: home.map(Into::into),
        }
    }

    #[test]
    fn location_follows_faas_cli() {
        let p = |e| config_path(&e).unwrap();
        assert_eq!(
            p(env(Some("/cfg"), Some("true"), Some("/h"))),
            PathBuf::from("/cfg/config.yml")
        );
        assert_eq!(
            p(env(None, None, Some("/h"))),
            PathBuf::from("/h/.openfaas/config.yml")
        );
        assert_eq!(
            p(env(None, Some("true"), Some("/h"))),
            PathBuf::from("./.openfaas/config.yml")
        );
        assert_eq!(
            p(env(None, Some("1"), Some("/h"))),
            PathBuf::from("./.openfaas/config.yml")
        );
        assert_eq!(
            p(env(Some(""), Some("false"), Some("/h"))),
            PathBuf::from("/h/.openfaas/config.yml")
        );
        assert!(matches!(
            config_path(&env(None, None, None)),
            Err(ConfigError::NoHome)
        ));
    }

    #[test]
    fn gateway_is_normalised_like_faas_cli() {
        assert_eq!(
            normalize_gateway("HTTP://GW.Example:8080//"),
            "http://gw.example:8080"
        );
        assert_eq!(normalize_gateway("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(
            normalize_gateway("https://gw.example/"),
            "https://gw.example"
        );
    }

    #[test]
    fn set_keeps_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(
            &path,
            "auths:\n- gateway: http://other:8080\n  auth: basic\n  token: YWRtaW46cGFzcw==\n  options:\n  - name: x\n    value: y\n- gateway: http://gw:8080\n  auth: oauth2\n  token: old\n  options:\n  - name: keep\n    value: me\n  extra: 1\nfuture_field: {a: [1, 2]}\n",
        )
        .unwrap();
        let mut c = FaasConfig::load(&path).unwrap();
        c.set_oauth2("HTTP://GW:8080/", "new");
        c.set_oauth2("http://third", "t3");
        c.save().unwrap();
        let v: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["future_field"]["a"][1], Value::from(2));
        assert_eq!(v["auths"][0]["auth"], Value::from("basic"));
        assert_eq!(v["auths"][0]["options"][0]["value"], Value::from("y"));
        assert_eq!(v["auths"][1]["token"], Value::from("new"));
        assert_eq!(v["auths"][1]["options"][0]["name"], Value::from("keep"));
        assert_eq!(v["auths"][1]["extra"], Value::from(1));
        assert_eq!(v["auths"][2]["gateway"], Value::from("http://third"));
        let c = FaasConfig::load(&path).unwrap();
        assert_eq!(c.lookup("http://gw:8080").unwrap().token, "new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Nothing left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_new_file_and_its_folder_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".openfaas/config.yml");
        let mut c = FaasConfig::load(&path).unwrap();
        c.set_oauth2("http://gw:8080", "tok");
        c.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "auths:\n- gateway: http://gw:8080\n  auth: oauth2\n  token: tok\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_config_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("dotfiles-config.yml");
        std::fs::write(&real, "auths: []\n").unwrap();
        let link = dir.path().join("config.yml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut c = FaasConfig::load(&link).unwrap();
        c.set_oauth2("http://gw", "t");
        c.save().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(std::fs::read_to_string(&real).unwrap().contains("token: t"));
    }

    #[test]
    fn remove_takes_only_that_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        let mut c = FaasConfig::load(&path).unwrap();
        c.set_oauth2("http://a", "1");
        c.set_oauth2("http://b", "2");
        assert_eq!(c.remove("HTTP://A/"), 1);
        assert_eq!(c.remove("http://a"), 0);
        assert!(c.lookup("http://b").is_some());
        assert!(c.lookup("http://a").is_none());
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".openfaas/config.yml");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for j in 0..5 {
                        let gw = format!("http://gw-{i}-{j}");
                        let changed = FaasConfig::update(&path, |c| {
                            c.set_oauth2(&gw, "t");
                            true
                        })
                        .unwrap();
                        assert!(changed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let c = FaasConfig::load(&path).unwrap();
        for i in 0..8 {
            for j in 0..5 {
                assert!(
                    c.lookup(&format!("http://gw-{i}-{j}")).is_some(),
                    "{i}-{j} lost"
                );
            }
        }
    }

    #[test]
    fn a_held_lock_is_an_error_that_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, "auths: []\n").unwrap();
        let held = lock(&path, Duration::ZERO).unwrap();
        let e = FaasConfig::update_waiting(&path, Duration::from_millis(50), |c| {
            c.set_oauth2("http://a", "1");
            true
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("try again"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "auths: []\n");
        drop(held);
        assert!(
            FaasConfig::update(&path, |c| {
                c.set_oauth2("http://a", "1");
                true
            })
            .unwrap()
        );
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        for text in [
            "auths: [unclosed",
            "- a list",
            "auths: 3",
            "auths: [1]",
            "auths:\n- gateway: [x]\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let e = FaasConfig::load(&path).unwrap_err();
            assert!(matches!(e, ConfigError::Corrupt { .. }), "{text}: {e}");
        }
        // Empty and null documents are an empty config.
        std::fs::write(&path, "").unwrap();
        assert!(
            FaasConfig::load(&path)
                .unwrap()
                .lookup("http://a")
                .is_none()
        );
        std::fs::write(&path, "auths:\n").unwrap();
        assert!(
            FaasConfig::load(&path)
                .unwrap()
                .lookup("http://a")
                .is_none()
        );
        // A folder where the file should be cannot be read.
        let e = FaasConfig::load(dir.path()).unwrap_err();
        assert!(matches!(e, ConfigError::Unreadable { .. }), "{e}");
    }
}

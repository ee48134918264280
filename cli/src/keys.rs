//! `keys new` and `keys jwks`: the signing keys ext-authz reads from its key
//! directory, made and published by ext-authz's own code
//! ([`ext_authz::signing`]): a new key is checked with the loader that will
//! read it, and the JWKS is the [`KeyRing`]'s.
//!
//! A new key's file name is the UTC time it may start signing
//! (`YYYY-MM-DDTHHMMSSZ.pem`), by default the current time plus ext-authz's
//! default `--key-publish-delay`: every replica publishes it as soon as it
//! sees the file, and none signs with it before every verifier has had the
//! time to fetch it (publish before sign).
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ext_authz::config::DEFAULT_KEY_PUBLISH_DELAY;
use ext_authz::signing::{KeyError, KeyRing, SigningKey, load_dir, not_before_of};
use mesh_auth_core::iam::parse_go_duration;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

mod civil;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Write a new P-256 signing key into DIR, named for when it may sign.
    New(NewArgs),
    /// Print the JWKS ext-authz would publish from DIR now.
    Jwks { dir: PathBuf },
}

#[derive(clap::Args)]
pub struct NewArgs {
    pub dir: PathBuf,
    /// When the key may start signing (UTC): `2026-12-02`,
    /// `2026-12-02T1530Z`, `2026-12-02T15:30:00Z`, or `now`. Default: now
    /// plus --publish-delay.
    #[arg(long)]
    pub not_before: Option<String>,
    /// The lead time when --not-before is not given: at least ext-authz's
    /// --key-publish-delay, so running replicas publish the key before any
    /// of them signs with it.
    #[arg(long, default_value = DEFAULT_KEY_PUBLISH_DELAY)]
    pub publish_delay: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("--not-before {value:?}: {problem}")]
    NotBefore { value: String, problem: String },
    #[error("--publish-delay {0:?}: {1}")]
    PublishDelay(String, mesh_auth_core::iam::DurationError),
    #[error("cannot generate a P-256 key")]
    Generate,
    #[error("{0} already exists; keys are never overwritten")]
    Exists(PathBuf),
    #[error("cannot write {file}: {source}")]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot print the JWKS: {0}")]
    Print(#[from] serde_json::Error),
}

impl KeysError {
    /// The one place errors become exit codes: 64 for what the user gave
    /// (as ext-authz exits on a bad key directory), 73 when a file cannot be
    /// created, 70 for our own faults.
    fn exit_code(&self) -> u8 {
        match self {
            KeysError::NotBefore { .. } | KeysError::PublishDelay(..) | KeysError::Key(_) => 64,
            KeysError::Exists(_) | KeysError::Write { .. } => 73,
            KeysError::Generate | KeysError::Print(_) => 70,
        }
    }
}

pub fn run(cmd: KeysCommand) -> ExitCode {
    let result = match cmd {
        KeysCommand::New(args) => new_key(&args, now()).map(|made| {
            println!("{}", made.file.display());
            eprintln!(
                "kid {}; published as soon as ext-authz sees the file, signs from {}",
                made.kid,
                civil::rfc3339(made.not_before)
            );
        }),
        KeysCommand::Jwks { dir } => jwks(&dir, now())
            .and_then(|v| serde_json::to_string_pretty(&v).map_err(KeysError::from))
            .map(|text| println!("{text}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faas-mesh-auth keys: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A key written by [`new_key`].
#[derive(Debug)]
pub struct NewKey {
    pub file: PathBuf,
    pub kid: String,
    pub not_before: u64,
}

/// When a new key may sign, from the flags, at `now`.
pub fn signs_from(args: &NewArgs, now: u64) -> Result<u64, KeysError> {
    match args.not_before.as_deref() {
        Some("now") => Ok(now),
        Some(text) => {
            let bad = |problem: &str| KeysError::NotBefore {
                value: text.to_owned(),
                problem: problem.to_owned(),
            };
            // The same reading as ext-authz gives a key file's name.
            match not_before_of(text) {
                Ok(Some(t)) if text.len() <= "YYYY-MM-DDTHH:MM:SSZ".len() => Ok(t),
                Ok(_) => Err(bad(
                    "use YYYY-MM-DD, YYYY-MM-DDTHHMM[SS]Z, YYYY-MM-DDTHH:MM[:SS]Z or now (UTC)",
                )),
                Err(problem) => Err(bad(problem)),
            }
        }
        None => {
            let delay = parse_go_duration(&args.publish_delay)
                .map_err(|e| KeysError::PublishDelay(args.publish_delay.clone(), e))?;
            Ok(now.saturating_add(delay.as_secs()))
        }
    }
}

/// Generate a key and write it to `args.dir`, never replacing a file.
pub fn new_key(args: &NewArgs, now: u64) -> Result<NewKey, KeysError> {
    let not_before = signs_from(args, now)?;
    let name = format!("{}.pem", civil::file_stamp(not_before));
    // The name must mean to ext-authz what we meant.
    if not_before_of(&name) != Ok(Some(not_before)) {
        return Err(KeysError::NotBefore {
            value: name,
            problem: "not representable as a key file name".into(),
        });
    }
    let file = args.dir.join(&name);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeysError::Generate)?;
    let pem = pem("PRIVATE KEY", pkcs8.as_ref());
    // Checked by the loader that will read it.
    let key = SigningKey::from_pem(&file, &pem)?;
    write_new(&args.dir, &file, pem.as_bytes())?;
    Ok(NewKey {
        file,
        kid: key.kid.clone(),
        not_before,
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Write `bytes` to `file` (in `dir`) with mode 0600, atomically and never
/// over an existing file: a hidden temporary (which ext-authz ignores) is
/// written and synced, then hard-linked to the name, which fails if the
/// name exists.
fn write_new(dir: &Path, file: &Path, bytes: &[u8]) -> Result<(), KeysError> {
    let write_err = |source| KeysError::Write {
        file: file.to_owned(),
        source,
    };
    if file.symlink_metadata().is_ok() {
        return Err(KeysError::Exists(file.to_owned()));
    }
    let tmp = dir.join(format!(".faas-mesh-auth-key-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, file)
    })();
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            // The name is durable only once the directory is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(KeysError::Exists(file.to_owned()))
        }
        Err(e) => Err(write_err(e)),
    }
}

/// The JWKS ext-authz publishes from `dir` at `now`, had it started with
/// the keys there now.
pub fn jwks(dir: &Path, now: u64) -> Result<serde_json::Value, KeysError> {
    let ring = KeyRing::new(load_dir(dir)?).ok_or_else(|| KeyError::NoKeys(dir.to_owned()))?;
    Ok(ring.jwks(now))
}

#[cfg(test)]
mod tests;

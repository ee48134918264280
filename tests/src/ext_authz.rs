//! The real ext-authz binary, started on `127.0.0.1:0` with IAM objects and
//! signing keys written into a temporary directory.
//!
//! `start` returns once ext-authz has printed its `listening http=… grpc=…`
//! line and `/readyz` answers 200, or fails with its log. The IAM and key
//! directories stay writable, so tests change them under a running process
//! ([`ExtAuthz::write_iam`], [`ExtAuthz::add_key`]) and poll for the effect.
//! Dropping the handle kills and reaps the process.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::client::{HttpResponse, get, request};
use crate::paths::repo_root;
use crate::testing::TestKey;
use crate::wait::wait_for;

/// Absolute path of the ext-authz binary (the Makefile sets it).
pub const EXT_AUTHZ_BIN_ENV: &str = "EXT_AUTHZ_BIN";
/// ext-authz's `tracing` filter (its default is `info`).
const EXT_AUTHZ_LOG_ENV: &str = "EXT_AUTHZ_LOG";

const POLL_EVERY: Duration = Duration::from_millis(20);
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// `$EXT_AUTHZ_BIN`, else `<repo>/target/debug/ext-authz`.
pub fn ext_authz_bin() -> Result<PathBuf> {
    let (path, from) = match std::env::var_os(EXT_AUTHZ_BIN_ENV) {
        Some(v) if !v.is_empty() => (PathBuf::from(v), format!("${EXT_AUTHZ_BIN_ENV}")),
        _ => (
            repo_root().join("target/debug/ext-authz"),
            format!("the default (${EXT_AUTHZ_BIN_ENV} is not set)"),
        ),
    };
    if !path.is_file() {
        bail!(
            "{} from {from} does not exist: run `cargo build -p ext-authz` (`make integration` does)",
            path.display()
        );
    }
    Ok(std::path::absolute(&path)?)
}

/// A P-256 signing key as ext-authz reads it: a SEC1 `EC PRIVATE KEY` PEM,
/// the format of `openssl ecparam -name prime256v1 -genkey -noout`. Made in
/// Rust, with the [`TestKey`] holding the same key, so the test knows the
/// `kid` (the RFC 7638 thumbprint) ext-authz will give it.
#[derive(Clone)]
pub struct PemKey {
    pub pem: String,
    pub key: TestKey,
}

impl std::fmt::Debug for PemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemKey")
            .field("kid", &self.key.kid)
            .finish()
    }
}

impl PemKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let key = TestKey::generate();
        Ok(PemKey {
            pem: key.sec1_pem(),
            key,
        })
    }

    pub fn kid(&self) -> &str {
        &self.key.kid
    }
}

/// How to start ext-authz.
#[derive(Debug, Clone)]
pub struct ExtAuthzOpts {
    /// `--issuer`: our gateway URL, the `iss` and `aud` of what we sign.
    pub issuer: String,
    /// IAM files (name, YAML text) written into `--iam-dir`.
    pub iam_yaml: Vec<(String, String)>,
    /// Signing keys (file name, key) written into `--signing-key-dir`. When
    /// empty, one fresh key is written as `0001.pem`.
    pub keys: Vec<(String, PemKey)>,
    /// `--reload-interval`; short by default so reload tests poll briefly.
    pub reload_interval: Duration,
    /// More command-line arguments, after the harness's own.
    pub args: Vec<String>,
    /// Use these directories as they are (nothing written) instead of fresh
    /// ones from `iam_yaml` and `keys`: for `make run`, whose key persists.
    pub dirs: Option<(PathBuf, PathBuf)>,
    /// Fixed listen ports; 0 for any.
    pub http_port: u16,
    pub grpc_port: u16,
    /// The binary to run; `None` means [`ext_authz_bin`] (the debug build).
    pub binary: Option<PathBuf>,
    /// `EXT_AUTHZ_LOG` for the process; `None` passes on the caller's.
    pub log: Option<String>,
}

impl ExtAuthzOpts {
    pub fn new(issuer: impl Into<String>) -> Self {
        ExtAuthzOpts {
            issuer: issuer.into(),
            iam_yaml: Vec::new(),
            keys: Vec::new(),
            reload_interval: Duration::from_millis(100),
            args: Vec::new(),
            dirs: None,
            http_port: 0,
            grpc_port: 0,
            binary: None,
            log: None,
        }
    }

    /// Run this binary (`make bench`: the release build).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Set `EXT_AUTHZ_LOG`, e.g. `info`, whatever the caller's is.
    pub fn log(mut self, filter: &str) -> Self {
        self.log = Some(filter.to_owned());
        self
    }

    /// Read IAM objects and keys from existing directories.
    pub fn dirs(mut self, iam_dir: &Path, key_dir: &Path) -> Self {
        self.dirs = Some((iam_dir.to_owned(), key_dir.to_owned()));
        self
    }

    pub fn listen(mut self, http_port: u16, grpc_port: u16) -> Self {
        self.http_port = http_port;
        self.grpc_port = grpc_port;
        self
    }

    pub fn reload_interval(mut self, every: Duration) -> Self {
        self.reload_interval = every;
        self
    }

    pub fn iam(mut self, name: &str, yaml: impl Into<String>) -> Self {
        self.iam_yaml.push((name.to_owned(), yaml.into()));
        self
    }

    pub fn key(mut self, name: &str, key: PemKey) -> Self {
        self.keys.push((name.to_owned(), key));
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// A running ext-authz. Killed and reaped on drop.
pub struct ExtAuthz {
    proc: LoggedChild,
    issuer: String,
    http: SocketAddr,
    grpc: SocketAddr,
    iam_dir: PathBuf,
    key_dir: PathBuf,
    keys: Mutex<Vec<(String, PemKey)>>,
}

impl ExtAuthz {
    /// Write the directories, start the binary, and wait until it is ready.
    pub async fn start(opts: ExtAuthzOpts) -> Result<Self> {
        let binary = match &opts.binary {
            Some(b) => b.clone(),
            None => ext_authz_bin()?,
        };
        let dir = tempfile::Builder::new().prefix("ext-authz-").tempdir()?;
        let mut keys = opts.keys;
        let (iam_dir, key_dir) = match &opts.dirs {
            Some((iam, key)) => (iam.clone(), key.clone()),
            None => {
                let iam_dir = dir.path().join("iam");
                let key_dir = dir.path().join("keys");
                std::fs::create_dir(&iam_dir)?;
                std::fs::create_dir(&key_dir)?;
                for (name, yaml) in &opts.iam_yaml {
                    write_atomically(&iam_dir, name, yaml.as_bytes())?;
                }
                if keys.is_empty() {
                    keys.push(("0001.pem".to_owned(), PemKey::generate()?));
                }
                for (name, key) in &keys {
                    write_atomically(&key_dir, name, key.pem.as_bytes())?;
                }
                (iam_dir, key_dir)
            }
        };

        let mut cmd = Command::new(&binary);
        cmd.arg("--issuer")
            .arg(&opts.issuer)
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{}", opts.http_port))
            .arg("--grpc-addr")
            .arg(format!("127.0.0.1:{}", opts.grpc_port))
            .arg("--iam-dir")
            .arg(&iam_dir)
            .arg("--signing-key-dir")
            .arg(&key_dir)
            .arg("--reload-interval")
            .arg(format!("{}ms", opts.reload_interval.as_millis()))
            .arg("--shutdown-grace")
            .arg("5s")
            .args(&opts.args)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR");
        if let Some(filter) = &opts.log {
            cmd.env(EXT_AUTHZ_LOG_ENV, filter);
        }
        let mut proc = LoggedChild::spawn("ext-authz", cmd, dir)?;
        let line = proc
            .wait_for_stdout_line("listening ", START_TIMEOUT)
            .await?;
        let (http, grpc) = parse_listening(&line)
            .with_context(|| format!("ext-authz printed {line:?}\n{}", proc.describe()))?;
        let authz = ExtAuthz {
            proc,
            issuer: opts.issuer.trim_end_matches('/').to_owned(),
            http,
            grpc,
            iam_dir,
            key_dir,
            keys: Mutex::new(keys),
        };
        let readyz = format!("{}/readyz", authz.http_url());
        wait_for(START_TIMEOUT, "ext-authz /readyz", || async {
            Ok((get(&readyz, &[]).await?.status == 200).then_some(()))
        })
        .await
        .with_context(|| authz.proc.describe())?;
        Ok(authz)
    }

    /// The issuer it signs as (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `http://127.0.0.1:<port>`
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// `http://127.0.0.1:<port>/.well-known/jwks.json`
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.http_url())
    }

    /// `http://127.0.0.1:<port>/oauth/token`
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.http_url())
    }

    pub fn iam_dir(&self) -> &Path {
        &self.iam_dir
    }

    pub fn key_dir(&self) -> &Path {
        &self.key_dir
    }

    /// The keys written so far (file name, key), in the order written.
    pub fn keys(&self) -> Vec<(String, PemKey)> {
        self.keys.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        self.proc.stderr()
    }

    /// Poll the log until it contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        wait_for(
            timeout,
            &format!("{needle:?} in the ext-authz log"),
            || async { Ok(self.log().contains(needle).then_some(())) },
        )
        .await
        .with_context(|| format!("ext-authz log:\n{}", self.log()))
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// `POST /oauth/token` with `fields` form-encoded in the body, as the
    /// docs' `curl --data-urlencode` sends them.
    pub async fn token_request(&self, fields: &[(&str, &str)]) -> Result<HttpResponse> {
        request(
            "POST",
            &self.token_url(),
            &[("content-type", "application/x-www-form-urlencoded")],
            form_encode(fields),
        )
        .await
    }

    /// `POST /oauth/token?<fields>` with an empty body.
    pub async fn token_request_in_query(&self, fields: &[(&str, &str)]) -> Result<HttpResponse> {
        let url = format!("{}?{}", self.token_url(), form_encode(fields));
        request("POST", &url, &[], Vec::new()).await
    }

    /// The published JWKS document.
    pub async fn jwks(&self) -> Result<Value> {
        let resp = get(&self.jwks_url(), &[]).await?;
        if resp.status != 200 {
            bail!("GET {}: {} {}", self.jwks_url(), resp.status, resp.body);
        }
        resp.json()
    }

    /// The `kid`s of the published JWKS, in its order.
    pub async fn published_kids(&self) -> Result<Vec<String>> {
        Ok(self
            .jwks()
            .await?
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.get("kid")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Write (or replace) an IAM file. The write is atomic (a hidden
    /// temporary file renamed into place), so ext-authz never reads half.
    pub fn write_iam(&self, name: &str, yaml: &str) -> Result<()> {
        write_atomically(&self.iam_dir, name, yaml.as_bytes())
    }

    pub fn remove_iam(&self, name: &str) -> Result<()> {
        std::fs::remove_file(self.iam_dir.join(name))
            .with_context(|| format!("removing IAM file {name}"))
    }

    /// Write a fresh signing key as `name` into the key directory; when its
    /// name sorts last, it becomes the signing key at the next reload.
    pub fn add_key(&self, name: &str) -> Result<PemKey> {
        let key = PemKey::generate()?;
        write_atomically(&self.key_dir, name, key.pem.as_bytes())?;
        if let Ok(mut keys) = self.keys.lock() {
            keys.push((name.to_owned(), key.clone()));
        }
        Ok(key)
    }

    /// Write `key` as `name` into the key directory (atomically), as a
    /// kubelet delivers a Secret's new key.
    pub fn write_key(&self, name: &str, key: &PemKey) -> Result<()> {
        write_atomically(&self.key_dir, name, key.pem.as_bytes())?;
        if let Ok(mut keys) = self.keys.lock() {
            keys.push((name.to_owned(), key.clone()));
        }
        Ok(())
    }

    /// Send SIGTERM and wait for the process to exit.
    pub async fn sigterm_and_wait(&mut self) -> Result<ExitStatus> {
        self.proc.terminate(STOP_TIMEOUT).await
    }
}

fn parse_listening(line: &str) -> Result<(SocketAddr, SocketAddr)> {
    let mut http = None;
    let mut grpc = None;
    for field in line.split_whitespace() {
        if let Some(v) = field.strip_prefix("http=") {
            http = Some(v.parse::<SocketAddr>()?);
        } else if let Some(v) = field.strip_prefix("grpc=") {
            grpc = Some(v.parse::<SocketAddr>()?);
        }
    }
    match (http, grpc) {
        (Some(h), Some(g)) => Ok((h, g)),
        _ => bail!("expected `listening http=ADDR grpc=ADDR`"),
    }
}

/// `application/x-www-form-urlencoded`, as browsers and curl encode forms.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    // url's form serializer, reached through a throwaway URL.
    reqwest::Url::parse("http://form.invalid/")
        .map(|mut url| {
            url.query_pairs_mut().extend_pairs(fields);
            url.query().unwrap_or_default().to_owned()
        })
        .unwrap_or_default()
}

/// Write a file so readers never see half of it: a hidden temporary file
/// renamed into place.
pub(crate) fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("renaming to {name}"))?;
    Ok(())
}

/// A child process whose stdout and stderr go to files in its own
/// temporary directory: nothing blocks on a full pipe, and the output is
/// there to read (and to print when a test fails). Killed and reaped on
/// drop; the directory goes with it.
pub(crate) struct LoggedChild {
    name: &'static str,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// Holds the output files; removed after the process is reaped.
    _dir: TempDir,
}

impl LoggedChild {
    pub(crate) fn spawn(name: &'static str, mut cmd: Command, dir: TempDir) -> Result<Self> {
        let stdout_path = dir.path().join("stdout.log");
        let stderr_path = dir.path().join("stderr.log");
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout_path)?)
            .stderr(File::create(&stderr_path)?);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {:?}", cmd.get_program()))?;
        Ok(LoggedChild {
            name,
            child,
            stdout_path,
            stderr_path,
            _dir: dir,
        })
    }

    pub(crate) fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    pub(crate) fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Poll stdout for a complete line starting with `prefix`; fails at
    /// once if the process exits first, and after `timeout` otherwise.
    pub(crate) async fn wait_for_stdout_line(
        &mut self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<String> {
        let started = Instant::now();
        loop {
            let out = self.stdout();
            // Only whole lines: the writer may be mid-line.
            if let Some(line) = out
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(str::trim_end)
                .find(|l| l.starts_with(prefix))
            {
                return Ok(line.to_owned());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during startup ({status})\n{}",
                    self.name,
                    self.describe()
                );
            }
            if started.elapsed() >= timeout {
                bail!(
                    "{} printed no {prefix:?} line within {timeout:?}\n{}",
                    self.name,
                    self.describe()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// SIGTERM, then poll until the process has exited; SIGKILL after
    /// `timeout` (and an error).
    pub(crate) async fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running kill -TERM")?;
        if !sent.success() && self.child.try_wait()?.is_none() {
            bail!("kill -TERM {pid} failed ({sent})");
        }
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if started.elapsed() >= timeout {
                self.kill();
                bail!(
                    "{} did not exit within {timeout:?} of SIGTERM; killed\n{}",
                    self.name,
                    self.describe()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// SIGKILL and reap. Idempotent.
    pub(crate) fn kill(&mut self) {
        if self.is_running() {
            // An error means it already exited; wait() reaps it either way.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            self.stdout(),
            self.name,
            self.stderr()
        )
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(100).collect();
            eprintln!(
                "--- last {} lines of the {} log (pid {}) ---",
                tail.len(),
                self.name,
                self.child.id()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{form_encode, parse_listening};

    #[test]
    fn form_encoding_is_what_curl_sends() {
        assert_eq!(
            form_encode(&[("a", "x y"), ("b", "openfaas-fn:env"), ("c", "=&+")]),
            "a=x+y&b=openfaas-fn%3Aenv&c=%3D%26%2B"
        );
    }

    #[test]
    fn listening_line() {
        let (h, g) = parse_listening("listening http=127.0.0.1:1234 grpc=127.0.0.1:5678").unwrap();
        assert_eq!((h.port(), g.port()), (1234, 5678));
        assert!(parse_listening("listening http=127.0.0.1:1").is_err());
    }
}

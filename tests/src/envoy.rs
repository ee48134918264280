//! A real Envoy process, started from a bootstrap YAML the test supplies.
//!
//! Admin and listeners bind port 0; the actual ports are read back from the
//! admin API. `start` returns once `/ready` says LIVE and every listener is
//! bound, or fails with Envoy's log. Dropping the handle kills and reaps
//! the process.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::client::request;
use crate::paths::envoy_bin;
use crate::wait::wait_for;

const POLL_EVERY: Duration = Duration::from_millis(20);

/// Appended when a bootstrap has no `admin:` section of its own.
const ADMIN_PORT_0: &str = "
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 0 }
";

/// How to start an Envoy. Defaults: one worker, `--log-level warning` with
/// the wasm component at `info` (so filter logs show), 30 s to get ready.
#[derive(Debug, Clone)]
pub struct EnvoyBuilder {
    bootstrap: String,
    binary: Option<PathBuf>,
    concurrency: u32,
    log_level: String,
    component_log_level: Option<String>,
    ready_timeout: Duration,
    args: Vec<String>,
}

impl EnvoyBuilder {
    /// Worker threads (`--concurrency`). Each worker runs its own wasm VM.
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// `--log-level` (trace, debug, info, warning, error, critical, off).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_owned();
        self
    }

    /// `--component-log-level`, e.g. `"wasm:debug,http:debug"`; `""` for none.
    pub fn component_log_level(mut self, levels: &str) -> Self {
        self.component_log_level = (!levels.is_empty()).then(|| levels.to_owned());
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Another command-line argument, passed after the harness's own.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Use this binary instead of [`envoy_bin`].
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Start Envoy and wait until it is ready.
    pub async fn start(self) -> Result<Envoy> {
        let timeout = self.ready_timeout;
        let mut envoy = self.spawn()?;
        let started = Instant::now();
        loop {
            if let Some(status) = envoy.child.try_wait()? {
                bail!(
                    "Envoy exited during startup ({status})\n{}",
                    envoy.describe()
                );
            }
            match envoy.probe_ready().await {
                Ok(Some(listeners)) => {
                    envoy.listeners = listeners;
                    envoy.startup = started.elapsed();
                    return Ok(envoy);
                }
                Ok(None) => {}
                Err(e) => envoy.last_probe_error = Some(format!("{e:#}")),
            }
            if started.elapsed() >= timeout {
                bail!(
                    "Envoy not ready after {timeout:?} (last probe: {})\n{}",
                    envoy.last_probe_error.as_deref().unwrap_or("not ready"),
                    envoy.describe()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Start Envoy expecting it to refuse the bootstrap and exit within
    /// `timeout`; fails if it becomes ready instead.
    pub async fn run_to_exit(self, timeout: Duration) -> Result<EnvoyExit> {
        let mut envoy = self.spawn()?;
        let started = Instant::now();
        loop {
            if let Some(status) = envoy.child.try_wait()? {
                return Ok(EnvoyExit {
                    status,
                    log: envoy.log(),
                });
            }
            if let Ok(Some(_)) = envoy.probe_ready().await {
                bail!(
                    "Envoy accepted the bootstrap and became ready; expected it to exit\n{}",
                    envoy.describe()
                );
            }
            if started.elapsed() >= timeout {
                bail!(
                    "Envoy neither exited nor became ready within {timeout:?}\n{}",
                    envoy.describe()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    fn spawn(self) -> Result<Envoy> {
        let binary = match self.binary {
            Some(b) => b,
            None => envoy_bin()?,
        };
        let dir = tempfile::Builder::new().prefix("envoy-").tempdir()?;
        let bootstrap_path = dir.path().join("bootstrap.yaml");
        let admin_path = dir.path().join("admin-address.txt");
        let log_path = dir.path().join("envoy.log");

        let mut bootstrap = self.bootstrap;
        if !bootstrap.lines().any(|l| l.starts_with("admin:")) {
            bootstrap.push_str(ADMIN_PORT_0);
        }
        std::fs::write(&bootstrap_path, &bootstrap)?;

        let log = File::create(&log_path)?;
        let mut cmd = Command::new(&binary);
        cmd.arg("-c")
            .arg(&bootstrap_path)
            // Several Envoys run side by side: no shared memory, no base id.
            .arg("--disable-hot-restart")
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .arg("--log-level")
            .arg(&self.log_level)
            .arg("--admin-address-path")
            .arg(&admin_path);
        if let Some(levels) = &self.component_log_level {
            cmd.arg("--component-log-level").arg(levels);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Envoy {
            child,
            binary,
            bootstrap_path,
            admin_path,
            log_path,
            admin: None,
            listeners: BTreeMap::new(),
            startup: Duration::ZERO,
            last_probe_error: None,
            _dir: dir,
        })
    }
}

/// How an Envoy that was expected to fail ended.
#[derive(Debug)]
pub struct EnvoyExit {
    pub status: ExitStatus,
    pub log: String,
}

/// A running Envoy. Killed and reaped on drop; if the test is panicking,
/// the end of its log is printed first.
pub struct Envoy {
    child: Child,
    binary: PathBuf,
    bootstrap_path: PathBuf,
    admin_path: PathBuf,
    log_path: PathBuf,
    admin: Option<SocketAddr>,
    listeners: BTreeMap<String, u16>,
    startup: Duration,
    last_probe_error: Option<String>,
    _dir: TempDir,
}

impl Envoy {
    /// A builder for an Envoy running `bootstrap_yaml`. Listeners should bind
    /// `127.0.0.1` port 0; an `admin:` section is added if it has none.
    pub fn builder(bootstrap_yaml: impl Into<String>) -> EnvoyBuilder {
        EnvoyBuilder {
            bootstrap: bootstrap_yaml.into(),
            binary: None,
            concurrency: 1,
            log_level: "warning".to_owned(),
            component_log_level: Some("wasm:info".to_owned()),
            ready_timeout: Duration::from_secs(30),
            args: Vec::new(),
        }
    }

    /// Start with the defaults of [`Envoy::builder`].
    pub async fn start(bootstrap_yaml: impl Into<String>) -> Result<Self> {
        Self::builder(bootstrap_yaml).start().await
    }

    pub fn admin_addr(&self) -> Result<SocketAddr> {
        self.admin
            .ok_or_else(|| anyhow!("Envoy has not written its admin address"))
    }

    /// `http://127.0.0.1:<admin port>`
    pub fn admin_url(&self) -> Result<String> {
        Ok(format!("http://{}", self.admin_addr()?))
    }

    /// The port listener `name` is bound to.
    pub fn listener_port(&self, name: &str) -> Result<u16> {
        self.listeners.get(name).copied().ok_or_else(|| {
            anyhow!(
                "Envoy has no listener {name:?}; it has {:?}",
                self.listeners.keys().collect::<Vec<_>>()
            )
        })
    }

    /// `http://127.0.0.1:<port of listener name>`
    pub fn listener_url(&self, name: &str) -> Result<String> {
        Ok(format!("http://127.0.0.1:{}", self.listener_port(name)?))
    }

    /// Listener names and ports, as found at startup.
    pub fn listeners(&self) -> &BTreeMap<String, u16> {
        &self.listeners
    }

    /// How long Envoy took from spawn to ready.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// `GET` an admin path such as `/config_dump` or `/clusters`; fails
    /// unless the answer is 2xx.
    pub async fn admin_get(&self, path: &str) -> Result<String> {
        self.admin("GET", path).await
    }

    /// `POST` an admin path such as `/reset_counters` or `/logging?wasm=debug`.
    pub async fn admin_post(&self, path: &str) -> Result<String> {
        self.admin("POST", path).await
    }

    async fn admin(&self, method: &str, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.admin_url()?);
        let resp = request(method, &url, &[], Vec::new()).await?;
        if !(200..300).contains(&resp.status) {
            bail!("admin {method} {path}: {} {}", resp.status, resp.body);
        }
        Ok(resp.body)
    }

    /// Every counter and gauge, by full name (histograms are left out).
    /// Metrics a wasm plugin defines appear with a `wasmcustom.` prefix,
    /// e.g. `wasmcustom.faas_mesh_auth.allowed`.
    pub async fn stats(&self) -> Result<BTreeMap<String, u64>> {
        let body = self.admin_get("/stats?format=json").await?;
        parse_stats(&body)
    }

    /// One counter or gauge; `None` if Envoy has no stat of that name.
    pub async fn stat(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.stats().await?.get(name).copied())
    }

    /// Stat `name` once it has stopped changing for `quiet` (wasm filters
    /// may hand their counts to Envoy on a timer, after the requests).
    pub async fn settled_stat(&self, name: &str, quiet: Duration) -> Result<Option<u64>> {
        let mut last = self.stat(name).await?;
        let mut since = std::time::Instant::now();
        let deadline = since + Duration::from_secs(30);
        loop {
            if since.elapsed() >= quiet {
                return Ok(last);
            }
            if std::time::Instant::now() >= deadline {
                bail!("Envoy stat {name} kept changing for 30 s");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            let now = self.stat(name).await?;
            if now != last {
                last = now;
                since = std::time::Instant::now();
            }
        }
    }

    /// Poll stat `name` until `ok(value)`, and return that value. A stat
    /// that does not exist yet counts as 0.
    pub async fn wait_for_stat(
        &self,
        name: &str,
        timeout: Duration,
        ok: impl Fn(u64) -> bool,
    ) -> Result<u64> {
        wait_for(timeout, &format!("Envoy stat {name}"), || async {
            let v = self.stat(name).await?.unwrap_or(0);
            Ok(ok(v).then_some(v))
        })
        .await
    }

    /// Envoy's output so far (its log goes to stderr, captured to a file).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Poll the log until it contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        wait_for(timeout, &format!("{needle:?} in the Envoy log"), || async {
            Ok(self.log().contains(needle).then_some(()))
        })
        .await
        .with_context(|| format!("Envoy log:\n{}", self.log()))
    }

    pub fn bootstrap_path(&self) -> &Path {
        &self.bootstrap_path
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill and reap Envoy now; returns its log. Idempotent.
    pub fn stop(&mut self) -> String {
        if self.is_running() {
            // Errors mean it already exited; wait() then reaps it.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.log()
    }

    /// Ready means: admin address written, `/ready` answers 200, and every
    /// listener reports a bound port. Returns the listener ports.
    async fn probe_ready(&mut self) -> Result<Option<BTreeMap<String, u16>>> {
        if self.admin.is_none() {
            let text = std::fs::read_to_string(&self.admin_path).unwrap_or_default();
            match text.trim().parse::<SocketAddr>() {
                Ok(addr) => self.admin = Some(addr),
                Err(_) => return Ok(None),
            }
        }
        let url = self.admin_url()?;
        let ready = request("GET", &format!("{url}/ready"), &[], Vec::new()).await?;
        if ready.status != 200 {
            bail!("/ready: {} {}", ready.status, ready.body.trim());
        }
        let body = self.admin_get("/listeners?format=json").await?;
        parse_listeners(&body)
    }

    fn describe(&self) -> String {
        format!(
            "binary: {}\nbootstrap: {}\n--- bootstrap ---\n{}\n--- envoy log ---\n{}",
            self.binary.display(),
            self.bootstrap_path.display(),
            std::fs::read_to_string(&self.bootstrap_path).unwrap_or_default(),
            self.log()
        )
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let log = self.stop();
        if std::thread::panicking() {
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            eprintln!(
                "--- last {} lines of the Envoy log (pid {}) ---",
                tail.len(),
                self.child.id()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// `/stats?format=json`: `{"stats":[{"name":..,"value":..}, {"histograms":..}]}`.
pub(crate) fn parse_stats(body: &str) -> Result<BTreeMap<String, u64>> {
    let v: Value = serde_json::from_str(body).context("admin /stats is not JSON")?;
    let entries = v
        .get("stats")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("admin /stats has no \"stats\" array"))?;
    Ok(entries
        .iter()
        .filter_map(|e| {
            let name = e.get("name")?.as_str()?;
            let value = e.get("value")?.as_u64()?;
            Some((name.to_owned(), value))
        })
        .collect())
}

/// `/listeners?format=json`: names and bound ports, or `None` while a
/// listener still reports port 0.
fn parse_listeners(body: &str) -> Result<Option<BTreeMap<String, u16>>> {
    let v: Value = serde_json::from_str(body).context("admin /listeners is not JSON")?;
    let mut out = BTreeMap::new();
    let statuses = v
        .get("listener_statuses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for l in statuses {
        let Some(name) = l.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(port) = l
            .pointer("/local_address/socket_address/port_value")
            .and_then(Value::as_u64)
        else {
            // Not a socket listener (pipe, internal): nothing to discover.
            continue;
        };
        match u16::try_from(port) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(p) => {
                out.insert(name.to_owned(), p);
            }
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests;

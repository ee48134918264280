//! ext-authz as the bench runs it: the release binary on `127.0.0.1:0`,
//! IAM objects and a fresh signing key in a temporary directory, logging at
//! its default level, started like the harness's `ExtAuthz`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{HttpResponse, PemKey, form_encode, get, request, wait_for};

const START_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

pub struct ExtAuthz {
    child: Child,
    http: SocketAddr,
    grpc: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ExtAuthz {
    /// Start `binary` with these IAM objects and wait until `/readyz` is 200.
    pub async fn start(binary: &Path, issuer: &str, iam_yaml: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("bench-ext-authz-")
            .tempdir()?;
        let (iam, keys) = (dir.path().join("iam"), dir.path().join("keys"));
        std::fs::create_dir(&iam)?;
        std::fs::create_dir(&keys)?;
        std::fs::write(iam.join("bench.yaml"), iam_yaml)?;
        std::fs::write(keys.join("0001.pem"), PemKey::generate()?.pem)?;
        let (out, log) = (dir.path().join("stdout.log"), dir.path().join("stderr.log"));
        let child = Command::new(binary)
            .args(["--issuer", issuer])
            .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .arg("--iam-dir")
            .arg(&iam)
            .arg("--signing-key-dir")
            .arg(&keys)
            .args(["--reload-interval", "5s"])
            .env_remove("EXT_AUTHZ_LOG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut me = ExtAuthz {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            _dir: dir,
        };
        let started = Instant::now();
        let line = loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            // Only a whole line: the writer may be mid-line.
            if let Some(l) = text
                .split_inclusive('\n')
                .find(|l| l.starts_with("listening ") && l.ends_with('\n'))
            {
                break l.trim_end().to_owned();
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("ext-authz exited during startup ({status}):\n{}", me.log());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "ext-authz printed no `listening` line within {START_TIMEOUT:?}:\n{}",
                    me.log()
                );
            }
            tokio::time::sleep(POLL).await;
        };
        for field in line.split_whitespace() {
            if let Some(v) = field.strip_prefix("http=") {
                me.http = v.parse()?;
            } else if let Some(v) = field.strip_prefix("grpc=") {
                me.grpc = v.parse()?;
            }
        }
        let readyz = format!("{}/readyz", me.http_url());
        wait_for(START_TIMEOUT, "ext-authz /readyz", || async {
            Ok((get(&readyz, &[]).await?.status == 200).then_some(()))
        })
        .await
        .with_context(|| me.log())?;
        Ok(me)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.http_url())
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `POST /oauth/token` with these form fields.
    pub async fn token_request(&self, fields: &[(&str, &str)]) -> Result<HttpResponse> {
        request(
            "POST",
            &self.token_url(),
            &[("content-type", "application/x-www-form-urlencoded")],
            form_encode(fields),
        )
        .await
    }
}

impl Drop for ExtAuthz {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // An error means it already exited; wait() reaps it either way.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

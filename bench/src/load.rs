//! One measurement: wrk, pinned to its core, against a URL for a fixed
//! time, with the CPU time of the processes under test read from `/proc`
//! before and after. wrk's own numbers come from `bench/wrk/bench.lua`'s
//! `done()` as one JSON line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

use crate::procfs;

/// What each request carries.
#[derive(Debug, Clone)]
pub enum Tokens {
    None,
    /// The same token every time.
    Fixed(String),
    /// The next line of this file, every request.
    Pool(PathBuf),
}

/// Where the token goes.
#[derive(Debug, Clone)]
pub enum Place {
    /// `GET`, `authorization: Bearer <token>`.
    Header,
    /// `POST` a form: this prefix, then the token.
    FormBody(String),
}

#[derive(Debug, Clone)]
pub struct Load {
    pub url: String,
    pub connections: u32,
    pub duration: Duration,
    pub tokens: Tokens,
    pub place: Place,
}

impl Load {
    pub fn get(url: impl Into<String>, connections: u32, duration: Duration) -> Self {
        Load {
            url: url.into(),
            connections,
            duration,
            tokens: Tokens::None,
            place: Place::Header,
        }
    }

    pub fn tokens(mut self, tokens: Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    pub fn form(mut self, prefix: impl Into<String>) -> Self {
        self.place = Place::FormBody(prefix.into());
        self
    }
}

/// One run of wrk, and the CPU the watched processes spent meanwhile.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub requests: u64,
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Answers that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// connect, read, write errors and timeouts.
    pub socket_errors: u64,
    /// How often the token file was used up and started over.
    pub wraps: u64,
    /// CPU seconds of each watched process, in the order given.
    pub cpu_seconds: Vec<f64>,
    /// CPU seconds of wrk itself.
    pub load_cpu_seconds: f64,
    /// CPU seconds of everything else on the machine (other builds, other
    /// tenants: the noise), over the same interval.
    pub other_cpu_seconds: f64,
}

impl Sample {
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// CPU µs per request of watched process `i`.
    pub fn cpu_us_per_request(&self, i: usize) -> f64 {
        let cpu = self.cpu_seconds.get(i).copied().unwrap_or(0.0);
        if self.requests > 0 {
            cpu * 1e6 / self.requests as f64
        } else {
            f64::NAN
        }
    }

    /// How busy watched process `i` kept its core(s), in percent of one.
    pub fn busy_percent(&self, i: usize) -> f64 {
        let cpu = self.cpu_seconds.get(i).copied().unwrap_or(0.0);
        if self.seconds > 0.0 {
            cpu * 100.0 / self.seconds
        } else {
            0.0
        }
    }
}

/// Runs wrk. Knows the wrk binary, its script, and the core it runs on.
#[derive(Debug, Clone)]
pub struct Wrk {
    pub binary: PathBuf,
    pub lua: PathBuf,
    pub cpu: usize,
    pub ticks_per_second: f64,
}

impl Wrk {
    /// Check that wrk and taskset are there and that wrk has Lua.
    pub fn check(binary: &Path, lua: &Path, cpu: usize) -> Result<Self> {
        for tool in ["taskset", "getconf"] {
            which(tool).ok_or_else(|| {
                anyhow!(
                    "`{tool}` is not installed (Debian: util-linux / libc-bin); make bench needs it"
                )
            })?;
        }
        let found = if binary.components().count() == 1 {
            which(&binary.to_string_lossy())
        } else {
            binary.is_file().then(|| binary.to_owned())
        };
        let binary = found.ok_or_else(|| {
            anyhow!(
                "wrk is not installed ({} not found): `make bench` installs it with apt-get (Debian package wrk); or set WRK=/path/to/wrk",
                binary.display()
            )
        })?;
        Ok(Wrk {
            binary,
            lua: lua.to_owned(),
            cpu,
            ticks_per_second: procfs::clock_ticks_per_second()?,
        })
    }

    /// `wrk -v`'s first line.
    pub fn version(&self) -> String {
        std::process::Command::new(&self.binary)
            .arg("-v")
            .output()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines()
                    .next()
                    .unwrap_or("unknown")
                    .split(" Copyright")
                    .next()
                    .unwrap_or("unknown")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_else(|_| "unknown".to_owned())
    }

    /// Put `load` on its URL and measure; `watch` are the pids whose CPU
    /// time is read around the run (Envoy, ext-authz).
    pub async fn run(&self, load: &Load, watch: &[u32]) -> Result<Sample> {
        let secs = load.duration.as_secs_f64();
        let mut cmd = tokio::process::Command::new("taskset");
        cmd.arg("-c")
            .arg(self.cpu.to_string())
            .arg(&self.binary)
            .arg("-t1")
            .arg(format!("-c{}", load.connections))
            .arg(format!("-d{}s", secs.ceil().max(1.0)))
            .arg("--timeout")
            .arg("5s")
            .arg("--latency")
            .arg("-s")
            .arg(&self.lua)
            .arg(&load.url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for var in [
            "BENCH_TOKEN",
            "BENCH_TOKENS",
            "BENCH_PLACE",
            "BENCH_BODY_PREFIX",
            "BENCH_METHOD",
        ] {
            cmd.env_remove(var);
        }
        match &load.tokens {
            Tokens::None => {}
            Tokens::Fixed(t) => {
                cmd.env("BENCH_TOKEN", t);
            }
            Tokens::Pool(p) => {
                cmd.env("BENCH_TOKENS", p);
            }
        }
        if let Place::FormBody(prefix) = &load.place {
            cmd.env("BENCH_PLACE", "body")
                .env("BENCH_BODY_PREFIX", prefix)
                .env("BENCH_METHOD", "POST");
        }

        let before_watch = watch
            .iter()
            .map(|p| procfs::process_ticks(*p))
            .collect::<Result<Vec<_>>>()?;
        let before_children = procfs::reaped_children_ticks()?;
        let before_own = procfs::own_ticks()?;
        let before_machine = procfs::machine_busy_ticks()?;

        let out = cmd.output().await.context("running wrk")?;

        let after_machine = procfs::machine_busy_ticks()?;
        let after_own = procfs::own_ticks()?;
        let after_children = procfs::reaped_children_ticks()?;
        let after_watch = watch
            .iter()
            .map(|p| procfs::process_ticks(*p))
            .collect::<Result<Vec<_>>>()
            .context("a process under test died during the run")?;

        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!(
                "wrk {} failed ({}):\n{stdout}{stderr}",
                load.url,
                out.status
            );
        }
        let json = stdout
            .lines()
            .find_map(|l| l.strip_prefix("BENCH_JSON "))
            .ok_or_else(|| anyhow!("wrk printed no BENCH_JSON line:\n{stdout}{stderr}"))?;
        let v: Value = serde_json::from_str(json).with_context(|| format!("wrk's {json}"))?;
        let n = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let hz = self.ticks_per_second;
        let cpu_seconds: Vec<f64> = before_watch
            .iter()
            .zip(&after_watch)
            .map(|(b, a)| a.saturating_sub(*b) as f64 / hz)
            .collect();
        let ours: u64 = before_watch
            .iter()
            .zip(&after_watch)
            .map(|(b, a)| a.saturating_sub(*b))
            .sum::<u64>()
            + after_children.saturating_sub(before_children)
            + after_own.saturating_sub(before_own);
        let machine = after_machine.saturating_sub(before_machine);
        Ok(Sample {
            requests: n("requests") as u64,
            seconds: n("duration_us") / 1e6,
            p50_us: n("p50_us"),
            p99_us: n("p99_us"),
            non_2xx: n("status") as u64,
            socket_errors: (n("connect") + n("read") + n("write") + n("timeout")) as u64,
            wraps: n("wraps") as u64,
            cpu_seconds,
            load_cpu_seconds: after_children.saturating_sub(before_children) as f64 / hz,
            other_cpu_seconds: machine.saturating_sub(ours) as f64 / hz,
        })
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    })
}

//! The faults the soak injects while the load runs, each with the checks
//! that say whether the system rode it out:
//!
//! * a signing-key rotation that reaches the two ext-authz replicas at
//!   different times (the file's name says when it may sign);
//! * an IAM reload: a valid change, then a broken file that must be
//!   rejected while the last good configuration keeps serving, then the fix;
//! * an IdP outage (refused, then hung) and its recovery, with a key the
//!   IdP rotated while ext-authz could not see it;
//! * an ext-authz replica stopped (SIGTERM) and started again.
//!
//! A check that fails is an event marked failed: it fails the soak.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::task::JoinSet;

use super::load::{Expect, ID_TOKEN, Load, describe, judge, kid_of};
use super::sample::{Procs, ext_authz_metrics, metric_sum};
use super::tally::{Kind, Outcome, Tally, clock};
use crate::ext_authz::PemKey;
use crate::fault_proxy::FaultMode;
use crate::stack::{Stack, replica_name};

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A new signing key, to replica a first and `stagger` later to the
    /// others, named to sign `lead` after it reaches a.
    KeyRotation { lead: Duration, stagger: Duration },
    /// A valid IAM change, a broken file kept for `broken_for`, the fix.
    IamReload { broken_for: Duration },
    /// ext-authz's path to the IdP refuses for half of `length` and hangs
    /// for the other half.
    IdpOutage { length: Duration },
    /// SIGTERM replica `replica`, leave it down for `down_for`, start it
    /// again.
    RestartExtAuthz { replica: usize, down_for: Duration },
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::KeyRotation { lead, stagger } => format!(
                "signing-key rotation: to ext-authz-a, {}s later to ext-authz-b, signing {}s after it reaches a",
                stagger.as_secs(),
                lead.as_secs()
            ),
            Fault::IamReload { broken_for } => format!(
                "IAM reload: a valid change, then a broken file for {}s, then the fix",
                broken_for.as_secs()
            ),
            Fault::IdpOutage { length } => format!(
                "IdP outage of {}s (refused, then hung) and recovery; the IdP rotates its key meanwhile",
                length.as_secs()
            ),
            Fault::RestartExtAuthz { replica, down_for } => format!(
                "{} restart (SIGTERM, down for {}s, started again)",
                replica_name(*replica),
                down_for.as_secs()
            ),
        }
    }
}

/// What happened when, for the report.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Duration,
    pub text: String,
    /// A check that did not hold.
    pub failed: bool,
}

#[derive(Debug, Default)]
pub struct Events(Mutex<Vec<Event>>);

impl Events {
    pub fn note(&self, tally: &Tally, text: impl Into<String>) {
        self.push(tally, text.into(), false);
    }

    pub fn fail(&self, tally: &Tally, text: impl Into<String>) {
        self.push(tally, text.into(), true);
    }

    fn push(&self, tally: &Tally, text: String, failed: bool) {
        let at = tally.elapsed();
        eprintln!(
            "soak: {} {}{text}",
            clock(at),
            if failed { "CHECK FAILED: " } else { "" }
        );
        if let Ok(mut v) = self.0.lock() {
            v.push(Event { at, text, failed });
        }
    }

    pub fn all(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// What a fault works with.
pub struct Ctx<'a> {
    pub stack: &'a mut Stack,
    pub load: &'a Load,
    pub events: &'a Events,
    pub procs: &'a Procs,
    /// ext-authz's `--idp-timeout`: the first fetch into a hung IdP may take it.
    pub idp_timeout: Duration,
    /// The filters' `jwks.refresh_seconds`.
    pub jwks_refresh: Duration,
    /// Where old logs go when a process restarts.
    pub log_dir: std::path::PathBuf,
}

impl Ctx<'_> {
    fn tally(&self) -> &Tally {
        &self.load.tally
    }

    fn note(&self, text: impl Into<String>) {
        self.events.note(self.tally(), text);
    }

    fn fail(&self, text: impl Into<String>) {
        self.events.fail(self.tally(), text);
    }

    /// Run one fault. An error means the harness could not inject it.
    pub async fn inject(&mut self, fault: Fault) -> Result<()> {
        self.note(format!("fault: {}", fault.describe()));
        match fault {
            Fault::KeyRotation { lead, stagger } => self.rotate_signing_key(lead, stagger).await,
            Fault::IamReload { broken_for } => self.iam_reload(broken_for).await,
            Fault::IdpOutage { length } => self.idp_outage(length).await,
            Fault::RestartExtAuthz { replica, down_for } => self.restart(replica, down_for).await,
        }
    }

    async fn rotate_signing_key(&mut self, lead: Duration, stagger: Duration) -> Result<()> {
        let key = PemKey::generate()?;
        let kid = key.kid().to_owned();
        let not_before_unix = unix_now() + lead.as_secs();
        let name = format!("{}.pem", utc_stamp(not_before_unix));
        let not_before = self.tally().elapsed() + lead;
        let urls: Vec<(String, String)> = self
            .stack
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| (replica_name(i), r.http_url()))
            .collect();

        // Watch every replica: when it publishes the key, when it signs with it.
        let deadline =
            lead + stagger * u32::try_from(urls.len()).unwrap_or(1) + Duration::from_secs(20);
        let mut watchers = JoinSet::new();
        for (name_i, url) in urls.clone() {
            let (client, kid, tally) = (
                self.load.client.clone(),
                kid.clone(),
                self.load.tally.clone(),
            );
            let idp = self.load.tokens.idp();
            watchers.spawn(async move {
                watch_replica(&client, &tally, &url, &kid, &idp, deadline)
                    .await
                    .map(|seen| (name_i, seen))
            });
        }

        for (i, replica) in self.stack.replicas.iter().enumerate() {
            if i > 0 {
                // The kubelet delivers a Secret to each pod at its own time.
                tokio::time::sleep(stagger).await;
            }
            replica.write_key(&name, &key)?;
            self.note(format!(
                "key {name} (kid {kid}) written to {}'s key folder",
                replica_name(i)
            ));
        }

        let mut last_published = Duration::ZERO;
        let mut first_signed: Option<(Duration, String)> = None;
        while let Some(joined) = watchers.join_next().await {
            let (replica, seen) = joined.map_err(|e| anyhow!("rotation watcher: {e}"))??;
            match seen.published {
                Some(t) => {
                    last_published = last_published.max(t);
                    self.note(format!("{replica} publishes kid {kid} from {}", clock(t)));
                }
                None => self.fail(format!("{replica} never published kid {kid}")),
            }
            match seen.signed {
                Some(t) => {
                    self.note(format!("{replica} signs with kid {kid} from {}", clock(t)));
                    if first_signed.as_ref().is_none_or(|(f, _)| t < *f) {
                        first_signed = Some((t, replica.clone()));
                    }
                    // One poll of slack: the name's time is whole seconds.
                    if t + Duration::from_secs(1) < not_before {
                        self.fail(format!(
                            "{replica} signed with {name} at {}, before the time in its name ({}): a key must not sign before every replica and filter has it",
                            clock(t),
                            clock(not_before)
                        ));
                    }
                }
                None => self.fail(format!(
                    "{replica} never signed with {name} (by {})",
                    clock(self.tally().elapsed())
                )),
            }
        }
        if let Some((t, replica)) = first_signed
            && t < last_published + self.jwks_refresh
        {
            self.fail(format!(
                "{replica} signed with kid {kid} at {}, less than the filters' refresh ({:?}) after the last replica published it ({}): a filter could meet it before it has it",
                clock(t),
                self.jwks_refresh,
                clock(last_published)
            ));
        }
        Ok(())
    }

    async fn iam_reload(&mut self, broken_for: Duration) -> Result<()> {
        let dir = self.stack.iam_dir().to_owned();
        let before = self.reload_counts().await?;
        // A different change each time: the same file again is no change.
        let extra = EXTRA_IAM.replace("soak-nobody", &format!("soak-nobody-{}", unix_now()));
        crate::ext_authz::write_atomically(&dir, "soak-extra.yaml", extra.as_bytes())?;
        self.note("IAM: soak-extra.yaml written (a valid Policy and Role for another subject)");
        self.wait_reloads(&before, "applied", "the valid change")
            .await?;

        let before = self.reload_counts().await?;
        crate::ext_authz::write_atomically(&dir, "soak-broken.yaml", BROKEN_IAM.as_bytes())?;
        self.note("IAM: soak-broken.yaml written (not valid YAML)");
        self.wait_reloads(&before, "rejected", "the broken file")
            .await?;
        // The load keeps running on the last good configuration meanwhile.
        tokio::time::sleep(broken_for).await;

        let before = self.reload_counts().await?;
        std::fs::remove_file(dir.join("soak-broken.yaml")).context("removing soak-broken.yaml")?;
        self.note("IAM: soak-broken.yaml removed");
        self.wait_reloads(&before, "applied", "the fix").await
    }

    /// `(applied, rejected)` IAM reloads per replica.
    async fn reload_counts(&self) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for r in &self.stack.replicas {
            let m = ext_authz_metrics(&self.load.client, &r.http_url()).await?;
            let count = |result: &str| {
                metric_sum(
                    &m,
                    "faas_mesh_auth_config_reloads_total",
                    &["what=\"iam\"", &format!("result=\"{result}\"")],
                )
            };
            out.push((count("applied"), count("rejected")));
        }
        Ok(out)
    }

    async fn wait_reloads(&self, before: &[(u64, u64)], result: &str, what: &str) -> Result<()> {
        let started = Instant::now();
        let seen = crate::wait::wait_for(Duration::from_secs(15), what, || async {
            let now = self.reload_counts().await?;
            let done = now.iter().zip(before).all(|(n, b)| match result {
                "applied" => n.0 > b.0,
                _ => n.1 > b.1,
            });
            Ok(done.then_some(()))
        })
        .await;
        match seen {
            Ok(()) => self.note(format!(
                "IAM: {what} {result} by every replica within {:.1} s",
                started.elapsed().as_secs_f64()
            )),
            Err(e) => self.fail(format!(
                "IAM: {what} not {result} by every replica (faas_mesh_auth_config_reloads_total{{what=\"iam\",result=\"{result}\"}}): {e:#}"
            )),
        }
        Ok(())
    }

    async fn idp_outage(&mut self, length: Duration) -> Result<()> {
        let started = Instant::now();
        let half = length / 2;
        {
            let proxy = self
                .stack
                .idp_proxy
                .as_ref()
                .ok_or_else(|| anyhow!("the stack has no IdP proxy"))?;
            self.load.tokens.hold_idp.store(true, Ordering::Relaxed);
            proxy.set_mode(FaultMode::Refuse);
        }
        self.note("IdP outage: ext-authz's path to the IdP refuses connections; clients keep the IdP tokens they hold");

        // The IdP rotates its key while ext-authz cannot see it, and a
        // client gets a token under the new kid.
        tokio::time::sleep(length / 8).await;
        let new_kid = self.stack.oidc.rotate_key().await?;
        let token = self.load.idp_token().await?;
        if kid_of(&token).as_deref() != Some(new_kid.as_str()) {
            bail!(
                "the IdP rotated to {new_kid} but issued a token under {:?}",
                kid_of(&token)
            );
        }
        self.note(format!(
            "IdP rotated its key to kid {new_kid}; a client holds a token under it"
        ));

        self.probe_outage(&token, started + half, "refusing").await;
        if let Some(p) = &self.stack.idp_proxy {
            p.set_mode(FaultMode::Blackhole);
        }
        self.note("IdP outage: ext-authz's path to the IdP now hangs (connections accepted, nothing answered)");
        self.probe_outage(&token, started + length, "hanging").await;

        if let Some(p) = &self.stack.idp_proxy {
            p.set_mode(FaultMode::Pass);
        }
        let recovered = Instant::now();
        self.note("IdP reachable again");
        // Every replica must take the new kid within the limit, each on its
        // own (each fetches the IdP's keys itself). Clients keep the IdP
        // token they hold until then: one under the new kid could meet a
        // replica whose retry has not come round yet.
        let limit = Duration::from_secs(10);
        let urls: Vec<(String, String)> = self
            .stack
            .replicas
            .iter()
            .enumerate()
            .map(|(i, r)| (crate::stack::replica_name(i), r.token_url()))
            .collect();
        let mut pending: Vec<(String, String)> = urls;
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (name, url) in pending {
                let (r, latency) = self
                    .load
                    .exchange_at(&url, &token, ID_TOKEN, Some("function"), None)
                    .await;
                let since = recovered.elapsed();
                let what = "IdP(new kid) → function at each replica, after the IdP recovered";
                let outcome = judge(Expect::Issued, &r, latency, self.load.slow);
                if outcome == Outcome::Ok {
                    self.tally().record(Kind::Exchange, what, outcome, latency);
                    self.note(format!(
                        "{name} accepts a token under the IdP's new kid {:.1} s after the IdP recovered",
                        since.as_secs_f64()
                    ));
                    continue;
                }
                let unavailable = r
                    .as_ref()
                    .ok()
                    .and_then(super::load::Resp::oauth_error)
                    .as_deref()
                    == Some("temporarily_unavailable");
                if since <= limit && unavailable {
                    self.tally().record(
                        Kind::Exchange,
                        what,
                        Outcome::Expected(
                            "503 temporarily_unavailable: within 10 s of the IdP's recovery".into(),
                        ),
                        latency,
                    );
                } else {
                    self.tally().record(Kind::Exchange, what, outcome, latency);
                }
                if since <= limit + Duration::from_secs(20) {
                    still.push((name, url));
                }
            }
            pending = still;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if recovered.elapsed() > limit + Duration::from_secs(1) {
            self.fail(format!(
                "a token under the IdP's new kid was not accepted by every replica within {limit:?} of the IdP's recovery"
            ));
        }
        self.load.tokens.hold_idp.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Until `until`, once a second: exchange a token under a kid ext-authz
    /// cannot fetch. It must fail, with 503 `temporarily_unavailable`, and
    /// fast: only the first attempt into a hung IdP may wait for the fetch
    /// to time out.
    async fn probe_outage(&self, token: &str, until: Instant, phase: &str) {
        let mut first = true;
        let what = format!("IdP(new kid) → function, IdP {phase}");
        while Instant::now() < until {
            let (r, latency) = self
                .load
                .exchange_at(
                    &self.load.token_url(),
                    token,
                    ID_TOKEN,
                    Some("function"),
                    None,
                )
                .await;
            let outcome = match &r {
                Ok(resp)
                    if resp.status == 503
                        && resp.oauth_error().as_deref() == Some("temporarily_unavailable") =>
                {
                    if latency < FAST {
                        Outcome::Expected(format!(
                            "503 temporarily_unavailable, IdP {phase}: a kid it cannot fetch (under {FAST:?})"
                        ))
                    } else if first && latency <= self.idp_timeout + Duration::from_secs(1) {
                        Outcome::Expected(format!(
                            "503 temporarily_unavailable, IdP {phase}: first attempt, waited for the fetch to time out"
                        ))
                    } else {
                        Outcome::Unexpected(format!(
                            "503 temporarily_unavailable after {} s, IdP {phase}: a down IdP must fail exchanges fast",
                            latency.as_secs()
                        ))
                    }
                }
                Ok(resp) => Outcome::Unexpected(format!(
                    "{} while the IdP is {phase} and the kid is new",
                    describe(resp)
                )),
                Err(_) => judge(Expect::Issued, &r, latency, self.load.slow),
            };
            self.tally().record(Kind::Exchange, &what, outcome, latency);
            first = false;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn restart(&mut self, i: usize, down_for: Duration) -> Result<()> {
        let name = replica_name(i);
        let old_pid = self
            .stack
            .replicas
            .get(i)
            .ok_or_else(|| anyhow!("no replica {i}"))?
            .pid();
        self.note(format!("SIGTERM {name} (pid {old_pid})"));
        let started = Instant::now();
        let (status, log) = self.stack.restart_ext_authz(i, down_for).await?;
        let run = self
            .procs
            .current()
            .iter()
            .find(|p| p.name == name)
            .map_or(1, |p| p.run);
        let saved = self.log_dir.join(format!("{name}.run{run}.log"));
        std::fs::create_dir_all(&self.log_dir)?;
        std::fs::write(&saved, log)?;
        let new_pid = self.stack.replicas.get(i).map_or(0, crate::ExtAuthz::pid);
        self.procs.restarted(&name, new_pid, self.tally().elapsed());
        let text = format!(
            "{name} exited ({status}; its log: {}) and, started again, serves as pid {new_pid}, {:.1} s after the SIGTERM",
            saved.display(),
            started.elapsed().as_secs_f64()
        );
        if status.success() {
            self.note(text);
        } else {
            self.fail(format!("{text}: a SIGTERM must end in a clean exit"));
        }
        Ok(())
    }
}

/// An expected failure is fast below this.
const FAST: Duration = Duration::from_millis(500);

/// When a replica published and first signed with a key.
#[derive(Debug, Default)]
struct Seen {
    published: Option<Duration>,
    signed: Option<Duration>,
}

/// Poll one replica (directly, not through Envoy) every 500 ms until it
/// signs with `kid` or `deadline` (since the soak's start) passes.
async fn watch_replica(
    client: &reqwest::Client,
    tally: &Tally,
    url: &str,
    kid: &str,
    idp_token: &str,
    deadline: Duration,
) -> Result<Seen> {
    let end = tally.elapsed() + deadline;
    let mut seen = Seen::default();
    let form = crate::ext_authz::form_encode(&[
        ("subject_token", idp_token),
        ("subject_token_type", ID_TOKEN),
        ("grant_type", super::load::GRANT),
        ("scope", "function"),
    ]);
    while tally.elapsed() < end && seen.signed.is_none() {
        let now = tally.elapsed();
        if seen.published.is_none()
            && let Ok(r) = client
                .get(format!("{url}/.well-known/jwks.json"))
                .send()
                .await
            && let Ok(body) = r.text().await
            && body.contains(kid)
        {
            seen.published = Some(now);
        }
        let started = Instant::now();
        let r = client
            .post(format!("{url}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
            .await;
        let resp = match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let body = r.text().await.unwrap_or_default();
                Ok(super::load::Resp {
                    status,
                    headers,
                    body,
                })
            }
            Err(e) => Err(e),
        };
        let latency = started.elapsed();
        let outcome = judge(Expect::Issued, &resp, latency, Duration::from_secs(2));
        if outcome == Outcome::Ok
            && let Ok(r) = &resp
            && r.access_token().as_deref().and_then(kid_of).as_deref() == Some(kid)
        {
            seen.signed = Some(now);
        }
        tally.record(
            Kind::Exchange,
            "IdP → function at one replica (rotation watch)",
            outcome,
            latency,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(seen)
}

/// A valid change that concerns nobody in the load: another subject's Role.
const EXTRA_IAM: &str = r#"# Written by the soak: a valid change that concerns no client of the load.
apiVersion: iam.openfaas.com/v1
kind: Policy
metadata:
  name: soak-extra-policy
  namespace: openfaas
spec:
  statement:
  - sid: 1-soak
    action: ["Function:Get"]
    effect: Allow
    resource: ["dev:*"]
---
apiVersion: iam.openfaas.com/v1
kind: Role
metadata:
  name: soak-extra-role
  namespace: openfaas
spec:
  policy: [soak-extra-policy]
  condition:
    principal:
      jwt:sub: [soak-nobody]
"#;

/// Not YAML at all: the reload must be rejected as a whole.
const BROKEN_IAM: &str =
    "apiVersion: iam.openfaas.com/v1\nkind: Policy\nmetadata: {name: broken\nspec: [\n";

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DDTHHMMSSZ` (UTC, no colons: a Kubernetes Secret key cannot
/// hold one): the name of a key that may sign from that second.
pub fn utc_stamp(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

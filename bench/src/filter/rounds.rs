//! Running the rows: one request each to check what they answer, a
//! warm-up, then the interleaved rounds whose samples the tables report.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use mesh_auth_tests::{Envoy, get};

use super::{Minted, Proc, Row, Traffic};
use crate::configs::LISTENER;
use crate::load::{Load, Sample, Tokens, Wrk};
use crate::pool::Cursor;
use crate::report::int;
use crate::settings::Settings;

const STATS_PREFIX: &str = "wasmcustom.faas_mesh_auth.";
/// Counters unchanged this long, with no load, have been flushed.
const SETTLED: Duration = Duration::from_millis(350);
/// The warm-up's pool slice before plain Envoy's rate is known.
const FIRST_RATE: f64 = 200_000.0;

/// One request per row: is every row what it claims to be?
pub(super) async fn check_each(rows: &[Row], procs: &[Proc], minted: &Minted) -> Result<()> {
    for row in rows {
        let proc = &procs[row.proc_index];
        let token = match row.traffic {
            Traffic::Hot => Some(minted.hot.clone()),
            Traffic::Cold => Some(minted.one("sanity", false)?),
            Traffic::Flood => Some(minted.one("sanity-forged", true)?),
            Traffic::NoToken => None,
        };
        let resp = request(&proc.envoy, token.as_deref()).await?;
        if resp.status != row.expect {
            bail!(
                "{}: expected {} for one request, got {} {:?} (www-authenticate: {:?})\n{}",
                row.label,
                row.expect,
                resp.status,
                resp.body,
                resp.header("www-authenticate"),
                proc.envoy.log()
            );
        }
        if row.traffic == Traffic::Flood
            && !resp
                .header("www-authenticate")
                .is_some_and(|h| h.contains("bad_signature"))
        {
            bail!(
                "{}: a forged token was refused, but not for its signature: {:?}",
                row.label,
                resp.header("www-authenticate")
            );
        }
    }
    Ok(())
}

/// Puts each row's load on its Envoy.
pub(super) struct Runner<'a> {
    pub settings: &'a Settings,
    pub wrk: &'a Wrk,
    /// The token of the hot rows.
    pub hot: &'a str,
}

impl Runner<'_> {
    /// Load on every row for the warm-up; each row's rate sizes its token
    /// files in the rounds.
    pub(super) async fn warm_up(&self, rows: &mut [Row], procs: &mut [Proc]) -> Result<()> {
        // The first row is plain Envoy: the fastest, so its rate is enough.
        let mut plain_rate = 0.0f64;
        for (i, row) in rows.iter_mut().enumerate() {
            let rate = if plain_rate > 0.0 {
                plain_rate
            } else {
                FIRST_RATE
            };
            let s = self.run_row(row, procs, rate, self.settings.warmup).await?;
            row.warm_rps = s.rps();
            if i == 0 {
                plain_rate = s.rps();
            }
            eprintln!("bench: warm-up {:<55} {:>9} req/s", row.label, int(s.rps()));
        }
        Ok(())
    }

    /// The interleaved rounds: every row once a round, the order rotated.
    pub(super) async fn measure(&self, rows: &mut [Row], procs: &mut [Proc]) -> Result<()> {
        for round in 0..self.settings.rounds {
            for k in 0..rows.len() {
                let i = (k + round) % rows.len();
                self.measure_row(&mut rows[i], procs, round).await?;
            }
        }
        Ok(())
    }

    /// One sample of `row`, and its Envoy's filter counters meanwhile.
    async fn measure_row(&self, row: &mut Row, procs: &mut [Proc], round: usize) -> Result<()> {
        let hot = Some(self.hot);
        let envoy = &procs[row.proc_index].envoy;
        let before = filter_stats(envoy).await?;
        if row.traffic == Traffic::Flood {
            // The hot token goes into the cache before the flood...
            let r = request(envoy, hot).await?;
            if r.status != 200 {
                bail!("the hot token got {} before the flood", r.status);
            }
        }
        let s = self
            .run_row(row, procs, row.warm_rps, self.settings.duration)
            .await
            .with_context(|| format!("measuring {}", row.label))?;
        let envoy = &procs[row.proc_index].envoy;
        let mut after = filter_stats(envoy).await?;
        if row.traffic == Traffic::Flood {
            // ...and must still be there after it.
            let r = request(envoy, hot).await?;
            let again = filter_stats(envoy).await?;
            let hits = |m: &BTreeMap<String, u64>| m.get("cache_hit").copied().unwrap_or(0);
            row.cache_survived
                .push(r.status == 200 && hits(&again) == hits(&after) + 1);
            after = again;
            // The check request itself is not part of the flood.
            for counter in ["cache_hit", "allowed"] {
                if let Some(v) = after.get_mut(counter) {
                    *v = v.saturating_sub(1);
                }
            }
        }
        check_sample(row, &s)?;
        for (k, v) in &after {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            *row.stats.entry(k.clone()).or_default() += d;
        }
        eprintln!(
            "bench: round {}/{} {:<55} {:>9} req/s  Envoy {:>3.0}% busy  {:>6.1} µs CPU/req  (other load {:.0}% of a core)",
            round + 1,
            self.settings.rounds,
            row.label,
            int(s.rps()),
            s.busy_percent(0),
            s.cpu_us_per_request(0),
            100.0 * s.other_cpu_seconds / s.seconds.max(1e-9),
        );
        row.samples.push(s);
        Ok(())
    }

    /// Put `row`'s load on its Envoy for `duration`; tokens drawn from a pool
    /// are marked used.
    async fn run_row(
        &self,
        row: &Row,
        procs: &mut [Proc],
        rate: f64,
        duration: Duration,
    ) -> Result<Sample> {
        let connections = self.settings.connections;
        let proc = &mut procs[row.proc_index];
        let url = format!("{}/", proc.envoy.listener_url(LISTENER)?);
        let load = Load::get(url, connections, duration);
        let (load, pool) = match row.traffic {
            Traffic::Hot => (load.tokens(Tokens::Fixed(self.hot.to_owned())), None),
            Traffic::NoToken => (load, None),
            Traffic::Cold | Traffic::Flood => {
                let c = cursor(proc, row.traffic);
                let file = c.take(c.need(rate, duration))?;
                (load.tokens(Tokens::Pool(file)), Some(row.traffic))
            }
        };
        let s = self.wrk.run(&load, &[proc.envoy.pid()]).await?;
        if let Some(which) = pool {
            // Also those in flight when wrk stopped: sent, maybe verified.
            cursor(proc, which).consumed(s.requests + u64::from(connections));
        }
        Ok(s)
    }
}

/// `GET /` on the Envoy's listener, with this token or none.
async fn request(envoy: &Envoy, token: Option<&str>) -> Result<mesh_auth_tests::HttpResponse> {
    let url = format!("{}/", envoy.listener_url(LISTENER)?);
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    get(&url, &headers).await
}

fn cursor(proc: &mut Proc, which: Traffic) -> &mut Cursor {
    match which {
        Traffic::Flood => &mut proc.flood,
        _ => &mut proc.cold,
    }
}

/// A measurement whose answers are not what the row expects is a broken
/// bench, not a slow filter: stop.
fn check_sample(row: &Row, s: &Sample) -> Result<()> {
    if s.requests == 0 {
        bail!("{}: no request completed", row.label);
    }
    if s.socket_errors > 0 {
        bail!(
            "{}: {} connection errors or timeouts in {} requests",
            row.label,
            s.socket_errors,
            s.requests
        );
    }
    let ok = if row.expect < 400 {
        s.non_2xx == 0
    } else {
        s.non_2xx == s.requests
    };
    if !ok {
        bail!(
            "{}: expected every answer to be {}, but {} of {} were 4xx/5xx",
            row.label,
            row.expect,
            s.non_2xx,
            s.requests
        );
    }
    Ok(())
}

/// The filter's counters, without their prefix, once they have settled:
/// the filter may keep counts in the VM and flush them on its tick (100 ms),
/// so a read right after the load would miss the last tick's worth and
/// credit it to the next row. Polls until the counters have not moved for
/// [`SETTLED`]; Envoys without the filter answer at once.
async fn filter_stats(envoy: &Envoy) -> Result<BTreeMap<String, u64>> {
    let read = || async {
        Ok::<_, anyhow::Error>(
            envoy
                .stats()
                .await?
                .into_iter()
                .filter_map(|(k, v)| k.strip_prefix(STATS_PREFIX).map(|s| (s.to_owned(), v)))
                .collect::<BTreeMap<String, u64>>(),
        )
    };
    let mut last = read().await?;
    if last.is_empty() {
        return Ok(last);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut still_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = read().await?;
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= SETTLED {
            return Ok(last);
        }
        if Instant::now() > deadline {
            bail!("the filter's counters kept moving for 10 s with no load");
        }
    }
}

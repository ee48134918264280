//! Every request the soak makes, judged and counted: by kind, by outcome,
//! by period (a row of the report), and unexpected failures grouped by what
//! they looked like, with when they first and last happened.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a request exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A function invoked with a token it has seen before (the filter's cache).
    InvokeCached,
    /// A function invoked with a token exchanged just before.
    InvokeFresh,
    /// `POST /oauth/token`.
    Exchange,
    /// `/system/…` through ext_authz.
    System,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::InvokeCached,
        Kind::InvokeFresh,
        Kind::Exchange,
        Kind::System,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::InvokeCached => "invoke cached",
            Kind::InvokeFresh => "invoke fresh",
            Kind::Exchange => "exchange",
            Kind::System => "system",
        }
    }
}

/// How a request ended, judged against what it was designed to get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The success it was designed to get.
    Ok,
    /// The refusal it was designed to get (outside the permissions).
    Denied,
    /// A failure the injected fault explains; the reason says which.
    Expected(String),
    /// Anything else: what the response looked like.
    Unexpected(String),
}

/// Counts for one kind.
#[derive(Debug, Clone, Default)]
pub struct KindCounts {
    pub ok: u64,
    pub denied: u64,
    pub expected: u64,
    pub unexpected: u64,
    /// Latencies in microseconds, for percentiles.
    latencies_us: Vec<u32>,
}

impl KindCounts {
    pub fn total(&self) -> u64 {
        self.ok + self.denied + self.expected + self.unexpected
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        let mut v = self.latencies_us.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let last = v.len() - 1;
        // Nearest rank; the float is small and non-negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
        v.get(i.min(last))
            .map(|us| Duration::from_micros(u64::from(*us)))
    }
}

/// One period's counts (a row of the report).
#[derive(Debug, Clone, Copy, Default)]
pub struct PeriodCounts {
    pub requests: u64,
    pub denied: u64,
    pub expected: u64,
    pub unexpected: u64,
}

/// Unexpected failures that looked the same.
#[derive(Debug, Clone)]
pub struct FailureGroup {
    pub kind: Kind,
    pub what: String,
    pub detail: String,
    pub count: u64,
    pub first: Duration,
    pub last: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    kinds: BTreeMap<Kind, KindCounts>,
    periods: Vec<PeriodCounts>,
    expected: BTreeMap<(Kind, String), u64>,
    unexpected: BTreeMap<(Kind, String, String), FailureGroup>,
    harness_errors: Vec<(Duration, String)>,
}

/// Shared by the load workers and the fault controller.
#[derive(Debug)]
pub struct Tally {
    start: Instant,
    period: Duration,
    inner: Mutex<Inner>,
}

impl Tally {
    /// Counting from now, one row per `period`.
    pub fn new(period: Duration) -> Self {
        Tally {
            start: Instant::now(),
            period: period.max(Duration::from_secs(1)),
            inner: Mutex::default(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Count one request that started `latency` ago.
    pub fn record(&self, kind: Kind, what: &str, outcome: Outcome, latency: Duration) {
        let at = self.elapsed();
        let index = usize::try_from(at.as_secs() / self.period.as_secs().max(1)).unwrap_or(0);
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let inner = &mut *guard;
        if inner.periods.len() <= index {
            inner.periods.resize(index + 1, PeriodCounts::default());
        }
        let k = inner.kinds.entry(kind).or_default();
        k.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        let mut period = inner.periods.get(index).copied().unwrap_or_default();
        period.requests += 1;
        match outcome {
            Outcome::Ok => k.ok += 1,
            Outcome::Denied => {
                k.denied += 1;
                period.denied += 1;
            }
            Outcome::Expected(reason) => {
                k.expected += 1;
                period.expected += 1;
                *inner.expected.entry((kind, reason)).or_default() += 1;
            }
            Outcome::Unexpected(detail) => {
                k.unexpected += 1;
                period.unexpected += 1;
                let group = inner
                    .unexpected
                    .entry((kind, what.to_owned(), detail.clone()))
                    .and_modify(|g| {
                        g.count += 1;
                        g.last = at;
                    })
                    .or_insert(FailureGroup {
                        kind,
                        what: what.to_owned(),
                        detail,
                        count: 1,
                        first: at,
                        last: at,
                    });
                // The first of a kind at once, then a reminder now and then.
                if group.count == 1 || group.count % 100 == 0 {
                    eprintln!(
                        "soak: {} UNEXPECTED ({}x) {} {what}: {}",
                        clock(at),
                        group.count,
                        kind.label(),
                        group.detail
                    );
                }
            }
        }
        if let Some(p) = inner.periods.get_mut(index) {
            *p = period;
        }
    }

    /// Something the harness itself could not do (fetch an IdP token, read
    /// a counter): it fails the soak, since the run no longer proves much.
    pub fn harness_error(&self, what: impl Into<String>) {
        let at = self.elapsed();
        let what = what.into();
        eprintln!("soak: {} harness error: {what}", clock(at));
        if let Ok(mut inner) = self.inner.lock() {
            inner.harness_errors.push((at, what));
        }
    }

    pub fn kinds(&self) -> BTreeMap<Kind, KindCounts> {
        self.inner
            .lock()
            .map(|i| i.kinds.clone())
            .unwrap_or_default()
    }

    pub fn periods(&self) -> Vec<PeriodCounts> {
        self.inner
            .lock()
            .map(|i| i.periods.clone())
            .unwrap_or_default()
    }

    /// Expected failures by kind and reason.
    pub fn expected(&self) -> BTreeMap<(Kind, String), u64> {
        self.inner
            .lock()
            .map(|i| i.expected.clone())
            .unwrap_or_default()
    }

    /// Unexpected failures, grouped, first seen first.
    pub fn unexpected(&self) -> Vec<FailureGroup> {
        let mut v: Vec<FailureGroup> = self
            .inner
            .lock()
            .map(|i| i.unexpected.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|g| g.first);
        v
    }

    pub fn unexpected_count(&self) -> u64 {
        self.inner
            .lock()
            .map(|i| i.kinds.values().map(|k| k.unexpected).sum())
            .unwrap_or(0)
    }

    pub fn harness_errors(&self) -> Vec<(Duration, String)> {
        self.inner
            .lock()
            .map(|i| i.harness_errors.clone())
            .unwrap_or_default()
    }
}

/// `m:ss.s` since the start, as the report prints times.
pub fn clock(at: Duration) -> String {
    let tenths = at.as_millis() / 100;
    format!("{}:{:02}.{}", tenths / 600, (tenths / 10) % 60, tenths % 10)
}

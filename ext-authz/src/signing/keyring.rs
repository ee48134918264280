//! Which key signs when, and which keys are published: publish before you
//! sign, across replicas that see a new key file at different times.
//!
//! * Every key file on disk is published in the JWKS at once.
//! * A key's file name says when it may start signing: `2026-12-02.pem`
//!   (midnight UTC), `2026-12-02T1530Z.pem` or `2026-12-02T153000Z.pem`
//!   (Kubernetes Secret keys cannot hold `:`), with an optional suffix after
//!   `-`, `_` or `.`. Every replica reads the same name, so every replica
//!   switches at the same moment. Undated names (`0001.pem`) sort before
//!   dated ones and count as dated at the epoch.
//! * A key that appears while the process runs signs no sooner than
//!   `publish_delay` after this process first saw it, whatever its name
//!   says: a name dated too early still gets the delay. Keys present at
//!   startup count as published since their name's time.
//! * The key that signs is the last one, in name order (by time, then
//!   name), whose time has come; before any has, the first one signs.
//! * A key that leaves the directory stays published until every token it
//!   may have signed, here or on another replica, has expired.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use mesh_auth_core::jwks::KeySet;
use serde_json::Value;

use super::SigningKey;

/// A key on disk and when it may sign here.
#[derive(Debug, Clone)]
struct Scheduled {
    key: Arc<SigningKey>,
    /// Its file's name, and the time that name gives (0 when undated).
    name: String,
    not_before: u64,
    /// When this process first saw it; None when it was there at startup.
    first_seen: Option<u64>,
    signs_from: u64,
}

impl Scheduled {
    /// `file` names `key` now (a known key may have been renamed).
    fn new(key: Arc<SigningKey>, file: &SigningKey, first_seen: Option<u64>, delay: u64) -> Self {
        let name = file
            .file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        // `load_dir` has refused names that start like a date but are not.
        let not_before = not_before_of(&name).ok().flatten().unwrap_or(0);
        let signs_from = not_before.max(first_seen.map_or(0, |t| t.saturating_add(delay)));
        Scheduled {
            key,
            name,
            not_before,
            first_seen,
            signs_from,
        }
    }

    fn order(&self) -> (u64, &str) {
        (self.not_before, &self.name)
    }
}

/// A key no longer on disk, published until `until`.
#[derive(Debug, Clone)]
struct Retired {
    key: Arc<SigningKey>,
    until: u64,
}

/// How long a key that leaves the directory stays published.
#[derive(Debug, Clone, Copy)]
pub struct Retirement {
    /// Verifiers' clock leeway past `exp`.
    pub leeway: u64,
    /// The longest lifetime of a token we issue.
    pub max_lifetime: u64,
}

/// The keys in force: what is published, and what signs when.
#[derive(Debug)]
pub struct KeyRing {
    /// In signing order: by the name's time, then the name.
    on_disk: Vec<Scheduled>,
    retired: Vec<Retired>,
}

impl KeyRing {
    /// The first ring, from the keys on disk at startup.
    pub fn new(keys: Vec<SigningKey>) -> Option<Self> {
        let on_disk = arrange(keys.into_iter().map(|k| {
            let key = Arc::new(k);
            Scheduled::new(key.clone(), &key, None, 0)
        }));
        (!on_disk.is_empty()).then_some(KeyRing {
            on_disk,
            retired: Vec::new(),
        })
    }

    /// The next ring after the directory changed at `now`. A key already
    /// loaded keeps its state (its last `exp`, when it was first seen).
    pub fn rotate(
        &self,
        keys: Vec<SigningKey>,
        now: u64,
        publish_delay: u64,
        retire: Retirement,
    ) -> Option<Self> {
        let on_disk = arrange(keys.into_iter().map(|k| {
            let known = self.on_disk.iter().find(|s| s.key.kid == k.kid);
            match known {
                // Same key, perhaps renamed: the new name's time counts.
                Some(s) => Scheduled::new(s.key.clone(), &k, s.first_seen, publish_delay),
                None => match self.retired.iter().find(|r| r.key.kid == k.kid) {
                    // Back from retirement: it was published all along.
                    Some(r) => Scheduled::new(r.key.clone(), &k, None, publish_delay),
                    None => {
                        let key = Arc::new(k);
                        Scheduled::new(key.clone(), &key, Some(now), publish_delay)
                    }
                },
            }
        }));
        if on_disk.is_empty() {
            return None;
        }
        let mut retired: Vec<Retired> = self
            .retired
            .iter()
            .filter(|r| r.until > now && !on_disk.iter().any(|s| s.key.kid == r.key.kid))
            .cloned()
            .collect();
        for (i, gone) in self.on_disk.iter().enumerate() {
            if on_disk.iter().any(|s| s.key.kid == gone.key.kid) {
                continue;
            }
            let until = self.published_until(i, now, retire);
            if until > now {
                retired.push(Retired {
                    key: gone.key.clone(),
                    until,
                });
            }
        }
        Some(KeyRing { on_disk, retired })
    }

    /// Until when the key at `i`, leaving the directory at `now`, must stay
    /// published: past the last token signed here, and past the end of its
    /// time as the signing key (when other replicas signed with it too)
    /// plus the longest token lifetime.
    fn published_until(&self, i: usize, now: u64, retire: Retirement) -> u64 {
        let gone = &self.on_disk[i];
        let start = if i == 0 { 0 } else { gone.signs_from };
        let end = self.on_disk[i + 1..]
            .iter()
            .map(|s| s.signs_from)
            .min()
            .unwrap_or(u64::MAX)
            .min(now);
        let mut until = gone.key.last_exp();
        if start < end {
            until = until.max(end.saturating_add(retire.max_lifetime));
        }
        if until == 0 {
            return 0;
        }
        until.saturating_add(retire.leeway)
    }

    /// The key that signs at `now`.
    pub fn active(&self, now: u64) -> &Arc<SigningKey> {
        let due = self.on_disk.iter().rev().find(|s| s.signs_from <= now);
        // `new` and `rotate` never build an empty ring.
        &due.unwrap_or(&self.on_disk[0]).key
    }

    /// Since when (seconds since the epoch) the key that signs at `now` may
    /// sign: its name's time, or later when it appeared while running. 0
    /// for an undated name present at startup. For the key-age metric.
    pub fn active_since(&self, now: u64) -> u64 {
        let due = self.on_disk.iter().rev().find(|s| s.signs_from <= now);
        due.or(self.on_disk.first()).map_or(0, |s| s.signs_from)
    }

    /// Every key a verifier should trust right now.
    fn published(&self, now: u64) -> impl Iterator<Item = &Arc<SigningKey>> {
        self.on_disk.iter().map(|s| &s.key).chain(
            self.retired
                .iter()
                .filter(move |r| r.until > now)
                .map(|r| &r.key),
        )
    }

    /// The JWKS document, the signing key first.
    pub fn jwks(&self, now: u64) -> Value {
        let active = self.active(now);
        let mut keys: BTreeMap<&str, Value> = BTreeMap::new();
        for k in self.published(now) {
            keys.insert(&k.kid, k.jwk());
        }
        let mut list = vec![active.jwk()];
        list.extend(
            keys.into_iter()
                .filter(|(kid, _)| *kid != active.kid)
                .map(|(_, v)| v),
        );
        serde_json::json!({ "keys": list })
    }

    /// The same keys, for verifying our own tokens.
    pub fn key_set(&self, now: u64) -> KeySet {
        KeySet::from_keys(self.published(now).filter_map(|k| k.verifying_key()))
    }

    pub fn kids(&self, now: u64) -> Vec<String> {
        self.published(now).map(|k| k.kid.clone()).collect()
    }

    /// `kid (file): signing | signs from T | published until T`, for logs.
    pub fn schedule(&self, now: u64) -> String {
        let active = &self.active(now).kid;
        let mut out = String::new();
        for s in &self.on_disk {
            let file = &s.name;
            let state = if s.key.kid == *active {
                "signing".to_owned()
            } else if s.signs_from > now {
                format!("signs in {}s", s.signs_from - now)
            } else {
                "published".to_owned()
            };
            let _ = write!(out, "{} ({file}): {state}; ", s.key.kid);
        }
        for r in self.retired.iter().filter(|r| r.until > now) {
            let _ = write!(
                out,
                "{}: retired, published for {}s; ",
                r.key.kid,
                r.until - now
            );
        }
        out.trim_end_matches("; ").to_owned()
    }

    /// The ring without retired keys whose last token has expired, if any.
    pub fn without_expired(&self, now: u64) -> Option<Self> {
        if !self.retired.iter().any(|r| r.until <= now) {
            return None;
        }
        Some(KeyRing {
            on_disk: self.on_disk.clone(),
            retired: self
                .retired
                .iter()
                .filter(|r| r.until > now)
                .cloned()
                .collect(),
        })
    }
}

/// Sort into signing order; two files holding the same key count once, at
/// the later position.
fn arrange(keys: impl Iterator<Item = Scheduled>) -> Vec<Scheduled> {
    let mut all: Vec<Scheduled> = keys.collect();
    all.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut out: Vec<Scheduled> = Vec::with_capacity(all.len());
    for s in all {
        out.retain(|o| o.key.kid != s.key.kid);
        out.push(s);
    }
    out
}

/// The UTC time (seconds since the epoch) a key's file name says it may
/// start signing. `Ok(None)`: the name is not dated. An error: it starts
/// like a date (`YYYY-MM-DD`) but is not a valid one.
pub fn not_before_of(file_name: &str) -> Result<Option<u64>, &'static str> {
    let b = file_name.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        s.iter()
            .try_fold(0u32, |n, d| Some(n * 10 + u32::from(d - b'0')))
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Ok(None);
    };
    if b[4] != b'-' || b[7] != b'-' {
        return Ok(None);
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("the name starts with a date that does not exist (YYYY-MM-DD)");
    }
    let mut i = 10;
    let mut seconds = 0u64;
    if matches!(b.get(i), Some(b'T' | b't')) {
        i += 1;
        let field = |i: &mut usize| -> Option<u32> {
            if b.get(*i) == Some(&b':') {
                *i += 1;
            }
            let v = digits(*i..*i + 2)?;
            *i += 2;
            Some(v)
        };
        let bad_time = "the name's time is not THHMM[SS]Z (UTC)";
        let hour = digits(i..i + 2).ok_or(bad_time)?;
        i += 2;
        let minute = field(&mut i).ok_or(bad_time)?;
        let second = if b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b':') {
            field(&mut i).ok_or(bad_time)?
        } else {
            0
        };
        if hour > 23 || minute > 59 || second > 59 {
            return Err(bad_time);
        }
        if matches!(b.get(i), Some(b'Z' | b'z')) {
            i += 1;
        }
        seconds = u64::from(hour * 3600 + minute * 60 + second);
    }
    if !matches!(b.get(i), None | Some(b'-' | b'_' | b'.')) {
        return Err("after the date, the name goes on with '-', '_' or '.'");
    }
    let days = days_from_civil(i64::from(year), month, day);
    let midnight = u64::try_from(days.max(0).saturating_mul(86_400)).unwrap_or(0);
    Ok(Some(midnight + seconds))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;

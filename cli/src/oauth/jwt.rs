//! A JWT's claims read without checking its signature: only to show a
//! person who they are and when a token expires. The gateway and the
//! sidecars check signatures; nothing here decides access.

use base64::Engine as _;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Claims(pub serde_json::Map<String, Value>);

impl Claims {
    /// The payload of a compact JWS, or `None` if it is not one.
    pub fn read(token: &str) -> Option<Self> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(m) => Some(Claims(m)),
            _ => None,
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn exp(&self) -> Option<u64> {
        self.0.get("exp").and_then(Value::as_u64)
    }

    /// A claim that is a string or a list of strings, as a list.
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `2026-12-02 14:30:00 UTC` for a Unix time (proleptic Gregorian).
pub fn utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2);
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `1h 5m`, `42s`: how long until `unix` from `now`.
pub fn until(unix: u64, now: u64) -> String {
    if unix <= now {
        return "expired".to_owned();
    }
    let d = unix - now;
    match (d / 3600, d % 3600 / 60, d % 60) {
        (0, 0, s) => format!("in {s}s"),
        (0, m, _) => format!("in {m}m"),
        (h, 0, _) => format!("in {h}h"),
        (h, m, _) => format!("in {h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_221_845), "2026-12-02 14:30:45 UTC");
        assert_eq!(until(100, 100), "expired");
        assert_eq!(until(100 + 3600 + 300, 100), "in 1h 5m");
        assert_eq!(until(142, 100), "in 42s");
    }

    #[test]
    fn claims_without_a_signature_check() {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let t = format!(
            "{}.{}.sig",
            b("{}"),
            b(r#"{"sub":"fed:a","policy":["p"],"exp":5}"#)
        );
        let c = Claims::read(&t).unwrap();
        assert_eq!(c.str("sub"), Some("fed:a"));
        assert_eq!(c.strings("policy"), vec!["p".to_owned()]);
        assert_eq!(c.exp(), Some(5));
        assert!(Claims::read("not a jwt").is_none());
    }
}

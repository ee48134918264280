//! Go `time.ParseDuration` syntax, as OpenFaaS reads `tokenExpiry`:
//! decimal numbers, each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`,
//! `h`), concatenated: `1h`, `30m`, `1h30m`, `1.5h`, `90s`. A bare `0` is
//! allowed. Negative durations are refused, since nothing here needs them.

use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("it is empty")]
    Empty,
    #[error("negative durations are not allowed")]
    Negative,
    #[error("expected a number")]
    InvalidNumber,
    #[error("a number has no unit (use ns, us, ms, s, m or h)")]
    MissingUnit,
    #[error("unknown unit {0:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit(String),
    #[error("it is too long")]
    Overflow,
}

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SECOND: u128 = 1_000_000_000;
// Go durations are i64 nanoseconds (about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;
// More fraction digits than this cannot change the result.
const MAX_FRACTION_DIGITS: usize = 20;

pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let mut rest = match text.strip_prefix('+') {
        Some(r) => r,
        None if text.starts_with('-') => return Err(DurationError::Negative),
        None => text,
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = split_digits(rest);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(a) => split_digits(a),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(DurationError::InvalidNumber);
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit);
        }
        let per = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;

        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| DurationError::Overflow)?
        };
        let mut nanos = whole.checked_mul(per).ok_or(DurationError::Overflow)?;
        if !fraction.is_empty() {
            let digits = fraction.get(..MAX_FRACTION_DIGITS).unwrap_or(fraction);
            let value: u128 = digits.parse().map_err(|_| DurationError::Overflow)?;
            let scale = 10u128.pow(digits.len() as u32);
            // Truncates like Go does.
            nanos += value * per / scale;
        }
        total = total.checked_add(nanos).ok_or(DurationError::Overflow)?;
        if total > MAX_NANOS {
            return Err(DurationError::Overflow);
        }
        rest = after;
    }
    let nanos = u64::try_from(total).map_err(|_| DurationError::Overflow)?;
    Ok(Duration::from_nanos(nanos))
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // Go accepts both the micro sign (U+00B5) and Greek mu (U+03BC).
        "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;

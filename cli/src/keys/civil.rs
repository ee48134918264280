//! UTC calendar times from seconds since the epoch, for key file names.

/// (year, month, day) of a day number since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, the inverse of ext-authz's `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn parts(t: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = i64::try_from(t / 86_400).unwrap_or(i64::MAX / 2);
    let (y, mo, d) = civil_from_days(days);
    let s = t % 86_400;
    (y, mo, d, s / 3600, s / 60 % 60, s % 60)
}

/// `2026-12-02T153000Z`: a key file name's time (no `:`, which Kubernetes
/// Secret keys cannot hold).
pub fn file_stamp(t: u64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `2026-12-02T15:30:00Z`.
pub fn rfc3339(t: u64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

//! Time is injected: host time in wasm, the system clock in ext-authz and a
//! fixed clock in tests.

/// Seconds since the Unix epoch.
pub type UnixSeconds = u64;

pub trait Clock {
    fn now(&self) -> UnixSeconds;
}

/// A clock that always says the same time. For tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub UnixSeconds);

impl Clock for FixedClock {
    fn now(&self) -> UnixSeconds {
        self.0
    }
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

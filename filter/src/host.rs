//! The small surface through which the filter reaches Envoy. `wasm.rs`
//! implements it with proxy-wasm hostcalls; tests use `mock::MockHost`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

pub trait Host {
    /// Wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    fn log(&self, level: LogLevel, message: &str);

    /// A request header of the current (effective) stream, lossily decoded.
    fn request_header(&self, name: &str) -> Option<String>;
    /// All request headers of the current stream in one call, in the
    /// proxy-wasm serialized form (read with [`crate::headers::pairs`]);
    /// names as Envoy keeps them, lower case.
    fn request_header_map(&self) -> Vec<u8>;
    /// Set, or with `None` remove, a request header.
    fn set_request_header(&self, name: &str, value: Option<&str>);
    /// Answer the current stream locally.
    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]);
    /// Let a paused stream continue.
    fn resume_request(&self);
    /// Make another stream of this VM current, to answer or resume it from a
    /// root-context callback. False when it is gone.
    fn set_effective_context(&self, context_id: u32) -> bool;

    fn define_counter(&self, name: &str) -> Option<u32>;
    fn increment(&self, metric: u32, by: u64);

    /// Shared data across this VM's workers: the value and its CAS token.
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Store a value; with `cas`, only if it is unchanged since read. False
    /// on a CAS mismatch or any failure.
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;

    /// An HTTP call to an Envoy cluster; the token of the call, or None.
    fn http_call(&self, cluster: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Option<u32>;

    /// A host extension (Envoy's "foreign functions"), by name.
    fn call_foreign(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError>;
}

/// Why a foreign function gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignError {
    /// The host has no function of that name.
    NotFound,
    /// It exists but refused the arguments or failed.
    Failed,
}

#[cfg(test)]
pub mod mock;

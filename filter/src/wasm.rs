//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out. Only
//! hostcalls that report errors are used (the SDK's convenience methods
//! panic on, for example, a header that is not UTF-8).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{
    Action, BufferType, ContextType, LogLevel as PwLevel, MapType, MetricType,
};

use crate::config::{NodeIdentity, compile};
use crate::host::{ForeignError, Host, LogLevel};
use crate::worker::{Flow, MAX_JWKS_BYTES, TICK_MS, Worker};

proxy_wasm::main! {{
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(PwLevel::Critical, &format!("faas-mesh-auth: panic: {info}"));
    }));
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root { context_id, worker: None })
    });
}}

/// The host's log level, read once at configure: formatting a debug line
/// Envoy would drop is wasted work on the request path.
static MIN_LEVEL: AtomicU8 = AtomicU8::new(1);

struct WasmHost;

fn level_rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warn => 2,
        LogLevel::Error => 3,
    }
}

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn log(&self, level: LogLevel, message: &str) {
        if level_rank(level) < MIN_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let pw = match level {
            LogLevel::Debug => PwLevel::Debug,
            LogLevel::Info => PwLevel::Info,
            LogLevel::Warn => PwLevel::Warn,
            LogLevel::Error => PwLevel::Error,
        };
        let _ = hostcalls::log(pw, message);
    }

    fn request_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name)
            .ok()
            .flatten()
            // No second copy when the value is valid UTF-8 (the usual case).
            .map(|b| {
                String::from_utf8(b)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            })
    }

    fn request_header_map(&self) -> Vec<u8> {
        raw_request_header_map()
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value);
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        let _ = hostcalls::send_http_response(status, headers.to_vec(), Some(body));
    }

    fn resume_request(&self) {
        let _ = hostcalls::resume_http_request();
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        hostcalls::set_effective_context(context_id).is_ok()
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Counter, name).ok()
    }

    fn increment(&self, metric: u32, by: u64) {
        let _ = hostcalls::increment_metric(metric, i64::try_from(by).unwrap_or(i64::MAX));
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }

    fn call_foreign(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
        match hostcalls::call_foreign_function(name, Some(args)) {
            Ok(result) => Ok(result.unwrap_or_default()),
            Err(proxy_wasm::types::Status::NotFound) => Err(ForeignError::NotFound),
            Err(_) => Err(ForeignError::Failed),
        }
    }

    fn http_call(&self, cluster: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Option<u32> {
        hostcalls::dispatch_http_call(
            cluster,
            headers.to_vec(),
            None,
            Vec::new(),
            Duration::from_millis(timeout_ms),
        )
        .ok()
    }
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> proxy_wasm::types::Status;
}

/// The request's headers serialized, in one hostcall and one buffer. The
/// SDK's own `get_map_bytes` would then copy every name and value into its
/// own allocation, and panic on a name that is not UTF-8.
fn raw_request_header_map() -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a buffer it allocated through this module's
    // `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes), and
    // hands over its ownership, as the SDK's own hostcalls assume.
    unsafe {
        match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
            proxy_wasm::types::Status::Ok if !data.is_null() => {
                Vec::from_raw_parts(data, size, size)
            }
            _ => Vec::new(),
        }
    }
}

/// Node metadata as Istio sets it; Envoy 1.40 puts it under `xds.node`,
/// older Envoys under `node`.
fn node_identity() -> NodeIdentity {
    let first = |paths: &[&[&str]]| {
        paths.iter().find_map(|p| {
            hostcalls::get_property(p.to_vec())
                .ok()
                .flatten()
                .and_then(|b| String::from_utf8(b).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
    };
    NodeIdentity {
        namespace: first(&[
            &["xds", "node", "metadata", "NAMESPACE"],
            &["node", "metadata", "NAMESPACE"],
        ]),
        function: first(&[
            &["xds", "node", "metadata", "LABELS", "faas_function"],
            &["node", "metadata", "LABELS", "faas_function"],
        ]),
    }
}

struct Root {
    context_id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(worker) = &self.worker else { return };
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|b| {
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok())
            });
        // Envoy reports a failed call (reset, timeout, no upstream) with no
        // headers at all.
        let body = if body_size > MAX_JWKS_BYTES {
            None
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
        };
        let status = match (status, body_size > MAX_JWKS_BYTES) {
            (Some(200), true) => Some(413),
            (s, _) => s,
        };
        if let Ok(mut w) = worker.try_borrow_mut() {
            w.on_fetch_response(&WasmHost, token, status, body);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            let rank = match level {
                PwLevel::Trace | PwLevel::Debug => 0,
                PwLevel::Info => 1,
                PwLevel::Warn => 2,
                PwLevel::Error | PwLevel::Critical => 3,
            };
            MIN_LEVEL.store(rank, Ordering::Relaxed);
        }
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match compile(&raw, &node_identity()) {
            Ok(cfg) => {
                let worker = Worker::new(&WasmHost, self.context_id, cfg);
                // Every worker ticks: metrics and the clock, and the keys
                // when they are fetched.
                let _ = hostcalls::set_tick_period(Duration::from_millis(TICK_MS));
                self.worker = Some(Rc::new(RefCell::new(worker)));
                true
            }
            Err(e) => {
                WasmHost.log(
                    LogLevel::Error,
                    &format!("faas-mesh-auth: invalid plugin configuration: {e}"),
                );
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(worker) = &self.worker
            && let Ok(mut w) = worker.try_borrow_mut()
        {
            w.on_tick(&WasmHost);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            context_id,
            worker: self.worker.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    context_id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
}

impl Context for Stream {
    fn on_done(&mut self) -> bool {
        if let Some(worker) = &self.worker
            && let Ok(mut w) = worker.try_borrow_mut()
        {
            w.on_stream_done(self.context_id);
        }
        true
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let flow = match &self.worker {
            Some(worker) => match worker.try_borrow_mut() {
                Ok(mut w) => w.on_request(&WasmHost, self.context_id),
                Err(_) => fail_closed(),
            },
            // on_configure failed: Envoy normally refuses the plugin, but
            // never let a request through unchecked.
            None => fail_closed(),
        };
        match flow {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }
}

fn fail_closed() -> Flow {
    WasmHost.send_response(
        503,
        &[("content-type", "text/plain; charset=utf-8")],
        b"function authentication is not configured\n",
    );
    Flow::Pause
}

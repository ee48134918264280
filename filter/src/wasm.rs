//! The proxy-wasm adapter: Envoy's callbacks in, [`Host`] calls out.
//!
//! The ABI (0.2.1) is bound by hand rather than through the proxy-wasm SDK.
//! Envoy enters the VM only for the callbacks a module exports, and the SDK
//! exports all of them, so every request would also cross into V8 for its
//! response headers, body, log, done and delete, each time for nothing:
//! about as much as the filter's own work on a cached token. Here a request
//! costs two entries (its context, its request headers). The SDK's hostcall
//! wrappers also panic on a status they do not expect, which in a filter
//! kills the VM for every request on the worker; `abi` returns every status.

mod abi;

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::config::{NodeIdentity, compile};
use crate::headers;
use crate::host::{ForeignError, Host, LogLevel};
use crate::keys::MAX_JWKS_BYTES;
use crate::roots::Roots;
use crate::worker::{Flow, TICK_MS, Worker};

/// The host's log level, read once at configure: formatting a debug line
/// Envoy would drop is wasted work on the request path.
static MIN_LEVEL: AtomicU8 = AtomicU8::new(1);

/// How often, in ticks, a root looks for roots Envoy has deleted.
const PRUNE_TICKS: u32 = 10;

/// Everything this VM (one per Envoy worker thread) knows: its root
/// contexts, each with its worker once configured.
struct Vm {
    roots: Roots<Option<Worker>>,
    ticks: u32,
}

impl Vm {
    fn worker(&mut self, root: u32) -> Option<&mut Worker> {
        self.roots.get(root).and_then(Option::as_mut)
    }

    /// Forget roots Envoy has deleted (a plugin configuration replaced, its
    /// listener drained). We are not told: `proxy_on_delete` would cost
    /// every request a VM entry, since Envoy calls it for every stream. A
    /// context that is gone cannot be made the effective one.
    fn prune(&mut self, current: u32) {
        if self.roots.len() < 2 {
            return;
        }
        let dropped = self
            .roots
            .retain(|id| id == current || abi::set_effective_context(id));
        abi::set_effective_context(current);
        if dropped > 0 {
            WasmHost.log(
                LogLevel::Info,
                &format!(
                    "faas-mesh-auth: forgot {dropped} replaced plugin configuration(s); {} in this VM",
                    self.roots.len()
                ),
            );
        }
    }
}

/// A JWKS response that arrived while the VM was busy (Envoy can report a
/// failed call from inside `dispatch_http_call`): handled on the next tick.
struct CallResponse {
    root: u32,
    token: u32,
    status: Option<u16>,
    body: Option<Vec<u8>>,
}

thread_local! {
    static VM: RefCell<Vm> = const {
        RefCell::new(Vm { roots: Roots::new(), ticks: 0 })
    };
    static DEFERRED: RefCell<Vec<CallResponse>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on the VM state; None if it is already in use (a re-entrant
/// callback).
fn with_vm<T>(f: impl FnOnce(&mut Vm) -> T) -> Option<T> {
    VM.with(|vm| vm.try_borrow_mut().ok().map(|mut vm| f(&mut vm)))
}

// ---- exports -----------------------------------------------------------

unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// The WASI reactor's entry point, called once before anything else.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: the linker's constructor list, run once, as WASI requires.
    unsafe { __wasm_call_ctors() };
    std::panic::set_hook(Box::new(|info| {
        abi::log(abi::LOG_CRITICAL, &format!("faas-mesh-auth: panic: {info}"));
    }));
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host's allocations in our memory: a boxed slice of exactly `size`
/// bytes, which `abi` takes back as a `Vec` of that length.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let slice: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(size);
    Box::into_raw(slice).cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root: u32, _vm_configuration_size: usize) -> bool {
    true
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(context: u32, parent: u32) {
    with_vm(|vm| match parent {
        0 => vm.roots.add_root(context, None),
        _ => vm.roots.stream_created(context, parent),
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(root: u32, _configuration_size: usize) -> bool {
    if let Some(level) = abi::log_level() {
        let rank = match level {
            abi::LOG_TRACE | abi::LOG_DEBUG => 0,
            abi::LOG_INFO => 1,
            abi::LOG_WARN => 2,
            _ => 3,
        };
        MIN_LEVEL.store(rank, Ordering::Relaxed);
    }
    let raw = abi::buffer(abi::PLUGIN_CONFIGURATION, 0, usize::MAX).unwrap_or_default();
    let compiled = match compile(&raw, &node_identity()) {
        Ok(cfg) => cfg,
        Err(e) => {
            WasmHost.log(
                LogLevel::Error,
                &format!("faas-mesh-auth: invalid plugin configuration: {e}"),
            );
            return false;
        }
    };
    let configured = with_vm(|vm| {
        let Some(slot) = vm.roots.get(root) else {
            return false;
        };
        *slot = Some(Worker::new(&WasmHost, root, compiled));
        // Every worker ticks: metrics and the clock, and the keys when they
        // are fetched.
        abi::set_tick_period_ms(u32::try_from(TICK_MS).unwrap_or(u32::MAX))
    });
    configured == Some(true)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_tick(root: u32) {
    let deferred: Vec<CallResponse> = DEFERRED.with(|d| {
        d.try_borrow_mut()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    });
    with_vm(|vm| {
        for r in deferred {
            if let Some(w) = vm.worker(r.root) {
                w.on_fetch_response(&WasmHost, r.token, r.status, r.body);
            }
        }
        vm.ticks = vm.ticks.wrapping_add(1);
        if vm.ticks.is_multiple_of(PRUNE_TICKS) {
            vm.prune(root);
        }
        if let Some(w) = vm.worker(root) {
            w.on_tick(&WasmHost);
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(stream: u32, _headers: usize, _eos: bool) -> u32 {
    let flow = with_vm(|vm| {
        vm.roots
            .for_stream(stream)
            .and_then(Option::as_mut)
            .map(|w| w.on_request(&WasmHost, stream))
    })
    .flatten()
    // Not configured (Envoy normally refuses the plugin then), or busy:
    // never let a request through unchecked.
    .unwrap_or_else(fail_closed);
    match flow {
        Flow::Continue => abi::ACTION_CONTINUE,
        Flow::Pause => abi::ACTION_PAUSE,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_http_call_response(
    root: u32,
    token: u32,
    _headers: usize,
    body_size: usize,
    _trailers: usize,
) {
    // Envoy reports a failed call (reset, timeout, no upstream) with no
    // headers at all.
    let status = abi::header(abi::HTTP_CALL_RESPONSE_HEADERS, ":status").and_then(|b| {
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
    });
    let too_big = body_size > MAX_JWKS_BYTES;
    let body = if too_big {
        None
    } else {
        abi::buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size)
    };
    let status = match status {
        Some(200) if too_big => Some(413),
        s => s,
    };
    let mut response = Some(CallResponse {
        root,
        token,
        status,
        body,
    });
    with_vm(|vm| {
        if let (Some(w), Some(r)) = (vm.worker(root), response.take()) {
            w.on_fetch_response(&WasmHost, r.token, r.status, r.body);
        }
    });
    if let Some(r) = response {
        DEFERRED.with(|d| {
            if let Ok(mut d) = d.try_borrow_mut() {
                d.push(r);
            }
        });
    }
}

fn fail_closed() -> Flow {
    WasmHost.send_response(
        503,
        &mesh_auth_core::headers::DENIAL_HEADERS,
        b"function authentication is not configured\n",
    );
    Flow::Pause
}

/// Node metadata as Istio sets it; Envoy 1.40 puts it under `xds.node`,
/// older Envoys under `node`.
fn node_identity() -> NodeIdentity {
    let first = |paths: &[&[&str]]| {
        paths.iter().find_map(|p| {
            abi::property(p)
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

// ---- the host ----------------------------------------------------------

struct WasmHost;

fn level_rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warn => 2,
        LogLevel::Error => 3,
    }
}

fn serialized(pairs: &[(&str, &str)]) -> Vec<u8> {
    headers::serialize(pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
}

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        abi::now_ns().map_or(0, |ns| ns / 1_000_000)
    }

    fn log(&self, level: LogLevel, message: &str) {
        if level_rank(level) < MIN_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let pw = match level {
            LogLevel::Debug => abi::LOG_DEBUG,
            LogLevel::Info => abi::LOG_INFO,
            LogLevel::Warn => abi::LOG_WARN,
            LogLevel::Error => abi::LOG_ERROR,
        };
        abi::log(pw, message);
    }

    fn request_header(&self, name: &str) -> Option<String> {
        abi::header(abi::REQUEST_HEADERS, name).map(|b| {
            // No second copy when the value is valid UTF-8 (the usual case).
            String::from_utf8(b)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
    }

    fn request_header_map(&self) -> Vec<u8> {
        abi::header_map(abi::REQUEST_HEADERS).unwrap_or_default()
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => abi::replace_header(abi::REQUEST_HEADERS, name, v),
            None => abi::remove_header(abi::REQUEST_HEADERS, name),
        };
    }

    fn send_response(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        abi::send_local_response(status, &serialized(headers), body);
    }

    fn resume_request(&self) {
        abi::continue_request();
    }

    fn set_effective_context(&self, context_id: u32) -> bool {
        abi::set_effective_context(context_id)
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        abi::define_counter(name)
    }

    fn increment(&self, metric: u32, by: u64) {
        abi::increment_metric(metric, i64::try_from(by).unwrap_or(i64::MAX));
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        abi::shared_data(key)
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        abi::set_shared_data(key, value, cas)
    }

    fn call_foreign(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, ForeignError> {
        abi::call_foreign(name, args).map_err(|status| match status {
            abi::NOT_FOUND => ForeignError::NotFound,
            _ => ForeignError::Failed,
        })
    }

    fn http_call(&self, cluster: &str, headers: &[(&str, &str)], timeout_ms: u64) -> Option<u32> {
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        abi::http_call(cluster, &serialized(headers), timeout)
    }
}

//! Cost probes for `make bench` (`BENCH_PROBES=1`): a proxy-wasm filter
//! that does one isolated part of the real filter's work per request, so
//! the table can say where the real filter's time goes. The plugin
//! configuration picks the part:
//!
//! * `hostcalls`: the host calls a cache hit makes, and nothing else: read
//!   `:path` and `authorization`, read the clock, remove one header, set
//!   one, increment one counter. No parsing, no cache. `hostcalls:LIST`
//!   makes only those named in LIST (`path,auth,time,remove,set,inc`, and
//!   `map`: all headers in one call), to price them one by one.
//! * `verify:<spki hex>:<signature hex>:<message>`: one call of Envoy's
//!   `verify_signature` foreign function (BoringSSL ES256) with these fixed
//!   arguments, as the filter encodes them; a request whose signature does
//!   not check out gets 500, so a broken probe cannot pass for a fast one.

use std::cell::Cell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { probe: Rc::new(Cell::new(None)), args: Rc::new(Vec::new()), counter: 0 })
    });
}}

#[derive(Clone, Copy)]
enum Probe {
    /// Which host calls: bits of [`CALLS`].
    Hostcalls(u8),
    Verify,
}

/// `map`: every request header in one call (`get_map_bytes`), the way the
/// filter reads them since it stopped asking for them one by one.
const CALLS: [&str; 7] = ["path", "auth", "time", "remove", "set", "inc", "map"];

struct Root {
    probe: Rc<Cell<Option<Probe>>>,
    args: Rc<Vec<u8>>,
    counter: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
        self.counter =
            hostcalls::define_metric(MetricType::Counter, "bench_probe.requests").unwrap_or(0);
        if text == "hostcalls" {
            self.probe.set(Some(Probe::Hostcalls(0x3f)));
            return true;
        }
        if let Some(list) = text.strip_prefix("hostcalls:") {
            let mut bits = 0u8;
            for name in list.split(',') {
                match CALLS.iter().position(|c| *c == name) {
                    Some(i) => bits |= 1 << i,
                    None => return false,
                }
            }
            self.probe.set(Some(Probe::Hostcalls(bits)));
            return true;
        }
        let mut parts = text.splitn(4, ':');
        if let (Some("verify"), Some(key), Some(sig), Some(msg)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
            && let (Some(key), Some(sig)) = (hex(key), hex(sig))
        {
            let mut args = Vec::new();
            field(&mut args, 1, b"sha256");
            field(&mut args, 2, &key);
            field(&mut args, 3, &sig);
            field(&mut args, 4, msg.as_bytes());
            self.args = Rc::new(args);
            self.probe.set(Some(Probe::Verify));
            return true;
        }
        false
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            probe: self.probe.get(),
            args: self.args.clone(),
            counter: self.counter,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    probe: Option<Probe>,
    args: Rc<Vec<u8>>,
    counter: u32,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        match self.probe {
            Some(Probe::Hostcalls(bits)) => {
                let on = |i: usize| bits & (1 << i) != 0;
                let mut kept = Vec::new();
                if on(0) {
                    kept.push(hostcalls::get_map_value_bytes(
                        MapType::HttpRequestHeaders,
                        ":path",
                    ));
                }
                if on(1) {
                    kept.push(hostcalls::get_map_value_bytes(
                        MapType::HttpRequestHeaders,
                        "authorization",
                    ));
                }
                if on(2) {
                    let _ = hostcalls::get_current_time();
                }
                if on(3) {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "x-faas-mesh-auth-audit",
                        None,
                    );
                }
                if on(4) {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "x-faas-mesh-auth-subject",
                        Some("fed:bench-user"),
                    );
                }
                if on(5) {
                    let _ = hostcalls::increment_metric(self.counter, 1);
                }
                if on(6) {
                    let all = hostcalls::get_map_bytes(MapType::HttpRequestHeaders);
                    drop(all);
                }
                drop(kept);
                Action::Continue
            }
            Some(Probe::Verify) => {
                let ok = matches!(
                    hostcalls::call_foreign_function("verify_signature", Some(&self.args)),
                    Ok(Some(r)) if r.starts_with(&[0x08, 0x01])
                );
                if ok {
                    Action::Continue
                } else {
                    let _ =
                        hostcalls::send_http_response(500, vec![], Some(b"probe: verify failed\n"));
                    Action::Pause
                }
            }
            None => Action::Continue,
        }
    }
}

fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    let mut v = bytes.len() as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out.extend_from_slice(bytes);
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

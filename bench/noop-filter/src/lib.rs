//! The floor of `make bench`: a proxy-wasm HTTP filter that does nothing.
//!
//! Same SDK, same VM (V8), same release profile as the real filter, and
//! every request still crosses into the VM for each callback Envoy makes
//! (`on_http_request_headers`, `on_http_response_headers`, `on_done`...),
//! each answered with the SDK's default: continue. What the real filter
//! costs above this is what its own work costs.

use proxy_wasm::traits::{Context, HttpContext};

proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_context_id, _root_context_id| -> Box<dyn HttpContext> {
        Box::new(Noop)
    });
}}

struct Noop;

impl Context for Noop {}

impl HttpContext for Noop {}

//! A cost probe for `make bench` (`BENCH_PROBES=1`): a proxy-wasm filter
//! that makes one call of Envoy's `verify_signature` foreign function
//! (BoringSSL ES256) per request, with the fixed arguments of its plugin
//! configuration `verify:<spki hex>:<signature hex>:<message>`, encoded as
//! the real filter encodes them, and does nothing else. A request whose
//! signature does not check out gets 500, so a broken probe cannot pass for
//! a fast one. Built on the SDK: compare it with the SDK's do-nothing filter.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { args: None })
    });
}}

struct Root {
    /// The encoded `VerifySignatureArguments`, once configured.
    args: Option<Rc<Vec<u8>>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
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
            self.args = Some(Rc::new(args));
            return true;
        }
        false
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            args: self.args.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    args: Option<Rc<Vec<u8>>>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(args) = &self.args else {
            return Action::Continue;
        };
        let ok = matches!(
            hostcalls::call_foreign_function("verify_signature", Some(args)),
            Ok(Some(r)) if r.starts_with(&[0x08, 0x01])
        );
        if ok {
            Action::Continue
        } else {
            let _ = hostcalls::send_http_response(500, vec![], Some(b"probe: verify failed\n"));
            Action::Pause
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

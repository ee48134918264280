//! The built `.wasm`'s exports: Envoy enters the VM for every callback a
//! module exports, so the filter exports only those it uses, and a request
//! costs two entries (its context, its request headers), not seven.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mesh_auth_tests::filter_wasm;

fn leb128(b: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// Names of the function exports, from the module's export section (id 7).
fn function_exports(module: &[u8]) -> Vec<String> {
    assert_eq!(&module[..4], b"\0asm", "not a wasm module");
    let mut at = 8;
    let mut names = Vec::new();
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb128(module, &mut at) as usize;
        let end = at + size;
        if id == 7 {
            let mut p = at;
            for _ in 0..leb128(module, &mut p) {
                let len = leb128(module, &mut p) as usize;
                let name = String::from_utf8(module[p..p + len].to_vec()).unwrap();
                p += len;
                let kind = module[p];
                p += 1;
                leb128(module, &mut p);
                if kind == 0 {
                    names.push(name);
                }
            }
        }
        at = end;
    }
    names.sort();
    names
}

#[test]
fn the_filter_exports_only_the_callbacks_it_uses() {
    let module = std::fs::read(filter_wasm().unwrap()).unwrap();
    assert_eq!(
        function_exports(&module),
        [
            "_initialize",
            "proxy_abi_version_0_2_1",
            "proxy_on_configure",
            "proxy_on_context_create",
            "proxy_on_http_call_response",
            "proxy_on_memory_allocate",
            "proxy_on_request_headers",
            "proxy_on_tick",
            "proxy_on_vm_start",
        ]
    );
}

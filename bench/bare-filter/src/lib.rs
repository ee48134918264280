//! The floor of a wasm hop for `make bench`: a proxy-wasm HTTP filter that
//! does nothing, bound to the ABI by hand like the real filter and exporting
//! only what a request needs (its context, its request headers). Envoy
//! enters a VM only for the callbacks it exports, so this costs less than
//! the SDK's do-nothing filter, which exports all of them.

use std::mem::MaybeUninit;

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let slice: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(size);
    Box::into_raw(slice).cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> bool {
    true
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(_root: u32, _size: usize) -> bool {
    true
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(_context: u32, _parent: u32) {}

/// Continue (0).
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(_stream: u32, _headers: usize, _eos: bool) -> u32 {
    0
}

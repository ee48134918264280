//! The floor of a wasm hop for `make bench`: a proxy-wasm HTTP filter that
//! does nothing, bound to the ABI by hand like the real filter and exporting
//! only what a request needs (its context, its request headers). Envoy
//! enters a VM only for the callbacks it exports, so this costs less than
//! the SDK's do-nothing filter, which exports all of them.
//!
//! With the plugin configuration `headers` it also reads the request's
//! headers in one host call, as the real filter's cache hit does, and
//! nothing else: the price of that call on top of the floor.
//!
//! Its few declarations repeat `filter/src/wasm/abi.rs` on purpose: the
//! floor must not link any of the filter (a cdylib, so not a dependency).

use std::mem::MaybeUninit;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};

/// `proxy_buffer_type_t` plugin configuration; `proxy_map_type_t` request headers.
const PLUGIN_CONFIGURATION: u32 = 7;
const REQUEST_HEADERS: u32 = 0;

static READ_HEADERS: AtomicBool = AtomicBool::new(false);

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// Take back a buffer the host allocated with `proxy_on_memory_allocate`.
fn taken(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    // SAFETY: a boxed slice of exactly `size` bytes, handed over by the host.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

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
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out pointers.
    unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, usize::MAX, &mut data, &mut size) };
    let config = taken(data, size);
    match config.as_slice() {
        b"" => true,
        b"headers" => {
            READ_HEADERS.store(true, Ordering::Relaxed);
            true
        }
        _ => false,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(_context: u32, _parent: u32) {}

/// Continue (0).
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(_stream: u32, _headers: usize, _eos: bool) -> u32 {
    if READ_HEADERS.load(Ordering::Relaxed) {
        let (mut data, mut size) = (null_mut(), 0usize);
        // SAFETY: valid out pointers.
        unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) };
        std::hint::black_box(taken(data, size));
    }
    0
}

//! The proxy-wasm 0.2.1 hostcalls this filter makes, bound by hand. Every
//! status comes back as a value: nothing here panics, whatever the host
//! answers.

use std::ptr::{null, null_mut};

/// `proxy_status_t`: only the values we act on.
pub const OK: u32 = 0;
pub const NOT_FOUND: u32 = 1;

/// `proxy_map_type_t`.
pub const REQUEST_HEADERS: u32 = 0;
pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
/// `proxy_buffer_type_t`.
pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
pub const PLUGIN_CONFIGURATION: u32 = 7;
/// `proxy_log_level_t`: trace 0 to critical 5.
pub const LOG_TRACE: u32 = 0;
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;
pub const LOG_CRITICAL: u32 = 5;
const METRIC_COUNTER: u32 = 0;
const STREAM_HTTP_REQUEST: u32 = 0;
/// `proxy_on_request_headers` answers.
pub const ACTION_CONTINUE: u32 = 0;
pub const ACTION_PAUSE: u32 = 1;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_set_effective_context(context: u32) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_http_call(
        cluster: *const u8,
        cluster_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_size: usize,
        args: *const u8,
        args_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
}

/// Take ownership of a buffer the host returned. The host allocates it
/// through our `proxy_on_memory_allocate`, a boxed slice of exactly `size`
/// bytes, and hands it over.
///
/// # Safety
/// `data` is null or came from `proxy_on_memory_allocate(size)`.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: see above; capacity equals the allocation's length.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// A hostcall that returns one buffer; None for any status but OK.
fn returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    let status = call(&mut data, &mut size);
    // SAFETY: the host fills `data` only through proxy_on_memory_allocate.
    let buffer = unsafe { take(data, size) };
    if status == OK { buffer } else { None }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn log_level() -> Option<u32> {
    let mut level = 0;
    // SAFETY: a valid out pointer.
    (unsafe { proxy_get_log_level(&mut level) } == OK).then_some(level)
}

pub fn now_ns() -> Option<u64> {
    let mut t = 0;
    // SAFETY: a valid out pointer.
    (unsafe { proxy_get_current_time_nanoseconds(&mut t) } == OK).then_some(t)
}

pub fn set_tick_period_ms(period: u32) -> bool {
    // SAFETY: no pointers.
    unsafe { proxy_set_tick_period_milliseconds(period) == OK }
}

pub fn buffer(kind: u32, start: usize, max_size: usize) -> Option<Vec<u8>> {
    // SAFETY: valid out pointers.
    returned(|d, s| unsafe { proxy_get_buffer_bytes(kind, start, max_size, d, s) })
}

/// A header map in the serialized form (see `crate::headers`).
pub fn header_map(map: u32) -> Option<Vec<u8>> {
    // SAFETY: valid out pointers.
    returned(|d, s| unsafe { proxy_get_header_map_pairs(map, d, s) })
}

pub fn header(map: u32, name: &str) -> Option<Vec<u8>> {
    // SAFETY: a live str and valid out pointers.
    returned(|d, s| unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), d, s) })
}

pub fn replace_header(map: u32, name: &str, value: &str) -> bool {
    // SAFETY: live strs.
    unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
            == OK
    }
}

pub fn remove_header(map: u32, name: &str) -> bool {
    // SAFETY: a live str.
    unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) == OK }
}

/// Answer the current stream; `headers` serialized.
pub fn send_local_response(status: u32, headers: &[u8], body: &[u8]) -> bool {
    // SAFETY: live slices; no details string (null, 0); no gRPC status (-1).
    unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        ) == OK
    }
}

pub fn continue_request() -> bool {
    // SAFETY: no pointers.
    unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) == OK }
}

pub fn set_effective_context(context: u32) -> bool {
    // SAFETY: no pointers.
    unsafe { proxy_set_effective_context(context) == OK }
}

pub fn define_counter(name: &str) -> Option<u32> {
    let mut id = 0;
    // SAFETY: a live str and a valid out pointer.
    (unsafe { proxy_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id) } == OK)
        .then_some(id)
}

pub fn increment_metric(id: u32, by: i64) -> bool {
    // SAFETY: no pointers.
    unsafe { proxy_increment_metric(id, by) == OK }
}

/// The value and its CAS token (0 means none); both absent when not found.
pub fn shared_data(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: a live str and valid out pointers.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    // SAFETY: filled only through proxy_on_memory_allocate.
    let value = unsafe { take(data, size) };
    if status != OK {
        return (None, None);
    }
    (value, (cas != 0).then_some(cas))
}

/// Store a value; with a CAS token only if unchanged. False on a mismatch.
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    // SAFETY: live slices.
    unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        ) == OK
    }
}

/// An HTTP call to `cluster`, `headers` serialized; its token.
pub fn http_call(cluster: &str, headers: &[u8], timeout_ms: u32) -> Option<u32> {
    let no_trailers = 0u32.to_le_bytes();
    let mut token = 0;
    // SAFETY: live slices and a valid out pointer; no body.
    let status = unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            null(),
            0,
            no_trailers.as_ptr(),
            no_trailers.len(),
            timeout_ms,
            &mut token,
        )
    };
    (status == OK).then_some(token)
}

/// A host extension by name: its result, or the failing status.
pub fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>, u32> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: live slices and valid out pointers.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut data,
            &mut size,
        )
    };
    // SAFETY: filled only through proxy_on_memory_allocate.
    let result = unsafe { take(data, size) };
    match status {
        OK => Ok(result.unwrap_or_default()),
        s => Err(s),
    }
}

/// A property by its path segments (joined with NULs, as the ABI wants).
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let joined = path.join("\0");
    // SAFETY: a live buffer and valid out pointers.
    returned(|d, s| unsafe { proxy_get_property(joined.as_ptr(), joined.len(), d, s) })
}

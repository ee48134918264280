//! Envoy proxy-wasm filter (in progress).

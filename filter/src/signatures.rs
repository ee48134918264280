//! The filter's [`SignatureVerifier`]: Envoy's native `verify_signature`
//! foreign function, BoringSSL outside the wasm VM. ES256 there costs a
//! fraction of pure Rust inside V8, and a cold token (one not in the cache)
//! is exactly that cost. Where the host lacks the function (older Envoys,
//! other proxies), the first call says so and every later one goes straight
//! to the pure-Rust check.

use std::cell::Cell;

use mesh_auth_core::jwks::{Algorithm, RawKey, VerifyingKey};
use mesh_auth_core::verify::{SignatureVerifier, es256_signature_to_der};

use crate::host::{ForeignError, Host, LogLevel};

pub const FOREIGN_FUNCTION: &str = "verify_signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    /// Not tried yet.
    Unknown,
    Available,
    /// Missing from the host, or turned off (`"crypto": "wasm"`).
    Unavailable,
}

/// The host's verifier for one call, remembering what it learns.
pub struct HostSignatures<'a> {
    pub host: &'a dyn Host,
    pub state: &'a Cell<Native>,
    /// Set when this path decided (for the metrics).
    pub answered: Cell<bool>,
}

impl<'a> HostSignatures<'a> {
    pub fn new(host: &'a dyn Host, state: &'a Cell<Native>) -> Self {
        HostSignatures {
            host,
            state,
            answered: Cell::new(false),
        }
    }
}

impl SignatureVerifier for HostSignatures<'_> {
    fn verify(&self, key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Option<bool> {
        let spki_der = match (&key.alg, &key.raw) {
            (Algorithm::ES256, RawKey::P256 { spki_der, .. }) => spki_der,
            _ => return None,
        };
        if self.state.get() == Native::Unavailable {
            return None;
        }
        // Not 64 bytes: not an ES256 signature at all.
        let Some(der) = es256_signature_to_der(signature) else {
            self.answered.set(true);
            return Some(false);
        };
        let args = encode_arguments(spki_der, &der, message);
        match self.host.call_foreign(FOREIGN_FUNCTION, &args) {
            Ok(result) => {
                self.state.set(Native::Available);
                self.answered.set(true);
                Some(decode_result(&result))
            }
            Err(ForeignError::NotFound) => {
                self.state.set(Native::Unavailable);
                self.host.log(
                    LogLevel::Info,
                    "faas-mesh-auth: the host has no verify_signature function; verifying in wasm",
                );
                None
            }
            // The host could not take the arguments: let the pure-Rust
            // check decide rather than guess.
            Err(ForeignError::Failed) => None,
        }
    }
}

/// `VerifySignatureArguments` (Envoy's `verify_signature.proto`):
/// hash_function = 1, public_key (DER) = 2, signature = 3, text = 4.
fn encode_arguments(spki_der: &[u8], signature_der: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spki_der.len() + signature_der.len() + text.len() + 24);
    field(&mut out, 1, b"sha256");
    field(&mut out, 2, spki_der);
    field(&mut out, 3, signature_der);
    field(&mut out, 4, text);
    out
}

fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `VerifySignatureResult`: result = 1 (bool), error = 2 (string). Valid
/// only if `result` is present and true; anything unreadable is invalid.
fn decode_result(bytes: &[u8]) -> bool {
    let mut i = 0;
    let mut valid = false;
    while i < bytes.len() {
        let tag = bytes[i];
        i += 1;
        match tag {
            0x08 => match read_varint(bytes, &mut i) {
                Some(v) => valid = v == 1,
                None => return false,
            },
            t if t & 0x07 == 2 => {
                let Some(len) = read_varint(bytes, &mut i) else {
                    return false;
                };
                i = match usize::try_from(len).ok().and_then(|l| i.checked_add(l)) {
                    Some(end) if end <= bytes.len() => end,
                    _ => return false,
                };
            }
            _ => return false,
        }
    }
    valid
}

fn read_varint(bytes: &[u8], i: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*i)?;
        *i += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests;

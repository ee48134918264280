//! The host-independent core of faas-mesh-auth: function-token verification,
//! permission matching and IAM policy evaluation, shared by the wasm sidecar
//! filter and ext-authz. No proxy-wasm, tokio or hyper here, so all of it is
//! unit-tested natively and builds unchanged for `wasm32-wasip1`.
//!
//! It also holds, once, the contract the filter and ext-authz must agree
//! on: the headers they write and what may be forwarded in them
//! ([`headers`]), the Bearer challenge ([`bearer`]), denial bodies
//! ([`invoke`]) and the claims IAM conditions read ([`Claims::to_claim_map`]).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bearer;
pub mod claims;
pub mod clock;
pub mod glob;
pub mod headers;
pub mod iam;
pub mod invoke;
pub mod jwks;
pub mod permission;
pub mod verify;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use claims::{Claims, FunctionGrant, GatewayClaims, TokenKind};
pub use clock::{Clock, FixedClock, SystemClock, UnixSeconds};
pub use invoke::{InvokeDenial, authorize_invoke};
pub use jwks::{Algorithm, JwksError, KeySet, SkippedKey};
pub use permission::{FunctionId, FunctionIdError, PermissionPattern};
pub use verify::{TokenError, Validation, ValidationError, Verified, verify};

//! What the filter decided for one request, and how each refusal reads on
//! the wire: its code (for metrics and the audit header), status, challenge
//! and body.

use std::rc::Rc;

use mesh_auth_core::InvokeDenial;

/// A final answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { subject: Option<Rc<str>> },
    Deny(InvokeDenial),
    Unavailable(Unavailable),
}

/// The request cannot be checked at all: 503, never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NoKeys,
    NoIdentity,
}

/// A refusal as the client gets it, or in audit mode would have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub status: u32,
    /// `WWW-Authenticate`, for 401s.
    pub challenge: Option<String>,
    pub body: &'static str,
}

impl From<&InvokeDenial> for Refusal {
    fn from(d: &InvokeDenial) -> Self {
        Refusal {
            code: d.code(),
            status: u32::from(d.status()),
            challenge: d.www_authenticate(),
            body: d.body(),
        }
    }
}

impl From<Unavailable> for Refusal {
    fn from(u: Unavailable) -> Self {
        let (code, body) = match u {
            Unavailable::NoKeys => ("no_keys", "function token keys are not available\n"),
            Unavailable::NoIdentity => ("no_identity", "function identity is not configured\n"),
        };
        Refusal {
            code,
            status: 503,
            challenge: None,
            body,
        }
    }
}

//! An explanation, as data (`--json`) and as text. The verdict's status,
//! code and message come from the enforcing code's own types
//! ([`Decision`], [`OAuthError`], [`InvokeDenial`]).

use std::fmt;

use ext_authz::authz::{CheckError, Decision};
use ext_authz::http::token::OAuthError;
use mesh_auth_core::iam::JwtIssuer;
use mesh_auth_core::iam::explain::{RequirementTrace, RoleTrace, StatementTrace};
use mesh_auth_core::{FunctionGrant, InvokeDenial};
use serde::Serialize;
use serde_json::Value;

pub(super) const OFFLINE: &str =
    "offline: the token's signature is NOT checked; its claims are, as ext-authz checks them";

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub offline: &'static str,
    pub subject: SubjectReport,
    /// What was asked: a function, or a method and path.
    pub target: Value,
    /// Every Role and whether it matched (IdP tokens only: our tokens name
    /// their Policies).
    pub roles: Vec<RoleTrace>,
    /// The Policies in play: the matched Roles', or the API token's.
    pub policies: Vec<String>,
    /// Named by the API token, gone from the IAM directory.
    pub missing_policies: Vec<String>,
    /// The Policies' statements against the action and resource.
    pub statements: Vec<StatementTrace>,
    /// `Function:Invoke` resources of the statements in effect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// The function token's `function` claim: granted, or presented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_token: Option<FunctionGrant>,
    pub notes: Vec<String>,
    pub decision: Verdict,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SubjectReport {
    /// `idp`, `api` or `function`.
    pub kind: &'static str,
    pub iss: Option<String>,
    pub sub: Option<String>,
    /// The gateway's issuer assumed for our tokens.
    pub gateway: String,
    /// The JwtIssuer that trusts the subject.
    pub issuer: Option<IssuerReport>,
    /// When none does: the `iss` values configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted: Vec<String>,
    /// Why the claims were refused (`exp`, `aud`...), if they were.
    pub claims_check: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuerReport {
    pub name: String,
    pub origin: String,
    pub iss: String,
    pub aud: Vec<String>,
    pub token_expiry_seconds: u64,
}

impl IssuerReport {
    pub fn of(i: &JwtIssuer) -> Self {
        IssuerReport {
            name: i.name().to_owned(),
            origin: i.origin().to_owned(),
            iss: i.iss().to_owned(),
            aud: i.aud().to_vec(),
            token_expiry_seconds: i.token_expiry().as_secs(),
        }
    }
}

/// The final decision, as the enforcing part answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub allowed: bool,
    /// `exchange` (/oauth/token), `check` (ext-authz's Check) or `filter`
    /// (the sidecar's invoke rule).
    pub by: &'static str,
    /// The HTTP status the client sees.
    pub status: u16,
    /// The reason code on the metric and the audit line (`ok` when
    /// allowed).
    pub reason: &'static str,
    /// The OAuth `error` of a refused exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    pub message: String,
}

impl Verdict {
    /// The exchange refused.
    pub fn exchange(e: &OAuthError, reason: &'static str) -> Self {
        Verdict {
            allowed: false,
            by: "exchange",
            status: e.status(),
            reason,
            error: Some(e.code()),
            message: e.description().to_owned(),
        }
    }

    /// The sidecar filter's rule on a function token.
    pub fn invoke(r: Result<(), InvokeDenial>) -> Self {
        Self::invoke_by("filter", r)
    }

    /// The exchange granted; then the filter's rule on what it signs.
    pub fn exchange_then_invoke(r: Result<(), InvokeDenial>) -> Self {
        Self::invoke_by("exchange", r)
    }

    fn invoke_by(by: &'static str, r: Result<(), InvokeDenial>) -> Self {
        match r {
            Ok(()) => Verdict {
                allowed: true,
                by,
                status: 200,
                reason: "ok",
                error: None,
                message: "allowed".into(),
            },
            Err(d) => Verdict {
                allowed: false,
                by: "filter",
                status: d.status(),
                reason: d.code(),
                error: None,
                message: d.to_string(),
            },
        }
    }

    /// ext-authz's Check.
    pub fn check(d: &Decision) -> Self {
        Verdict {
            allowed: d.outcome.is_ok(),
            by: "check",
            status: d.http_status(),
            reason: d.reason(),
            error: None,
            message: match &d.outcome {
                Ok(_) => "allowed".into(),
                Err(CheckError::Denied(denial)) => denial.to_string(),
                Err(e) => e.to_string(),
            },
        }
    }
}

impl Report {
    pub fn note(&mut self, text: &str) {
        self.notes.push(text.to_owned());
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "+" } else { "-" }
}

fn requirement(f: &mut fmt::Formatter<'_>, indent: &str, r: &RequirementTrace) -> fmt::Result {
    let actual = r
        .actual
        .as_ref()
        .map_or_else(|| "(no such claim)".to_owned(), Value::to_string);
    writeln!(
        f,
        "{indent}{} {} {} {:?}: the token has {actual}",
        mark(r.held),
        r.key,
        r.operator,
        r.values
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Note: {}.", OFFLINE.trim_start_matches("offline: "))?;
        let s = &self.subject;
        let who = s.sub.as_deref().unwrap_or("(no sub)");
        let iss = s.iss.as_deref().unwrap_or("(no iss)");
        writeln!(
            f,
            "\nSubject: {who} from {iss} ({} token)",
            if s.kind.is_empty() { "unknown" } else { s.kind }
        )?;
        match (&s.issuer, s.kind) {
            (Some(i), _) => writeln!(
                f,
                "  trusted by JwtIssuer {:?} ({}): iss {}, aud {:?}, tokenExpiry {}s",
                i.name, i.origin, i.iss, i.aud, i.token_expiry_seconds
            )?,
            (None, "api" | "function") => {
                writeln!(f, "  one of ours (iss is the gateway, {})", s.gateway)?
            }
            (None, _) if !s.trusted.is_empty() => writeln!(
                f,
                "  no JwtIssuer has iss {iss:?} (exact match); configured: {:?}",
                s.trusted
            )?,
            (None, _) => {}
        }
        if let Some(e) = &s.claims_check {
            writeln!(f, "  claims refused: {e}")?;
        }
        if !self.roles.is_empty() {
            writeln!(f, "\nRoles:")?;
            for r in &self.roles {
                let state = if r.matched { "MATCHED" } else { "not matched" };
                writeln!(
                    f,
                    "  {} {} ({}): {state} -> policies {:?}",
                    mark(r.matched),
                    r.name,
                    r.origin,
                    r.policies
                )?;
                for q in &r.requirements {
                    requirement(f, "      ", q)?;
                }
            }
        }
        if !self.policies.is_empty() || !self.missing_policies.is_empty() {
            writeln!(f, "\nPolicies: {:?}", self.policies)?;
            if !self.missing_policies.is_empty() {
                writeln!(
                    f,
                    "  no longer in the IAM directory: {:?}",
                    self.missing_policies
                )?;
            }
        }
        if !self.statements.is_empty() {
            writeln!(f, "\nStatements for {}:", target_text(&self.target))?;
            for st in &self.statements {
                let sid = if st.sid.is_empty() {
                    "(no sid)"
                } else {
                    &st.sid
                };
                let why = if st.grants {
                    format!("GRANTS (resource {:?})", st.matching_resources)
                } else if !st.in_effect {
                    "not in effect: its condition does not hold".to_owned()
                } else if !st.covers_action {
                    format!("actions {:?} do not cover it", st.actions)
                } else {
                    format!("resources {:?} do not cover it", st.resources)
                };
                writeln!(f, "  {} {}/{sid}: {why}", mark(st.grants), st.policy)?;
                for q in &st.condition {
                    requirement(f, "      ", q)?;
                }
            }
        }
        if let Some(g) = &self.function_token {
            writeln!(f, "\nFunction token: permissions {:?}", g.permissions)?;
            match &g.audience {
                Some(a) if !a.is_empty() => {
                    writeln!(f, "  audience {a:?}: only these, within the permissions")?
                }
                _ => writeln!(f, "  no audience: every function the permissions cover")?,
            }
        }
        for n in &self.notes {
            writeln!(f, "\nNote: {n}")?;
        }
        let d = &self.decision;
        let verdict = if d.allowed { "ALLOWED" } else { "DENIED" };
        write!(
            f,
            "\nDecision ({}): {verdict} {} {}",
            d.by, d.status, d.reason
        )?;
        if let Some(e) = d.error {
            write!(f, " (error={e})")?;
        }
        write!(f, ": {}", d.message)
    }
}

fn target_text(t: &Value) -> String {
    match (t.get("function"), t.get("method"), t.get("path")) {
        (Some(func), _, _) => format!("Function:Invoke on {}", func.as_str().unwrap_or("")),
        (None, Some(m), Some(p)) => format!(
            "{} on {} ({} {})",
            t.get("action").and_then(Value::as_str).unwrap_or("?"),
            t.get("resource").and_then(Value::as_str).unwrap_or("?"),
            m.as_str().unwrap_or(""),
            p.as_str().unwrap_or("")
        ),
        _ => String::new(),
    }
}

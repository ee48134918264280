//! `explain`: why a request is allowed or denied, by the code that enforces
//! it, offline. The IAM directory is read by ext-authz's loader; the
//! subject goes through ext-authz's own steps (the exchange's
//! [`subject::of_idp_claims`] / [`subject::of_api_claims`] and
//! [`exchange::grant`], or the Check's [`decide`]); the verdict and its
//! status and reason code are theirs. The trace beside it (Roles,
//! requirements, statements) is read off the same evaluation
//! ([`mesh_auth_core::iam::explain`]).
//!
//! Offline means no keys: the token's signature is not checked. Every other
//! check is (shape, `exp`, `nbf`, `iat`, `iss`, `aud`, with the clock
//! leeway), by the core verifier's own claim checks.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use ext_authz::authz::{Action, CheckError, Decision, Policy, Resource, decide};
use ext_authz::exchange::{
    self, ExchangeError, ExchangeRequest, Grant, Subject, SubjectError, subject,
};
use ext_authz::http::token::OAuthError;
use ext_authz::iam_store::{self, IamLoadError};
use mesh_auth_core::iam::explain::StatementTrace;
use mesh_auth_core::iam::{self, ClaimMap, IamConfig, JwtIssuer, parse_go_duration};
use mesh_auth_core::verify::check_claims_unsigned;
use mesh_auth_core::{
    Algorithm, Claims, FunctionId, GatewayClaims, TokenError, Validation, Verified,
    authorize_invoke,
};
use serde_json::{Value, json};

mod report;

use report::{Report, Verdict};

/// Our tokens' issuer when `--issuer` is not given (only for tokens this
/// tool builds; a token of ours is then known by its `fed:iss` claim).
const UNNAMED_GATEWAY: &str = "https://gateway.invalid";
/// ext-authz's `--clock-skew` default.
const DEFAULT_CLOCK_SKEW: &str = "30s";

#[derive(clap::Args, Debug, Clone, Default)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["function", "request"])))]
pub struct ExplainArgs {
    /// The IAM directory, as ext-authz's --iam-dir.
    #[arg(long, env = "EXT_AUTHZ_IAM_DIR")]
    pub iam_dir: PathBuf,
    /// The subject token (a JWT). Without --token, --token-file or
    /// --claims, the token is read from stdin.
    #[arg(long, conflicts_with_all = ["token_file", "claims"])]
    pub token: Option<String>,
    /// A file holding the token; `-` for stdin.
    #[arg(long, conflicts_with = "claims")]
    pub token_file: Option<PathBuf>,
    /// Bare claims (a JSON object) instead of a token. `exp` and `aud` are
    /// filled in when missing (an hour from now; the issuer's first aud).
    #[arg(long)]
    pub claims: Option<String>,
    /// The gateway's issuer URL (ext-authz's --issuer): tokens with this
    /// `iss` are ours (API or function tokens).
    #[arg(long, env = "EXT_AUTHZ_ISSUER")]
    pub issuer: Option<String>,
    /// A function, NS:NAME: what the token exchange grants for
    /// `scope=function&audience=NS:NAME` (or, for a function token, what
    /// the sidecar filter decides).
    #[arg(long)]
    pub function: Option<String>,
    /// A gateway request, "METHOD /system/...?...": what ext-authz's Check
    /// decides.
    #[arg(long)]
    pub request: Option<String>,
    /// The request's body (for --request); `@FILE` reads a file.
    #[arg(long, requires = "request")]
    pub body: Option<String>,
    /// ext-authz's --clock-skew.
    #[arg(long, default_value = DEFAULT_CLOCK_SKEW)]
    pub clock_skew: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Iam(#[from] IamLoadError),
    #[error("cannot read the token from {0}: {1}")]
    ReadToken(String, #[source] std::io::Error),
    #[error("no token given (--token, --token-file, --claims or stdin)")]
    NoToken,
    #[error("--claims is not a JSON object: {0}")]
    Claims(String),
    #[error("--function {0:?}: {1}")]
    Function(String, String),
    #[error("--request {0:?}: use \"METHOD /path?query\"")]
    Request(String),
    #[error("--body {0}: {1}")]
    Body(String, #[source] std::io::Error),
    #[error("--clock-skew {0:?}: {1}")]
    ClockSkew(String, iam::DurationError),
    #[error("--issuer {0:?}: {1}")]
    Issuer(String, mesh_auth_core::ValidationError),
    #[error("cannot print: {0}")]
    Print(#[from] serde_json::Error),
}

impl ExplainError {
    /// The one place these become exit codes: 64 for what the user gave
    /// (ext-authz's code for bad configuration), 70 for our own faults.
    fn exit_code(&self) -> u8 {
        match self {
            ExplainError::Print(_) => 70,
            _ => 64,
        }
    }
}

/// Exit codes: 0 allowed, 1 denied, 64 bad input.
pub fn run(args: ExplainArgs) -> ExitCode {
    let result = explain(&args, now()).and_then(|report| {
        let text = if args.json {
            serde_json::to_string_pretty(&report)?
        } else {
            report.to_string()
        };
        println!("{text}");
        Ok(report.decision.allowed)
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("faas-mesh-auth explain: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the request is about.
enum Target {
    Function(FunctionId),
    Request {
        method: String,
        path: String,
        body: Vec<u8>,
    },
}

/// The whole explanation at `now`.
pub fn explain(args: &ExplainArgs, now: u64) -> Result<Report, ExplainError> {
    let (iam, _) = iam_store::load(&args.iam_dir)?;
    let leeway = parse_go_duration(&args.clock_skew)
        .map_err(|e| ExplainError::ClockSkew(args.clock_skew.clone(), e))?
        .as_secs();
    let target = target(args)?;
    let mut report = Report {
        offline: report::OFFLINE,
        ..Report::default()
    };
    let token = subject_token(args, &iam, now, &mut report)?;
    let iss = subject::unverified_issuer(&token);
    let gateway = gateway_issuer(args, &token, iss.as_ref().ok());
    let ctx = Ctx {
        iam: Arc::new(iam),
        gateway: gateway.clone(),
        own: Validation::new([gateway.as_str()], [gateway.as_str()])
            .map_err(|e| ExplainError::Issuer(gateway.clone(), e))?
            .with_leeway(leeway),
        leeway,
        now,
    };
    report.subject.gateway = gateway;
    let ours = matches!(&iss, Ok(i) if *i == ctx.gateway);
    match target {
        Target::Function(id) => explain_function(&ctx, &token, iss, ours, &id, &mut report),
        Target::Request { method, path, body } => {
            let check = CheckInput {
                method: &method,
                path: &path,
                body: &body,
            };
            explain_request(&ctx, &token, iss, ours, &check, &mut report);
        }
    }
    Ok(report)
}

fn target(args: &ExplainArgs) -> Result<Target, ExplainError> {
    if let Some(f) = &args.function {
        let (ns, name) = f
            .split_once(':')
            .ok_or_else(|| ExplainError::Function(f.clone(), "use NAMESPACE:NAME".into()))?;
        let id = FunctionId::new(ns, name)
            .map_err(|e| ExplainError::Function(f.clone(), e.to_string()))?;
        return Ok(Target::Function(id));
    }
    let r = args.request.clone().unwrap_or_default();
    let (method, path) = r
        .trim()
        .split_once(char::is_whitespace)
        .map(|(m, p)| (m.to_ascii_uppercase(), p.trim().to_owned()))
        .filter(|(m, p)| !m.is_empty() && p.starts_with('/'))
        .ok_or_else(|| ExplainError::Request(r.clone()))?;
    let body = match args.body.as_deref() {
        None => Vec::new(),
        Some(b) => match b.strip_prefix('@') {
            Some(file) => std::fs::read(file).map_err(|e| ExplainError::Body(b.to_owned(), e))?,
            None => b.as_bytes().to_vec(),
        },
    };
    Ok(Target::Request { method, path, body })
}

/// The token to explain: given, read, or built (unsigned) from `--claims`.
fn subject_token(
    args: &ExplainArgs,
    iam: &IamConfig,
    now: u64,
    report: &mut Report,
) -> Result<String, ExplainError> {
    if let Some(text) = &args.claims {
        let mut claims: ClaimMap = match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(ExplainError::Claims("not an object".into())),
            Err(e) => return Err(ExplainError::Claims(e.to_string())),
        };
        if !claims.contains_key("exp") {
            claims.insert("exp".into(), json!(now + 3600));
            report.note("exp was not given: an hour from now");
        }
        if !claims.contains_key("aud") {
            let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
            let aud = match iam.issuer(iss) {
                Some(i) => i.aud().first().cloned(),
                None => args.issuer.clone(),
            };
            if let Some(aud) = aud {
                report.note(&format!("aud was not given: {aud:?}"));
                claims.insert("aud".into(), json!(aud));
            }
        }
        return Ok(unsigned_token(&Value::Object(claims)));
    }
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) if f.as_os_str() != "-" => std::fs::read_to_string(f)
            .map_err(|e| ExplainError::ReadToken(f.display().to_string(), e))?,
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| ExplainError::ReadToken("stdin".into(), e))?;
            s
        }
    };
    let token = token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    if token.is_empty() {
        return Err(ExplainError::NoToken);
    }
    Ok(token.to_owned())
}

/// A JWT with these claims and no signature: only this tool reads it.
fn unsigned_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// `--issuer`, else: a token carrying `fed:iss` is ours, and its `iss` is
/// the gateway's.
fn gateway_issuer(args: &ExplainArgs, token: &str, iss: Option<&String>) -> String {
    if let Some(g) = &args.issuer {
        return g.clone();
    }
    match (iss, payload(token).and_then(|p| p.get("fed:iss").cloned())) {
        (Some(iss), Some(_)) => iss.clone(),
        _ => UNNAMED_GATEWAY.to_owned(),
    }
}

/// The payload, unverified, for display only.
fn payload(token: &str) -> Option<ClaimMap> {
    let p = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(p).ok()?;
    serde_json::from_slice(&bytes).ok()
}

struct Ctx {
    iam: Arc<IamConfig>,
    gateway: String,
    /// How ext-authz checks its own tokens (and the filter function tokens).
    own: Validation,
    leeway: u64,
    now: u64,
}

/// Who the subject is, as the exchange's subject step sees it, with the
/// Role trace for an IdP's token. Err: the exchange's refusal.
fn subject_of(
    ctx: &Ctx,
    token: &str,
    iss: Result<String, SubjectError>,
    ours: bool,
    report: &mut Report,
) -> Result<(Subject, ClaimMap), SubjectError> {
    let iss = iss?;
    report.subject.iss = Some(iss.clone());
    if ours {
        report.subject.kind = "api";
        let claims = check_claims_unsigned::<ClaimMap>(token, &ctx.own, ctx.now)
            .inspect_err(|e| report.subject.claims_check = Some(e.to_string()))?;
        report.subject.sub = claims.sub.clone();
        if claims.custom.contains_key("function") {
            report.subject.kind = "function";
        }
        let subject = subject::of_api_claims(&ctx.iam, &claims)?;
        report.policies = subject.policy_names.clone();
        return Ok((subject, claims.to_claim_map()));
    }
    report.subject.kind = "idp";
    report.subject.sub =
        payload(token).and_then(|p| p.get("sub").and_then(Value::as_str).map(str::to_owned));
    let Some(issuer) = ctx.iam.issuer(&iss) else {
        report.subject.trusted = ctx.iam.issuers().map(|i| i.iss().to_owned()).collect();
        return Err(SubjectError::UntrustedIssuer(iss));
    };
    report.subject.issuer = Some(report::IssuerReport::of(issuer));
    let claims = check_claims_unsigned::<ClaimMap>(token, &idp_validation(issuer, ctx), ctx.now)
        .inspect_err(|e| report.subject.claims_check = Some(e.to_string()))?;
    let map = claims.to_claim_map();
    let eval = ctx.iam.evaluate(&map);
    report.roles = ctx.iam.explain_roles(&eval, &map);
    let subject = subject::of_idp_claims(&ctx.iam, issuer, &claims)?;
    report.policies = subject.policy_names.clone();
    Ok((subject, map))
}

/// As `Issuers::verify` checks an IdP's token (less the signature).
fn idp_validation(issuer: &JwtIssuer, ctx: &Ctx) -> Validation {
    Validation::new([issuer.iss()], issuer.aud().iter().cloned())
        .map(|v| v.with_leeway(ctx.leeway))
        .and_then(|v| v.with_max_token_bytes(subject::MAX_SUBJECT_TOKEN_BYTES))
        .unwrap_or_else(|_| ctx.own.clone())
}

/// The statements of the subject's Policies against `action` on
/// `resource`: read off the Grants the enforcing code builds.
fn statements(
    ctx: &Ctx,
    claims: &ClaimMap,
    action: Action,
    resource: &iam::Resource<'_>,
    report: &mut Report,
) -> Vec<StatementTrace> {
    let grants = ctx.iam.grants_for_policies(&report.policies, claims);
    report.missing_policies = grants.missing_policies().to_vec();
    grants.explain(claims, action, resource)
}

fn explain_function(
    ctx: &Ctx,
    token: &str,
    iss: Result<String, SubjectError>,
    ours: bool,
    id: &FunctionId,
    report: &mut Report,
) {
    report.target = json!({"function": id.as_str().to_owned(), "action": "Function:Invoke"});
    let is_function_token = ours && payload(token).is_some_and(|p| p.contains_key("function"));
    if is_function_token {
        // A function token is not exchanged (ext-authz refuses it): what
        // matters is whether the sidecar filter lets it invoke `id`.
        report.subject.kind = "function";
        report.subject.iss = iss.ok();
        report.note("a function token is not exchanged (function_token); this is the sidecar filter's decision");
        let verdict = match check_claims_unsigned::<GatewayClaims>(token, &ctx.own, ctx.now) {
            Err(e) => {
                report.subject.claims_check = Some(e.to_string());
                Verdict::invoke(Err(mesh_auth_core::InvokeDenial::Token(e)))
            }
            Ok(claims) => {
                report.subject.sub = claims.sub.clone();
                report.function_token = claims.custom.function.clone();
                Verdict::invoke(authorize_invoke(&claims, id))
            }
        };
        report.decision = verdict;
        return;
    }
    let req = ExchangeRequest {
        scope: Some("function".into()),
        audiences: vec![id.as_str().to_owned()],
        ..ExchangeRequest::default()
    };
    let outcome = subject_of(ctx, token, iss, ours, report)
        .map_err(ExchangeError::from)
        .and_then(|(subject, claims)| {
            report.statements = statements(
                ctx,
                &claims,
                Action::FunctionInvoke,
                &iam::Resource::from(id),
                report,
            );
            report.permissions = subject.permissions.clone();
            exchange::grant(&subject, &req, ctx.now, false)
        });
    report.decision = match outcome {
        Ok(grant) => {
            report.function_token = grant.claims.function.clone();
            // What the sidecar then decides with the token the exchange signs.
            let claims = issued_claims(ctx, &grant);
            Verdict::exchange_then_invoke(authorize_invoke(&claims, id))
        }
        Err(e) => Verdict::exchange(&OAuthError::from(&e), e.reason()),
    };
}

/// The claims of the token the exchange would sign for `grant`.
fn issued_claims(ctx: &Ctx, grant: &Grant) -> Claims<GatewayClaims> {
    Claims {
        iss: Some(ctx.gateway.clone()),
        sub: Some(grant.sub.clone()),
        aud: vec![ctx.gateway.clone()],
        exp: grant.exp,
        nbf: None,
        iat: Some(ctx.now),
        jti: None,
        custom: grant.claims.clone(),
    }
}

struct CheckInput<'a> {
    method: &'a str,
    path: &'a str,
    body: &'a [u8],
}

fn explain_request(
    ctx: &Ctx,
    token: &str,
    iss: Result<String, SubjectError>,
    ours: bool,
    input: &CheckInput<'_>,
    report: &mut Report,
) {
    report.target = json!({"method": input.method, "path": input.path});
    let mut presented = token.to_owned();
    if !ours && input.path.starts_with("/system/") {
        // The gateway API takes our API tokens only: say what this token
        // gets as it is, then what the API token it buys gets.
        let (direct, _) = run_check(ctx, token, input);
        report.note(&format!(
            "presented as it is, this token gets {} {} ({}): the gateway API takes the API token the exchange gives for it (faas-mesh-auth login does that)",
            direct.http_status(),
            direct.reason(),
            denial_text(&direct)
        ));
        let req = ExchangeRequest::default();
        let grant = subject_of(ctx, token, iss, ours, report)
            .map_err(ExchangeError::from)
            .and_then(|(subject, _)| exchange::grant(&subject, &req, ctx.now, false));
        match grant {
            Ok(grant) => {
                report.note("explained below with the API token the exchange would issue");
                presented = unsigned_token(&claims_json(&issued_claims(ctx, &grant)));
            }
            Err(e) => {
                report.decision = Verdict::exchange(&OAuthError::from(&e), e.reason());
                return;
            }
        }
    } else if ours {
        report.subject.iss = iss.ok();
        let function = payload(token).is_some_and(|p| p.contains_key("function"));
        report.subject.kind = if function { "function" } else { "api" };
    }
    let (decision, seen) = run_check(ctx, &presented, input);
    report.target["action"] = json!(decision.action);
    report.target["resource"] = json!(decision.resource);
    if let Some(who) = decision.who.as_ref().filter(|_| ours) {
        report.subject.sub = who.sub.clone();
    }
    if let Some(seen) = seen {
        report.policies = seen.policies;
        report.missing_policies = seen.missing;
        report.statements = seen.statements;
    }
    if let Some(e) = payload(&presented)
        .and_then(|_| check_claims_unsigned::<GatewayClaims>(&presented, &ctx.own, ctx.now).err())
    {
        report.subject.claims_check = Some(e.to_string());
    }
    report.decision = Verdict::check(&decision);
}

/// ext-authz's Check of this request with `token`, and what its policy
/// looked at.
fn run_check(ctx: &Ctx, token: &str, input: &CheckInput<'_>) -> (Decision, Option<Seen>) {
    let policy = OfflinePolicy {
        iam: ctx.iam.clone(),
        validation: ctx.own.clone(),
        now: ctx.now,
        seen: Mutex::new(None),
    };
    let decision = decide(&policy, &check_request(token, input));
    (decision, policy.seen.into_inner().ok().flatten())
}

fn denial_text(d: &Decision) -> String {
    match &d.outcome {
        Ok(_) => "allowed".into(),
        Err(CheckError::Denied(denial)) => denial.to_string(),
        Err(e) => e.to_string(),
    }
}

fn claims_json(c: &Claims<GatewayClaims>) -> Value {
    let mut m = c.to_claim_map();
    m.insert("exp".into(), json!(c.exp));
    Value::Object(m)
}

/// Envoy's CheckRequest for this request, with the token as Bearer.
fn check_request(token: &str, input: &CheckInput<'_>) -> CheckRequest {
    let mut headers = std::collections::HashMap::new();
    headers.insert("authorization".to_owned(), format!("Bearer {token}"));
    headers.insert("content-length".to_owned(), input.body.len().to_string());
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: input.method.to_owned(),
                    path: input.path.to_owned(),
                    protocol: "HTTP/1.1".to_owned(),
                    size: i64::try_from(input.body.len()).unwrap_or(-1),
                    headers,
                    raw_body: input.body.to_vec(),
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

/// What the Check's policy looked at, for the trace.
struct Seen {
    policies: Vec<String>,
    missing: Vec<String>,
    statements: Vec<StatementTrace>,
}

/// ext-authz's Check policy without the keys: our tokens' claims checked
/// as `State::verify_own` checks them (no signature), and the decision
/// [`ext_authz::state::api_token_allows`], ext-authz's own.
struct OfflinePolicy {
    iam: Arc<IamConfig>,
    validation: Validation,
    now: u64,
    seen: Mutex<Option<Seen>>,
}

impl Policy for OfflinePolicy {
    fn verify(&self, token: &str) -> Result<Verified<GatewayClaims>, TokenError> {
        let claims = check_claims_unsigned::<GatewayClaims>(token, &self.validation, self.now)?;
        Ok(Verified {
            kid: String::new(),
            alg: Algorithm::ES256,
            claims,
        })
    }

    fn allows(&self, claims: &Claims<GatewayClaims>, action: Action, resource: &Resource) -> bool {
        let names = claims.custom.policy.clone().unwrap_or_default();
        let map = claims.to_claim_map();
        let grants = self.iam.grants_for_policies(&names, &map);
        let seen = Seen {
            statements: grants.explain(&map, action, &iam::Resource::from(resource)),
            missing: grants.missing_policies().to_vec(),
            policies: names,
        };
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(seen);
        }
        ext_authz::state::api_token_allows(&self.iam, claims, action, resource)
    }
}

#[cfg(test)]
mod tests;

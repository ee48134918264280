//! The soak's clients: real HTTP clients (reqwest, kept-alive connections)
//! doing what faas-cli, the go-sdk and curl users do, at a modest pace.
//!
//! Each worker cycles through invokes with a token it holds (the filter's
//! cache), invokes with a token exchanged just before, token exchanges
//! (IdP → function, IdP → API, API → function) and `/system/` calls. Some
//! requests are designed to be refused (outside the permissions): those
//! count as expected outcomes. A keeper refreshes the held tokens as a
//! client would, and holds the IdP token during an IdP outage.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::sync::watch;

use super::tally::{Kind, Outcome, Tally};
use crate::ext_authz::form_encode;

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The demo client's `sub` as ext-authz federates it.
pub const SUBJECT: &str = "fed:openfaas-demo";

/// One client request's upper bound: a hung hop shows as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the clients go.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:<gateway port>`
    pub gateway: String,
    /// The sidecar listeners of `openfaas-fn:env` and `dev:env`, called
    /// directly (a request that bypasses the gateway).
    pub sidecar_env: String,
    pub sidecar_dev: String,
    /// The IdP's token endpoint and the demo client.
    pub idp_token_url: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug)]
struct Held {
    token: String,
    at: Instant,
}

/// The tokens clients hold.
#[derive(Debug)]
pub struct Tokens {
    idp: Mutex<Held>,
    function: Mutex<Held>,
    api: Mutex<Held>,
    /// During an IdP outage clients keep the IdP token they have.
    pub hold_idp: AtomicBool,
}

impl Tokens {
    fn get(slot: &Mutex<Held>) -> String {
        slot.lock().map(|h| h.token.clone()).unwrap_or_default()
    }

    fn age(slot: &Mutex<Held>) -> Duration {
        slot.lock().map_or(Duration::MAX, |h| h.at.elapsed())
    }

    fn set(slot: &Mutex<Held>, token: String) {
        if let Ok(mut h) = slot.lock() {
            *h = Held {
                token,
                at: Instant::now(),
            };
        }
    }

    pub fn idp(&self) -> String {
        Self::get(&self.idp)
    }

    pub fn function(&self) -> String {
        Self::get(&self.function)
    }

    pub fn api(&self) -> String {
        Self::get(&self.api)
    }
}

/// A response, body read in full.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The `error` of an OAuth error body.
    pub fn oauth_error(&self) -> Option<String> {
        self.json()?.get("error")?.as_str().map(str::to_owned)
    }

    pub fn access_token(&self) -> Option<String> {
        self.json()?
            .get("access_token")?
            .as_str()
            .map(str::to_owned)
    }
}

/// What a request was designed to get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// 200 from the function (an echo), which saw the caller's `sub`.
    Invoked,
    /// 200 from the gateway API stand-in, after ext_authz allowed it.
    Allowed,
    /// The filter's 403: outside the token's permissions.
    FilterDenied,
    /// ext-authz's own 403 (a body, from its CheckResponse), not Envoy's
    /// bare 403 for a failed ext_authz call.
    AuthzDenied,
    /// 200 with an `access_token`.
    Issued,
    /// 400 `invalid_target`: an audience outside the permissions.
    InvalidTarget,
}

/// What a response looked like, short enough to group failures by.
pub fn describe(r: &Resp) -> String {
    let mut s = r.status.to_string();
    if let Some(desc) = r
        .header("www-authenticate")
        .and_then(|w| w.split("error_description=\"").nth(1))
        .and_then(|d| d.split('"').next())
    {
        s.push_str(" invalid_token ");
        s.push_str(desc);
    } else if let Some(err) = r.oauth_error() {
        s.push(' ');
        s.push_str(&err);
        if let Some(d) = r
            .json()
            .and_then(|v| v.get("error_description")?.as_str().map(str::to_owned))
        {
            s.push_str(": ");
            s.push_str(&d.chars().take(100).collect::<String>());
        }
    } else if r.body.trim().is_empty() {
        s.push_str(" (no body)");
    } else {
        s.push_str(": ");
        s.push_str(
            &r.body
                .trim()
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(80)
                .collect::<String>(),
        );
    }
    s
}

/// Judge one response against what it was designed to get. A request
/// slower than `slow` fails whatever it got: clients have timeouts.
pub fn judge(
    expect: Expect,
    result: &Result<Resp, reqwest::Error>,
    latency: Duration,
    slow: Duration,
) -> Outcome {
    let r = match result {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Outcome::Unexpected(format!("no answer within {REQUEST_TIMEOUT:?}"));
        }
        Err(e) if e.is_connect() => return Outcome::Unexpected("connection failed".into()),
        Err(e) => return Outcome::Unexpected(format!("error: {e}")),
    };
    let outcome = match expect {
        Expect::Invoked | Expect::Allowed if r.status == 200 => {
            match crate::echo::Echoed::from_body(&r.body) {
                Ok(seen) if seen.header("x-faas-mesh-auth-subject") == Some(SUBJECT) => {
                    Outcome::Ok
                }
                Ok(seen) => Outcome::Unexpected(format!(
                    "200, but the upstream saw x-faas-mesh-auth-subject {:?}",
                    seen.header("x-faas-mesh-auth-subject")
                )),
                Err(_) => Outcome::Unexpected(format!("200, not from the upstream: {}", describe(r))),
            }
        }
        Expect::FilterDenied if r.status == 403 && r.body.contains("insufficient permissions") => {
            Outcome::Denied
        }
        Expect::AuthzDenied
            if r.status == 403
                && !r.body.trim().is_empty()
                && r.header("content-type").is_some_and(|c| c.starts_with("text/plain")) =>
        {
            Outcome::Denied
        }
        Expect::AuthzDenied | Expect::Allowed if r.status == 403 && r.body.trim().is_empty() => {
            Outcome::Unexpected(
                "403 from Envoy itself, no body: the ext_authz call failed (failure_mode_allow: false)"
                    .into(),
            )
        }
        Expect::Issued if r.status == 200 && r.access_token().is_some() => Outcome::Ok,
        Expect::InvalidTarget
            if r.status == 400 && r.oauth_error().as_deref() == Some("invalid_target") =>
        {
            Outcome::Denied
        }
        _ => Outcome::Unexpected(describe(r)),
    };
    if latency > slow {
        let what = match &outcome {
            Outcome::Ok | Outcome::Denied => describe(r),
            Outcome::Expected(d) | Outcome::Unexpected(d) => d.clone(),
        };
        // Grouped by the second, so a steady stall shows as one line.
        return Outcome::Unexpected(format!(
            "slow (over {slow:?}): took {} s; {what}",
            latency.as_secs()
        ));
    }
    outcome
}

/// The `kid` in a JWT's header.
pub fn kid_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    v.get("kid")?.as_str().map(str::to_owned)
}

/// The clients, their tokens and where they count.
#[derive(Debug)]
pub struct Load {
    pub target: Target,
    pub tokens: Tokens,
    pub tally: Arc<Tally>,
    pub client: reqwest::Client,
    /// Slower than this is a failure.
    pub slow: Duration,
}

impl Load {
    /// Clients with their first tokens: an IdP token, a function token and
    /// an API token, exchanged through the gateway.
    pub async fn new(target: Target, tally: Arc<Tally>, slow: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let now = Instant::now();
        let empty = || {
            Mutex::new(Held {
                token: String::new(),
                at: now,
            })
        };
        let load = Load {
            target,
            tokens: Tokens {
                idp: empty(),
                function: empty(),
                api: empty(),
                hold_idp: AtomicBool::new(false),
            },
            tally,
            client,
            slow,
        };
        let idp = load.idp_token().await?;
        let function = load.issued(&idp, ID_TOKEN, Some("function")).await?;
        let api = load.issued(&idp, ID_TOKEN, None).await?;
        Tokens::set(&load.tokens.idp, idp);
        Tokens::set(&load.tokens.function, function);
        Tokens::set(&load.tokens.api, api);
        Ok(load)
    }

    /// A client-credentials token straight from the IdP, as the docs get one.
    pub async fn idp_token(&self) -> Result<String> {
        let t = &self.target;
        let body = form_encode(&[
            ("client_id", &t.client_id),
            ("client_secret", &t.client_secret),
            ("scope", "email"),
            ("grant_type", "client_credentials"),
        ]);
        let r = self
            .client
            .post(&t.idp_token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .context("IdP token request")?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("IdP token request: {status} {text}");
        }
        serde_json::from_str::<Value>(&text)?
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("IdP answered no access_token: {text}"))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (Result<Resp, reqwest::Error>, Duration) {
        let started = Instant::now();
        let result = async {
            let r = req.send().await?;
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.text().await?;
            Ok(Resp {
                status,
                headers,
                body,
            })
        }
        .await;
        (result, started.elapsed())
    }

    /// `POST <url>` a token exchange (`url` is the gateway's by default).
    pub async fn exchange_at(
        &self,
        url: &str,
        subject: &str,
        subject_type: &str,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> (Result<Resp, reqwest::Error>, Duration) {
        let mut fields = vec![
            ("subject_token", subject),
            ("subject_token_type", subject_type),
            ("grant_type", GRANT),
        ];
        if let Some(s) = scope {
            fields.push(("scope", s));
        }
        if let Some(a) = audience {
            fields.push(("audience", a));
        }
        let req = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(&fields));
        self.send(req).await
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.target.gateway)
    }

    /// An exchange that must succeed (setup): its token.
    async fn issued(
        &self,
        subject: &str,
        subject_type: &str,
        scope: Option<&str>,
    ) -> Result<String> {
        let (r, _) = self
            .exchange_at(&self.token_url(), subject, subject_type, scope, None)
            .await;
        let r = r?;
        r.access_token()
            .ok_or_else(|| anyhow!("exchange at the gateway: {}", describe(&r)))
    }

    /// An exchange through the gateway, counted. Returns the token issued.
    pub async fn exchange(
        &self,
        what: &str,
        subject: &str,
        subject_type: &str,
        scope: Option<&str>,
        audience: Option<&str>,
        expect: Expect,
    ) -> Option<String> {
        let (r, latency) = self
            .exchange_at(&self.token_url(), subject, subject_type, scope, audience)
            .await;
        let outcome = judge(expect, &r, latency, self.slow);
        let ok = outcome == Outcome::Ok;
        self.tally.record(Kind::Exchange, what, outcome, latency);
        if ok {
            r.ok().and_then(|r| r.access_token())
        } else {
            None
        }
    }

    /// `GET url` with a Bearer token, counted.
    async fn get(&self, kind: Kind, what: &str, url: &str, token: &str, expect: Expect) {
        let req = self.client.get(url).bearer_auth(token);
        let (r, latency) = self.send(req).await;
        self.tally
            .record(kind, what, judge(expect, &r, latency, self.slow), latency);
    }

    /// One operation of the mix; `n` picks its variant.
    pub async fn run_op(&self, op: Op, n: usize) {
        let gw = &self.target.gateway;
        match op {
            Op::InvokeCached => {
                let t = self.tokens.function();
                let (what, url, expect) = match n % 4 {
                    0 => (
                        "gateway /function/env",
                        format!("{gw}/function/env"),
                        Expect::Invoked,
                    ),
                    1 => (
                        "gateway /function/env.dev",
                        format!("{gw}/function/env.dev"),
                        Expect::Invoked,
                    ),
                    2 => (
                        "sidecar openfaas-fn:env",
                        format!("{}/", self.target.sidecar_env),
                        Expect::Invoked,
                    ),
                    _ => (
                        "gateway /function/env.staging (403 by design)",
                        format!("{gw}/function/env.staging"),
                        Expect::FilterDenied,
                    ),
                };
                self.get(Kind::InvokeCached, what, &url, &t, expect).await;
            }
            Op::InvokeFresh => {
                let idp = self.tokens.idp();
                let Some(t) = self
                    .exchange(
                        "IdP → function (to invoke)",
                        &idp,
                        ID_TOKEN,
                        Some("function"),
                        None,
                        Expect::Issued,
                    )
                    .await
                else {
                    return;
                };
                let (what, url) = if n.is_multiple_of(2) {
                    (
                        "gateway /function/env.dev",
                        format!("{gw}/function/env.dev"),
                    )
                } else {
                    (
                        "sidecar openfaas-fn:env",
                        format!("{}/", self.target.sidecar_env),
                    )
                };
                self.get(Kind::InvokeFresh, what, &url, &t, Expect::Invoked)
                    .await;
            }
            Op::Exchange => {
                let (idp, api) = (self.tokens.idp(), self.tokens.api());
                match n % 4 {
                    0 => {
                        self.exchange(
                            "IdP → function",
                            &idp,
                            ID_TOKEN,
                            Some("function"),
                            None,
                            Expect::Issued,
                        )
                        .await
                    }
                    1 => {
                        self.exchange("IdP → API", &idp, ID_TOKEN, None, None, Expect::Issued)
                            .await
                    }
                    2 => {
                        self.exchange(
                            "API → function",
                            &api,
                            ACCESS_TOKEN,
                            Some("function"),
                            None,
                            Expect::Issued,
                        )
                        .await
                    }
                    _ => {
                        self.exchange(
                            "IdP → function, audience staging:env (400 by design)",
                            &idp,
                            ID_TOKEN,
                            Some("function"),
                            Some("staging:env"),
                            Expect::InvalidTarget,
                        )
                        .await
                    }
                };
            }
            Op::System => {
                let t = self.tokens.api();
                let (what, path, expect) = match n % 3 {
                    0 => (
                        "GET /system/functions?namespace=openfaas-fn",
                        "/system/functions?namespace=openfaas-fn",
                        Expect::Allowed,
                    ),
                    1 => ("GET /system/info", "/system/info", Expect::Allowed),
                    _ => (
                        "GET /system/secrets?namespace=openfaas-fn (403 by design)",
                        "/system/secrets?namespace=openfaas-fn",
                        Expect::AuthzDenied,
                    ),
                };
                self.get(Kind::System, what, &format!("{gw}{path}"), &t, expect)
                    .await;
            }
        }
    }

    /// Refresh the held tokens as a client does: the IdP token every
    /// `idp_every` (unless held), the function and API tokens every
    /// `token_every`, by exchanges that count like any other.
    pub async fn keep_tokens(&self, idp_every: Duration, token_every: Duration) {
        if !self.tokens.hold_idp.load(Ordering::Relaxed)
            && Tokens::age(&self.tokens.idp) >= idp_every
        {
            match self.idp_token().await {
                Ok(t) => Tokens::set(&self.tokens.idp, t),
                Err(e) => self.tally.harness_error(format!("{e:#}")),
            }
        }
        let idp = self.tokens.idp();
        if Tokens::age(&self.tokens.function) >= token_every
            && let Some(t) = self
                .exchange(
                    "IdP → function (refresh)",
                    &idp,
                    ID_TOKEN,
                    Some("function"),
                    None,
                    Expect::Issued,
                )
                .await
        {
            Tokens::set(&self.tokens.function, t);
        }
        if Tokens::age(&self.tokens.api) >= token_every
            && let Some(t) = self
                .exchange(
                    "IdP → API (refresh)",
                    &idp,
                    ID_TOKEN,
                    None,
                    None,
                    Expect::Issued,
                )
                .await
        {
            Tokens::set(&self.tokens.api, t);
        }
    }
}

/// The operations of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    InvokeCached,
    InvokeFresh,
    Exchange,
    System,
}

/// Each worker's cycle: mostly cached invokes, as in production.
const MIX: [Op; 9] = [
    Op::InvokeCached,
    Op::System,
    Op::Exchange,
    Op::InvokeCached,
    Op::InvokeFresh,
    Op::InvokeCached,
    Op::System,
    Op::Exchange,
    Op::InvokeCached,
];

/// One client: the mix, one operation per `pace`, until `stop`.
pub async fn worker(load: Arc<Load>, id: usize, pace: Duration, mut stop: watch::Receiver<bool>) {
    let mut n = id * 5;
    let mut tick = tokio::time::interval(pace);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        let op = MIX.get(n % MIX.len()).copied().unwrap_or(Op::InvokeCached);
        load.run_op(op, n / MIX.len()).await;
        n += 1;
    }
}

/// The token keeper, every second until `stop`.
pub async fn keeper(
    load: Arc<Load>,
    idp_every: Duration,
    token_every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        load.keep_tokens(idp_every, token_every).await;
    }
}

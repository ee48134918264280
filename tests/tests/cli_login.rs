//! `faas-mesh-auth login`, `logout` and `token`, the built binary run as a
//! process against real parts: the real oidc-provider (its own login and
//! consent pages, driven over HTTP with a cookie jar, as a browser would),
//! and the whole `make run` stack (gateway Envoy with ext_authz, ext-authz,
//! sidecar Envoys with the filter). The faas-cli config the CLI writes is
//! then used as faas-cli uses it.
//!
//! The binary: `$CLI_BIN`, else `<repo>/target/debug/faas-mesh-auth`
//! (`cargo build -p faas-mesh-auth`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesh_auth_tests::stack::{Ports, Stack, StackOpts};
use mesh_auth_tests::{CLOSED_PORT, cli_bin, form_encode, get, oidc_dir, request};
use serde_yaml::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(30);
const PEOPLE: &str = "faas-mesh-auth";
const DEVICE: &str = "faas-mesh-auth-device";

/// The CLI as a child process, with faas-cli's config in `home`.
struct Cli {
    child: Child,
    stderr: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

struct Done {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn start(home: &Path, args: &[&str]) -> Cli {
        Cli::start_with(home, args, None)
    }

    /// `stdin`: what the CLI reads on its standard input (none: /dev/null).
    fn start_with(home: &Path, args: &[&str], stdin: Option<String>) -> Cli {
        let mut child = Command::new(cli_bin().unwrap())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("OPENFAAS_CONFIG", home.join(".openfaas"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                pipe.write_all(input.as_bytes()).await.unwrap();
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let err = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Cli {
            child,
            stderr: rx,
            seen: Vec::new(),
        }
    }

    /// The first stderr line `pick` accepts, by polling the stream.
    async fn line(&mut self, pick: impl Fn(&str) -> Option<String>) -> String {
        if let Some(found) = self.seen.iter().find_map(|l| pick(l)) {
            return found;
        }
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let line = tokio::time::timeout_at(deadline, self.stderr.recv())
                .await
                .unwrap_or_else(|_| panic!("no such line from the CLI: {:?}", self.seen))
                .unwrap_or_else(|| panic!("the CLI closed stderr: {:?}", self.seen));
            let found = pick(&line);
            self.seen.push(line);
            if let Some(f) = found {
                return f;
            }
        }
    }

    async fn wait(mut self) -> Done {
        let out = tokio::time::timeout(T, self.child.wait_with_output())
            .await
            .expect("the CLI did not exit")
            .unwrap();
        // The reader task has the rest of stderr.
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(5), self.stderr.recv()).await
        {
            self.seen.push(line);
        }
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: self.seen.join("\n"),
        }
    }
}

async fn run(home: &Path, args: &[&str]) -> Done {
    Cli::start(home, args).wait().await
}

/// `login` as the demo's machine client, with `secret`.
async fn machine_login(home: &Path, gw: &str, idp: &str, secret: &str) -> Done {
    let args = [
        "login",
        "--gateway",
        gw,
        "--issuer",
        idp,
        "--client-id",
        "openfaas-demo",
        "--client-secret",
        secret,
    ];
    run(home, &args).await
}

/// A browser: follows redirects itself and keeps cookies by name.
struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// Where following a link ended: a redirect off the host, or a page.
enum Step {
    Left(String),
    Page(Page),
}

struct Page {
    url: reqwest::Url,
    status: u16,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(T)
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    /// GET `url`, following redirects while they stay on its host.
    async fn send(&mut self, url: &str) -> Page {
        let host = authority(&reqwest::Url::parse(url).unwrap());
        match self.until_leaving(url, None, &host).await {
            Step::Left(left) => panic!("{url} redirected away to {left}"),
            Step::Page(page) => page,
        }
    }

    /// Stop before the loopback callback: follow redirects only while they
    /// stay on `host_port`, and return the first URL that leaves it.
    async fn until_leaving(
        &mut self,
        start: &str,
        form: Option<&[(&str, &str)]>,
        host_port: &str,
    ) -> Step {
        let mut url = reqwest::Url::parse(start).unwrap();
        let mut body = form.map(form_encode);
        let mut method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        for _ in 0..20 {
            if authority(&url) != host_port {
                return Step::Left(url.to_string());
            }
            let mut req = self.http.request(method.clone(), url.clone());
            if !self.cookies.is_empty() {
                let jar: Vec<String> = self
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                req = req.header("cookie", jar.join("; "));
            }
            if let Some(b) = body.take() {
                req = req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(b);
            }
            let resp = req.send().await.unwrap();
            for c in resp.headers().get_all("set-cookie") {
                let c = c.to_str().unwrap();
                let (k, v) = c.split(';').next().unwrap().split_once('=').unwrap();
                if v.is_empty() || c.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
            let status = resp.status().as_u16();
            if (300..400).contains(&status) {
                let loc = resp.headers()["location"].to_str().unwrap().to_owned();
                url = url.join(&loc).unwrap();
                method = reqwest::Method::GET;
                continue;
            }
            let body = resp.text().await.unwrap();
            return Step::Page(Page { url, status, body });
        }
        panic!("too many redirects at {url}");
    }
}

fn authority(u: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        u.host_str().unwrap_or_default(),
        u.port_or_known_default().unwrap_or(0)
    )
}

/// The first form of a page: its action (absolute) and hidden inputs.
fn form_of(page: &Page) -> (String, Vec<(String, String)>) {
    let body = &page.body;
    let start = body
        .find("<form")
        .unwrap_or_else(|| panic!("no form at {}: {}", page.url, body));
    let tag_end = start + body[start..].find('>').unwrap();
    let action = attr(&body[start..tag_end], "action").unwrap_or_default();
    let action = page.url.join(&action).unwrap().to_string();
    let end = body[start..]
        .find("</form>")
        .map_or(body.len(), |e| start + e);
    let mut hidden = Vec::new();
    let mut rest = &body[start..end];
    while let Some(i) = rest.find("<input") {
        let tag = &rest[i..i + rest[i..].find('>').unwrap()];
        if attr(tag, "type").as_deref() == Some("hidden")
            && let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value"))
        {
            hidden.push((n, v));
        }
        rest = &rest[i + tag.len()..];
    }
    (action, hidden)
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let v = &tag[i..i + tag[i..].find('"')?];
    Some(
        v.replace("&amp;", "&")
            .replace("&#x2F;", "/")
            .replace("&#x3D;", "="),
    )
}

/// What the person does at the IdP.
#[derive(Clone, Copy, PartialEq)]
enum Person<'a> {
    Consents(&'a str),
    Denies(&'a str),
}

/// Sign in (and consent, or deny) at oidc-provider's own pages, starting
/// from `url`, until a redirect leaves the IdP; returns where it points.
async fn sign_in(browser: &mut Browser, idp: &str, url: &str, person: Person<'_>) -> String {
    let idp_authority = authority(&reqwest::Url::parse(idp).unwrap());
    let mut next = browser.until_leaving(url, None, &idp_authority).await;
    for _ in 0..6 {
        let page = match next {
            Step::Left(leaving) => return leaving,
            Step::Page(page) => page,
        };
        assert_eq!(page.status, 200, "{}: {}", page.url, page.body);
        let (action, mut fields) = form_of(&page);
        let login = match person {
            Person::Consents(l) | Person::Denies(l) => l,
        };
        if page.body.contains("name=\"login\"") {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "any".into()));
        } else if page.body.contains("value=\"consent\"")
            && let Person::Denies(_) = person
        {
            let abort = format!("{}/abort", page.url.as_str().trim_end_matches('/'));
            next = browser.until_leaving(&abort, None, &idp_authority).await;
            continue;
        }
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        next = browser
            .until_leaving(&action, Some(&form), &idp_authority)
            .await;
    }
    panic!("sign-in did not finish");
}

fn config_file(home: &Path) -> PathBuf {
    home.join(".openfaas/config.yml")
}

fn stored_token(home: &Path, gateway: &str) -> String {
    let v: Value =
        serde_yaml::from_str(&std::fs::read_to_string(config_file(home)).unwrap()).unwrap();
    let entry = v["auths"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["gateway"].as_str() == Some(gateway))
        .unwrap_or_else(|| panic!("no entry for {gateway}: {v:?}"));
    assert_eq!(entry["auth"].as_str(), Some("oauth2"));
    entry["token"].as_str().unwrap().to_owned()
}

/// A config with another gateway and fields faas-cli's newer builds write.
const OTHER: &str = "auths:\n- gateway: http://other.example:8080\n  auth: basic\n  token: YWRtaW46c2VjcmV0\n  options:\n  - name: keep\n    value: me\n";

/// The written config used as faas-cli uses it: the API token on `/system/`
/// through the gateway's ext_authz, and exchanged (as `invoke` does) for a
/// function token that a sidecar accepts; and `token` for a function
/// outside the policy refused with `invalid_target`.
async fn use_as_faas_cli(stack: &Stack, home: &Path, expect_sub: &str) {
    let gw = stack.gateway_url();
    let api = stored_token(home, gw);
    let r = get(
        &format!("{gw}/system/functions?namespace=openfaas-fn"),
        &[("authorization", &format!("Bearer {api}"))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // faas-cli invoke's own exchange.
    let r = request(
        "POST",
        &format!("{gw}/oauth/token"),
        &[("content-type", "application/x-www-form-urlencoded")],
        form_encode(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &api),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            ),
            ("scope", "function"),
            ("audience", "openfaas-fn:env"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let fn_token = r.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sidecar = stack.sidecar_url("openfaas-fn:env").unwrap();
    let r = get(
        &sidecar,
        &[("authorization", &format!("Bearer {fn_token}"))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // The same through `token`.
    let d = run(
        home,
        &["token", "--gateway", gw, "--function", "openfaas-fn:env"],
    )
    .await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let r = get(
        &sidecar,
        &[("authorization", &format!("Bearer {}", d.stdout.trim()))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Any subject from stdin: here the same API token, piped.
    let d = Cli::start_with(
        home,
        &[
            "token",
            "--gateway",
            gw,
            "--subject-token",
            "-",
            "--function",
            "dev:env",
        ],
        Some(format!("{api}\n")),
    )
    .wait()
    .await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let dev = stack.sidecar_url("dev:env").unwrap();
    let r = get(
        &dev,
        &[("authorization", &format!("Bearer {}", d.stdout.trim()))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // Attenuated to dev:env: openfaas-fn:env is refused by its sidecar.
    let r = get(
        &sidecar,
        &[("authorization", &format!("Bearer {}", d.stdout.trim()))],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let d = run(home, &["token", "--gateway", gw, "--api"]).await;
    assert_eq!((d.code, d.stdout.trim()), (0, api.as_str()), "{}", d.stderr);
    let before = std::fs::read(config_file(home)).unwrap();
    let d = run(
        home,
        &["token", "--gateway", gw, "--function", "staging:env"],
    )
    .await;
    assert_eq!(d.code, 5, "{}", d.stderr);
    assert!(d.stderr.contains("invalid_target"), "{}", d.stderr);
    assert!(d.stdout.is_empty());
    assert_eq!(std::fs::read(config_file(home)).unwrap(), before);
    // The API token in the file is the gateway's, for this subject.
    let payload = api.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"].as_str(), Some(expect_sub), "{claims}");
    assert_eq!(claims["iss"].as_str(), Some(gw));
}

fn assert_logged_in(d: &Done, home: &Path, gw: &str, sub: &str) {
    assert_eq!(d.code, 0, "{}\n{}", d.stdout, d.stderr);
    assert!(
        d.stdout.contains(&format!("Logged in to {gw} as {sub}")),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout
            .contains("policies: invoke-policy, read-only-policy"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("expires:"), "{}", d.stdout);
    // The other gateway's entry and fields are untouched; the file is 0600.
    let v: Value =
        serde_yaml::from_str(&std::fs::read_to_string(config_file(home)).unwrap()).unwrap();
    assert_eq!(v["auths"][0]["options"][0]["value"].as_str(), Some("me"));
    assert_eq!(v["auths"][0]["token"].as_str(), Some("YWRtaW46c2VjcmV0"));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(config_file(home))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_three_ways_on_the_stack_and_use_the_config_as_faas_cli_does() {
    let state = tempfile::tempdir().unwrap();
    let stack = Stack::start(StackOpts::new(Ports::any(), state.path()))
        .await
        .unwrap();
    let gw = stack.gateway_url().to_owned();
    let idp = stack.oidc.issuer().to_owned();
    // As a user may type it: faas-cli's lookup key is lowercased, no `/`.
    let typed_gw = format!("{}/", gw.to_uppercase().replace("HTTP://", "http://"));

    // 1. A machine: client credentials.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".openfaas")).unwrap();
    std::fs::write(config_file(home.path()), OTHER).unwrap();
    let d = run(
        home.path(),
        &[
            "login",
            "--gateway",
            &typed_gw,
            "--issuer",
            &idp,
            "--client-id",
            stack.oidc.client_id(),
            "--client-secret",
            stack.oidc.client_secret(),
            "--scope",
            "email",
        ],
    )
    .await;
    assert_logged_in(
        &d,
        home.path(),
        &gw,
        &format!("fed:{}", stack.oidc.client_id()),
    );
    use_as_faas_cli(
        &stack,
        home.path(),
        &format!("fed:{}", stack.oidc.client_id()),
    )
    .await;

    // 2. A person with a browser: code + PKCE on a loopback redirect.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".openfaas")).unwrap();
    std::fs::write(config_file(home.path()), OTHER).unwrap();
    let args = [
        "login",
        "--gateway",
        &gw,
        "--issuer",
        &idp,
        "--client-id",
        PEOPLE,
        "--no-browser",
        "--timeout",
        "20",
    ];
    let mut cli = Cli::start(home.path(), &args);
    let url = cli
        .line(|l| {
            l.trim()
                .starts_with(&format!("{idp}/auth?"))
                .then(|| l.trim().to_owned())
        })
        .await;
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &idp, &url, Person::Consents("alice")).await;
    assert!(
        callback.starts_with("http://127.0.0.1:") && callback.contains("/callback?code="),
        "{callback}"
    );
    let page = browser.send(&callback).await;
    assert!(
        page.status == 200 && page.body.contains("Signed in"),
        "{}",
        page.body
    );
    let d = cli.wait().await;
    assert_logged_in(&d, home.path(), &gw, "fed:alice");
    use_as_faas_cli(&stack, home.path(), "fed:alice").await;

    // 3. A person without a browser: the device grant.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".openfaas")).unwrap();
    std::fs::write(config_file(home.path()), OTHER).unwrap();
    let mut cli = Cli::start(
        home.path(),
        &[
            "login",
            "--gateway",
            &gw,
            "--issuer",
            &idp,
            "--client-id",
            DEVICE,
            "--device",
        ],
    );
    let complete = cli
        .line(|l| {
            l.strip_prefix("(or open ")
                .and_then(|r| r.strip_suffix(')'))
                .map(str::to_owned)
        })
        .await;
    let mut browser = Browser::new();
    let page = browser.send(&complete).await;
    let (action, fields) = form_of(&page);
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let done = browser
        .until_leaving(
            &action,
            Some(&form),
            &authority(&reqwest::Url::parse(&idp).unwrap()),
        )
        .await;
    // The device pages end on the IdP's own success page.
    let mut next = done;
    for _ in 0..6 {
        let page = match next {
            Step::Left(u) => panic!("the device sign-in left the IdP for {u}"),
            Step::Page(p) => p,
        };
        if page.body.contains("Sign-in Success") {
            break;
        }
        let (action, mut fields) = form_of(&page);
        if page.body.contains("name=\"login\"") {
            fields.push(("login".into(), "alice".into()));
            fields.push(("password".into(), "any".into()));
        }
        let form: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        next = browser
            .until_leaving(
                &action,
                Some(&form),
                &authority(&reqwest::Url::parse(&idp).unwrap()),
            )
            .await;
    }
    let d = cli.wait().await;
    assert_logged_in(&d, home.path(), &gw, "fed:alice");
    use_as_faas_cli(&stack, home.path(), "fed:alice").await;

    // logout removes that entry only.
    let d = run(home.path(), &["logout", "--gateway", &typed_gw]).await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let v: Value =
        serde_yaml::from_str(&std::fs::read_to_string(config_file(home.path())).unwrap()).unwrap();
    assert_eq!(v, serde_yaml::from_str::<Value>(OTHER).unwrap());
    let d = run(
        home.path(),
        &["token", "--gateway", &gw, "--function", "openfaas-fn:env"],
    )
    .await;
    assert_eq!(d.code, 3, "{}", d.stderr);
    assert!(d.stderr.contains("not logged in"), "{}", d.stderr);

    // Refusals change nothing: the gateway refuses a person no Role binds
    // (its error and description shown), and a person who denies consent.
    let before = std::fs::read(config_file(home.path())).unwrap();
    let mut cli = Cli::start(home.path(), &args);
    let url = cli
        .line(|l| {
            l.trim()
                .starts_with(&format!("{idp}/auth?"))
                .then(|| l.trim().to_owned())
        })
        .await;
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &idp, &url, Person::Consents("mallory")).await;
    browser.send(&callback).await;
    let d = cli.wait().await;
    assert_eq!(d.code, 5, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("the gateway refused the exchange (HTTP 400): invalid_request: "),
        "{}",
        d.stderr
    );
    assert!(d.stderr.contains("mallory"), "{}", d.stderr);
    assert_eq!(std::fs::read(config_file(home.path())).unwrap(), before);

    let mut cli = Cli::start(home.path(), &args);
    let url = cli
        .line(|l| {
            l.trim()
                .starts_with(&format!("{idp}/auth?"))
                .then(|| l.trim().to_owned())
        })
        .await;
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &idp, &url, Person::Denies("alice")).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    browser.send(&callback).await;
    let d = cli.wait().await;
    assert_eq!(d.code, 4, "{}", d.stderr);
    assert!(
        d.stderr
            .contains("sign-in was not completed: access_denied"),
        "{}",
        d.stderr
    );
    assert_eq!(std::fs::read(config_file(home.path())).unwrap(), before);

    // A callback whose state is not this login's is refused.
    let mut cli = Cli::start(home.path(), &args);
    let url = cli
        .line(|l| {
            l.trim()
                .starts_with(&format!("{idp}/auth?"))
                .then(|| l.trim().to_owned())
        })
        .await;
    let mut browser = Browser::new();
    let callback = sign_in(&mut browser, &idp, &url, Person::Consents("alice")).await;
    let mut forged = reqwest::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser.send(forged.as_str()).await;
    assert_eq!(page.status, 400);
    let d = cli.wait().await;
    assert_eq!(d.code, 4, "{}", d.stderr);
    assert!(d.stderr.contains("`state` does not match"), "{}", d.stderr);
    assert_eq!(std::fs::read(config_file(home.path())).unwrap(), before);

    stack.stop().await;
}

/// The provider alone, with a device code that lives 3 s.
async fn provider() -> (tokio::process::Child, String) {
    let dir = oidc_dir();
    let mut child = Command::new(std::env::var("NODE_BIN").unwrap_or_else(|_| "node".into()))
        .current_dir(&dir)
        .arg(dir.join("provider.mjs"))
        .args(["--port", "0", "--device-ttl", "3", "--device-interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(T, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    (child, line.strip_prefix("issuer=").unwrap().to_owned())
}

#[tokio::test]
async fn bad_input_gives_a_clear_error_and_changes_nothing() {
    let (mut idp_proc, idp) = provider().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".openfaas")).unwrap();
    std::fs::write(config_file(home.path()), OTHER).unwrap();
    let gw = format!("http://127.0.0.1:{CLOSED_PORT}");
    let unchanged = |home: &Path| {
        assert_eq!(std::fs::read_to_string(config_file(home)).unwrap(), OTHER);
        assert_eq!(
            std::fs::read_dir(home.join(".openfaas")).unwrap().count(),
            1
        );
    };

    // The IdP cannot be reached.
    let closed = format!("http://127.0.0.1:{CLOSED_PORT}");
    let d = run(
        home.path(),
        &[
            "login",
            "--gateway",
            &gw,
            "--issuer",
            &closed,
            "--client-id",
            PEOPLE,
        ],
    )
    .await;
    assert_eq!(d.code, 4, "{}", d.stderr);
    assert!(d.stderr.contains("cannot reach the IdP"), "{}", d.stderr);
    unchanged(home.path());

    // No callback comes.
    let d = run(
        home.path(),
        &[
            "login",
            "--gateway",
            &gw,
            "--issuer",
            &idp,
            "--client-id",
            PEOPLE,
            "--no-browser",
            "--timeout",
            "1",
        ],
    )
    .await;
    assert_eq!(d.code, 4, "{}", d.stderr);
    assert!(
        d.stderr.contains("no sign-in callback within 1 s"),
        "{}",
        d.stderr
    );
    unchanged(home.path());

    // The callback port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let d = run(
        home.path(),
        &[
            "login",
            "--gateway",
            &gw,
            "--issuer",
            &idp,
            "--client-id",
            PEOPLE,
            "--no-browser",
            "--callback-port",
            &port,
        ],
    )
    .await;
    assert_eq!(d.code, 6, "{}", d.stderr);
    assert!(
        d.stderr.contains(&format!(
            "cannot listen for the sign-in callback on 127.0.0.1:{port}"
        )),
        "{}",
        d.stderr
    );
    unchanged(home.path());

    // The device code expires (3 s) before anyone signs in.
    let d = run(
        home.path(),
        &[
            "login",
            "--gateway",
            &gw,
            "--issuer",
            &idp,
            "--client-id",
            DEVICE,
            "--device",
        ],
    )
    .await;
    assert_eq!(d.code, 4, "{}", d.stderr);
    assert!(d.stderr.contains("the device code expired"), "{}", d.stderr);
    unchanged(home.path());

    // A wrong machine secret: the IdP's words.
    let d = machine_login(home.path(), &gw, &idp, "wrong").await;
    assert_eq!(d.code, 4, "{}", d.stderr);
    assert!(
        d.stderr.contains("the IdP refused: invalid_client"),
        "{}",
        d.stderr
    );
    unchanged(home.path());

    // A corrupt config, and one that cannot be read, are never written.
    let secret = "dev-secret-not-for-production";
    for (bad, what) in [
        ("auths: [unclosed\n", "is not valid"),
        ("auths: 3\n", "is not valid"),
    ] {
        std::fs::write(config_file(home.path()), bad).unwrap();
        let d = machine_login(home.path(), &gw, &idp, secret).await;
        assert_eq!(d.code, 3, "{}", d.stderr);
        assert!(
            d.stderr.contains(what) && d.stderr.contains("left as it is"),
            "{}",
            d.stderr
        );
        assert_eq!(
            std::fs::read_to_string(config_file(home.path())).unwrap(),
            bad
        );
        let d = run(
            home.path(),
            &["logout", "--gateway", "http://other.example:8080"],
        )
        .await;
        assert_eq!(d.code, 3, "{}", d.stderr);
        assert_eq!(
            std::fs::read_to_string(config_file(home.path())).unwrap(),
            bad
        );
    }
    std::fs::remove_file(config_file(home.path())).unwrap();
    std::fs::create_dir(config_file(home.path())).unwrap();
    let d = machine_login(home.path(), &gw, &idp, secret).await;
    assert_eq!(d.code, 3, "{}", d.stderr);
    assert!(
        d.stderr.contains("cannot read faas-cli's config"),
        "{}",
        d.stderr
    );
    assert!(config_file(home.path()).is_dir());

    // Bad flags.
    let d = run(
        home.path(),
        &["token", "--gateway", &gw, "--function", "env"],
    )
    .await;
    assert_eq!(d.code, 2, "{}", d.stderr);
    assert!(d.stderr.contains("is not NS:NAME"), "{}", d.stderr);

    idp_proc.kill().await.unwrap();
}

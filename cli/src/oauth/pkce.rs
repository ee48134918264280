//! A person's way in: the authorization code grant with PKCE (RFC 7636,
//! S256) and a `state` check, redirected to a loopback listener on
//! 127.0.0.1 (RFC 8252 sections 7.3 and 8.3), on an ephemeral port unless
//! the IdP needs a fixed one. Returns the ID token (its `nonce` checked).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use super::{Claims, Endpoints, Http, OauthError, post_token, string_field};

/// How often the listener looks for the browser's connection.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// A connected browser has this long to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CALLBACK_PATH: &str = "/callback";

pub struct AuthCodeOpts<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    /// 0: any free port.
    pub port: u16,
    pub open_browser: bool,
    pub timeout: Duration,
}

/// 32 random bytes, base64url: a verifier, `state` or `nonce`.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

pub fn auth_code(
    http: &Http,
    endpoints: &Endpoints,
    opts: &AuthCodeOpts<'_>,
) -> Result<String, OauthError> {
    let authorize = endpoints
        .authorization
        .as_deref()
        .ok_or(OauthError::NotOffered("the authorization code grant"))?;
    let addr = format!("127.0.0.1:{}", opts.port);
    let listener = TcpListener::bind(&addr).map_err(|e| OauthError::Listen {
        addr: addr.clone(),
        reason: e.to_string(),
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| OauthError::Listen {
            addr: addr.clone(),
            reason: e.to_string(),
        })?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let (verifier, state, nonce) = (random_token(), random_token(), random_token());

    let mut url = url::Url::parse(authorize).map_err(|e| OauthError::Discovery {
        url: authorize.to_owned(),
        reason: format!("authorization_endpoint is not a URL: {e}"),
    })?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", opts.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", opts.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(a) = opts.audience {
            q.append_pair("audience", a);
        }
    }
    eprintln!("Sign in with your browser at:\n\n  {url}\n");
    if opts.open_browser
        && let Err(e) = open_browser(url.as_str())
    {
        eprintln!("(could not open a browser: {e}; open the address above yourself)");
    }
    eprintln!(
        "Waiting up to {} s for the sign-in to come back to {redirect_uri} …",
        opts.timeout.as_secs()
    );

    let code = wait_for_code(&listener, &state, opts.timeout)?;
    let tokens = post_token(
        http,
        &endpoints.token,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("client_id", opts.client_id),
            ("code_verifier", &verifier),
        ],
    )?;
    let id_token = string_field(&endpoints.token, &tokens, "id_token")?;
    if Claims::read(&id_token).and_then(|c| c.str("nonce").map(str::to_owned)) != Some(nonce) {
        return Err(OauthError::NonceMismatch);
    }
    Ok(id_token)
}

/// `xdg-open` (or `open` on macOS), detached; its output is not ours.
fn open_browser(url: &str) -> std::io::Result<()> {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

/// What came back to the callback.
#[derive(Debug, PartialEq, Eq)]
enum Callback {
    Code(String),
    Error {
        error: String,
        description: Option<String>,
    },
    WrongState,
    /// Some other path (a favicon): answer 404 and keep waiting.
    Other,
}

fn parse_target(target: &str, state: &str) -> Callback {
    let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
        return Callback::Other;
    };
    if url.path() != CALLBACK_PATH {
        return Callback::Other;
    }
    let get = |k: &str| {
        url.query_pairs()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
    };
    // The state is checked first: an error redirect that is not ours is
    // as suspect as a code that is not.
    if get("state").as_deref() != Some(state) {
        return Callback::WrongState;
    }
    if let Some(error) = get("error") {
        return Callback::Error {
            error,
            description: get("error_description"),
        };
    }
    match get("code") {
        Some(code) if !code.is_empty() => Callback::Code(code),
        _ => Callback::Error {
            error: "invalid_request".to_owned(),
            description: Some("the callback carries neither a code nor an error".to_owned()),
        },
    }
}

fn wait_for_code(
    listener: &TcpListener,
    state: &str,
    timeout: Duration,
) -> Result<String, OauthError> {
    listener
        .set_nonblocking(true)
        .map_err(|e| OauthError::Listen {
            addr: "the callback listener".to_owned(),
            reason: e.to_string(),
        })?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(result) = serve_one(stream, state) {
                    return result;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(OauthError::CallbackTimeout(timeout.as_secs()));
                }
                std::thread::sleep(ACCEPT_POLL);
            }
            // A connection reset before accept, or no file descriptor
            // free: wait for the next one.
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Answer one connection; `None` to keep waiting.
fn serve_one(mut stream: TcpStream, state: &str) -> Option<Result<String, OauthError>> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let mut line = String::new();
    let mut reader = BufReader::new(&mut stream);
    if reader.read_line(&mut line).is_err() {
        return None;
    }
    // Drain the headers so the browser sees a clean response.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let callback = if method == "GET" {
        parse_target(target, state)
    } else {
        Callback::Other
    };
    let (status, page, result) = match callback {
        Callback::Other => ("404 Not Found", "Not found.".to_owned(), None),
        Callback::Code(code) => (
            "200 OK",
            "Signed in. You can close this window and return to the terminal.".to_owned(),
            Some(Ok(code)),
        ),
        Callback::WrongState => (
            "400 Bad Request",
            "This sign-in response does not belong to the login that is waiting: refused."
                .to_owned(),
            Some(Err(OauthError::StateMismatch)),
        ),
        Callback::Error { error, description } => (
            "200 OK",
            format!(
                "Sign-in was not completed: {}. Return to the terminal.",
                html_escape(&error)
            ),
            Some(Err(OauthError::Denied { error, description })),
        ),
    };
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>faas-mesh-auth</title></head><body><p>{page}</p></body></html>"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
    result
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_unpadded_base64url_of_sha256() {
        // The value from Python's hashlib and base64; the real provider
        // checks the whole exchange in tests/tests/cli_login.rs.
        assert_eq!(
            s256("dBjftJeZ4CVP-mJ0ZSXvSWP-fU4JN8Q86RD-UhHdRDE"),
            "8DhzG7y8qdbeLS2SQVyzMwTTfOlSqhPt_pfsndji8Cg"
        );
        assert_eq!(random_token().len(), 43);
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn callbacks() {
        assert_eq!(
            parse_target("/callback?code=c&state=s", "s"),
            Callback::Code("c".into())
        );
        assert_eq!(
            parse_target("/callback?code=c&state=x", "s"),
            Callback::WrongState
        );
        assert_eq!(parse_target("/callback?code=c", "s"), Callback::WrongState);
        assert_eq!(parse_target("/favicon.ico", "s"), Callback::Other);
        assert_eq!(
            parse_target(
                "/callback?error=access_denied&error_description=no%20way&state=s",
                "s"
            ),
            Callback::Error {
                error: "access_denied".into(),
                description: Some("no way".into())
            }
        );
    }

    #[test]
    fn timeout_with_no_callback() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let e = wait_for_code(&l, "s", Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, OauthError::CallbackTimeout(_)));
    }
}

//! A small HTTP(S) client for fetching JSON from identity providers: bounded
//! in time and size, so an IdP that is down or hostile gives a fast, clear
//! error instead of a hang or a memory sink.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// Largest document accepted from an IdP (discovery or JWKS).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} is not a valid http(s) URL")]
    BadUrl { url: String },
    #[error("GET {url}: no answer within {seconds}s")]
    Timeout { url: String, seconds: u64 },
    #[error("GET {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: body unreadable or over {MAX_BODY_BYTES} bytes")]
    Body { url: String },
    #[error("GET {url}: not JSON: {source}")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("CA file {path}: {problem}")]
    CaFile { path: String, problem: String },
}

#[derive(Clone)]
pub struct HttpFetcher {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpFetcher {
    /// A client trusting Mozilla's roots plus, optionally, the PEM
    /// certificates in `extra_ca` (an in-cluster CA, such as Kubernetes').
    pub fn new(timeout: Duration, extra_ca: Option<&Path>) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots().iter().cloned());
        if let Some(path) = extra_ca {
            let ca_err = |problem: String| FetchError::CaFile {
                path: path.display().to_string(),
                problem,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no certificates".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::CaFile {
            path: String::new(),
            problem: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpFetcher { client, timeout })
    }

    /// The bound on each GET.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GET a JSON document.
    pub async fn get_json(&self, url: &str) -> Result<serde_json::Value, FetchError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| FetchError::BadUrl { url: url.into() })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(FetchError::BadUrl { url: url.into() });
        }
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "faas-mesh-auth-ext-authz")
            .body(Empty::<Bytes>::new())
            .map_err(|_| FetchError::BadUrl { url: url.into() })?;
        let call = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|source| FetchError::Connect {
                        url: url.into(),
                        source,
                    })?;
            let status = response.status();
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: url.into(),
                    status: status.as_u16(),
                });
            }
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| FetchError::Body { url: url.into() })?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|source| FetchError::Json {
                url: url.into(),
                source,
            })
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.into(),
                seconds: self.timeout.as_secs().max(1),
            })?
    }
}

fn webpki_roots() -> &'static [rustls_pki_types::TrustAnchor<'static>] {
    webpki_roots::TLS_SERVER_ROOTS
}

//! Building an [`OllamaBackend`]: where, with which credentials, timeouts and retries.

use std::sync::Arc;
use std::time::Duration;

use super::{Inner, OllamaBackend, OllamaHost, Secret};
use crate::error::{Credentials, Error, Result};

/// How long to wait for Ollama, per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending a request that may load a model (chat, load, unload, pull) to its first
    /// byte: covers loading the model, so it is long.
    pub load: Duration,
    /// Between two reads of a streaming answer once it has started; also the wait for the
    /// answer of a request that loads nothing (`/api/tags`, `/api/show`, `/api/ps`,
    /// `/api/version`) and for the rest of any body that is not streamed.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            load: Duration::from_secs(300),
            idle: Duration::from_secs(60),
        }
    }
}

/// Bounded retries for a busy server (HTTP 429 and 503), with exponential backoff and jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Delay before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (0-based): full backoff with ±50% jitter, so that
    /// many clients turned away together do not come back together.
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        exp.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Builds an [`OllamaBackend`].
#[derive(Debug, Clone)]
pub struct OllamaBackendBuilder {
    host: OllamaHost,
    token: Option<Secret>,
    ca_certificates: Vec<Vec<u8>>,
    timeouts: Timeouts,
    retry: RetryPolicy,
}

impl OllamaBackendBuilder {
    /// A bearer token sent as `Authorization` (for an Ollama behind an authenticating proxy).
    #[must_use]
    pub fn token(mut self, token: Option<Secret>) -> Self {
        self.token = token;
        self
    }

    /// Trusts this PEM certificate (authority) for `https://` hosts, besides the public roots:
    /// for an Ollama behind a proxy with an internal or self-signed certificate.
    #[must_use]
    pub fn ca_certificate(mut self, pem: Vec<u8>) -> Self {
        self.ca_certificates.push(pem);
        self
    }

    /// Timeouts per phase.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Retry policy for busy servers.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the backend (no request is sent yet).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] when the token cannot be a header value, when both a token and
    /// a password in the address are given (both would be the `Authorization` header), or the
    /// HTTP client cannot be built (no TLS roots).
    pub fn build(self) -> Result<OllamaBackend> {
        if self.token.is_some() && self.host.has_credentials() {
            return Err(Error::InvalidRequest(
                "both a token and a user name in the Ollama address: keep one, since both would \
                 be sent as the Authorization header"
                    .into(),
            ));
        }
        let credentials = if self.token.is_some() {
            Credentials::Token
        } else if self.host.has_credentials() {
            Credentials::Password
        } else {
            Credentials::None
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        Error::InvalidRequest(
                            "the Ollama token contains characters not allowed in an HTTP header"
                                .into(),
                        )
                    })?;
            // Marked sensitive so that no HTTP-level debug output ever prints it.
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let mut http = reqwest::Client::builder();
        for pem in &self.ca_certificates {
            let certificate = reqwest::Certificate::from_pem(pem).map_err(|err| {
                Error::InvalidRequest(format!("the CA certificate is not valid PEM: {err}"))
            })?;
            http = http.add_root_certificate(certificate);
        }
        let http = http
            .user_agent(concat!("conductor/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(self.timeouts.connect)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|err| Error::InvalidRequest(format!("cannot build HTTP client: {err}")))?;
        Ok(OllamaBackend {
            inner: Arc::new(Inner {
                host: self.host,
                http,
                credentials,
                timeouts: self.timeouts,
                retry: self.retry,
            }),
        })
    }
}

impl OllamaBackend {
    /// Starts building a backend for `host`.
    #[must_use]
    pub fn builder(host: OllamaHost) -> OllamaBackendBuilder {
        OllamaBackendBuilder {
            host,
            token: None,
            ca_certificates: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

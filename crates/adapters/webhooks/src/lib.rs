//! The outbound side of webhooks: [`HttpWebhookSender`] implements the
//! application's [`WebhookSender`] port on reqwest (decision 0017).
//!
//! * POST with `Content-Type: application/json` and the headers the
//!   delivery worker gives (event id, type, signature);
//! * redirects are never followed (a 3xx is an answer, which the backoff
//!   plan treats as a final refusal);
//! * at most [`BODY_CAP`] bytes of an answer are read, then the connection
//!   is dropped;
//! * one timeout bounds the whole exchange;
//! * unless private targets are allowed, a host name is resolved here and
//!   any loopback, link-local or private address it yields is dropped (so a
//!   DNS name pointing inside the network is refused at send time, not just
//!   IP literals at creation), and an IP literal is checked directly.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sluice_application::ports::{OutboundRequest, SendResult, WebhookSender};
use sluice_domain::webhook::is_private_address;

/// Most bytes of an answer read.
pub const BODY_CAP: usize = 4 * 1024;

/// Settings of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// `SLUICE_WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            allow_private: false,
        }
    }
}

/// A name resolved only to addresses the private-address rule refuses.
#[derive(Debug)]
struct PrivateAddress;

impl fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the host resolves only to loopback, link-local or private addresses \
             (allowed only with SLUICE_WEBHOOK_ALLOW_PRIVATE=1)",
        )
    }
}

impl StdError for PrivateAddress {}

/// The system resolver, keeping only public addresses.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private_address(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(PrivateAddress) as Box<dyn StdError + Send + Sync>);
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// [`WebhookSender`] on reqwest.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpWebhookSender {
    /// A sender with `config`.
    pub fn new(config: SenderConfig) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("Sluice-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Self {
            client,
            allow_private: config.allow_private,
        })
    }

    fn refused_literal(&self, url: &reqwest::Url) -> bool {
        if self.allow_private {
            return false;
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => is_private_address(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => is_private_address(IpAddr::V6(ip)),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                d == "localhost" || d.ends_with(".localhost")
            }
            None => true,
        }
    }
}

/// A short, safe description of a transport error (no URL query, no body).
fn describe(e: &reqwest::Error) -> (String, bool) {
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        if s.downcast_ref::<PrivateAddress>().is_some() {
            return (PrivateAddress.to_string(), false);
        }
        source = s.source();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else if e.is_request() {
        "the request failed"
    } else {
        "no answer"
    };
    (what.to_owned(), true)
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &OutboundRequest) -> SendResult {
        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                return SendResult::NoAnswer {
                    error: "not an http(s) URL".into(),
                    retryable: false,
                };
            }
        };
        if self.refused_literal(&url) {
            return SendResult::NoAnswer {
                error: PrivateAddress.to_string(),
                retryable: false,
            };
        }
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            req = req.header(*name, value);
        }
        let mut response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let (error, retryable) = describe(&e);
                return SendResult::NoAnswer { error, retryable };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read a little of the answer (receivers expect it read), never more.
        let mut read = 0usize;
        while read < BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) | Err(_) => break,
            }
        }
        SendResult::Answered {
            status,
            retry_after,
        }
    }
}

#[cfg(test)]
mod tests;

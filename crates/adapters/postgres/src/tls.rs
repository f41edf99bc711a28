//! TLS to PostgreSQL with rustls, used when the URL says `sslmode=require`.
//!
//! The server's certificate is always verified: against the PEM file of
//! [`crate::PgConfig::ca_file`] when one is given (a managed database's own
//! CA, a self-signed server), else against the system's trusted roots. Host
//! names and IP addresses are checked as HTTPS clients check them. This is
//! stricter than libpq's `require`, which encrypts without verifying: an
//! unverified connection would hand the database password to whoever sits in
//! between.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sluice_application::ports::StoreError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsConnector;

/// Makes a verified TLS connector for each new connection.
#[derive(Clone)]
pub(crate) struct RustlsTls {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for RustlsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustlsTls").finish_non_exhaustive()
    }
}

impl RustlsTls {
    /// Trusts the certificates of `ca_file` (PEM) if given, else the
    /// system's roots. Errors say what to fix, in one line.
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Self, StoreError> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = ca_file {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                StoreError::Internal(format!("cannot read the database CA file {shown}: {e}"))
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    StoreError::Internal(format!("the database CA file {shown} is not PEM: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    StoreError::Internal(format!(
                        "the database CA file {shown} holds an unusable certificate: {e}"
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(StoreError::Internal(format!(
                    "the database CA file {shown} holds no certificate"
                )));
            }
        } else {
            // Unreadable entries of the system store are skipped, as browsers do.
            let (added, _) =
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if added == 0 {
                return Err(StoreError::Internal(
                    "sslmode=require but this system has no trusted root certificates: \
                     install ca-certificates or set SLUICE_DATABASE_CA_FILE"
                        .into(),
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Internal(format!("cannot set up TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl<S> MakeTlsConnect<S> for RustlsTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the database host is not a valid name for TLS",
            )
        })?;
        Ok(RustlsConnect {
            connector: TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// Connects one socket.
pub(crate) struct RustlsConnect {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
        })
    }
}

/// An encrypted connection.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// SCRAM without channel binding (the server's default accepts it).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

//! TLS for `wss://` (feature `tls`): rustls with the pure-Rust `ring` provider (named
//! explicitly, so another provider elsewhere in a program changes nothing here).
//!
//! - a client trusts Mozilla's roots (webpki-roots) unless [`ClientConfig::tls`] says otherwise,
//!   e.g. [`client_config`] with the self-signed certificate of a test server;
//! - a server uses [`server_config`] with a certificate chain and key (PEM files:
//!   [`load_pem`]) or a fresh [`SelfSigned`] one for loopback tests and the demo.
//!
//! [`ClientConfig::tls`]: crate::ClientConfig::tls

use std::io;
use std::path::Path;
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A client configuration trusting exactly `roots` (e.g. a test server's self-signed
/// certificate).
pub fn client_config(roots: &[CertificateDer<'static>]) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    for c in roots {
        store.add(c.clone()).map_err(other)?;
    }
    client_config_with(store)
}

/// A client configuration trusting Mozilla's root certificates (webpki-roots).
pub fn default_client_config() -> io::Result<Arc<rustls::ClientConfig>> {
    client_config_with(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
}

/// A client configuration (our provider, safe default versions, no client auth) trusting
/// `store`.
fn client_config_with(store: rustls::RootCertStore) -> io::Result<Arc<rustls::ClientConfig>> {
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_root_certificates(store)
            .with_no_client_auth(),
    ))
}

/// A server configuration presenting `chain` (leaf first) with `key`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<rustls::ServerConfig>> {
    Ok(Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(other)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(other)?,
    ))
}

/// Certificates from a PEM file (a chain, or roots to trust).
pub fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(io::Error::other(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// A certificate chain and its private key from PEM files.
pub fn load_pem(
    cert: &Path,
    key: &Path,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| io::Error::other(format!("{}: {e}", key.display())))?;
    Ok((load_certs(cert)?, key))
}

/// A fresh self-signed certificate (ECDSA P-256) for loopback servers: the demo, tests,
/// `mtproto serve` without a certificate of its own.
pub struct SelfSigned {
    /// The certificate (DER).
    pub cert: CertificateDer<'static>,
    /// The certificate, PEM (what a client is told to trust).
    pub cert_pem: String,
    key_der: Vec<u8>,
    key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// A certificate for `names` (DNS names or IP addresses, e.g. `localhost`, `127.0.0.1`).
    pub fn generate(names: &[&str]) -> io::Result<Self> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let c = rcgen::generate_simple_self_signed(names).map_err(other)?;
        Ok(Self {
            cert: c.cert.der().clone(),
            cert_pem: c.cert.pem(),
            key_der: c.signing_key.serialize_der(),
            key_pem: zeroize::Zeroizing::new(c.signing_key.serialize_pem()),
        })
    }

    /// For a loopback server: `localhost`, `127.0.0.1` and `::1`.
    pub fn localhost() -> io::Result<Self> {
        Self::generate(&["localhost", "127.0.0.1", "::1"])
    }

    /// The server configuration presenting this certificate.
    pub fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        let key = PrivateKeyDer::try_from(self.key_der.clone()).map_err(other)?;
        server_config(vec![self.cert.clone()], key)
    }

    /// A client configuration trusting only this certificate.
    pub fn client_config(&self) -> io::Result<Arc<rustls::ClientConfig>> {
        client_config(std::slice::from_ref(&self.cert))
    }

    /// Writes `cert.pem` and `key.pem` (0600) into `dir`; the certificate's path.
    pub fn write_pem(&self, dir: &Path) -> io::Result<std::path::PathBuf> {
        std::fs::create_dir_all(dir)?;
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, &self.cert_pem)?;
        let key = dir.join("key.pem");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        io::Write::write_all(&mut opts.open(&key)?, self.key_pem.as_bytes())?;
        Ok(cert)
    }
}

impl Drop for SelfSigned {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_der);
    }
}

/// A client TLS session for `host` (`config`: `None` trusts Mozilla's roots).
pub(crate) fn client_connection(
    config: Option<&Arc<rustls::ClientConfig>>,
    host: &str,
) -> io::Result<rustls::ClientConnection> {
    let config = match config {
        Some(c) => c.clone(),
        None => default_client_config()?,
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    rustls::ClientConnection::new(config, name).map_err(other)
}

//! TLS to the upstream: rustls with ring's cryptography, trusting the system's roots.

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// A client configuration trusting the system's roots. `required`: the upstream is https://,
/// so finding no root at all is an error here rather than a failed handshake later.
pub fn client_config(required: bool) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(system_roots());
    if required && added == 0 {
        anyhow::bail!(
            "no trusted root certificate found to check the upstream's with: install the \
             system's CA certificates (Debian: ca-certificates) or set SSL_CERT_FILE"
        );
    }
    // ring, not aws-lc-rs: it builds with a C compiler alone (no cmake, no Go), for every
    // release target, Apple's linked by zig included. rustls deprecates it for lacking
    // post-quantum key exchange; see docs/DECISIONS.md.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls refused its own default protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Linux: the distribution's bundle, as OpenSSL would find it (SSL_CERT_FILE and SSL_CERT_DIR
/// first), through rustls-native-certs.
#[cfg(target_os = "linux")]
fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!("reading the system's root certificates: {error}");
    }
    found.certs
}

/// Elsewhere (macOS): SSL_CERT_FILE, else /etc/ssl/cert.pem, the bundle macOS ships, read
/// directly so that no Apple framework is linked (see docs/DECISIONS.md).
#[cfg(not(target_os = "linux"))]
fn system_roots() -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let path = std::env::var_os("SSL_CERT_FILE")
        .map_or_else(|| "/etc/ssl/cert.pem".into(), std::path::PathBuf::from);
    match CertificateDer::pem_file_iter(&path) {
        Ok(certificates) => certificates.filter_map(Result::ok).collect(),
        Err(error) => {
            tracing::warn!("reading root certificates from {}: {error}", path.display());
            Vec::new()
        }
    }
}

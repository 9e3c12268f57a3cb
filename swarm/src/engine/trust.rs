//! Which origins the swarm believes over TLS: the system's root certificates plus any given
//! with `--ca-file`, or, with `--dangerous`, any certificate at all. One client
//! configuration, used by the probe and by the relay's upstream connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How the origin's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Against the system's roots and these extra ones (from `--ca-file`).
    Verify {
        /// The file the extra roots came from, for messages.
        ca_file: Option<PathBuf>,
        /// Extra trusted roots.
        extra: Vec<CertificateDer<'static>>,
    },
    /// Not at all (`--dangerous`): any certificate for any name is accepted.
    Any,
}

impl Default for Trust {
    fn default() -> Self {
        Trust::Verify { ca_file: None, extra: Vec::new() }
    }
}

/// Why a `--ca-file` cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--ca-file '{}' is not usable: {reason}; expected a PEM file with one or more CERTIFICATE blocks", path.display())]
pub struct CaFileError {
    /// The value given.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl Trust {
    /// Verifying, with the certificates of `ca_file` (PEM) trusted besides the system's.
    ///
    /// # Errors
    /// [`CaFileError`] if the file cannot be read or holds no certificate.
    pub fn with_ca_file(ca_file: Option<&Path>) -> Result<Trust, CaFileError> {
        let Some(path) = ca_file else { return Ok(Trust::default()) };
        let bad = |reason: String| CaFileError { path: path.to_owned(), reason };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let extra = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("{e:?}")))?;
        if extra.is_empty() {
            return Err(bad("it holds no certificate".into()));
        }
        let mut probe = RootCertStore::empty();
        let (_, unusable) = probe.add_parsable_certificates(extra.iter().cloned());
        if unusable > 0 {
            return Err(bad(format!("{unusable} of its certificates cannot be parsed")));
        }
        Ok(Trust::Verify { ca_file: Some(path.to_owned()), extra })
    }

    /// True if certificates are checked.
    #[must_use]
    pub fn verifies(&self) -> bool {
        matches!(self, Trust::Verify { .. })
    }

    /// The client configuration (HTTP/1.1 only, as the viewers speak it). Reads the system's
    /// roots; an unreadable system store leaves only the `--ca-file` roots.
    #[must_use]
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports the default versions"));
        let mut config = match self {
            Trust::Verify { extra, .. } => {
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(system_roots().iter().cloned());
                roots.add_parsable_certificates(extra.iter().cloned());
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Any => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// The system's root certificates, read once per process (the probe and the relay both need
/// them at start-up).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// `--dangerous`: every certificate is accepted, but the handshake's signatures are still
/// checked (the connection is encrypted, just not authenticated).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Trust::with_ca_file(Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("empty.pem") && e.contains("holds no certificate"), "{e}");
        let missing = dir.path().join("missing.pem");
        let e = Trust::with_ca_file(Some(&missing)).unwrap_err().to_string();
        assert!(e.contains("missing.pem") && e.contains("No such file"), "{e}");

        let ca = rcgen::generate_simple_self_signed(vec!["test.invalid".into()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.cert.pem()).unwrap();
        let t = Trust::with_ca_file(Some(&good)).unwrap();
        assert!(t.verifies());
        assert!(matches!(&t, Trust::Verify { extra, .. } if extra.len() == 1));
        assert_eq!(t.client_config().alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}

//! TLS in the relay, so https is measured like http. A viewer's `CONNECT` tunnel ends in the
//! relay: the viewer's TLS is answered with a certificate made for this run (FFmpeg does not
//! check certificates unless told to: `-tls_verify` defaults to 0), the requests inside are
//! read and measured, and each viewer connection gets its own real TLS connection to the
//! origin, checked against [`Trust`](crate::engine::trust::Trust). So the origin still sees one
//! TLS connection per viewer connection, with the viewer's keep-alive.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The relay's two TLS ends, made once per run and shared by every viewer's relay.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

impl Tls {
    /// A fresh self-signed certificate for the viewers' side (never written to disk) and
    /// `upstream` for the origin side.
    ///
    /// # Errors
    /// If the key or certificate cannot be made.
    pub fn new(upstream: Arc<rustls::ClientConfig>) -> Result<Tls, String> {
        let made = rcgen::generate_simple_self_signed(vec!["hls-swarm-relay.invalid".into()])
            .map_err(|e| format!("cannot make the relay's certificate: {e}"))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(vec![made.cert.der().clone()], key))
            .map_err(|e| format!("cannot set up the relay's TLS: {e}"))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(server)), connector: TlsConnector::from(upstream) })
    }

    /// Answers the viewer's TLS handshake.
    pub(super) async fn accept(
        &self,
        sock: TcpStream,
    ) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        self.acceptor.accept(sock).await
    }

    /// The origin side: checks the origin's certificate.
    pub(super) fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }
}

//! The TLS client configuration of every reqwest client (Tencent, callbacks, Slack), built once.
//!
//! reqwest's own default reads the system trust store each time a client is built: on Debian
//! that is a 220 KB bundle plus ~300 files, 2–3 ms per client, and we build two at start-up.
//! The Mozilla roots compiled into `webpki-roots` need no file reads and are the same on every
//! machine. Tencent's endpoints and callback receivers (which the SSRF policy already keeps on
//! public addresses) are served under public roots, so nothing they need is lost. The AWS SDK keeps
//! its own stack, which loads the system store once, on the first AWS call.

use std::sync::{Arc, LazyLock};

static CLIENT_CONFIG: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
});

/// A copy of the shared configuration: the roots and the crypto provider are shared behind `Arc`s.
pub fn client_config() -> rustls::ClientConfig {
    CLIENT_CONFIG.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_configuration_trusts_the_compiled_in_public_roots() {
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        let config = client_config();
        assert!(config.alpn_protocols.is_empty(), "HTTP/1.1 only: no ALPN offered");
        assert!(config.enable_sni);
    }

    /// Serves TLS on loopback with a self-signed certificate for 127.0.0.1, which no public root
    /// signed; answers any request that gets through with 200. The certificate and its key in
    /// `tests/fixtures/` were made with `openssl req -x509` for this test and protect nothing.
    async fn untrusted_tls_server() -> std::net::SocketAddr {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::AsyncWriteExt;

        let cert = CertificateDer::from_pem_slice(include_bytes!("../tests/fixtures/untrusted-localhost.crt"))
            .expect("test certificate");
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../tests/fixtures/untrusted-localhost.key"))
            .expect("test key");
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_server_whose_certificate_no_public_root_signed_is_refused() {
        let addr = untrusted_tls_server().await;
        let client = crate::state::http_client().expect("client");
        let err = client.get(format!("https://{addr}/")).send().await.expect_err("must not connect");
        let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("UnknownIssuer"), "{chain}");
    }

    #[test]
    fn reqwest_accepts_the_shared_configuration() {
        // A rustls version that differs from reqwest's would make this an "unknown TLS backend".
        let built = reqwest::Client::builder().tls_backend_preconfigured(client_config()).build();
        assert!(built.is_ok(), "{built:?}");
    }
}

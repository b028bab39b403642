//! rustls configurations built from a socket's options: servers from
//! SO_TLS_CERT/SO_TLS_KEY, clients with the system trust store or SO_TLS_CA,
//! SNI from SO_TLS_SNI_HOSTNAME or the connect host, and verification
//! (chain and host name) when SO_TLS_VERIFY_PEER is 1. TLS 1.2 and 1.3 only.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::{Error, Result, ResultCode};
use crate::options::store::OptionStore;

pub const SO_TLS_VERIFY_PEER: u16 = 1;
pub const SO_TLS_SNI_HOSTNAME: u16 = 2;
pub const SO_TLS_CERT: u16 = 3;
pub const SO_TLS_KEY: u16 = 4;
pub const SO_TLS_CA: u16 = 10;

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn tls_err(msg: String) -> Error {
    Error::new(ResultCode::TlsConfig, msg)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(format!("tls: cannot read certificate file {path}: {e}")))?
        .collect();
    let certs = certs.map_err(|e| tls_err(format!("tls: bad certificate in {path}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(format!("tls: no PEM certificate found in {path}")));
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        tls_err(format!(
            "tls: cannot read a PEM private key from {path}: {e}"
        ))
    })
}

/// The system trust store, loaded once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            Arc::new(store)
        })
        .clone()
}

/// Server configuration for a TLS listener; `alpn` lists the protocols it
/// offers (empty: no ALPN).
pub fn server_config(opts: &OptionStore, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>> {
    let (cert, key) =
        match (opts.string(SO_TLS_CERT), opts.string(SO_TLS_KEY)) {
            (Some(c), Some(k)) => (c, k),
            _ => return Err(Error::new(
                ResultCode::EeListen,
                "socket_listen: a TLS listener needs SO_TLS_CERT and SO_TLS_KEY (PEM file paths)",
            )),
        };
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_err(format!(
                "tls: certificate and key do not form a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Checks that `path` holds at least one PEM certificate.
pub fn check_cert_file(path: &str) -> Result<()> {
    load_certs(path).map(|_| ())
}

/// Checks that `path` holds a PEM private key.
pub fn check_key_file(path: &str) -> Result<()> {
    load_key(path).map(|_| ())
}

/// Checks that SO_TLS_CERT and SO_TLS_KEY form a usable pair.
pub fn check_pair(opts: &OptionStore) -> Result<()> {
    server_config(opts, &[]).map(|_| ())
}

/// Accepts any certificate (SO_TLS_VERIFY_PEER 0, upstream's default on modes 5/6)
/// but still checks the handshake signatures, so the session keys are the peer's.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Client configuration from the socket's options; `alpn` lists the
/// protocols offered (empty: no ALPN).
pub fn client_config(opts: &OptionStore, mode: u8, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>> {
    let verify = opts.int(SO_TLS_VERIFY_PEER, mode) != 0;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("tls: {e}")))?;
    let builder = if verify {
        let roots = match opts.string(SO_TLS_CA) {
            Some(path) => {
                let mut store = RootCertStore::empty();
                for c in load_certs(path)? {
                    store
                        .add(c)
                        .map_err(|e| tls_err(format!("tls: bad CA certificate in {path}: {e}")))?;
                }
                Arc::new(store)
            }
            None => system_roots(),
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    };
    let mut config = match (opts.string(SO_TLS_CERT), opts.string(SO_TLS_KEY)) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(load_certs(c)?, load_key(k)?)
            .map_err(|e| tls_err(format!("tls: client certificate unusable: {e}")))?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name sent as SNI and checked against the certificate.
pub fn server_name(opts: &OptionStore, connect_host: &str) -> Result<ServerName<'static>> {
    let host = opts.string(SO_TLS_SNI_HOSTNAME).unwrap_or(connect_host);
    ServerName::try_from(host.to_string())
        .map_err(|_| tls_err(format!("tls: {host:?} is not a valid server name")))
}

/// Turns a rustls error into the text LPC sees: what failed, for which host,
/// and which option changes it.
pub fn describe(e: &rustls::Error, host: &str) -> String {
    use rustls::AlertDescription as A;
    use rustls::CertificateError as C;
    const TRUST: &str = "SO_TLS_VERIFY_PEER is 1: set SO_TLS_CA to the PEM file of the CA that \
                         signed it, or SO_TLS_VERIFY_PEER 0 to skip verification";
    match e {
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            format!("tls: certificate not valid for host {host}")
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => format!(
            "tls: certificate for {host} is self-signed or signed by an unknown issuer and {TRUST}"
        ),
        // A trusted root carries the issuer's name but did not sign it (a
        // self-signed certificate named like a root, e.g. Debian's snakeoil
        // "localhost"): as unknown an issuer as any.
        rustls::Error::InvalidCertificate(
            C::BadSignature
            | C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        ) => format!(
            "tls: certificate for {host} is self-signed or signed by an unknown issuer (no \
             trusted root's key signed it) and {TRUST}"
        ),
        rustls::Error::InvalidCertificate(C::Expired)
        | rustls::Error::InvalidCertificate(C::ExpiredContext { .. }) => {
            format!("tls: certificate for {host} expired")
        }
        rustls::Error::InvalidCertificate(C::NotValidYet)
        | rustls::Error::InvalidCertificate(C::NotValidYetContext { .. }) => {
            format!("tls: certificate for {host} is not valid yet (check the clock)")
        }
        rustls::Error::InvalidCertificate(C::Other(o))
            if format!("{o:?}").contains("CaUsedAsEndEntity") =>
        {
            format!("tls: certificate for {host} is self-signed (a CA certificate used as its own) and {TRUST}")
        }
        // Alerts: `host` is the server's name on a client connection, so it is
        // named only where the sender must be a server.
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            format!("tls: {host} requires a client certificate: set SO_TLS_CERT and SO_TLS_KEY")
        }
        rustls::Error::AlertReceived(
            a @ (A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::AccessDenied),
        ) => format!(
            "tls: the peer rejected the certificate presented to it ({a:?}; see SO_TLS_CERT, \
             SO_TLS_KEY)"
        ),
        rustls::Error::AlertReceived(A::HandshakeFailure) => "tls: the peer refused the \
             handshake (HandshakeFailure: no TLS version or cipher in common, or a client \
             certificate is required: SO_TLS_CERT, SO_TLS_KEY)"
            .to_string(),
        rustls::Error::AlertReceived(a) => format!("tls: the peer sent the fatal alert {a:?}"),
        other => format!("tls: {other}"),
    }
}

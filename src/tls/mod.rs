//! rustls configurations built from a socket's options: servers from
//! SO_TLS_CERT/SO_TLS_KEY, clients with the system trust store or SO_TLS_CA,
//! SNI from SO_TLS_SNI_HOSTNAME or the connect host, and verification
//! (chain and host name) when SO_TLS_VERIFY_PEER is 1. TLS 1.2 and 1.3 only.
//! A certificate of the SO_TLS_CA bundle that is exactly the server's own is
//! accepted as pinned (self-signed, CA:TRUE or not), as `openssl -CAfile` does.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

mod error;

pub use error::TlsError;

use crate::error::Result;
use crate::options::ids::{
    SO_TLS_CA, SO_TLS_CERT, SO_TLS_KEY, SO_TLS_SNI_HOSTNAME, SO_TLS_VERIFY_PEER,
};
use crate::options::store::OptionStore;
use crate::policy::PolicyError;

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The bytes of the TLS file `path` (option `what`), if the policy's
/// `tls_dirs` hold it (read through one descriptor, no link followed).
fn read(what: &str, path: &str) -> Result<Vec<u8>> {
    crate::policy::gate::read_tls(what, path).map_err(|d| match d {
        crate::policy::Denied::Policy(why) => PolicyError::Refused { verb: "tls", why }.into(),
        crate::policy::Denied::Io(why, _) => TlsError::CannotRead { why }.into(),
    })
}

/// What is wrong with a PEM file, without quoting it: rustls's own text
/// for a malformed section start or end repeats the line it found, which
/// may be a line of a file that is no PEM at all (a secret).
fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a PEM section has no END line",
        E::IllegalSectionStart { .. } => "a line starting a PEM section is malformed",
        E::Base64Decode(_) => "a PEM section is not valid base64",
        E::NoItemsFound => "no PEM item of the wanted kind was found",
        E::SectionTooLarge => "a PEM section is too large",
        _ => "it cannot be read as PEM",
    }
}

fn load_certs(what: &str, path: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read(what, path)?;
    let certs: std::result::Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let certs = certs.map_err(|e| TlsError::BadCertificate {
        path: path.to_string(),
        problem: pem_problem(&e),
    })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_string(),
        }
        .into());
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>> {
    let bytes = read("SO_TLS_KEY", path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        TlsError::BadKey {
            path: path.to_string(),
            problem: pem_problem(&e),
        }
        .into()
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
    let (cert, key) = match (opts.string(SO_TLS_CERT), opts.string(SO_TLS_KEY)) {
        (Some(c), Some(k)) => (c, k),
        _ => return Err(TlsError::ListenerNeedsCertAndKey.into()),
    };
    let certs = load_certs("SO_TLS_CERT", cert)?;
    let key = load_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls { why: e.to_string() })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::CertKeyMismatch { why: e.to_string() })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Checks that `path` holds at least one PEM certificate.
pub fn check_cert_file(what: &str, path: &str) -> Result<()> {
    load_certs(what, path).map(|_| ())
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

/// Why a server certificate that shares the subject of a pinned one was
/// refused; `describe` turns it into the text LPC sees.
#[derive(Debug)]
struct NotThePinnedCertificate;

impl std::fmt::Display for NotThePinnedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not the pinned certificate")
    }
}

impl std::error::Error for NotThePinnedCertificate {}

/// webpki's CaUsedAsEndEntity, which rustls passes on only as an opaque error.
fn is_ca_used_as_end_entity(o: &rustls::OtherError) -> bool {
    format!("{o:?}").contains("CaUsedAsEndEntity")
}

/// The subject and validity period of a certificate, from its DER (webpki
/// keeps both to itself).
fn subject_and_validity(der: &[u8]) -> Option<(x509_cert::name::Name, x509_cert::time::Validity)> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some((cert.tbs_certificate.subject, cert.tbs_certificate.validity))
}

/// The verifier for SO_TLS_VERIFY_PEER 1 with an SO_TLS_CA bundle: a server
/// certificate equal (byte for byte) to one of the bundle is pinned and
/// accepted after its validity period and host name are checked, CA:TRUE or
/// not (webpki alone refuses a CA certificate as the server's own); every
/// other one goes through webpki's chain verification against the bundle.
/// Handshake signatures are checked by webpki in both cases, so the peer
/// holds the pinned certificate's key.
#[derive(Debug)]
struct PinningVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl PinningVerifier {
    fn verify_pinned(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        let (_, validity) = subject_and_validity(end_entity)
            .ok_or(rustls::Error::InvalidCertificate(C::BadEncoding))?;
        let not_before = UnixTime::since_unix_epoch(validity.not_before.to_unix_duration());
        let not_after = UnixTime::since_unix_epoch(validity.not_after.to_unix_duration());
        if now.as_secs() < not_before.as_secs() {
            return Err(rustls::Error::InvalidCertificate(C::NotValidYetContext {
                time: now,
                not_before,
            }));
        }
        if now.as_secs() > not_after.as_secs() {
            return Err(rustls::Error::InvalidCertificate(C::ExpiredContext {
                time: now,
                not_after,
            }));
        }
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    /// Whether a certificate of the bundle has the subject of `end_entity`.
    fn shares_a_pinned_subject(&self, end_entity: &CertificateDer<'_>) -> bool {
        let Some((subject, _)) = subject_and_validity(end_entity) else {
            return false;
        };
        self.pinned
            .iter()
            .filter_map(|c| subject_and_validity(c))
            .any(|(s, _)| s == subject)
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return self.verify_pinned(end_entity, server_name, now);
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map_err(|e| match e {
                // Not signed by anything in the bundle, yet named like a
                // certificate there: most likely a replaced or forged one.
                rustls::Error::InvalidCertificate(
                    C::UnknownIssuer
                    | C::BadSignature
                    | C::UnsupportedSignatureAlgorithmContext { .. }
                    | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
                ) if self.shares_a_pinned_subject(end_entity) => rustls::Error::InvalidCertificate(
                    C::Other(rustls::OtherError(Arc::new(NotThePinnedCertificate))),
                ),
                rustls::Error::InvalidCertificate(C::Other(ref o))
                    if is_ca_used_as_end_entity(o) && self.shares_a_pinned_subject(end_entity) =>
                {
                    rustls::Error::InvalidCertificate(C::Other(rustls::OtherError(Arc::new(
                        NotThePinnedCertificate,
                    ))))
                }
                e => e,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The verifier for an SO_TLS_CA bundle: its certificates are trusted roots and
/// pinned server certificates at once.
fn pinning_verifier(path: &str) -> Result<Arc<PinningVerifier>> {
    let pinned = load_certs("SO_TLS_CA", path)?;
    let mut store = RootCertStore::empty();
    for c in &pinned {
        store
            .add(c.clone())
            .map_err(|e| TlsError::BadCaCertificate {
                path: path.to_string(),
                why: e.to_string(),
            })?;
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
        .build()
        .map_err(|e| TlsError::UnusableCa {
            path: path.to_string(),
            why: e.to_string(),
        })?;
    Ok(Arc::new(PinningVerifier { webpki, pinned }))
}

/// Client configuration from the socket's options; `alpn` lists the
/// protocols offered (empty: no ALPN).
pub fn client_config(opts: &OptionStore, mode: u8, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>> {
    let verify = opts.int(SO_TLS_VERIFY_PEER, mode) != 0;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls { why: e.to_string() })?;
    let builder = if verify {
        match opts.string(SO_TLS_CA) {
            Some(path) => builder
                .dangerous()
                .with_custom_certificate_verifier(pinning_verifier(path)?),
            None => builder.with_root_certificates(system_roots()),
        }
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    };
    let mut config = match (opts.string(SO_TLS_CERT), opts.string(SO_TLS_KEY)) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(load_certs("SO_TLS_CERT", c)?, load_key(k)?)
            .map_err(|e| TlsError::ClientCertUnusable { why: e.to_string() })?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name sent as SNI and checked against the certificate.
pub fn server_name(opts: &OptionStore, connect_host: &str) -> Result<ServerName<'static>> {
    let host = opts.string(SO_TLS_SNI_HOSTNAME).unwrap_or(connect_host);
    ServerName::try_from(host.to_string()).map_err(|_| {
        TlsError::BadServerName {
            host: host.to_string(),
        }
        .into()
    })
}

/// Turns a rustls error into the text LPC sees: what failed, for which host,
/// and which option changes it.
pub fn describe(e: &rustls::Error, host: &str) -> String {
    use rustls::AlertDescription as A;
    use rustls::CertificateError as C;
    const TRUST: &str = "SO_TLS_VERIFY_PEER is 1: set SO_TLS_CA to the PEM file of the CA that \
                         signed it (or of this very certificate, to pin it), or SO_TLS_VERIFY_PEER \
                         0 to skip verification";
    match e {
        rustls::Error::InvalidCertificate(C::Other(o))
            if o.0.downcast_ref::<NotThePinnedCertificate>().is_some() =>
        {
            format!(
                "tls: certificate for {host} is not the one in SO_TLS_CA: a certificate there has \
                 the same subject but another content or key (was the server's certificate \
                 replaced? pin the new one, or this is not the server you expect)"
            )
        }
        // rustls reads host names from subjectAltName only, never from the CN
        // (nor does any browser), which `openssl req -subj /CN=host` alone leaves out.
        rustls::Error::InvalidCertificate(C::NotValidForNameContext { presented, .. })
            if presented.is_empty() =>
        {
            let kind = if host.parse::<std::net::IpAddr>().is_ok() {
                "IP"
            } else {
                "DNS"
            };
            format!(
                "tls: certificate not valid for host {host}: it names no host in \
                 subjectAltName (the CN is not used; make it with -addext \
                 \"subjectAltName={kind}:{host}\")"
            )
        }
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
        rustls::Error::InvalidCertificate(C::Other(o)) if is_ca_used_as_end_entity(o) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA:TRUE certificate for localhost valid for 2 days, made
    /// by the openssl CLI in a fresh directory (never committed).
    fn self_signed() -> (std::path::PathBuf, CertificateDer<'static>) {
        let dir = std::env::temp_dir().join(format!("unisock-tls-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("openssl")
            .current_dir(&dir)
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "k.pem",
                "-out",
                "c.pem",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ])
            .output()
            .expect("the openssl CLI");
        assert!(out.status.success(), "{out:?}");
        let path = dir.join("c.pem");
        crate::policy::open_for_tests();
        let der = load_certs("SO_TLS_CA", path.to_str().unwrap())
            .unwrap()
            .remove(0);
        (dir, der)
    }

    #[test]
    fn a_pinned_certificate_is_held_to_its_validity_period_and_host_name() {
        let (dir, der) = self_signed();
        let v = pinning_verifier(dir.join("c.pem").to_str().unwrap()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        let day = std::time::Duration::from_secs(86_400);
        let at = |d: std::time::Duration| UnixTime::since_unix_epoch(d);
        let now_d = std::time::Duration::from_secs(now.as_secs());
        assert!(v.verify_server_cert(&der, &[], &name, &[], now).is_ok());
        // openssl's checks, not webpki's (which refuses it as a CA certificate).
        let e = v
            .verify_server_cert(&der, &[], &name, &[], at(now_d + 3 * day))
            .unwrap_err();
        assert_eq!(
            describe(&e, "localhost"),
            "tls: certificate for localhost expired"
        );
        let e = v
            .verify_server_cert(&der, &[], &name, &[], at(now_d - day))
            .unwrap_err();
        assert_eq!(
            describe(&e, "localhost"),
            "tls: certificate for localhost is not valid yet (check the clock)"
        );
        let other = ServerName::try_from("other.example").unwrap();
        let e = v
            .verify_server_cert(&der, &[], &other, &[], now)
            .unwrap_err();
        assert_eq!(
            describe(&e, "other.example"),
            "tls: certificate not valid for host other.example"
        );
    }
}

//! What goes wrong while TLS is configured, mapped to result codes once
//! (`From<TlsError> for Error`). A refusal by the policy to read a TLS file
//! is the policy's error ([`crate::policy::PolicyError`]).

use std::fmt;

use crate::error::{Coded, ResultCode};

/// A TLS configuration failure; the texts start with `tls: ` except for the
/// listener's, which is socket_listen's.
#[derive(Clone, Debug, PartialEq)]
pub enum TlsError {
    /// A TLS listener without SO_TLS_CERT or SO_TLS_KEY.
    ListenerNeedsCertAndKey,
    /// A TLS file could not be read (`why` names the option and the path).
    CannotRead { why: String },
    /// A PEM certificate in `path` could not be read.
    BadCertificate { path: String, problem: &'static str },
    /// `path` holds no PEM certificate.
    NoCertificate { path: String },
    /// No PEM private key could be read from `path`.
    BadKey { path: String, problem: &'static str },
    /// The certificate and the key do not go together.
    CertKeyMismatch { why: String },
    /// A certificate of SO_TLS_CA cannot be a trusted root.
    BadCaCertificate { path: String, why: String },
    /// SO_TLS_CA as a whole cannot make a verifier.
    UnusableCa { path: String, why: String },
    /// The client certificate and key cannot be used.
    ClientCertUnusable { why: String },
    /// The name to send as SNI and to check is not a server name.
    BadServerName { host: String },
    /// rustls refused the configuration (protocol versions).
    Rustls { why: String },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::ListenerNeedsCertAndKey => f.write_str(
                "socket_listen: a TLS listener needs SO_TLS_CERT and SO_TLS_KEY (PEM file paths)",
            ),
            TlsError::CannotRead { why } => write!(f, "tls: cannot read {why}"),
            TlsError::BadCertificate { path, problem } => {
                write!(f, "tls: bad certificate in {path}: {problem}")
            }
            TlsError::NoCertificate { path } => {
                write!(f, "tls: no PEM certificate found in {path}")
            }
            TlsError::BadKey { path, problem } => {
                write!(
                    f,
                    "tls: cannot read a PEM private key from {path}: {problem}"
                )
            }
            TlsError::CertKeyMismatch { why } => {
                write!(
                    f,
                    "tls: certificate and key do not form a usable pair: {why}"
                )
            }
            TlsError::BadCaCertificate { path, why } => {
                write!(f, "tls: bad CA certificate in {path}: {why}")
            }
            TlsError::UnusableCa { path, why } => {
                write!(f, "tls: unusable SO_TLS_CA {path}: {why}")
            }
            TlsError::ClientCertUnusable { why } => {
                write!(f, "tls: client certificate unusable: {why}")
            }
            TlsError::BadServerName { host } => {
                write!(f, "tls: {host:?} is not a valid server name")
            }
            TlsError::Rustls { why } => write!(f, "tls: {why}"),
        }
    }
}

impl Coded for TlsError {
    fn code(&self) -> ResultCode {
        match self {
            TlsError::ListenerNeedsCertAndKey => ResultCode::EeListen,
            TlsError::CannotRead { .. }
            | TlsError::BadCertificate { .. }
            | TlsError::NoCertificate { .. }
            | TlsError::BadKey { .. }
            | TlsError::CertKeyMismatch { .. }
            | TlsError::BadCaCertificate { .. }
            | TlsError::UnusableCa { .. }
            | TlsError::ClientCertUnusable { .. }
            | TlsError::BadServerName { .. }
            | TlsError::Rustls { .. } => ResultCode::TlsConfig,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        let s = |x: &str| x.to_string();
        let table: Vec<(TlsError, ResultCode, &str)> =
            vec![
            (
                TlsError::ListenerNeedsCertAndKey,
                ResultCode::EeListen,
                "socket_listen: a TLS listener needs SO_TLS_CERT and SO_TLS_KEY (PEM file paths)",
            ),
            (
                TlsError::CannotRead { why: s("SO_TLS_KEY k: gone") },
                ResultCode::TlsConfig,
                "tls: cannot read SO_TLS_KEY k: gone",
            ),
            (
                TlsError::BadCertificate { path: s("c"), problem: "p" },
                ResultCode::TlsConfig,
                "tls: bad certificate in c: p",
            ),
            (
                TlsError::NoCertificate { path: s("c") },
                ResultCode::TlsConfig,
                "tls: no PEM certificate found in c",
            ),
            (
                TlsError::BadKey { path: s("k"), problem: "p" },
                ResultCode::TlsConfig,
                "tls: cannot read a PEM private key from k: p",
            ),
            (
                TlsError::CertKeyMismatch { why: s("w") },
                ResultCode::TlsConfig,
                "tls: certificate and key do not form a usable pair: w",
            ),
            (
                TlsError::BadCaCertificate { path: s("a"), why: s("w") },
                ResultCode::TlsConfig,
                "tls: bad CA certificate in a: w",
            ),
            (
                TlsError::UnusableCa { path: s("a"), why: s("w") },
                ResultCode::TlsConfig,
                "tls: unusable SO_TLS_CA a: w",
            ),
            (
                TlsError::ClientCertUnusable { why: s("w") },
                ResultCode::TlsConfig,
                "tls: client certificate unusable: w",
            ),
            (
                TlsError::BadServerName { host: s("a b") },
                ResultCode::TlsConfig,
                "tls: \"a b\" is not a valid server name",
            ),
            (
                TlsError::Rustls { why: s("w") },
                ResultCode::TlsConfig,
                "tls: w",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}

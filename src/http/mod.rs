//! The HTTP family: HTTP_SERVER, HTTP_CLIENT, HTTPS_SERVER, HTTPS_CLIENT
//! (modes 10–13) over the shared transport (plain or rustls), with the
//! options 100–109 and the TCP/TLS options that apply (callbacks.md).
//!
//! - `request_parser`, `request_mapping`, `response_writer`, `server`: the server side;
//! - `request_writer`, `response_parser`, `target`, `client`: the client side;
//! - `chunked`: the transfer coding both sides decode;
//! - `config`: the options both sides act on, typed once (`HttpConfig`, `ClientConfig`).

pub mod chunked;
pub mod client;
pub mod config;
pub mod error;
pub mod request_mapping;
pub mod request_parser;
pub mod request_writer;
pub mod response_parser;
pub mod response_writer;
pub mod server;
pub mod target;

use crate::core::{Cx, Endpoint};
use crate::error::{Error, Result};
use crate::modes;
use crate::transport::Conn;
pub use error::HttpError;

/// The option ids (generated from the catalog).
pub(crate) use crate::options::ids as opt;

/// The endpoint for a new socket of an HTTP mode.
pub fn new_endpoint(mode: u8) -> Result<Box<dyn Endpoint>> {
    match mode {
        modes::HTTP_SERVER | modes::HTTPS_SERVER => Ok(Box::new(server::HttpServer::new(mode))),
        modes::HTTP_CLIENT | modes::HTTPS_CLIENT => Ok(Box::new(client::HttpClient::new(mode))),
        _ => Err(HttpError::NotHttpMode { mode }.into()),
    }
}

/// Refuses the response-cache (200–209) and front-server (300–309) options:
/// the catalog accepts them on HTTP modes, but their families are not built
/// yet (`Family::not_built`), and storing a setting that does nothing would
/// be a silent no-op.
pub fn refuse_unbuilt(id: u16) -> Result<()> {
    match crate::options::Family::of(id).not_built() {
        Some(family) => Err(crate::options::validate::not_built_yet(id, family)),
        None => Ok(()),
    }
}

/// What both sides do first when option `id` is set: refuse the options of
/// families not built yet, re-apply the TCP options to a live connection,
/// and check the TLS files of a TLS mode (`tls`); the caller then updates its
/// config (after these, so a refused value never reaches it).
fn option_set(cx: &Cx, id: u16, conn: Option<&Conn>, mode: u8, tls: bool) -> Result<()> {
    refuse_unbuilt(id)?;
    if let Some(conn) = conn {
        conn.option_changed(id, &cx.core.options, mode);
    }
    if tls {
        check_tls_files(cx, id)?;
    }
    Ok(())
}

/// Checks SO_TLS_CERT / SO_TLS_KEY / SO_TLS_CA files when one is set, so a
/// wrong path or a key that does not match the certificate is an error at
/// socket_set_option time rather than at listen or connect.
pub fn check_tls_files(cx: &Cx, id: u16) -> Result<()> {
    use crate::options::ids::{SO_TLS_CA, SO_TLS_CERT, SO_TLS_KEY};
    let opts = &cx.core.options;
    // The code is kept: EESECURITY for a file outside the policy's tls_dirs.
    let with_name =
        |cause: Error, name: &'static str| Error::from(HttpError::TlsFile { name, id, cause });
    match id {
        SO_TLS_CERT => {
            crate::tls::check_cert_file("SO_TLS_CERT", opts.string(SO_TLS_CERT).unwrap_or(""))
                .map_err(|e| with_name(e, "SO_TLS_CERT"))?;
        }
        SO_TLS_KEY => {
            crate::tls::check_key_file(opts.string(SO_TLS_KEY).unwrap_or(""))
                .map_err(|e| with_name(e, "SO_TLS_KEY"))?;
        }
        SO_TLS_CA => {
            crate::tls::check_cert_file("SO_TLS_CA", opts.string(SO_TLS_CA).unwrap_or(""))
                .map_err(|e| with_name(e, "SO_TLS_CA"))?;
            return Ok(());
        }
        _ => return Ok(()),
    }
    if opts.string(SO_TLS_CERT).is_some() && opts.string(SO_TLS_KEY).is_some() {
        crate::tls::check_pair(opts).map_err(|e| {
            with_name(
                e,
                if id == SO_TLS_CERT {
                    "SO_TLS_CERT"
                } else {
                    "SO_TLS_KEY"
                },
            )
        })?;
    }
    Ok(())
}

/// The HTTP family as `registry::FAMILIES` lists it.
pub static FAMILY: crate::core::FamilyDef = crate::core::FamilyDef {
    what: "an HTTP socket (HTTP_SERVER 10 to HTTPS_CLIENT 13)",
    modes: modes::ModeSet::range(modes::HTTP_SERVER, modes::HTTPS_CLIENT),
    new_endpoint,
    adopt: None,
};

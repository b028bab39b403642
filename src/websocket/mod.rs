//! The WebSocket family: WEBSOCKET_SERVER, WEBSOCKET_CLIENT and their TLS
//! twins (modes 16–19), options 120–129 (callbacks.md, "WebSocket"), and
//! the upgrade of an HTTP server connection LPC accepts.
//!
//! - `session`: the protocol after the handshake, sans-IO (frames through
//!   tungstenite's frame codec; messages, limits, UTF-8, the closing
//!   handshake here);
//! - `deflate`: permessage-deflate (RFC 7692) on flate2;
//! - `handshake`: the opening handshake, both sides (the server reads the
//!   request with the HTTP server's parser);
//! - `config`: the options, typed once;
//! - `socket`: the endpoint on `transport::{Listener, Conn}`.

pub mod config;
pub mod deflate;
pub mod error;
pub mod handshake;
pub mod session;
pub mod socket;

use crate::core::Endpoint;
use crate::error::Result;
use crate::modes;
pub use error::WsError;

/// The endpoint for a new socket of a WebSocket mode.
pub fn new_endpoint(mode: u8) -> Result<Box<dyn Endpoint>> {
    match mode {
        modes::WEBSOCKET_SERVER..=modes::WEBSOCKET_TLS_CLIENT => {
            Ok(Box::new(socket::WsSocket::new(mode)))
        }
        _ => Err(WsError::NotWsMode { mode }.into()),
    }
}

/// The WebSocket family as `registry::FAMILIES` lists it.
pub static FAMILY: crate::core::FamilyDef = crate::core::FamilyDef {
    what: "a WebSocket socket (WEBSOCKET_SERVER 16 to WEBSOCKET_TLS_CLIENT 19)",
    modes: modes::ModeSet::range(modes::WEBSOCKET_SERVER, modes::WEBSOCKET_TLS_CLIENT),
    new_endpoint,
    adopt: None,
};

//! permessage-deflate (RFC 7692) for the WebSocket family: the offer and
//! answer of the extension's parameters, and the per-connection compressor
//! and decompressor (flate2 on zlib-rs, which takes window bits 9..=15).
//!
//! Interface used by the rest of `src/websocket/` (keep it):
//! - `Params` the agreed parameters; `Side` which end we are;
//! - server: `accept_offers(headers)` picks the first acceptable offer among
//!   the client's `Sec-WebSocket-Extensions` values and returns the params and
//!   the response header value;
//! - client: `client_offer()` is the header value sent; `client_accept(value)`
//!   checks the server's answer;
//! - `Deflate::new(params, side)`; `compress(msg, out)` appends one whole
//!   message's compressed payload (without the trailing 00 00 ff ff);
//!   `decompress(piece, fin, out, max)` appends the inflated bytes of one
//!   frame's payload and fails with `TooBig` before `out` passes `max` bytes
//!   in all (a bomb costs at most `max` plus one output chunk).
//!
//! STUB: the implementation is being written (issue 15).

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// The agreed parameters (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// 9..=15 (8 is declined: zlib cannot compress with a 256-byte window).
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

/// Why inflating failed.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The message passed `max` bytes once inflated (close 1009).
    TooBig,
    /// The compressed data is not valid deflate (close 1007).
    Corrupt(String),
}

/// Server: the first acceptable permessage-deflate offer among the
/// client's Sec-WebSocket-Extensions header values; the params and the
/// value of the response header. None: no acceptable offer (the connection
/// opens without compression).
pub fn accept_offers(_values: &[&str]) -> Option<(Params, String)> {
    None
}

/// Client: the Sec-WebSocket-Extensions value offered.
pub fn client_offer() -> &'static str {
    "permessage-deflate; client_max_window_bits"
}

/// Client: checks the server's Sec-WebSocket-Extensions answer to our offer.
pub fn client_accept(_value: &str) -> Result<Params, String> {
    Err("permessage-deflate is not built yet".into())
}

/// One connection's compressor and decompressor.
pub struct Deflate {
    _params: Params,
    _side: Side,
}

impl Deflate {
    pub fn new(params: Params, side: Side) -> Deflate {
        Deflate {
            _params: params,
            _side: side,
        }
    }

    /// Appends the compressed payload of one whole message to `out`.
    pub fn compress(&mut self, _msg: &[u8], _out: &mut Vec<u8>) -> Result<(), String> {
        Err("permessage-deflate is not built yet".into())
    }

    /// Appends the inflated bytes of one frame's payload (`fin`: the
    /// message's last frame) to `out`, failing before `out` passes `max`.
    pub fn decompress(
        &mut self,
        _piece: &[u8],
        _fin: bool,
        _out: &mut Vec<u8>,
        _max: usize,
    ) -> Result<(), InflateError> {
        Err(InflateError::Corrupt(
            "permessage-deflate is not built yet".into(),
        ))
    }
}

//! permessage-deflate (RFC 7692) for the WebSocket family: the offer and
//! answer of the extension's parameters, and the per-connection compressor
//! and decompressor (flate2 on zlib-rs, raw deflate, window bits 9..=15).
//!
//! Interface used by the rest of `src/websocket/`:
//! - `Params` the agreed parameters; `Side` which end we are;
//! - server: `accept_offers(values)` picks the first acceptable offer among
//!   the client's `Sec-WebSocket-Extensions` values and returns the params and
//!   the response header value (`accept_offers_with` does the same with a
//!   `ServerPrefs` that trades compression for memory);
//! - client: `client_offer()` is the header value sent; `client_accept(value)`
//!   checks the server's answer;
//! - `Deflate::new(params, side)`; `compress(msg, out)` appends one whole
//!   message's compressed payload (without the trailing 00 00 ff ff);
//!   `decompress(piece, fin, out, max)` appends the inflated bytes of one
//!   frame's payload and fails with `TooBig` before `out` passes `max` bytes
//!   in all (a bomb costs at most `max` plus one output chunk);
//!   `release_idle()` frees the zlib contexts between messages when they hold
//!   no state worth keeping.
//!
//! Window bits 8. zlib (and zlib-rs) refuse to compress raw deflate with a
//! 256-byte window, so:
//! - a server declines an offer whose `server_max_window_bits` is 8 and tries
//!   the client's next offer (none left: the connection opens uncompressed).
//!   Autobahn's cases 13.3, 13.5 and 13.7 offered 8 in older releases; the
//!   testsuite installed here (25.10.1) offers 9, which is accepted;
//! - a client told `client_max_window_bits=8` complies with stored (type 00)
//!   deflate blocks, which refer to no window at all: the messages it sends
//!   are framed as compressed but not smaller (5 bytes more per 64 KiB). What
//!   it receives is inflated normally.
//!
//! Inflating never has that problem: the decompressor always uses a 15-bit
//! window, which decodes anything made with a smaller one. zlib-rs
//! allocates the same for every window size, and with the full window the
//! outcome does not depend on how the input is cut (with a smaller one,
//! zlib accepts a distance past the window only when it falls inside the
//! output of the same call, so a peer that overstepped its agreed window
//! would fail or not depending on the frames).
//!
//! Memory (zlib-rs 0.6, measured with a counting allocator): a compressor
//! allocates about 370 KiB at 15 window bits (260 KiB at 12, 245 KiB at 9:
//! the hash table does not shrink with the window; the level changes
//! nothing), a decompressor about 46 KiB. Both are
//! created on first use. With context takeover they must stay for the
//! connection's life (they are the shared history), so an idle compressed
//! connection that has sent and received once holds about 420 KiB. A server
//! that cannot afford that passes `ServerPrefs { no_context_takeover: true,
//! .. }` (and/or a smaller window) and calls `release_idle()` when the
//! connection goes quiet: the compressor is freed, and so is the
//! decompressor when the client offered `client_no_context_takeover` (as
//! Autobahn's offers do; Chromium's and Python websockets' do not). An idle connection then holds
//! no zlib memory; each message after a release allocates its context again.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

mod negotiate;

pub use negotiate::{accept_offers, accept_offers_with, client_accept, client_offer};

/// The extension's name in Sec-WebSocket-Extensions.
pub const NAME: &str = "permessage-deflate";

/// What a message's compressed payload lacks at its end (RFC 7692 §7.2.1):
/// the LEN and NLEN of the empty stored block that a sync flush ends with.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflated bytes produced per step of the decompressor: `out` never holds
/// more than `max` bytes and its capacity never passes `max` + `CHUNK`.
const CHUNK: usize = 32 * 1024;

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
    /// The server's compression window, 9..=15 when we are the server (an
    /// offer of 8 is declined: zlib cannot compress with a 256-byte window).
    /// A client may be told 8 by a server (it inflates with 15 bits anyway).
    pub server_max_window_bits: u8,
    /// The client's compression window, 8..=15. 15 when the server's answer
    /// does not name it. A client told 8 sends stored blocks (see the module
    /// documentation); a server inflates with 15 bits whatever this is.
    pub client_max_window_bits: u8,
}

impl Default for Params {
    /// Context takeover both ways, 15-bit windows: a bare "permessage-deflate".
    fn default() -> Params {
        Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// Why inflating failed.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The message passed `max` bytes once inflated (close 1009).
    TooBig,
    /// The compressed data is not valid deflate (close 1007).
    Corrupt(String),
}

/// What a server is willing to spend on a connection: the memory knobs of
/// `accept_offers_with`. The default (`accept_offers`) keeps the best
/// compression: context takeover and a 15-bit window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerPrefs {
    /// Answer `server_no_context_takeover` even when the client did not ask:
    /// our compressor holds no history between messages, so `release_idle`
    /// can free it (RFC 7692 §7.1.1.1 lets a server add it).
    pub no_context_takeover: bool,
    /// The largest window our compressor uses, 9..=15: answered as
    /// `server_max_window_bits` when lower than 15 or lower than the
    /// client's own request (§7.1.2.1 lets a server add it).
    pub max_window_bits: u8,
}

impl Default for ServerPrefs {
    fn default() -> ServerPrefs {
        ServerPrefs {
            no_context_takeover: false,
            max_window_bits: 15,
        }
    }
}

// ---------------------------------------------------------------------------
// The codec

/// One connection's compressor and decompressor.
pub struct Deflate {
    /// Our compression window: 9..=15, or 8 for stored blocks.
    send_bits: u8,
    /// Reset the compressor after each message.
    send_reset: bool,
    /// Reset the decompressor after each message.
    recv_reset: bool,
    comp: Option<Compress>,
    decomp: Option<Decompress>,
    /// A message is being inflated (frames seen, no `fin` yet).
    in_message: bool,
    /// Some payload byte of this message reached the inflater.
    fed: bool,
    /// The peer's last block was final (BFINAL) and nothing came after it:
    /// the inflater was reset and has had no input since.
    just_ended: bool,
}

impl Deflate {
    pub fn new(params: Params, side: Side) -> Deflate {
        let (send_bits, send_reset, recv_reset) = match side {
            Side::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_no_context_takeover,
            ),
            Side::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_no_context_takeover,
            ),
        };
        Deflate {
            send_bits: send_bits.clamp(8, 15),
            send_reset,
            recv_reset,
            comp: None,
            decomp: None,
            in_message: false,
            fed: false,
            just_ended: false,
        }
    }

    /// Appends the compressed payload of one whole message to `out` (a sync
    /// flush without its final 00 00 ff ff). The error is zlib's message.
    pub fn compress(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        if self.send_bits < 9 {
            stored(msg, out);
            return Ok(());
        }
        if msg.is_empty() {
            // At a message boundary the stream is byte-aligned: an empty
            // stored block's header is the whole payload (§7.2.3.6). zlib
            // would emit nothing for a second flush with no input.
            out.push(0x00);
            return Ok(());
        }
        let start = out.len();
        let bits = self.send_bits;
        let comp = self.comp.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::default(), false, bits)
        });
        let base = comp.total_in();
        loop {
            let done = (comp.total_in() - base) as usize;
            out.reserve((msg.len() - done) / 2 + 64);
            let status = comp
                .compress_vec(&msg[done..], out, FlushCompress::Sync)
                .map_err(|e| e.to_string())?;
            let done = (comp.total_in() - base) as usize;
            // A sync flush is complete when all input is in and zlib left
            // room in the output.
            if done == msg.len() && out.len() < out.capacity() {
                break;
            }
            if status == Status::BufError && out.len() < out.capacity() {
                return Err("deflate compression error: no progress".into());
            }
        }
        if out.len() < start + 4 || out[out.len() - 4..] != TAIL {
            return Err(
                "deflate compression error: the sync flush did not end in 00 00 ff ff".into(),
            );
        }
        out.truncate(out.len() - 4);
        if self.send_reset {
            comp.reset();
        }
        Ok(())
    }

    /// Appends the inflated bytes of one frame's payload (`fin`: the
    /// message's last frame) to `out`, failing before `out` passes `max`.
    ///
    /// `out` is the message so far (its length counts towards `max`); it
    /// grows in steps of at most 32 KiB and its capacity never goes past
    /// `max` + 32 KiB, so a bomb costs no more than that. After an error the
    /// message is abandoned (the connection is to be closed).
    pub fn decompress(
        &mut self,
        piece: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), InflateError> {
        if !self.in_message {
            self.in_message = true;
            self.fed = false;
        }
        self.fed |= !piece.is_empty();
        // The tail completes the empty stored block the sender's flush ended
        // with. It is not added when that block is not there to complete: a
        // message without a single payload byte, or one whose data ended
        // with a final block (the inflater starts afresh after it).
        let add_tail = fin && self.fed;
        let r = self.inflate(piece, out, max).and_then(|()| {
            if add_tail && !self.just_ended {
                self.inflate(&TAIL, out, max)
            } else {
                Ok(())
            }
        });
        if r.is_err() {
            // Its state is unknown now: the next message (if any) starts a
            // fresh stream.
            self.decomp = None;
            self.in_message = false;
            self.just_ended = false;
            return r;
        }
        if fin {
            self.in_message = false;
            if self.recv_reset && !self.just_ended {
                if let Some(d) = self.decomp.as_mut() {
                    d.reset(false);
                }
            }
        }
        Ok(())
    }

    /// Inflates `input` into `out`, bounded by `max`. A final block
    /// (BFINAL) ends the peer's stream: the inflater is reset and whatever
    /// follows is a new stream (RFC 7692 §7.2.3.4 sends one 0x00 after it,
    /// the header of the empty stored block the tail completes).
    fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        let d = self
            .decomp
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let mut used = 0;
        while used < input.len() || !self.just_ended {
            let len = out.len();
            let room = max.saturating_sub(len);
            // One byte more than the room left: producing it proves TooBig.
            let want = CHUNK.min(room.saturating_add(1));
            grow(out, len + want, max);
            out.resize(len + want, 0);
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d.decompress(&input[used..], &mut out[len..], FlushDecompress::None);
            let took = (d.total_in() - in0) as usize;
            let made = (d.total_out() - out0) as usize;
            // Over the limit first: the bytes made before any error in this
            // step came first in the stream.
            if made > room {
                out.truncate(len);
                return Err(InflateError::TooBig);
            }
            out.truncate(len + made);
            let status = status.map_err(|e| {
                InflateError::Corrupt(e.message().unwrap_or("invalid deflate data").to_string())
            })?;
            used += took;
            if took > 0 {
                self.just_ended = false;
            }
            if status == Status::StreamEnd {
                d.reset(false);
                self.just_ended = true;
                continue;
            }
            if used == input.len() && made < want {
                break;
            }
            if took == 0 && made == 0 {
                // No progress with input left and room to write: cannot happen
                // with a healthy inflater; do not spin.
                return Err(InflateError::Corrupt("inflate made no progress".into()));
            }
        }
        Ok(())
    }

    /// Frees the zlib contexts that hold nothing needed later: the
    /// compressor when our side resets after every message, the decompressor
    /// when the peer's side does and no message is being inflated. Call it
    /// when the connection goes idle (for example when its output queue has
    /// drained); the next message creates them again (about 370 KiB for a
    /// compressor at 15 window bits, see the module documentation). With
    /// context takeover it frees nothing: the history is part of the stream.
    pub fn release_idle(&mut self) {
        if self.send_reset {
            self.comp = None;
        }
        if self.recv_reset && !self.in_message {
            self.decomp = None;
        }
    }

    /// Whether a compressor or decompressor is allocated now (for tests and
    /// statistics).
    pub fn holds_contexts(&self) -> (bool, bool) {
        (self.comp.is_some(), self.decomp.is_some())
    }
}

/// Grows `out`'s capacity to at least `need` bytes, doubling as a Vec does
/// but never past `max` + `CHUNK`.
fn grow(out: &mut Vec<u8>, need: usize, max: usize) {
    if out.capacity() >= need {
        return;
    }
    let cap = out
        .capacity()
        .saturating_mul(2)
        .max(need)
        .min(max.saturating_add(CHUNK))
        .max(need);
    out.reserve_exact(cap - out.len());
}

/// `msg` as stored deflate blocks (no window used), ending with the header
/// byte of the empty block whose LEN/NLEN the receiver adds back.
fn stored(msg: &[u8], out: &mut Vec<u8>) {
    out.reserve(msg.len() + msg.len() / 65535 * 5 + 6);
    for block in msg.chunks(65535) {
        let n = block.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.push(0x00);
}

#[cfg(test)]
mod tests;

//! The legacy family: modes 0–6 (MUD, STREAM, DATAGRAM, STREAM_BINARY,
//! DATAGRAM_BINARY, STREAM_TLS, STREAM_TLS_BINARY) with upstream FluffOS
//! behaviour, minus upstream's defects (see docs/COMPATIBILITY.md).

pub mod datagram;
pub mod framing;
pub mod stream;

use std::os::fd::OwnedFd;

use crate::core::Endpoint;
use crate::error::{Error, Result, ResultCode};
use crate::modes;

/// The endpoint for a new socket of a legacy mode.
pub fn new_endpoint(mode: u8) -> Result<Box<dyn Endpoint>> {
    match mode {
        modes::DATAGRAM | modes::DATAGRAM_BINARY => Ok(Box::new(datagram::Datagram::new(mode))),
        modes::MUD
        | modes::STREAM
        | modes::STREAM_BINARY
        | modes::STREAM_TLS
        | modes::STREAM_TLS_BINARY => Ok(Box::new(stream::Stream::new(mode))),
        _ => Err(Error::new(
            ResultCode::EeModenotsupp,
            format!(
                "socket_create: mode {} is not served here",
                modes::name(mode)
            ),
        )),
    }
}

/// An endpoint around an already connected stream fd (external_start's socketpair end).
pub fn adopt(fd: OwnedFd, mode: u8) -> Result<Box<dyn Endpoint>> {
    let std_stream = std::net::TcpStream::from(fd);
    std_stream
        .set_nonblocking(true)
        .map_err(|e| Error::io("adopt_fd: set non-blocking", ResultCode::EeNonblock, &e))?;
    Ok(Box::new(stream::Stream::adopted(mode, std_stream)))
}

/// The legacy family as `registry::FAMILIES` lists it.
pub static FAMILY: crate::core::FamilyDef = crate::core::FamilyDef {
    what: "a legacy socket (MUD 0 to STREAM_TLS_BINARY 6)",
    modes: modes::ModeSet::range(modes::MUD, modes::STREAM_TLS_BINARY),
    new_endpoint,
    adopt: Some((
        modes::ModeSet::of(&[modes::MUD, modes::STREAM, modes::STREAM_BINARY]),
        adopt,
    )),
};

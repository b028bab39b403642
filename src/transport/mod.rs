//! Byte transports shared by the families: a non-blocking TCP connection with
//! optional TLS (rustls) and a plaintext write queue, plus helpers to create
//! and configure sockets from the option store, and the lingering close of
//! connections a server turns away.

pub mod conn;
pub mod linger;
pub mod tcp;

pub use conn::{close_by_lpc, Conn, ReadEnd, FLUSH_DEADLINE};

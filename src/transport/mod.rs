//! Byte transports shared by the families: a non-blocking TCP connection with
//! optional TLS (rustls) and a plaintext write queue, plus helpers to create
//! and configure sockets from the option store, the lingering close of
//! connections a server turns away, and the no-progress deadline and listener
//! budget of queued output.

pub mod conn;
pub mod linger;
pub mod output;
pub mod tcp;

pub use conn::{close_by_lpc, Conn, ReadEnd, FLUSH_DEADLINE};

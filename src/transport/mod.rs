//! Byte transports shared by the families: a non-blocking TCP connection with
//! optional TLS (rustls), its write queue and what every TCP family does with
//! it (`conn`), the byte queue itself (`queue`, also the IPC link's and an
//! external process's stdin), one reactor timer for a set of deadlines
//! (`deadline`), the listener every TCP family's server side uses
//! (`listener`), helpers to create and configure sockets from the option
//! store (`tcp`), the lingering close of connections a server turns away
//! (`linger`), and the no-progress deadline and listener budget of queued
//! output (`output`), and the transport options every TCP family acts on as
//! a typed config (`config`), and the states of a TCP family's socket with
//! the steps every family takes the same way: bind, listen, the descriptor,
//! deregistering (`sock`).

pub mod config;
pub mod conn;
pub mod deadline;
pub mod error;
pub mod linger;
pub mod listener;
pub mod output;
pub mod queue;
pub mod sock;
pub mod tcp;

pub use config::ConnConfig;
pub use conn::{close_by_lpc, Conn, Connecting, ReadEnd, FLUSH_DEADLINE};
pub use deadline::Deadline;
pub use error::TransportError;
pub use listener::{Incoming, Listener, Ticket};
pub use queue::OutQueue;
pub use sock::Sock;

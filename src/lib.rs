//! unisock: modern networking for FluffOS mudlibs through the socket efuns.
//!
//! The crate is a library with a C ABI (`src/ffi/`, the only place with
//! `extern "C"`). The driver (through the C++ shim in `cpp_shim/`) watches one
//! file descriptor, the reactor's, calls `unisock_dispatch` when it is
//! readable and drains events. See docs/ARCHITECTURE.md.

pub mod error;
pub mod gen;
pub mod http_util;
pub mod modes;
pub mod options;
pub mod policy;
pub mod sys;
pub mod value;

pub use error::{Error, Result, ResultCode};
pub use value::Value;

pub mod core;
#[cfg(test)]
mod echo;
pub mod external;
pub mod ffi;
pub mod http;
pub mod ipc;
pub mod legacy;
pub mod reactor;
pub mod registry;
pub mod tls;
pub mod transport;
pub mod websocket;

//! The IPC message bus: IPC_SERVER and IPC_CLIENT (modes 29/30), the seeds'
//! Python socket module as driver modes (callbacks.md "IPC message bus",
//! options 440–453, docs/modes/ipc.md).
//!
//! - `codec`: MessagePack ⇄ LPC values, finding where one value ends;
//! - `message`: the bus message map, stamped in the bus's time zone;
//! - `transport`: Unix socket files and TCP port ranges behind one stream type;
//! - `link`: one connection's framing and bounded output;
//! - `server`, `client`: the two endpoints.

pub mod client;
pub mod codec;
mod error;
pub mod link;
pub mod message;
pub mod server;
pub mod transport;

pub use error::IpcError;

use crate::core::Endpoint;
use crate::error::Result;
use crate::modes;
use crate::options::store::OptionStore;
use crate::value::Value;

const MODE_SERVER: u8 = modes::IPC_SERVER;
const MODE_CLIENT: u8 = modes::IPC_CLIENT;

/// The option ids (generated from the catalog).
pub(crate) use crate::options::ids as opt;

/// The endpoint for a new socket of an IPC mode.
pub fn new_endpoint(mode: u8) -> Result<Box<dyn Endpoint>> {
    match mode {
        modes::IPC_SERVER => Ok(Box::new(server::IpcServer::new())),
        modes::IPC_CLIENT => Ok(Box::new(client::IpcClient::new())),
        _ => Err(IpcError::NotIpcMode { mode }.into()),
    }
}

/// The effective value of a string option (stored or default).
fn string(opts: &OptionStore, id: u16, mode: u8) -> String {
    crate::options::catalog::find(id as i64)
        .map(|d| opts.effective(d, mode))
        .and_then(|v| match v {
            Value::Str(s) => Some(s),
            _ => None,
        })
        .unwrap_or_default()
}

/// IPC_EVENT_NAME, which every IPC socket needs before it starts.
fn event_name(opts: &OptionStore, verb: &'static str) -> Result<String> {
    Ok(opts
        .string(opt::IPC_EVENT_NAME)
        .map(str::to_string)
        .ok_or(IpcError::NoEventName { verb })?)
}

fn is_tcp(opts: &OptionStore, mode: u8) -> bool {
    string(opts, opt::IPC_TRANSPORT, mode) == "tcp"
}

/// IPC_PORT_RANGE as (lo, hi).
fn port_range(opts: &OptionStore, mode: u8) -> (u16, u16) {
    let v =
        crate::options::catalog::find(opt::IPC_PORT_RANGE as i64).map(|d| opts.effective(d, mode));
    match v {
        Some(Value::Array(a)) => match a.as_slice() {
            [Value::Int(lo), Value::Int(hi)] => (*lo as u16, *hi as u16),
            _ => (50000, 50100),
        },
        _ => (50000, 50100),
    }
}

/// The Unix socket path the options name.
fn unix_path(opts: &OptionStore, name: &str) -> Result<std::path::PathBuf> {
    let dir = opts
        .string(opt::IPC_SOCKET_DIR)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(transport::default_dir);
    transport::socket_path(&dir, name)
}

/// How the policy's messages name the socket directory: IPC_SOCKET_DIR, or
/// the default used when it is unset (the policy checks that one too).
fn dir_option(opts: &OptionStore) -> &'static str {
    if opts.string(opt::IPC_SOCKET_DIR).is_some() {
        "IPC_SOCKET_DIR"
    } else {
        "IPC_SOCKET_DIR (unset, so the default)"
    }
}

/// SO_SEND_TIMEOUT: how long queued output may make no progress before the
/// connection is dropped as too slow (None: 0, no deadline).
fn send_timeout(opts: &OptionStore, mode: u8) -> Option<std::time::Duration> {
    let ms = opts.int(opt::SO_SEND_TIMEOUT, mode);
    (ms > 0).then(|| std::time::Duration::from_millis(ms as u64))
}

fn stamp(opts: &OptionStore, mode: u8, name: &str) -> message::Stamp {
    message::Stamp::new(name, &string(opts, opt::IPC_TIMEZONE, mode))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The IPC family as `registry::FAMILIES` lists it.
pub static FAMILY: crate::core::FamilyDef = crate::core::FamilyDef {
    what: "an IPC socket (IPC_SERVER 29 or IPC_CLIENT 30)",
    modes: modes::ModeSet::of(&[MODE_SERVER, MODE_CLIENT]),
    new_endpoint,
    adopt: None,
};

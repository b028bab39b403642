//! The options the WebSocket family acts on, typed once (as tungstenite's
//! `WebSocketConfig`): read when the endpoint is made, copied from a
//! listener to the connections it accepts (and from an HTTP server to the
//! connections LPC upgrades), and updated in `option_set`.

use std::sync::Arc;
use std::time::Duration;

use crate::options::ids::{
    WS_AUTO_PING, WS_COMPRESSION, WS_EXTENSIONS, WS_FRAME_SIZE_LIMIT, WS_MAX_MESSAGE_SIZE,
    WS_ORIGIN, WS_PING_INTERVAL, WS_PONG_TIMEOUT, WS_PROTOCOL,
};
use crate::options::store::OptionStore;
use crate::transport::ConnConfig;
use crate::value::Value;

use super::session::Limits;

#[derive(Clone, Debug, Default)]
pub struct WsConfig {
    pub conn: ConnConfig,
    /// WS_MAX_MESSAGE_SIZE, WS_FRAME_SIZE_LIMIT (bytes), WS_AUTO_PING.
    pub max_message: usize,
    pub max_frame: usize,
    pub auto_ping: bool,
    /// WS_PING_INTERVAL (zero: none), WS_PONG_TIMEOUT.
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    /// WS_COMPRESSION 1, or "permessage-deflate" in WS_EXTENSIONS.
    pub compression: bool,
    /// WS_PROTOCOL as a list (server: preference order; client: offered).
    pub protocols: Arc<[String]>,
    /// WS_ORIGIN: server: the allowed origins (None: any); client: the first is sent.
    pub origins: Option<Arc<[String]>>,
}

/// A string or an array of strings as a list.
fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Str(s) => Some(vec![s.clone()]),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

impl WsConfig {
    const IDS: [u16; 9] = [
        WS_MAX_MESSAGE_SIZE,
        WS_FRAME_SIZE_LIMIT,
        WS_AUTO_PING,
        WS_PING_INTERVAL,
        WS_PONG_TIMEOUT,
        WS_COMPRESSION,
        WS_EXTENSIONS,
        WS_PROTOCOL,
        WS_ORIGIN,
    ];

    pub fn read(o: &OptionStore, mode: u8) -> WsConfig {
        let mut c = WsConfig {
            conn: ConnConfig::read(o, mode),
            ..WsConfig::default()
        };
        for id in Self::IDS {
            c.update(o, mode, id);
        }
        c
    }

    /// Re-reads option `id` from `o` if it is one of these; true if it was.
    pub fn update(&mut self, o: &OptionStore, mode: u8, id: u16) -> bool {
        let int = || o.int(id, mode);
        match id {
            WS_MAX_MESSAGE_SIZE => self.max_message = int().max(0) as usize,
            WS_FRAME_SIZE_LIMIT => self.max_frame = int().max(0) as usize,
            WS_AUTO_PING => self.auto_ping = int() != 0,
            WS_PING_INTERVAL => self.ping_interval = Duration::from_secs(int().max(0) as u64),
            WS_PONG_TIMEOUT => self.pong_timeout = Duration::from_secs(int().max(1) as u64),
            WS_COMPRESSION | WS_EXTENSIONS => {
                let listed = strings(o.raw(WS_EXTENSIONS))
                    .is_some_and(|l| l.iter().any(|e| e == "permessage-deflate"));
                self.compression = o.int(WS_COMPRESSION, mode) != 0 || listed;
            }
            WS_PROTOCOL => self.protocols = strings(o.raw(id)).unwrap_or_default().into(),
            WS_ORIGIN => self.origins = strings(o.raw(id)).map(Into::into),
            _ => return self.conn.update(o, mode, id),
        }
        true
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_message: self.max_message,
            max_frame: self.max_frame,
            auto_pong: self.auto_ping,
        }
    }

    /// Pings are sent every `ping_interval` (None: never): only with WS_AUTO_PING.
    pub fn pings(&self) -> Option<Duration> {
        (self.auto_ping && !self.ping_interval.is_zero()).then_some(self.ping_interval)
    }
}

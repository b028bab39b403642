//! The transport options every TCP family acts on, as a typed config (as
//! tungstenite's `WebSocketConfig`): read from the socket's store when the
//! endpoint is made (the defaults), copied from the listener to a connection
//! it accepts (the core gives the child a copy of the listener's options),
//! and updated in `option_set` when one of them is set, so every use sees
//! the value the store holds then without looking it up by id. A family
//! embeds it in its own config or uses it as it is.

use std::time::Duration;

use crate::options::ids::{SO_IDLE_TIMEOUT, SO_MAX_BUFFERED, SO_MAX_CONNECTIONS, SO_SEND_TIMEOUT};
use crate::options::store::OptionStore;

/// The values as the store holds them (ints as set; the accessors apply the
/// conversions the families use).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnConfig {
    /// SO_IDLE_TIMEOUT, ms (0 = none).
    pub idle_timeout: i64,
    /// SO_MAX_CONNECTIONS of a listener.
    pub max_connections: i64,
    /// SO_MAX_BUFFERED, bytes: queued output (and the longest MUD frame).
    pub max_buffered: i64,
    /// SO_SEND_TIMEOUT, ms (0 = none).
    pub send_timeout: i64,
}

impl ConnConfig {
    pub const IDS: [u16; 4] = [
        SO_IDLE_TIMEOUT,
        SO_MAX_CONNECTIONS,
        SO_MAX_BUFFERED,
        SO_SEND_TIMEOUT,
    ];

    pub fn read(o: &OptionStore, mode: u8) -> ConnConfig {
        let mut c = ConnConfig::default();
        for id in Self::IDS {
            c.update(o, mode, id);
        }
        c
    }

    /// Re-reads option `id` from `o` if it is one of these; true if it was.
    pub fn update(&mut self, o: &OptionStore, mode: u8, id: u16) -> bool {
        let slot = match id {
            SO_IDLE_TIMEOUT => &mut self.idle_timeout,
            SO_MAX_CONNECTIONS => &mut self.max_connections,
            SO_MAX_BUFFERED => &mut self.max_buffered,
            SO_SEND_TIMEOUT => &mut self.send_timeout,
            _ => return false,
        };
        *slot = o.int(id, mode);
        true
    }

    /// SO_MAX_BUFFERED in bytes (below 0: 0).
    pub fn max_buffered_bytes(&self) -> usize {
        self.max_buffered.max(0) as usize
    }

    /// SO_MAX_CONNECTIONS as a listener counts it (at least 1).
    pub fn connection_limit(&self) -> usize {
        self.max_connections.max(1) as usize
    }

    /// SO_IDLE_TIMEOUT (zero: none).
    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.idle_timeout.max(0) as u64)
    }

    /// SO_SEND_TIMEOUT as the no-progress deadline of queued output (None:
    /// 0, no deadline).
    pub fn send_limit(&self) -> Option<Duration> {
        (self.send_timeout > 0).then(|| Duration::from_millis(self.send_timeout as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes;
    use crate::value::Value;

    #[test]
    fn reads_defaults_and_follows_what_is_set() {
        let mut o = OptionStore::default();
        let mut c = ConnConfig::read(&o, modes::STREAM);
        assert_eq!(c.max_buffered, o.int(SO_MAX_BUFFERED, modes::STREAM));
        assert_eq!(c.connection_limit(), 1024);
        o.set(
            SO_IDLE_TIMEOUT as i64,
            &Value::Int(2500),
            modes::STREAM,
            false,
        )
        .expect("set");
        assert!(c.update(&o, modes::STREAM, SO_IDLE_TIMEOUT));
        assert_eq!(c.idle(), Duration::from_millis(2500));
        assert!(!c.update(&o, modes::STREAM, crate::options::ids::SO_NODELAY));
    }
}

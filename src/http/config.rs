//! The options the HTTP family acts on, as typed configs (as tungstenite's
//! `WebSocketConfig`; the transport part is `transport::ConnConfig`): read
//! when the endpoint is made (the defaults), copied from the listener to a
//! connection it accepts (the core gives the child a copy of the listener's
//! options), and updated in `option_set` when one of them is set, so each
//! use sees the value the store holds then. The options read once when a
//! client's first request is built (SO_HTTP_URL, SO_HTTP_METHOD,
//! SO_HTTP_BODY, the TLS files) are read there, at socket_connect.

use std::sync::Arc;
use std::time::Duration;

use super::opt::{
    SO_HTTP_CONNECT_TIMEOUT, SO_HTTP_FOLLOW_REDIRECTS, SO_HTTP_HEADERS, SO_HTTP_MAX_REDIRECTS,
    SO_HTTP_READ_TIMEOUT, SO_HTTP_TIMEOUT, SO_HTTP_USER_AGENT,
};
use crate::options::store::OptionStore;
use crate::transport::ConnConfig;
use crate::value::Value;

/// A timeout option's value (milliseconds; 0 and below: none).
fn ms(o: &OptionStore, id: u16, mode: u8) -> Duration {
    Duration::from_millis(o.int(id, mode).max(0) as u64)
}

/// What both sides act on.
#[derive(Clone, Debug, Default)]
pub struct HttpConfig {
    /// SO_MAX_BUFFERED, SO_MAX_CONNECTIONS, SO_IDLE_TIMEOUT (SO_SEND_TIMEOUT
    /// is not HTTP's: SO_HTTP_READ_TIMEOUT bounds queued output).
    pub conn: ConnConfig,
    /// SO_HTTP_TIMEOUT: a whole request (server: until it is read; client:
    /// until its response is, redirects included).
    pub timeout: Duration,
    /// SO_HTTP_READ_TIMEOUT: between bytes, and queued output's no-progress deadline.
    pub read_timeout: Duration,
    /// SO_HTTP_HEADERS as LPC set it (None: not set): the server adds them
    /// to every response, the client sends them with every request. Shared,
    /// not copied, by the connections a listener accepts.
    pub headers: Option<Arc<Value>>,
}

impl HttpConfig {
    pub fn read(o: &OptionStore, mode: u8) -> HttpConfig {
        let mut c = HttpConfig::default();
        for id in ConnConfig::IDS {
            c.update(o, mode, id);
        }
        for id in [SO_HTTP_TIMEOUT, SO_HTTP_READ_TIMEOUT, SO_HTTP_HEADERS] {
            c.update(o, mode, id);
        }
        c
    }

    /// Re-reads option `id` from `o` if it is one of these; true if it was.
    pub fn update(&mut self, o: &OptionStore, mode: u8, id: u16) -> bool {
        match id {
            SO_HTTP_TIMEOUT => self.timeout = ms(o, id, mode),
            SO_HTTP_READ_TIMEOUT => self.read_timeout = ms(o, id, mode),
            SO_HTTP_HEADERS => self.headers = o.raw(id).cloned().map(Arc::new),
            _ => return self.conn.update(o, mode, id),
        }
        true
    }

    /// The no-progress deadline of queued output, both sides:
    /// SO_HTTP_READ_TIMEOUT, the "between bytes" deadline, applied in this
    /// direction too (bytes arriving meanwhile do not count as the output's
    /// progress).
    pub fn send_limit(&self) -> Option<Duration> {
        Some(self.read_timeout)
    }
}

/// What a client acts on besides.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    pub http: HttpConfig,
    /// SO_HTTP_CONNECT_TIMEOUT: resolve + connect + TLS handshake.
    pub connect_timeout: Duration,
    /// SO_HTTP_FOLLOW_REDIRECTS.
    pub follow_redirects: bool,
    /// SO_HTTP_MAX_REDIRECTS.
    pub max_redirects: i64,
    /// SO_HTTP_USER_AGENT as LPC set it (None: not set).
    user_agent: Option<Arc<str>>,
}

impl ClientConfig {
    pub fn read(o: &OptionStore, mode: u8) -> ClientConfig {
        let mut c = ClientConfig {
            http: HttpConfig::read(o, mode),
            ..ClientConfig::default()
        };
        for id in [
            SO_HTTP_CONNECT_TIMEOUT,
            SO_HTTP_FOLLOW_REDIRECTS,
            SO_HTTP_MAX_REDIRECTS,
            SO_HTTP_USER_AGENT,
        ] {
            c.update(o, mode, id);
        }
        c
    }

    /// Re-reads option `id` from `o` if it is one of these; true if it was.
    pub fn update(&mut self, o: &OptionStore, mode: u8, id: u16) -> bool {
        match id {
            SO_HTTP_CONNECT_TIMEOUT => self.connect_timeout = ms(o, id, mode),
            SO_HTTP_FOLLOW_REDIRECTS => self.follow_redirects = o.int(id, mode) != 0,
            SO_HTTP_MAX_REDIRECTS => self.max_redirects = o.int(id, mode),
            SO_HTTP_USER_AGENT => self.user_agent = o.string(id).map(Arc::from),
            _ => return self.http.update(o, mode, id),
        }
        true
    }

    /// The User-Agent sent when a request has none.
    pub fn user_agent(&self) -> &str {
        self.user_agent.as_deref().unwrap_or("FluffOS/3.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes;

    #[test]
    fn client_config_follows_what_is_set() {
        let mode = modes::HTTP_CLIENT;
        let mut o = OptionStore::default();
        let mut c = ClientConfig::read(&o, mode);
        assert_eq!(c.user_agent(), "FluffOS/3.0");
        assert!(c.http.headers.is_none());
        assert_eq!(c.http.timeout, ms(&o, SO_HTTP_TIMEOUT, mode));
        let headers = Value::mapping([("x-a", Value::str("1"))]);
        o.set(SO_HTTP_HEADERS as i64, &headers, mode, false)
            .expect("set");
        o.set(SO_HTTP_USER_AGENT as i64, &Value::str("t/1"), mode, false)
            .expect("set");
        o.set(SO_HTTP_READ_TIMEOUT as i64, &Value::Int(2000), mode, false)
            .expect("set");
        for id in [SO_HTTP_HEADERS, SO_HTTP_USER_AGENT, SO_HTTP_READ_TIMEOUT] {
            assert!(c.update(&o, mode, id));
        }
        assert_eq!(c.http.headers.as_deref(), Some(&headers));
        assert_eq!(c.user_agent(), "t/1");
        assert_eq!(c.http.send_limit(), Some(Duration::from_millis(2000)));
        assert!(!c.update(&o, mode, crate::options::ids::SO_NODELAY));
    }
}

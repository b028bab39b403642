//! Socket modes: the fixed numbers of `spec/modes.md`.
//!
//! The numbers are part of mudlibs' compiled code and never change. A mode
//! that is not built yet is known here (name, family) but `implemented` is
//! false, and `socket_create` answers EEMODENOTSUPP for it.

/// The mode families; one folder per family in the crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Legacy,
    Http,
    Rest,
    WebSocket,
    Mqtt,
    External,
    Database,
    GraphQl,
    Grpc,
    Ipc,
}

/// One row of the mode table.
#[derive(Debug)]
pub struct ModeInfo {
    pub number: u8,
    pub name: &'static str,
    /// The fork's older spelling, where it differs.
    pub alias: Option<&'static str>,
    pub family: Family,
    /// Served by this build.
    pub implemented: bool,
}

macro_rules! modes {
    ($( $num:literal $name:ident $alias:expr, $fam:ident, $imp:literal; )*) => {
        /// Every mode of the spec, in number order.
        pub const MODES: &[ModeInfo] = &[
            $( ModeInfo { number: $num, name: stringify!($name), alias: $alias,
                          family: Family::$fam, implemented: $imp }, )*
        ];
    };
}

modes! {
    0 MUD Some("SOCKET_MUD"), Legacy, true;
    1 STREAM Some("SOCKET_STREAM"), Legacy, true;
    2 DATAGRAM Some("SOCKET_DATAGRAM"), Legacy, true;
    3 STREAM_BINARY Some("SOCKET_STREAM_BINARY"), Legacy, true;
    4 DATAGRAM_BINARY Some("SOCKET_DATAGRAM_BINARY"), Legacy, true;
    5 STREAM_TLS Some("SOCKET_STREAM_TLS"), Legacy, true;
    6 STREAM_TLS_BINARY Some("SOCKET_STREAM_TLS_BINARY"), Legacy, true;
    10 HTTP_SERVER None, Http, true;
    11 HTTP_CLIENT None, Http, true;
    12 HTTPS_SERVER None, Http, true;
    13 HTTPS_CLIENT None, Http, true;
    14 REST_SERVER None, Rest, false;
    15 REST_CLIENT None, Rest, false;
    16 WEBSOCKET_SERVER None, WebSocket, true;
    17 WEBSOCKET_CLIENT None, WebSocket, true;
    18 WEBSOCKET_TLS_SERVER None, WebSocket, true;
    19 WEBSOCKET_TLS_CLIENT None, WebSocket, true;
    20 MQTT_CLIENT None, Mqtt, false;
    21 MQTT_TLS_CLIENT None, Mqtt, false;
    22 EXTERNAL_PROCESS None, External, true;
    23 EXTERNAL_COMMAND_MODE None, External, true;
    24 DATABASE_CLIENT None, Database, false;
    25 GRAPHQL_SERVER None, GraphQl, false;
    26 GRAPHQL_CLIENT None, GraphQl, false;
    27 GRPC_SERVER None, Grpc, false;
    28 GRPC_CLIENT None, Grpc, false;
    29 IPC_SERVER None, Ipc, true;
    30 IPC_CLIENT None, Ipc, true;
}

pub const MUD: u8 = 0;
pub const STREAM: u8 = 1;
pub const DATAGRAM: u8 = 2;
pub const STREAM_BINARY: u8 = 3;
pub const DATAGRAM_BINARY: u8 = 4;
pub const STREAM_TLS: u8 = 5;
pub const STREAM_TLS_BINARY: u8 = 6;
pub const HTTP_SERVER: u8 = 10;
pub const HTTP_CLIENT: u8 = 11;
pub const HTTPS_SERVER: u8 = 12;
pub const HTTPS_CLIENT: u8 = 13;
pub const WEBSOCKET_SERVER: u8 = 16;
pub const WEBSOCKET_CLIENT: u8 = 17;
pub const WEBSOCKET_TLS_SERVER: u8 = 18;
pub const WEBSOCKET_TLS_CLIENT: u8 = 19;
pub const EXTERNAL_PROCESS: u8 = 22;
pub const EXTERNAL_COMMAND_MODE: u8 = 23;
pub const IPC_SERVER: u8 = 29;
pub const IPC_CLIENT: u8 = 30;

/// The row for a mode number.
pub fn info(mode: i64) -> Option<&'static ModeInfo> {
    MODES.iter().find(|m| m.number as i64 == mode)
}

/// The row for a mode name or alias (case-sensitive, as LPC writes them).
pub fn by_name(name: &str) -> Option<&'static ModeInfo> {
    MODES
        .iter()
        .find(|m| m.name == name || m.alias == Some(name))
}

/// The mode's name, or "mode N" for numbers outside the table.
pub fn name(mode: u8) -> String {
    info(mode as i64)
        .map(|m| m.name.to_string())
        .unwrap_or_else(|| format!("mode {mode}"))
}

/// A set of modes as a bit mask (bit n = mode n).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeSet(pub u32);

impl ModeSet {
    pub const NONE: ModeSet = ModeSet(0);
    pub const ALL: ModeSet = ModeSet(0x7fff_fc7f);

    pub const fn of(modes: &[u8]) -> ModeSet {
        let mut bits = 0u32;
        let mut i = 0;
        while i < modes.len() {
            bits |= 1 << modes[i];
            i += 1;
        }
        ModeSet(bits)
    }

    pub const fn range(lo: u8, hi: u8) -> ModeSet {
        let mut bits = 0u32;
        let mut m = lo;
        while m <= hi {
            bits |= 1 << m;
            m += 1;
        }
        ModeSet(bits)
    }

    pub fn contains(self, mode: u8) -> bool {
        mode < 32 && self.0 & (1 << mode) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..32u8).filter(move |m| self.contains(*m))
    }
}

/// Is the mode one of the TLS legacy modes?
pub fn is_legacy_tls(mode: u8) -> bool {
    mode == STREAM_TLS || mode == STREAM_TLS_BINARY
}

/// Does the mode deliver buffers rather than strings?
pub fn is_binary(mode: u8) -> bool {
    matches!(mode, STREAM_BINARY | DATAGRAM_BINARY | STREAM_TLS_BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_fixed() {
        assert_eq!(by_name("REST_SERVER").unwrap().number, 14);
        assert_eq!(by_name("IPC_CLIENT").unwrap().number, 30);
        assert_eq!(by_name("SOCKET_STREAM_TLS_BINARY").unwrap().number, 6);
        assert!(info(7).is_none() && info(8).is_none() && info(9).is_none());
        assert_eq!(MODES.len(), 28);
        for m in MODES {
            assert!(ModeSet::ALL.contains(m.number), "{}", m.name);
        }
    }
}

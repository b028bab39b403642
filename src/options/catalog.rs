//! THE option table. Every fact about every option of `spec/options.md` lives
//! in one row here; headers, docs and validation are derived from it.
//!
//! Adding an option = one row here + the code in its family that consumes it.

use super::{Access, Check, Default, Kinds, OptionDef, When};
use crate::modes::ModeSet;
use crate::value::Value;

const I: Kinds = Kinds::INT;
const S: Kinds = Kinds::STRING;
const B: Kinds = Kinds::BUFFER;
const A: Kinds = Kinds::ARRAY;
const M: Kinds = Kinds::MAPPING;

/// TLS client modes (legacy 5/6 plus the new TLS-capable clients).
const TLS_CLIENTS: ModeSet = ModeSet::of(&[5, 6, 13, 15, 19, 21]);
/// Modes that may carry a certificate: legacy TLS (listen), TLS servers, TLS clients (mutual TLS).
const TLS_CERT_MODES: ModeSet = ModeSet::of(&[5, 6, 12, 13, 14, 15, 18, 19, 21]);
/// Every mode that runs over TCP.
const TCP_MODES: ModeSet = ModeSet::of(&[
    0, 1, 3, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 29, 30,
]);
/// Every mode that can listen (legacy stream modes listen too).
const SERVERS: ModeSet = ModeSet::of(&[0, 1, 3, 5, 6, 10, 12, 14, 16, 18, 25, 27, 29]);
/// Every mode unisock serves.
const ALL: ModeSet = ModeSet::ALL;

fn verify_default(mode: u8) -> Value {
    Value::Int(if mode == 5 || mode == 6 { 0 } else { 1 })
}

/// Shorthand for a row; keeps the table readable.
#[allow(clippy::too_many_arguments)]
const fn row(
    id: u16,
    name: &'static str,
    kinds: Kinds,
    default: Default,
    default_doc: &'static str,
    check: Check,
    wants: &'static str,
    modes: ModeSet,
    doc: &'static str,
) -> OptionDef {
    OptionDef {
        id,
        name,
        aliases: &[],
        kinds,
        default,
        default_doc,
        check,
        wants,
        modes,
        access: Access::ReadWrite,
        when: When::Anytime,
        doc,
    }
}

const fn with_aliases(mut d: OptionDef, aliases: &'static [&'static str]) -> OptionDef {
    d.aliases = aliases;
    d
}

const fn access(mut d: OptionDef, a: Access) -> OptionDef {
    d.access = a;
    d
}

const fn before_start(mut d: OptionDef) -> OptionDef {
    d.when = When::BeforeStart;
    d
}

fn hostname(v: &Value) -> Result<Value, String> {
    let s = v.as_str().unwrap_or("");
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if ok {
        Ok(v.clone())
    } else {
        Err(String::new())
    }
}

fn string_map(v: &Value) -> Result<Value, String> {
    if let Value::Mapping(m) = v {
        for (k, val) in m {
            if !matches!(k, Value::Str(_)) || !matches!(val, Value::Str(_)) {
                return Err(format!("entry {} is not string → string", k.describe()));
            }
        }
    }
    Ok(v.clone())
}

/// Every option of the spec, in id order.
pub static OPTIONS: &[OptionDef] = &[
    access(
        row(0, "SO_INVALID", Kinds::NONE, Default::Unset, "—", Check::Any, "nothing (always rejected)", ModeSet::NONE,
            "Always rejected."),
        Access::Invalid,
    ),
    before_start(row(1, "SO_TLS_VERIFY_PEER", I, Default::ByMode(verify_default), "0 on 5/6, 1 on 13,15,19,21",
        Check::Bool, "an int 0/1", TLS_CLIENTS,
        "Verify the server certificate (chain and host name) against the system trust store or SO_TLS_CA.")),
    before_start(row(2, "SO_TLS_SNI_HOSTNAME", S, Default::Unset, "host of the connect address",
        Check::Custom(hostname), "a hostname of 1..253 chars", TLS_CLIENTS,
        "Server name sent in the TLS handshake (and checked when verifying).")),
    before_start(row(3, "SO_TLS_CERT", S, Default::Unset, "—", Check::StrLen(1, 4096),
        "a string path to a PEM certificate chain", TLS_CERT_MODES,
        "PEM certificate chain; required for TLS servers; client certificate for mutual TLS.")),
    before_start(row(4, "SO_TLS_KEY", S, Default::Unset, "—", Check::StrLen(1, 4096),
        "a string path to the PEM private key", TLS_CERT_MODES,
        "PEM private key matching SO_TLS_CERT.")),
    before_start(row(10, "SO_TLS_CA", S, Default::Unset, "system store", Check::StrLen(1, 4096),
        "a string path to a PEM bundle of trusted roots", TLS_CLIENTS,
        "PEM bundle of trusted roots used instead of the system store.")),
    row(11, "SO_KEEPALIVE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", TCP_MODES, "TCP keep-alive."),
    row(12, "SO_NODELAY", I, Default::Int(1), "1", Check::Bool, "an int 0/1", TCP_MODES, "TCP_NODELAY."),
    row(13, "SO_RCVBUF", I, Default::Unset, "kernel", Check::IntRange(1024, 16777216),
        "an int in 1024..16777216 (bytes)", TCP_MODES, "Kernel receive buffer size."),
    row(14, "SO_SNDBUF", I, Default::Unset, "kernel", Check::IntRange(1024, 16777216),
        "an int in 1024..16777216 (bytes)", TCP_MODES, "Kernel send buffer size."),
    row(15, "SO_IDLE_TIMEOUT", I, Default::Int(0), "0", Check::IntRange(0, 86_400_000),
        "an int in 0..86400000 (ms, 0 = none)", SERVERS, "Close a connection idle this long."),
    row(16, "SO_MAX_CONNECTIONS", I, Default::Int(1024), "1024", Check::IntRange(1, 1_000_000),
        "an int in 1..1000000", SERVERS, "Most open connections per listener; beyond it new ones are refused (HTTP: 503)."),
    row(17, "SO_MAX_BUFFERED", I, Default::Int(4_194_304), "4194304", Check::IntRange(4096, 1_073_741_824),
        "an int in 4096..1073741824 (bytes)", ALL,
        "Bytes queued for write; beyond it socket_write writes nothing and returns EEWOULDBLOCK."),
    access(
        row(18, "SO_STATISTICS", M, Default::EmptyMapping, "—", Check::Any, "nothing (read-only)", ALL,
            "bytes_in, bytes_out, messages_in, messages_out, errors, connected_at, state."),
        Access::ReadOnly,
    ),
    with_aliases(
        row(100, "SO_HTTP_HEADERS", M, Default::EmptyMapping, "([])", Check::Custom(string_map),
            "a mapping of string → string", ModeSet::range(10, 15),
            "Client: request headers; server: headers added to every response."),
        &["HTTP_HEADERS"],
    ),
    with_aliases(
        row(104, "SO_HTTP_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", ModeSet::range(10, 15),
            "Whole request deadline (client) / request deadline (server)."),
        &["HTTP_TIMEOUT"],
    ),
    row(122, "WS_ORIGIN", S.or(A), Default::Unset, "any", Check::Any, "a string or an array of strings",
        ModeSet::range(16, 19), "Server: allowed Origin values (others get 403); client: Origin header sent."),
    access(
        row(133, "MQTT_PASSWORD", S, Default::Unset, "—", Check::Any, "a string", ModeSet::of(&[20, 21]),
            "Broker password (reads back \"<set>\")."),
        Access::Secret,
    ),
];

/// The row for `id`.
pub fn find(id: i64) -> Option<&'static OptionDef> {
    OPTIONS.iter().find(|d| d.id as i64 == id)
}

/// The row for a canonical name or alias.
pub fn by_name(name: &str) -> Option<&'static OptionDef> {
    OPTIONS
        .iter()
        .find(|d| d.name == name || d.aliases.contains(&name))
}

#[allow(dead_code)]
const _KINDS_USED: [Kinds; 2] = [B, M];

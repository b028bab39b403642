//! The rows: one per option of `spec/options.md`, in id order. What a row
//! says is checked by the functions it names (`src/options/validate/`).
//!
//! Adding an option = one row here + the code in its family that consumes it,
//! then `UNISOCK_BLESS=1 cargo test --test generated_files` to regenerate the
//! headers, the Rust ids (`src/options/ids.rs`) and the docs.

use super::{access, append, before_start, refusable, row, with_aliases};
use crate::modes::ModeSet;
use crate::options::validate::fields::http_methods;
use crate::options::validate::{
    apache::*, cache::*, external::*, http::*, ipc::*, mqtt::*, rest::*, tls::*, websocket::*,
};
use crate::options::{Access, Check, Default, Kinds, OptionDef};
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
/// Stream modes whose queued output has a no-progress deadline of SO_SEND_TIMEOUT
/// (HTTP and REST use SO_HTTP_READ_TIMEOUT for it, both directions).
const SEND_DEADLINE: ModeSet = ModeSet::of(&[
    0, 1, 3, 5, 6, 16, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 29, 30,
]);
/// HTTP and REST, servers and clients.
const HTTP_ALL: ModeSet = ModeSet::range(10, 15);
/// HTTP and REST clients.
const HTTP_CLIENTS: ModeSet = ModeSet::of(&[11, 13, 15]);
const REST_SERVER: ModeSet = ModeSet::of(&[14]);
const REST_BOTH: ModeSet = ModeSet::of(&[14, 15]);
const WS: ModeSet = ModeSet::range(16, 19);
/// WebSocket modes plus the HTTP servers, whose connections LPC may upgrade
/// to WebSocket (callbacks.md): the receiving limits, pings and compression
/// set on an HTTP server apply to its upgraded connections.
const WS_AND_UPGRADE: ModeSet = ModeSet::of(&[10, 12, 16, 17, 18, 19]);
const MQTT: ModeSet = ModeSet::of(&[20, 21]);
const EXTERNAL: ModeSet = ModeSet::of(&[22, 23]);
const EXTERNAL_LONG: ModeSet = ModeSet::of(&[22]);
/// HTTP/REST servers (the front-server integration options).
const APACHE: ModeSet = ModeSet::of(&[10, 12, 14]);
const IPC: ModeSet = ModeSet::of(&[29, 30]);
const IPC_SERVER: ModeSet = ModeSet::of(&[29]);
const IPC_CLIENT: ModeSet = ModeSet::of(&[30]);

// ---------------------------------------------------------------------------
// Defaults that are values rather than literals.

fn verify_default(mode: u8) -> Value {
    Value::Int(if mode == 5 || mode == 6 { 0 } else { 1 })
}

/// The child's environment when EXTERNAL_ENV is unset.
fn external_env_default(_: u8) -> Value {
    Value::mapping([
        ("PATH", Value::str(crate::policy::SYSTEM_PATH)),
        ("LANG", Value::str("C.UTF-8")),
    ])
}

fn external_timeout_default(mode: u8) -> Value {
    Value::Int(if mode == 23 { 30 } else { 0 })
}

fn cache_statistics_default(_: u8) -> Value {
    Value::mapping(
        [
            "hits",
            "misses",
            "entries",
            "bytes",
            "evictions",
            "invalidations",
        ]
        .map(|k| (k, Value::Int(0))),
    )
}

/// Every option of the spec, in id order.
#[rustfmt::skip]
pub static OPTIONS: &[OptionDef] = &[
    // ----- Core 0–19 -----
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
    refusable(before_start(row(3, "SO_TLS_CERT", S, Default::Unset, "—", Check::Custom(pem_path),
        "a path of 1..4096 bytes to a PEM certificate chain", TLS_CERT_MODES,
        "PEM certificate chain; required for TLS servers; client certificate for mutual TLS on clients."))),
    refusable(before_start(row(4, "SO_TLS_KEY", S, Default::Unset, "—", Check::Custom(pem_path),
        "a path of 1..4096 bytes to the PEM private key", TLS_CERT_MODES,
        "PEM private key matching SO_TLS_CERT."))),
    refusable(before_start(row(10, "SO_TLS_CA", S, Default::Unset, "system store", Check::Custom(pem_path),
        "a path of 1..4096 bytes to a PEM bundle of trusted roots", TLS_CLIENTS,
        "PEM bundle of trusted roots used instead of the system store; a certificate in it that is exactly the server's own (self-signed, CA:TRUE or not) is accepted as pinned, its host name and validity still checked."))),
    row(11, "SO_KEEPALIVE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", TCP_MODES, "TCP keep-alive."),
    row(12, "SO_NODELAY", I, Default::Int(1), "1", Check::Bool, "an int 0/1", TCP_MODES, "TCP_NODELAY."),
    row(13, "SO_RCVBUF", I, Default::Unset, "kernel", Check::IntRange(1024, 16777216),
        "an int in 1024..16777216 (bytes)", TCP_MODES, "Kernel receive buffer size."),
    row(14, "SO_SNDBUF", I, Default::Unset, "kernel", Check::IntRange(1024, 16777216),
        "an int in 1024..16777216 (bytes)", TCP_MODES, "Kernel send buffer size."),
    row(15, "SO_IDLE_TIMEOUT", I, Default::Int(0), "0", Check::IntRange(0, 86_400_000),
        "an int in 0..86400000 (ms, 0 = none)", SERVERS, "Close a connection idle this long."),
    row(16, "SO_MAX_CONNECTIONS", I, Default::Int(1024), "1024", Check::IntRange(1, 1_000_000),
        "an int in 1..1000000 (connections per listener)", SERVERS,
        "Most open connections per listener; beyond it new ones are refused (HTTP: 503)."),
    row(17, "SO_MAX_BUFFERED", I, Default::Int(4_194_304), "4194304", Check::IntRange(4096, 1_073_741_824),
        "an int in 4096..1073741824 (bytes)", ALL,
        "Bytes queued for write; beyond it socket_write writes nothing and returns EEWOULDBLOCK; \
         the write callback fires once the queue has drained below half."),
    access(
        row(18, "SO_STATISTICS", M, Default::EmptyMapping, "—", Check::Any, "nothing (read-only)", ALL,
            "Read-only: bytes_in, bytes_out, messages_in, messages_out, errors, connected_at, state."),
        Access::ReadOnly,
    ),
    row(19, "SO_SEND_TIMEOUT", I, Default::Int(60000), "60000", Check::IntRange(0, 86_400_000),
        "an int in 0..86400000 (ms, 0 = none)", SEND_DEADLINE,
        "A connection whose queued output makes no progress for this long is closed (\"too slow\"); \
         HTTP and REST use SO_HTTP_READ_TIMEOUT for this."),

    // ----- HTTP 100–109 -----
    with_aliases(
        row(100, "SO_HTTP_HEADERS", M, Default::EmptyMapping, "([])", Check::Custom(header_map),
            "a mapping of header name → string value (no control characters)", HTTP_ALL,
            "Client: request headers; server: headers added to every response."),
        &["HTTP_HEADERS"],
    ),
    with_aliases(
        row(101, "SO_HTTP_METHOD", S, Default::Str("GET"), "\"GET\"", Check::Custom(http_method_value),
            "one of \"GET\" \"POST\" \"PUT\" \"DELETE\" \"PATCH\" \"HEAD\" \"OPTIONS\" \"TRACE\" (any case, stored upper-case)",
            HTTP_CLIENTS, "Request method."),
        &["HTTP_METHOD"],
    ),
    with_aliases(
        row(102, "SO_HTTP_URL", S, Default::Unset, "—", Check::Custom(http_url),
            "an http:// or https:// URL of at most 2048 chars", HTTP_CLIENTS,
            "The request target (socket_connect's address may give it instead)."),
        &["HTTP_URL"],
    ),
    with_aliases(
        row(103, "SO_HTTP_BODY", S.or(B), Default::Str(""), "\"\"", Check::Any,
            "a string or a buffer (the request body)", HTTP_CLIENTS, "Request body."),
        &["HTTP_BODY"],
    ),
    with_aliases(
        row(104, "SO_HTTP_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", HTTP_ALL,
            "Whole request deadline (client) / request deadline (server), in ms."),
        &["HTTP_TIMEOUT"],
    ),
    with_aliases(
        row(105, "SO_HTTP_USER_AGENT", S, Default::Str("FluffOS/3.0"), "\"FluffOS/3.0\"", Check::Custom(user_agent),
            "a string of at most 256 chars without control characters", HTTP_CLIENTS,
            "User-Agent header sent with requests (\"\" sends none)."),
        &["HTTP_USER_AGENT"],
    ),
    with_aliases(
        row(106, "SO_HTTP_FOLLOW_REDIRECTS", I, Default::Int(0), "0", Check::Bool, "an int 0/1", HTTP_CLIENTS,
            "Follow 3xx redirects (at most SO_HTTP_MAX_REDIRECTS)."),
        &["HTTP_FOLLOW_REDIRECTS"],
    ),
    with_aliases(
        row(107, "SO_HTTP_MAX_REDIRECTS", I, Default::Int(5), "5", Check::IntRange(0, 20),
            "an int in 0..20 (redirects)", HTTP_CLIENTS, "Most redirects followed for one request."),
        &["HTTP_MAX_REDIRECTS"],
    ),
    with_aliases(
        row(108, "SO_HTTP_CONNECT_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", HTTP_CLIENTS, "Deadline for the TCP (and TLS) connection, in ms."),
        &["HTTP_CONNECT_TIMEOUT"],
    ),
    with_aliases(
        row(109, "SO_HTTP_READ_TIMEOUT", I, Default::Int(30000), "30000", Check::IntRange(1000, 300_000),
            "an int in 1000..300000 (ms)", HTTP_ALL, "Longest wait between received bytes, in ms."),
        &["HTTP_READ_TIMEOUT"],
    ),

    // ----- REST 110–119 -----
    row(110, "REST_ROUTER_CONFIG", M, Default::ByMode(router_defaults),
        "([ \"base_path\": \"\", \"strict_slash\": 0, \"case_sensitive\": 1, \"max_body\": 8388608 ])",
        Check::Custom(router_config),
        "a mapping with any of base_path (string \"/...\"), strict_slash (int 0/1), case_sensitive (int 0/1), max_body (int 1024..1073741824 bytes)",
        REST_BOTH,
        "Router settings; keys not given keep their defaults (get returns the merged mapping). max_body raises the 8 MiB body limit (413)."),
    append(row(111, "REST_ADD_ROUTE", M, Default::EmptyArray, "({}) (no routes)", Check::Custom(rest_route),
        "a mapping with method, pattern and handler strings (and an optional openapi mapping)", REST_SERVER,
        "Setting appends one route; getting returns the array of routes. pattern: /literal, {name}, {name:int}, \
         {name:uuid}, {name:alpha}, {name?} (last segment), trailing /*; handler: a function in the socket's owner. \
         A bad pattern is refused naming the position.")),
    row(112, "REST_OPENAPI_INFO", M, Default::Unset, "—", Check::Custom(openapi_info),
        "a mapping with title and version strings (description, termsOfService, contact, license optional)", REST_SERVER,
        "The OpenAPI document's info object."),
    access(
        row(113, "REST_JWT_SECRET", S, Default::Unset, "—", Check::StrLen(32, 65536),
            "a string of 32..65536 bytes", REST_BOTH,
            "HS256 secret; bearer tokens are verified before the handler runs and their claims reach LPC as \
             request[\"auth\"]. Reads back \"<set>\"."),
        Access::Secret,
    ),
    row(114, "REST_DOCS_PATH", S, Default::Str("/docs"), "\"/docs\"", Check::Custom(docs_path),
        "a plain path \"/...\" of at most 256 chars, or \"\" for none", REST_SERVER,
        "Serves <path>/openapi.json (OpenAPI 3.0.3) and a human page at <path>; \"\" serves neither."),
    row(115, "REST_VALIDATION_SCHEMA", M, Default::Unset, "—", Check::Custom(validation_schema),
        "a mapping of \"METHOD /pattern\" → JSON-Schema subset mapping", REST_SERVER,
        "Request bodies checked before the handler (type, properties, required, enum, minimum, maximum, \
         minLength, maxLength, items, pattern); failures answer 422 with the list of violations."),
    row(116, "REST_MIDDLEWARE", A, Default::EmptyArray, "({})", Check::Custom(function_names),
        "an array of function names", REST_SERVER,
        "Functions in the owner called in order with the request before the handler; one returning a \
         response mapping ends the chain."),
    row(117, "REST_ERROR_HANDLER", S, Default::Unset, "built-in JSON", Check::Custom(function_name),
        "a function name", REST_SERVER,
        "Function called for 404/405/413/422/429/500 to shape the response."),
    row(118, "REST_CORS_CONFIG", M, Default::Unset, "off", Check::Custom(cors_config),
        "a mapping with origins (non-empty array, \"*\" allowed) and optional methods (array), headers (array), \
         credentials (int 0/1), max_age (int 0..86400 s)", REST_SERVER,
        "CORS; preflight requests are answered without reaching LPC."),
    row(119, "REST_RATE_LIMIT", M, Default::Unset, "off", Check::Custom(rate_limit),
        "a mapping with requests (int 1..1000000), window (int 1..86400 s) and optional key (\"ip\" or \"token\", default \"ip\")",
        REST_SERVER,
        "Over the limit → 429 with Retry-After, without reaching LPC."),

    // ----- WebSocket 120–129 -----
    before_start(row(120, "WS_PROTOCOL", S.or(A), Default::Unset, "—", Check::Custom(ws_protocols),
        "a subprotocol token or a non-empty array of them (1..64 chars of [A-Za-z0-9.-])", WS,
        "Subprotocols offered (client) or supported in preference order (server).")),
    before_start(row(121, "WS_EXTENSIONS", A, Default::EmptyArray, "({})", Check::Custom(ws_extensions),
        "an array of extension names (\"permessage-deflate\")", WS,
        "Extensions to negotiate; ({ \"permessage-deflate\" }) is the same as WS_COMPRESSION 1.")),
    row(122, "WS_ORIGIN", S.or(A), Default::Unset, "any", Check::Custom(ws_origins),
        "a string or an array of strings (1..2048 chars each)", WS_AND_UPGRADE,
        "Server: allowed Origin values, compared without regard to case (others, and a missing Origin, get 403); client: the Origin header sent (the first of an array); on HTTP servers: checked when LPC accepts an upgrade."),
    row(123, "WS_MAX_MESSAGE_SIZE", I, Default::Int(65536), "65536", Check::IntRange(128, 16_777_216),
        "an int in 128..16777216 (bytes)", WS_AND_UPGRADE, "Largest message after decompression, fragments joined: exactly the limit is accepted, one byte more closes with 1009."),
    row(124, "WS_PING_INTERVAL", I, Default::Int(30), "30", Check::IntRange(0, 3600),
        "an int in 0..3600 (s, 0 = no pings)", WS_AND_UPGRADE, "Seconds between the pings unisock sends when WS_AUTO_PING is 1 (0 = none)."),
    row(125, "WS_PONG_TIMEOUT", I, Default::Int(10), "10", Check::IntRange(1, 3600),
        "an int in 1..3600 (s)", WS_AND_UPGRADE, "No pong in time → close 1011 and close_cb."),
    before_start(row(126, "WS_COMPRESSION", I, Default::Int(0), "0", Check::Bool, "an int 0/1", WS_AND_UPGRADE,
        "Negotiate permessage-deflate (RFC 7692).")),
    access(
        row(127, "WS_SUBPROTOCOL", S, Default::Unset, "—", Check::Any, "nothing (read-only)", WS_AND_UPGRADE,
            "Read-only: the negotiated subprotocol after the handshake (\"\" when none was agreed; 0 before the handshake)."),
        Access::ReadOnly,
    ),
    row(128, "WS_FRAME_SIZE_LIMIT", I, Default::Int(16_777_216), "16777216", Check::IntRange(128, 16_777_216),
        "an int in 128..16777216 (bytes)", WS_AND_UPGRADE, "Largest frame accepted; one byte more closes with 1009."),
    row(129, "WS_AUTO_PING", I, Default::Int(1), "1", Check::Bool, "an int 0/1", WS_AND_UPGRADE,
        "1: unisock answers pings and sends WS_PING_INTERVAL pings; 0: pings and pongs reach LPC as mappings, and LPC answers."),

    // ----- MQTT 130–139 -----
    before_start(row(130, "MQTT_BROKER", S, Default::Unset, "—", Check::Custom(mqtt_broker),
        "\"host:port\", \"mqtt://host:port\" or \"mqtts://host:port\"", MQTT,
        "The broker to connect to (an IPv6 host is written [addr]).")),
    before_start(row(131, "MQTT_CLIENT_ID", S, Default::Unset, "generated, unique per driver", Check::Custom(mqtt_client_id),
        "a string of 1..65535 bytes (1..23 of [0-9A-Za-z] for strict MQTT 3.1.1 brokers)", MQTT,
        "Client identifier; longer or other characters are accepted here and may be refused by a strict broker.")),
    before_start(row(132, "MQTT_USERNAME", S, Default::Unset, "—", Check::Custom(mqtt_username),
        "a string of at most 65535 bytes", MQTT, "User name sent in CONNECT.")),
    before_start(access(
        row(133, "MQTT_PASSWORD", S, Default::Unset, "—", Check::StrLen(0, 65535),
            "a string of at most 65535 bytes", MQTT,
            "Password sent in CONNECT (reads back \"<set>\")."),
        Access::Secret,
    )),
    before_start(row(134, "MQTT_KEEP_ALIVE", I, Default::Int(60), "60", Check::IntRange(10, 3600),
        "an int in 10..3600 (s)", MQTT, "Keep-alive interval sent in CONNECT.")),
    row(135, "MQTT_QOS", I, Default::Int(0), "0", Check::IntRange(0, 2), "an int in 0..2", MQTT,
        "Default QoS for publish and subscribe."),
    row(136, "MQTT_RETAIN", I, Default::Int(0), "0", Check::Bool, "an int 0/1", MQTT,
        "Default retain flag for publish."),
    before_start(row(137, "MQTT_CLEAN_SESSION", I, Default::Int(1), "1", Check::Bool, "an int 0/1", MQTT,
        "Clean session flag sent in CONNECT.")),
    before_start(row(138, "MQTT_WILL_TOPIC", S, Default::Unset, "—", Check::Custom(mqtt_will_topic),
        "a topic of 1..65535 bytes without wildcards (+ #)", MQTT, "Topic of the last-will message.")),
    before_start(row(139, "MQTT_WILL_MESSAGE", S.or(B), Default::Unset, "—", Check::Custom(mqtt_payload),
        "a string or buffer of at most 65535 bytes", MQTT,
        "Last-will payload; needs MQTT_WILL_TOPIC (checked at connect).")),

    // ----- External processes 140–159 -----
    before_start(row(140, "EXTERNAL_COMMAND", S, Default::Unset, "—", Check::Custom(external_command),
        "a string of 1..4096 chars (an absolute executable path, or a command line with EXTERNAL_SHELL)", EXTERNAL,
        "What to run; absolute when EXTERNAL_SHELL is 0 (checked at start).")),
    before_start(row(141, "EXTERNAL_ARGS", A, Default::EmptyArray, "({})", Check::Custom(external_args),
        "an array of strings", EXTERNAL, "Arguments after the command (argv[1..]).")),
    before_start(row(142, "EXTERNAL_ENV", M, Default::ByMode(external_env_default),
        "([ \"PATH\": \"/usr/local/bin:/usr/bin:/bin\", \"LANG\": \"C.UTF-8\" ])", Check::Custom(external_env),
        "a mapping of string → string (names without \"=\")", EXTERNAL,
        "The child's whole environment; the driver's is never leaked.")),
    refusable(before_start(row(143, "EXTERNAL_WATCH_PATH", S.or(A), Default::Unset, "—", Check::Custom(watch_paths),
        "an absolute path or an array of them (no \"..\"; \"/**\" at the end watches recursively)", EXTERNAL,
        "Paths watched with inotify; events reach read_cb as file_event mappings."))),
    before_start(row(144, "EXTERNAL_WORKING_DIR", S, Default::Unset, "driver's cwd", Check::Custom(working_dir),
        "an absolute directory path without \"..\" components", EXTERNAL,
        "The child's working directory; that it exists is checked when the process starts.")),
    before_start(row(145, "EXTERNAL_USER", S.or(I), Default::Unset, "—", Check::Custom(external_user),
        "a user name or uid the driver may switch to", EXTERNAL,
        "User to run as; refused at set time when the driver lacks the privilege.")),
    before_start(row(146, "EXTERNAL_GROUP", S.or(I), Default::Unset, "—", Check::Custom(external_group),
        "a group name or gid the driver may switch to", EXTERNAL,
        "Group to run as; refused at set time when the driver lacks the privilege.")),
    before_start(row(147, "EXTERNAL_TIMEOUT", I, Default::ByMode(external_timeout_default), "0 for 22, 30 for 23",
        Check::IntRange(0, 86400), "an int in 0..86400 (s, 0 = none)", EXTERNAL,
        "Run time limit: SIGTERM, then SIGKILL after 5 s; the result says \"timeout\".")),
    before_start(row(148, "EXTERNAL_BUFFER_SIZE", I, Default::Int(65536), "65536", Check::IntRange(1024, 1_048_576),
        "an int in 1024..1048576 (bytes)", EXTERNAL, "Most bytes per output delivery and per pipe read.")),
    before_start(row(149, "EXTERNAL_ASYNC", I, Default::Int(1), "1", Check::Bool, "an int 0/1", EXTERNAL,
        "1: output streams to read_cb as it comes; 0: one result mapping at exit (mode 23 always delivers one result).")),
    before_start(row(150, "EXTERNAL_STDIN_MODE", S, Default::Str("pipe"), "\"pipe\"", Check::Custom(stdin_mode),
        "\"pipe\", \"null\" or \"file:<absolute path>\"", EXTERNAL,
        "The child's stdin; with \"pipe\" socket_write feeds it.")),
    before_start(row(151, "EXTERNAL_STDOUT_MODE", S, Default::Str("pipe"), "\"pipe\"", Check::Custom(stdout_mode),
        "\"pipe\", \"null\", \"console\" or \"file:<absolute path>\"", EXTERNAL,
        "The child's stdout; file: appends; console is the driver's stdout.")),
    before_start(row(152, "EXTERNAL_STDERR_MODE", S, Default::Str("pipe"), "\"pipe\"", Check::Custom(stderr_mode),
        "\"pipe\", \"merge\", \"null\", \"console\" or \"file:<absolute path>\"", EXTERNAL,
        "The child's stderr; pipe delivers it as stderr, merge sends it into stdout.")),
    before_start(row(153, "EXTERNAL_SHELL", S.or(I), Default::Int(0), "0", Check::Custom(external_shell),
        "an int 0/1 or an absolute shell path", EXTERNAL,
        "0 = exec directly; 1 = \"/bin/sh -c\"; a path = that shell with -c.")),
    refusable(before_start(row(154, "EXTERNAL_PRIORITY", I, Default::Int(0), "0", Check::IntRange(-20, 19),
        "an int in -20..19 (nice value)", EXTERNAL, "Nice value; a negative one needs privilege (checked when set)."))),
    before_start(row(155, "EXTERNAL_CPU_LIMIT", I, Default::Int(0), "0", Check::Custom(cpu_limit),
        "an int, 0 (off) or 1..(100 × cores) (percent of one core)", EXTERNAL,
        "CPU cap via a cgroup (v2 cpu.max or v1 cfs quota), else an RLIMIT_CPU fallback; which one applied is reported.")),
    before_start(row(156, "EXTERNAL_MEMORY_LIMIT", I, Default::Int(0), "0", Check::Custom(memory_limit),
        "an int, 0 (off) or at least 1048576 (bytes)", EXTERNAL,
        "Memory cap via cgroup v2 memory.max or v1 memory.limit_in_bytes, else RLIMIT_AS.")),
    refusable(before_start(row(157, "EXTERNAL_FILE_LIMIT", I, Default::Int(0), "0", Check::Custom(file_limit),
        "an int, 0 (off) or 3..1048576 (open files)", EXTERNAL, "RLIMIT_NOFILE for the child."))),
    before_start(row(158, "EXTERNAL_SANDBOX", I.or(M), Default::Int(0), "0", Check::Custom(sandbox),
        "an int 0/1 or a mapping with paths and read (arrays of absolute paths), network (int 0/1) and processes (int 0..1000000)", EXTERNAL,
        "1 = no_new_privs + landlock (read-only everywhere, read-write in the working dir) + seccomp deny-list + \
         no network; a mapping turns it on and adds read-write paths (paths), limits reads to the system directories and the paths named (read), allows the network (network 1) and caps the number of processes (processes). What was applied is reported.")),
    row(159, "EXTERNAL_RESTART_POLICY", S.or(M), Default::Str("never"), "\"never\"", Check::Custom(restart_policy),
        "\"never\", \"on-failure\", \"always\" or a mapping with policy, max_restarts (int, 0 = no limit), \
         backoff_ms (int 0..60000, 0 = at once), window (int s), kill_mode (\"group\" or \"process\")", EXTERNAL_LONG,
        "Restart the process when it exits; backoff doubles each time, capped at 60 s; restarts are counted over window seconds (0 = forever). \
         kill_mode \"group\" (default) ends every process left in the process group and cgroup when a run ends (SIGTERM, SIGKILL 5 s later); \
         \"process\" ends only the main process and keeps the rest (a restart still starts from a clean group)."),

    // ----- Cache 200–209 -----
    with_aliases(
        row(200, "SO_CACHE_ENABLE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", HTTP_ALL,
            "Cache responses (servers answer cached ones without reaching LPC)."),
        &["CACHE_ENABLE"],
    ),
    with_aliases(
        row(201, "SO_CACHE_TTL", I, Default::Int(300), "300", Check::IntRange(1, 86400),
            "an int in 1..86400 (s)", HTTP_ALL,
            "Lifetime of an entry; a response's own Cache-Control max-age / no-store wins."),
        &["CACHE_TTL"],
    ),
    with_aliases(
        row(202, "SO_CACHE_MAX_SIZE", I, Default::Int(1_048_576), "1048576", Check::IntRange(1024, 1_073_741_824),
            "an int in 1024..1073741824 (bytes)", HTTP_ALL, "Total cache size; LRU eviction beyond it."),
        &["CACHE_MAX_SIZE"],
    ),
    with_aliases(
        row(203, "SO_CACHE_KEY_PATTERN", S, Default::Str("{method} {path}?{query}"), "\"{method} {path}?{query}\"",
            Check::Custom(cache_key_pattern),
            "a template of 1..1024 chars over {method} {path} {query} {host} {header:Name}", HTTP_ALL,
            "How the cache key is built."),
        &["CACHE_KEY_PATTERN"],
    ),
    with_aliases(
        row(204, "SO_CACHE_HEADERS", A, Default::EmptyArray, "({})", Check::Custom(header_names),
            "an array of header names", HTTP_ALL, "Request headers that vary the key."),
        &["CACHE_HEADERS"],
    ),
    with_aliases(
        row(205, "SO_CACHE_METHODS", A, Default::StrList(&["GET", "HEAD"]), "({ \"GET\", \"HEAD\" })",
            Check::Custom(http_methods), "an array of HTTP methods", HTTP_ALL, "Methods that may be cached."),
        &["CACHE_METHODS"],
    ),
    with_aliases(
        row(206, "SO_CACHE_EXCLUDE_PATTERNS", A, Default::EmptyArray, "({})", Check::Custom(globs),
            "an array of path globs (1..2048 chars each)", HTTP_ALL, "Paths never cached."),
        &["CACHE_EXCLUDE_PATTERNS"],
    ),
    with_aliases(
        before_start(row(207, "SO_CACHE_THREAD_POOL_SIZE", I, Default::Int(0), "0", Check::IntRange(0, 64),
            "an int in 0..64 (threads)", HTTP_ALL,
            "0 = all cache work on the driver thread; accepted and reported, never a silent no-op.")),
        &["CACHE_THREAD_POOL_SIZE"],
    ),
    with_aliases(
        access(
            row(208, "SO_CACHE_INVALIDATE_PATTERN", S, Default::Unset, "—", Check::StrLen(1, 2048),
                "a glob of 1..2048 chars", HTTP_ALL,
                "Write-only action: drops every entry whose key matches the glob now."),
            Access::WriteOnly,
        ),
        &["CACHE_INVALIDATE_PATTERN"],
    ),
    with_aliases(
        access(
            row(209, "SO_CACHE_STATISTICS", M, Default::ByMode(cache_statistics_default),
                "all counters 0", Check::Any, "nothing (read-only)", HTTP_ALL,
                "Read-only: hits, misses, entries, bytes, evictions, invalidations."),
            Access::ReadOnly,
        ),
        &["CACHE_STATISTICS"],
    ),

    // ----- Apache / nginx integration 300–309 -----
    before_start(row(300, "SO_APACHE_FASTCGI_ENABLE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "Listen as a FastCGI responder instead of HTTP; requests reach LPC as the same request mapping.")),
    before_start(row(301, "SO_APACHE_FASTCGI_SOCKET", S, Default::Unset, "—", Check::Custom(unix_socket_path),
        "an absolute path of at most 107 bytes without \"..\"", APACHE,
        "Unix socket to listen on for FastCGI (mode 0660) instead of a TCP port.")),
    row(302, "SO_APACHE_PROXY_ENABLE", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "Honour Forwarded / X-Forwarded-For / -Proto / -Host from trusted proxies."),
    row(303, "SO_APACHE_PROXY_UPSTREAM", S.or(A), Default::StrList(&["127.0.0.1", "::1"]), "({ \"127.0.0.1\", \"::1\" })",
        Check::Custom(proxy_upstream), "an IP address or CIDR, or an array of them", APACHE,
        "Trusted proxy addresses."),
    row(304, "SO_APACHE_STATIC_HANDOFF", M, Default::Unset, "off", Check::Custom(static_handoff),
        "a mapping with prefix (path), root (absolute directory) and optional header (\"X-Sendfile\" or \"X-Accel-Redirect\", default \"X-Sendfile\")",
        APACHE,
        "Matching requests are answered with the hand-off header so the front server sends the file; traversal refused."),
    row(305, "SO_APACHE_DYNAMIC_HANDOFF", A, Default::Unset, "all", Check::Custom(path_prefixes),
        "an array of path prefixes (\"/...\")", APACHE,
        "Prefixes that go to LPC; others get the static hand-off or 404 without reaching LPC."),
    row(306, "SO_APACHE_CGI_ENV_VARS", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "request[\"cgi\"] holds the RFC 3875 meta-variables."),
    row(307, "SO_APACHE_AUTH_PASSTHROUGH", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "REMOTE_USER (FastCGI) or X-Remote-User from a trusted proxy becomes request[\"remote_user\"]."),
    row(308, "SO_APACHE_SSL_TERMINATION", I, Default::Int(0), "0", Check::Bool, "an int 0/1", APACHE,
        "TLS ends at the front server; HTTPS=on or X-Forwarded-Proto: https marks request[\"scheme\"] = \"https\"."),
    row(309, "SO_APACHE_LOAD_BALANCE", M, Default::Unset, "off", Check::Custom(load_balance),
        "a mapping with backend_id (1..64 chars of [A-Za-z0-9._-]), optional health_path (path, default \"/health\") and sticky_cookie (name)",
        APACHE,
        "Answers health checks without LPC and stamps responses so a balancer can spread requests over several drivers."),

    // ----- IPC message bus 440–453 -----
    before_start(row(440, "IPC_EVENT_NAME", S, Default::Unset, "— (required)", Check::Custom(ipc_event_name),
        "a string of 1..64 chars of [A-Za-z0-9_-]", IPC, "Names the bus; required.")),
    before_start(row(441, "IPC_TRANSPORT", S, Default::Str("unix"), "\"unix\"", Check::OneOf(&["unix", "tcp"]),
        "\"unix\" or \"tcp\"", IPC, "Transport of the bus.")),
    before_start(row(442, "IPC_SOCKET_DIR", S, Default::Unset, "$XDG_RUNTIME_DIR or /tmp", Check::Custom(ipc_socket_dir),
        "an absolute directory path of at most 100 bytes without \"..\"", IPC,
        "unix: the socket is <dir>/<event_name>.sock.")),
    before_start(row(443, "IPC_PERMISSIONS", I, Default::Int(0o600), "0600 (384)", Check::Custom(file_mode),
        "an int in 0..0777 (octal file mode)", IPC_SERVER, "Mode of the unix socket file.")),
    before_start(row(444, "IPC_AUTO_REMOVE", I, Default::Int(1), "1", Check::Bool, "an int 0/1", IPC_SERVER,
        "Remove the socket file on close (and a stale one at bind).")),
    before_start(row(445, "IPC_HOST", S, Default::Str("127.0.0.1"), "\"127.0.0.1\"", Check::Custom(ipc_host),
        "a host name or IP address", IPC, "tcp: bind/connect host.")),
    before_start(row(446, "IPC_PORT_RANGE", A, Default::IntList(&[50000, 50100]), "({ 50000, 50100 })",
        Check::Custom(port_range), "an array of two ints ({ lo, hi }) with 1 <= lo <= hi <= 65535", IPC,
        "tcp: the first free port in the range is used; get reports the one chosen.")),
    row(447, "IPC_MAX_CONNECTIONS", I, Default::Int(10), "10", Check::IntRange(1, 1_000_000),
        "an int in 1..1000000 (clients)", IPC_SERVER,
        "Beyond it a client is refused with an ERROR message, then closed."),
    row(448, "IPC_QUEUE_SIZE", I, Default::Int(100), "100", Check::IntRange(0, 1_000_000),
        "an int in 0..1000000 (messages)", IPC,
        "Messages kept (FIFO, oldest dropped) while no client is connected; delivered on connect."),
    row(449, "IPC_ALLOW_CLIENT_SEND", I, Default::Int(1), "1", Check::Bool, "an int 0/1", IPC_SERVER,
        "0: client messages are refused with an ERROR message."),
    row(450, "IPC_AUTO_RECONNECT", I, Default::Int(1), "1", Check::Bool, "an int 0/1", IPC_CLIENT,
        "Client: reconnect with backoff after loss."),
    row(451, "IPC_RECONNECT_DELAY", I, Default::Int(1000), "1000", Check::IntRange(10, 3_600_000),
        "an int in 10..3600000 (ms)", IPC_CLIENT, "First backoff step, in ms."),
    row(452, "IPC_TIMEZONE", S, Default::Str("UTC"), "\"UTC\"", Check::Custom(timezone),
        "an IANA zone name such as \"UTC\" or \"Europe/Berlin\"", IPC, "Zone for timestamp_iso."),
    access(
        row(453, "IPC_CLIENTS", A, Default::EmptyArray, "({})", Check::Any, "nothing (read-only)", IPC_SERVER,
            "Read-only: connected clients (client_id, connected_at, addr)."),
        Access::ReadOnly,
    ),
];

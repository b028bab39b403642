//! The generated headers and docs must match the catalog and mode table, and
//! the catalog must be internally consistent.
//!
//! After changing `src/options/catalog/rows.rs` or `src/modes.rs`, regenerate with
//! `UNISOCK_BLESS=1 cargo test --test generated_files`.

use std::collections::HashMap;
use std::path::Path;

use unisock::gen;
use unisock::modes::{ModeSet, MODES};
use unisock::options::catalog::{self, OPTIONS};
use unisock::options::validate::validate;
use unisock::options::{Access, Default};

const BLESS: &str = "UNISOCK_BLESS=1 cargo test --test generated_files";

#[test]
fn generated_files_match_the_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var("UNISOCK_BLESS").is_ok_and(|v| v == "1");
    let mut drift = Vec::new();
    for (rel, render) in gen::FILES {
        let path = root.join(rel);
        let want = render();
        if bless {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap();
            }
            if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                std::fs::write(&path, &want).unwrap();
                eprintln!("blessed {rel}");
            }
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(have) if have == want => {}
            Ok(have) => {
                let line = have
                    .lines()
                    .zip(want.lines())
                    .position(|(a, b)| a != b)
                    .map_or_else(
                        || have.lines().count().min(want.lines().count()) + 1,
                        |i| i + 1,
                    );
                drift.push(format!(
                    "{rel} differs from the tables (first at line {line})"
                ));
            }
            Err(e) => drift.push(format!("{rel} cannot be read: {e}")),
        }
    }
    assert!(
        drift.is_empty(),
        "generated files are out of date:\n  {}\nrun `{BLESS}` and commit the result",
        drift.join("\n  ")
    );
}

#[test]
fn ids_unique_and_ascending() {
    for w in OPTIONS.windows(2) {
        assert!(
            w[0].id < w[1].id,
            "{} ({}) must come before {} ({})",
            w[0].name,
            w[0].id,
            w[1].name,
            w[1].id
        );
    }
    for d in OPTIONS {
        assert!(std::ptr::eq(catalog::find(d.id as i64).unwrap(), d));
    }
}

/// Options unisock adds to the spec's table, each with its decision in
/// docs/ARCHITECTURE.md: 19 SO_SEND_TIMEOUT (the no-progress deadline of
/// queued output outside HTTP, issue 12).
const EXTENSIONS: &[u16] = &[19];

#[test]
fn every_spec_option_is_present() {
    let mut spec: Vec<u16> = (0..=4)
        .chain(10..=18)
        .chain(100..=159)
        .chain(200..=209)
        .chain(300..=309)
        .chain(440..=453)
        .chain(EXTENSIONS.iter().copied())
        .collect();
    spec.sort_unstable();
    let have: Vec<u16> = OPTIONS.iter().map(|d| d.id).collect();
    assert_eq!(
        have, spec,
        "the catalog's ids must be exactly the spec's plus EXTENSIONS"
    );
}

/// id, canonical name and type of every option, as spec/options.md writes them.
const SPEC_ROWS: &str = "\
0 SO_INVALID —\n\
1 SO_TLS_VERIFY_PEER int\n\
2 SO_TLS_SNI_HOSTNAME string\n\
3 SO_TLS_CERT string\n\
4 SO_TLS_KEY string\n\
10 SO_TLS_CA string\n\
11 SO_KEEPALIVE int\n\
12 SO_NODELAY int\n\
13 SO_RCVBUF int\n\
14 SO_SNDBUF int\n\
15 SO_IDLE_TIMEOUT int\n\
16 SO_MAX_CONNECTIONS int\n\
17 SO_MAX_BUFFERED int\n\
18 SO_STATISTICS mapping\n\
19 SO_SEND_TIMEOUT int\n\
100 SO_HTTP_HEADERS mapping\n\
101 SO_HTTP_METHOD string\n\
102 SO_HTTP_URL string\n\
103 SO_HTTP_BODY string|buffer\n\
104 SO_HTTP_TIMEOUT int\n\
105 SO_HTTP_USER_AGENT string\n\
106 SO_HTTP_FOLLOW_REDIRECTS int\n\
107 SO_HTTP_MAX_REDIRECTS int\n\
108 SO_HTTP_CONNECT_TIMEOUT int\n\
109 SO_HTTP_READ_TIMEOUT int\n\
110 REST_ROUTER_CONFIG mapping\n\
111 REST_ADD_ROUTE mapping\n\
112 REST_OPENAPI_INFO mapping\n\
113 REST_JWT_SECRET string\n\
114 REST_DOCS_PATH string\n\
115 REST_VALIDATION_SCHEMA mapping\n\
116 REST_MIDDLEWARE array\n\
117 REST_ERROR_HANDLER string\n\
118 REST_CORS_CONFIG mapping\n\
119 REST_RATE_LIMIT mapping\n\
120 WS_PROTOCOL string|array\n\
121 WS_EXTENSIONS array\n\
122 WS_ORIGIN string|array\n\
123 WS_MAX_MESSAGE_SIZE int\n\
124 WS_PING_INTERVAL int\n\
125 WS_PONG_TIMEOUT int\n\
126 WS_COMPRESSION int\n\
127 WS_SUBPROTOCOL string\n\
128 WS_FRAME_SIZE_LIMIT int\n\
129 WS_AUTO_PING int\n\
130 MQTT_BROKER string\n\
131 MQTT_CLIENT_ID string\n\
132 MQTT_USERNAME string\n\
133 MQTT_PASSWORD string\n\
134 MQTT_KEEP_ALIVE int\n\
135 MQTT_QOS int\n\
136 MQTT_RETAIN int\n\
137 MQTT_CLEAN_SESSION int\n\
138 MQTT_WILL_TOPIC string\n\
139 MQTT_WILL_MESSAGE string|buffer\n\
140 EXTERNAL_COMMAND string\n\
141 EXTERNAL_ARGS array\n\
142 EXTERNAL_ENV mapping\n\
143 EXTERNAL_WATCH_PATH string|array\n\
144 EXTERNAL_WORKING_DIR string\n\
145 EXTERNAL_USER string|int\n\
146 EXTERNAL_GROUP string|int\n\
147 EXTERNAL_TIMEOUT int\n\
148 EXTERNAL_BUFFER_SIZE int\n\
149 EXTERNAL_ASYNC int\n\
150 EXTERNAL_STDIN_MODE string\n\
151 EXTERNAL_STDOUT_MODE string\n\
152 EXTERNAL_STDERR_MODE string\n\
153 EXTERNAL_SHELL string|int\n\
154 EXTERNAL_PRIORITY int\n\
155 EXTERNAL_CPU_LIMIT int\n\
156 EXTERNAL_MEMORY_LIMIT int\n\
157 EXTERNAL_FILE_LIMIT int\n\
158 EXTERNAL_SANDBOX int|mapping\n\
159 EXTERNAL_RESTART_POLICY string|mapping\n\
200 SO_CACHE_ENABLE int\n\
201 SO_CACHE_TTL int\n\
202 SO_CACHE_MAX_SIZE int\n\
203 SO_CACHE_KEY_PATTERN string\n\
204 SO_CACHE_HEADERS array\n\
205 SO_CACHE_METHODS array\n\
206 SO_CACHE_EXCLUDE_PATTERNS array\n\
207 SO_CACHE_THREAD_POOL_SIZE int\n\
208 SO_CACHE_INVALIDATE_PATTERN string\n\
209 SO_CACHE_STATISTICS mapping\n\
300 SO_APACHE_FASTCGI_ENABLE int\n\
301 SO_APACHE_FASTCGI_SOCKET string\n\
302 SO_APACHE_PROXY_ENABLE int\n\
303 SO_APACHE_PROXY_UPSTREAM string|array\n\
304 SO_APACHE_STATIC_HANDOFF mapping\n\
305 SO_APACHE_DYNAMIC_HANDOFF array\n\
306 SO_APACHE_CGI_ENV_VARS int\n\
307 SO_APACHE_AUTH_PASSTHROUGH int\n\
308 SO_APACHE_SSL_TERMINATION int\n\
309 SO_APACHE_LOAD_BALANCE mapping\n\
440 IPC_EVENT_NAME string\n\
441 IPC_TRANSPORT string\n\
442 IPC_SOCKET_DIR string\n\
443 IPC_PERMISSIONS int\n\
444 IPC_AUTO_REMOVE int\n\
445 IPC_HOST string\n\
446 IPC_PORT_RANGE array\n\
447 IPC_MAX_CONNECTIONS int\n\
448 IPC_QUEUE_SIZE int\n\
449 IPC_ALLOW_CLIENT_SEND int\n\
450 IPC_AUTO_RECONNECT int\n\
451 IPC_RECONNECT_DELAY int\n\
452 IPC_TIMEZONE string\n\
453 IPC_CLIENTS array\n";

#[test]
fn names_and_types_match_the_spec() {
    let spec: Vec<(u16, &str, &str)> = SPEC_ROWS
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            let id = it.next().unwrap().parse().unwrap();
            (id, it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    assert_eq!(spec.len(), OPTIONS.len());
    for ((id, name, kinds), d) in spec.into_iter().zip(OPTIONS) {
        assert_eq!((d.id, d.name, d.kinds.lpc().as_str()), (id, name, kinds));
    }
}

#[test]
fn names_unique_across_options_and_modes() {
    let mut seen: HashMap<&str, String> = HashMap::new();
    let mut add = |name: &'static str, what: String| {
        if let Some(prev) = seen.insert(name, what.clone()) {
            panic!("{name} is both {prev} and {what}");
        }
    };
    for d in OPTIONS {
        for n in d.names() {
            add(n, format!("option {}", d.id));
        }
    }
    for m in MODES {
        add(m.name, format!("mode {}", m.number));
        if let Some(a) = m.alias {
            add(a, format!("mode {}", m.number));
        }
    }
    for (n, _) in gen::EXTERNAL_EVENTS {
        add(n, "an event bit".into());
    }
}

#[test]
fn every_row_is_documented() {
    for d in OPTIONS {
        assert!(!d.wants.trim().is_empty(), "{}: empty wants", d.name);
        assert!(!d.doc.trim().is_empty(), "{}: empty doc", d.name);
        assert!(
            !d.default_doc.trim().is_empty(),
            "{}: empty default_doc",
            d.name
        );
        assert!(
            !d.wants.starts_with("wants"),
            "{}: wants must read after \"wants \"",
            d.name
        );
        if d.access != Access::Invalid {
            assert!(d.modes != ModeSet::NONE, "{}: no modes", d.name);
        }
    }
}

#[test]
fn defaults_pass_their_own_validation() {
    for d in OPTIONS {
        // Unset has no value to check; read-only rows are never set by LPC;
        // an appending row's default is the (empty) array of appended values.
        if matches!(d.default, Default::Unset)
            || matches!(d.access, Access::ReadOnly | Access::Invalid)
            || d.append
        {
            continue;
        }
        for mode in d.modes.iter() {
            let v = d.default.value(mode);
            match validate(d, &v) {
                Ok(stored) => assert_eq!(
                    stored, v,
                    "{}: default for mode {mode} is changed by its own validation",
                    d.name
                ),
                Err(e) => panic!("{}: default for mode {mode} fails: {}", d.name, e.message),
            }
        }
    }
}

#[test]
fn wrong_kinds_name_the_option() {
    for d in OPTIONS {
        if d.access != Access::ReadWrite && d.access != Access::Secret {
            continue;
        }
        let wrong = unisock::Value::Real(1.5);
        if d.kinds.accepts(&wrong) {
            continue;
        }
        let e = validate(d, &wrong).unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "socket_set_option: {} ({}) wants {}, got a float 1.5",
                d.name, d.id, d.wants
            )
        );
    }
}

/// The efun pages (`docs/efun/<group>/<name>.md`, hand-written) in one list.
fn efun_pages(root: &Path) -> Vec<std::path::PathBuf> {
    let mut pages = Vec::new();
    let Ok(groups) = std::fs::read_dir(root.join(gen::EFUN_DIR)) else {
        return pages;
    };
    for group in groups {
        let group = group.unwrap().path();
        if !group.is_dir() {
            continue;
        }
        for page in std::fs::read_dir(&group).unwrap() {
            let page = page.unwrap().path();
            if page.extension().is_some_and(|x| x == "md") {
                pages.push(page);
            }
        }
    }
    pages.sort();
    pages
}

fn shim_texts(root: &Path) -> gen::ShimTexts {
    let cc = std::fs::read_to_string(root.join(gen::SOCKET_ERROR_SOURCE)).unwrap();
    gen::shim_texts(&cc).unwrap_or_else(|e| panic!("{}: {e}", gen::SOCKET_ERROR_SOURCE))
}

#[test]
fn efun_pages_generated_blocks_match_the_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var("UNISOCK_BLESS").is_ok_and(|v| v == "1");
    let shim = shim_texts(root);
    let mut drift = Vec::new();
    for path in efun_pages(root) {
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let have = std::fs::read_to_string(&path).unwrap();
        let want = match gen::fill_blocks(&have, &shim) {
            Ok(w) => w,
            Err(e) => {
                drift.push(format!("{rel}: {e}"));
                continue;
            }
        };
        if want == have {
            continue;
        }
        if bless {
            std::fs::write(&path, &want).unwrap();
            eprintln!("blessed {rel}");
        } else {
            let line = have
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .map_or(have.lines().count().min(want.lines().count()) + 1, |i| {
                    i + 1
                });
            drift.push(format!(
                "{rel}: a generated block differs from the tables (first at line {line})"
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "efun pages are out of date:\n  {}\nrun `{BLESS}` and commit the result",
        drift.join("\n  ")
    );
}

/// The text of a page's `### SECTION`, up to the next heading of that level.
fn section<'a>(page: &'a str, title: &str) -> Option<&'a str> {
    let start = page.find(&format!("\n### {title}\n"))? + title.len() + 6;
    let rest = &page[start..];
    Some(&rest[..rest.find("\n### ").unwrap_or(rest.len())])
}

#[test]
fn every_efun_has_a_page_in_fluffos_format() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = std::fs::read_to_string(root.join(gen::EFUN_SPEC)).unwrap();
    let efuns = gen::spec_efuns(&spec);
    assert!(
        efuns.len() >= 29,
        "{} efuns read from {}",
        efuns.len(),
        gen::EFUN_SPEC
    );
    let mut problems = Vec::new();
    let mut expected = Vec::new();
    for e in &efuns {
        let Some(group) = gen::efun_group(&e.name) else {
            problems.push(format!(
                "{}: no page group for this name (gen::efun_group)",
                e.name
            ));
            continue;
        };
        let rel = format!("{}/{group}/{}.md", gen::EFUN_DIR, e.name);
        expected.push(root.join(&rel));
        let Ok(page) = std::fs::read_to_string(root.join(&rel)) else {
            problems.push(format!("{}: no page {rel}", e.name));
            continue;
        };
        let mut need = |ok: bool, what: &str| {
            if !ok {
                problems.push(format!("{rel}: {what}"));
            }
        };
        need(
            page.starts_with(&format!("---\ntitle: {group} / {}\n---\n", e.name)),
            "must start with the front matter `title: <group> / <name>`",
        );
        need(
            page.contains(&format!("\n# {}\n", e.name)),
            "no `# <name>` heading",
        );
        for s in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES", "SEE ALSO"] {
            need(
                section(&page, s).is_some(),
                &format!("no `### {s}` section"),
            );
        }
        if let Some(syn) = section(&page, "SYNOPSIS") {
            let flat: String = syn.chars().filter(|c| !c.is_whitespace()).collect();
            let decl = format!("{}{}(", e.ret, e.name).replace(' ', "");
            need(
                flat.contains(&decl),
                &format!(
                    "the SYNOPSIS does not declare `{} {}(...)` as sockets.spec does",
                    e.ret, e.name
                ),
            );
        }
        if let Some(ex) = section(&page, "EXAMPLES") {
            need(ex.contains("```c\n"), "the EXAMPLES have no ```c block");
        }
    }
    for page in efun_pages(root) {
        if !expected.contains(&page) {
            problems.push(format!(
                "{}: no efun of {} has this name",
                page.strip_prefix(root).unwrap().display(),
                gen::EFUN_SPEC
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "efun pages:\n  {}",
        problems.join("\n  ")
    );
}

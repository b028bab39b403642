//! unisock::http_util against Python's standard library on the same inputs.
//!
//! Builds a deterministic set of inputs (fixed cases plus a seeded PRNG),
//! writes them as JSON lines to a temporary file, runs
//! `python3 tests/python/http_util_oracle.py < file` and compares every answer
//! with the Rust functions. Python is required: without it the test fails.
//!
//! Known, documented differences (where the Rust side is RFC-exact and Python
//! is lenient or older) are checked for exactly, never skipped blindly:
//! * decode: a '%' not followed by two hex digits is an error in Rust, kept
//!   literally by Python.
//! * format_headers: Rust trims OWS around values and rejects names that are
//!   not tokens and control characters in values, which Python accepts.
//! * parse_date: RFC 850 two-digit years follow RFC 9110's sliding 50-year
//!   window (Python uses a fixed 1969..2068 pivot); a leap second (:60) is
//!   accepted (Python's datetime cannot hold it); only the exact RFC grammar is
//!   accepted (Python takes much more).
//! * status: 413, 414, 416, 422 use the RFC 9110 names (Python 3.11 has the
//!   RFC 7231 ones) and 418 has no phrase (Python: "I'm a Teapot").

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use unisock::http_util as hu;

/// A fixed "now" for RFC 850 dates: 2025-06-15T15:06:40Z.
const NOW_2025: i64 = 1_750_000_000;

/// SplitMix64: small, seeded, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next() % span) as i64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const TCHAR_EXTRA: &str = "!#$%&'*+-.^_`|~";

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || TCHAR_EXTRA.contains(c)
}

fn is_ctl_not_htab(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\x7f'
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

const NON_ASCII: &[char] = &[
    'é',
    'ß',
    'ü',
    '€',
    '日',
    '本',
    '😀',
    '\u{80}',
    '\u{a0}',
    '\u{7ff}',
    '\u{800}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10000}',
    '\u{10ffff}',
];

fn random_text(rng: &mut Rng, max_len: usize) -> String {
    let len = rng.below(max_len + 1);
    (0..len)
        .map(|_| {
            if rng.chance(80) {
                char::from(rng.range(0, 127) as u8)
            } else {
                rng.pick(NON_ASCII)
            }
        })
        .collect()
}

// ---------------------------------------------------------------- inputs

fn encode_inputs(rng: &mut Rng, reqs: &mut Vec<Value>) {
    let fixed = [
        "",
        "abc",
        "a b",
        "a+b",
        "~user",
        "-._~",
        "100%",
        "/path/to?x=1&y=2#frag",
        "grüße",
        "日本語",
        "😀",
        "\0\r\n\t",
        "!*'();:@&=+$,/?#[]",
    ];
    for s in fixed {
        reqs.push(json!({"op": "encode", "s": s}));
    }
    for c in (0u32..0x250).chain(NON_ASCII.iter().map(|&c| c as u32)) {
        if let Some(c) = char::from_u32(c) {
            reqs.push(json!({"op": "encode", "s": c.to_string()}));
        }
    }
    for _ in 0..200 {
        reqs.push(json!({"op": "encode", "s": random_text(rng, 24)}));
    }
    for b in 0u8..=255 {
        reqs.push(json!({"op": "encode_bytes", "hex": format!("{b:02x}")}));
    }
    for _ in 0..50 {
        let len = rng.below(16);
        let hex: String = (0..len)
            .map(|_| format!("{:02x}", rng.next() as u8))
            .collect();
        reqs.push(json!({"op": "encode_bytes", "hex": hex}));
    }
}

fn decode_inputs(rng: &mut Rng, reqs: &mut Vec<Value>) {
    let fixed = [
        "",
        "abc",
        "a+b",
        "a%20b",
        "%2B",
        "%2b",
        "%41%42",
        "%c3%a9",
        "%C3%A9",
        "é%41",
        "%",
        "%4",
        "%G1",
        "%%",
        "100%",
        "%zz",
        "%FF",
        "%C3",
        "%80",
        "%ED%A0%80",
        "%F0%9F%98%80",
        "+%2B+",
        "%00",
        "a%0Ab",
    ];
    for s in fixed {
        reqs.push(json!({"op": "decode", "s": s}));
    }
    // Every byte escaped, in upper and lower case hex.
    for b in 0u8..=255 {
        reqs.push(json!({"op": "decode", "s": format!("%{b:02X}")}));
        reqs.push(json!({"op": "decode", "s": format!("x%{b:02x}y")}));
    }
    // Round trips of random text, and random mixtures.
    for _ in 0..150 {
        let text = random_text(rng, 16);
        let mut enc = hu::encode_url(&text);
        if rng.chance(50) {
            enc = enc.replace("%20", "+");
        }
        if rng.chance(50) {
            enc = enc.to_ascii_lowercase();
        }
        reqs.push(json!({"op": "decode", "s": enc}));
    }
    const HEX: &[u8] = b"0123456789abcdefABCDEF";
    for _ in 0..250 {
        let len = rng.below(12);
        let mut s = String::new();
        for _ in 0..len {
            match rng.below(6) {
                0 => {
                    s.push('%');
                    s.push(rng.pick(HEX) as char);
                    s.push(rng.pick(HEX) as char);
                }
                1 => s.push_str(&hu::encode_url(&rng.pick(NON_ASCII).to_string())),
                2 => s.push(rng.pick(&['%', '+', 'g', 'Z', ' ', '~'])),
                3 => s.push(rng.pick(NON_ASCII)),
                _ => s.push(rng.range(0x20, 0x7e) as u8 as char),
            }
        }
        reqs.push(json!({"op": "decode", "s": s}));
    }
}

const NAMES: &[&str] = &[
    "Host",
    "Content-Type",
    "content-type",
    "CONTENT-TYPE",
    "Set-Cookie",
    "set-cookie",
    "Accept",
    "X-Custom",
    "x-a.b_c~d",
    "!#$%&'*+-.^_`|~",
    "A",
    "Date",
    "From",
    "Received",
    "0",
];

fn random_name(rng: &mut Rng) -> String {
    if rng.chance(60) {
        return rng.pick(NAMES).to_string();
    }
    let len = rng.range(1, 12) as usize;
    let chars: Vec<char> = ('0'..='9')
        .chain('a'..='z')
        .chain('A'..='Z')
        .chain(TCHAR_EXTRA.chars())
        .collect();
    (0..len).map(|_| rng.pick(&chars)).collect()
}

/// A value Python's email parser splits the same way (no line-breaking
/// characters, which include U+0085, U+2028, U+2029 for str.splitlines).
fn random_value(rng: &mut Rng) -> String {
    let len = rng.below(20);
    let mut v = String::new();
    for i in 0..len {
        let c = match rng.below(10) {
            0 if i > 0 && i + 1 < len => ' ',
            1 if i > 0 && i + 1 < len => '\t',
            2 => rng.pick(&['é', '日', '€', '😀', '\u{a0}', 'ü']),
            _ => rng.range(0x21, 0x7e) as u8 as char,
        };
        v.push(c);
    }
    v
}

fn random_ows(rng: &mut Rng) -> &'static str {
    rng.pick(&["", "", " ", "  ", "\t", " \t "])
}

/// A well-formed header block; lines are returned too for mutation.
fn header_block(rng: &mut Rng) -> (Vec<String>, &'static str) {
    let n = rng.below(12);
    let lines = (0..n)
        .map(|_| {
            format!(
                "{}:{}{}{}",
                random_name(rng),
                random_ows(rng),
                random_value(rng),
                random_ows(rng)
            )
        })
        .collect();
    (lines, if rng.chance(70) { "\r\n" } else { "\n" })
}

fn join_block(rng: &mut Rng, lines: &[String], eol: &str) -> String {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        s.push_str(l);
        if i + 1 < lines.len() {
            s.push_str(if rng.chance(10) { "\n" } else { eol });
        }
    }
    match rng.below(4) {
        0 => {}
        1 => s.push_str(eol),
        _ => {
            if !lines.is_empty() {
                s.push_str(eol);
            }
            s.push_str(eol);
            s.push_str("Body: not a header\r\n\r\nmore body");
        }
    }
    s
}

fn header_inputs(rng: &mut Rng, reqs: &mut Vec<Value>, malformed: &mut Vec<String>) {
    let fixed = [
        "",
        "\r\n",
        "Host: example.com\r\n\r\n",
        "Host: example.com",
        "A: 1\nB: 2\n\nC: 3\n",
        "Set-Cookie: a=1\r\nset-cookie: b=2\r\nSET-COOKIE: c=3\r\n",
        "X-Empty:\r\nX-Spaces:   \r\nX-Tab:\t\r\n",
        "Content-Type: text/html; charset=utf-8\r\nContent-Length: 42\r\n",
        "X: a:b:c\r\nY:: z\r\n",
        "Subject: grüße 日本\r\n",
    ];
    for s in fixed {
        reqs.push(json!({"op": "parse_headers", "s": s}));
    }
    for _ in 0..200 {
        let (lines, eol) = header_block(rng);
        let s = join_block(rng, &lines, eol);
        reqs.push(json!({"op": "parse_headers", "s": s}));
    }
    // Malformed: one mutation of a non-empty well-formed block (Rust only).
    let mut made = 0;
    while made < 150 {
        let (mut lines, eol) = header_block(rng);
        if lines.is_empty() {
            continue;
        }
        let i = rng.below(lines.len());
        match rng.below(8) {
            0 => lines.insert(
                i + 1,
                format!("{}{}", rng.pick(&[" ", "\t"]), random_value(rng)),
            ),
            1 => lines[i] = lines[i].replacen(':', "", usize::MAX),
            2 => lines[i] = lines[i].replacen(':', &format!("{}:", rng.pick(&[" ", "\t"])), 1),
            3 => {
                let bad = rng.pick(&[
                    '(', ')', ',', '/', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}',
                    '"', 'é',
                ]);
                lines[i].insert(0, bad);
            }
            4 => {
                let bad = rng.pick(&['\0', '\x01', '\x0b', '\x0c', '\x1f', '\x7f', '\r']);
                let colon = lines[i].find(':').unwrap();
                lines[i].insert_str(colon + 1, &format!("x{bad}y"));
            }
            5 => lines[i].insert(0, ' '),
            6 => lines[i].insert(0, ':'),
            _ => lines[i] = format!("{}\r{}", lines[i], lines[i]),
        }
        let s = join_block(rng, &lines, eol);
        malformed.push(s);
        made += 1;
    }
}

fn format_inputs(rng: &mut Rng, reqs: &mut Vec<Value>) {
    let push = |pairs: Vec<(String, String)>, reqs: &mut Vec<Value>| {
        let trimmed: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.clone(), trim_ows(v).to_string()))
            .collect();
        reqs.push(json!({"op": "format_headers", "pairs": trimmed, "orig": pairs}));
    };
    let fixed: &[&[(&str, &str)]] = &[
        &[],
        &[("Host", "example.com")],
        &[("Content-Type", " text/html "), ("X", "")],
        &[("A", "1\r\nB: 2")],
        &[("A", "1\nB: 2")],
        &[("A", "1\r\n 2")],
        &[("A", "1\rB")],
        &[("A", "x\0y")],
        &[("A", "\x01")],
        &[("A B", "1")],
        &[("A:", "1")],
        &[("", "1")],
        &[("A\r\nB", "1")],
        &[("(A)", "1")],
        &[("Ä", "1")],
        &[("A", "grüße")],
    ];
    for pairs in fixed {
        push(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            reqs,
        );
    }
    for _ in 0..200 {
        let n = rng.below(5);
        let pairs = (0..n)
            .map(|_| {
                let mut name = random_name(rng);
                let mut value = format!(
                    "{}{}{}",
                    random_ows(rng),
                    random_value(rng),
                    random_ows(rng)
                );
                if rng.chance(10) {
                    let bad = rng.pick(&[' ', ':', '(', '"', '\r', '\n', '\0', 'é', '\t']);
                    name.insert(rng.below(name.len() + 1), bad);
                }
                if rng.chance(10) {
                    let bad =
                        rng.pick(&["\r\n", "\n", "\r", "\0", "\x01", "\x7f", "\r\n ", "\n\t"]);
                    let at = value
                        .char_indices()
                        .map(|(i, _)| i)
                        .nth(rng.below(value.chars().count() + 1))
                        .unwrap_or(value.len());
                    value.insert_str(at, bad);
                }
                (name, value)
            })
            .collect();
        push(pairs, reqs);
    }
}

fn http_date_inputs(rng: &mut Rng, reqs: &mut Vec<Value>) {
    let fixed = [
        0,
        1,
        -1,
        784_111_777,
        951_782_400,    // 2000-02-29
        951_868_799,    // 2000-02-29 23:59:59
        -2_208_988_800, // 1900-01-01
        -2_203_977_600, // 1900-03-01 (1900 is no leap year)
        2_147_483_647,  // 2038-01-19T03:14:07
        2_147_483_648,
        4_107_542_400, // 2100-03-01
        4_294_967_295,
        4_294_967_296,
        253_402_300_799, // 9999-12-31T23:59:59
        253_402_300_800, // year 10000
        -62_135_596_800, // 0001-01-01
        -62_135_596_801, // year 0
        -86_400,
        -86_401,
        i64::from(i32::MIN),
        1_000_000_000_000,
        -1_000_000_000_000,
    ];
    for t in fixed {
        reqs.push(json!({"op": "http_date", "t": t}));
    }
    for _ in 0..300 {
        let t = match rng.below(3) {
            0 => rng.range(hu::HTTP_DATE_MIN - 10_000, hu::HTTP_DATE_MAX + 10_000),
            1 => rng.range(-5_000_000_000, 5_000_000_000),
            _ => rng.range(-100_000, 100_000),
        };
        reqs.push(json!({"op": "http_date", "t": t}));
    }
}

const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn days_in_month(y: i64, m: usize) -> i64 {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][m - 1]
}

struct DateFields {
    wday: usize,
    y: i64,
    m: usize,
    d: i64,
    hh: i64,
    mm: i64,
    ss: i64,
}

fn imf(f: &DateFields) -> String {
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        SHORT_DAYS[f.wday],
        f.d,
        MONTHS[f.m - 1],
        f.y,
        f.hh,
        f.mm,
        f.ss
    )
}

fn rfc850(f: &DateFields) -> String {
    format!(
        "{}, {:02}-{}-{:02} {:02}:{:02}:{:02} GMT",
        LONG_DAYS[f.wday],
        f.d,
        MONTHS[f.m - 1],
        f.y % 100,
        f.hh,
        f.mm,
        f.ss
    )
}

fn asctime(f: &DateFields, pad_zero: bool) -> String {
    let day = if pad_zero {
        format!("{:02}", f.d)
    } else {
        format!("{:2}", f.d)
    };
    format!(
        "{} {} {} {:02}:{:02}:{:02} {:04}",
        SHORT_DAYS[f.wday],
        MONTHS[f.m - 1],
        day,
        f.hh,
        f.mm,
        f.ss,
        f.y
    )
}

fn random_fields(rng: &mut Rng) -> DateFields {
    let y = match rng.below(4) {
        0 => rng.range(100, 9999),
        1 => rng.range(1900, 2100),
        _ => rng.range(1960, 2080),
    };
    let m = rng.range(1, 12) as usize;
    DateFields {
        wday: rng.below(7),
        y,
        m,
        d: rng.range(1, days_in_month(y, m)),
        hh: rng.range(0, 23),
        mm: rng.range(0, 59),
        ss: rng.range(0, 59),
    }
}

fn parse_date_inputs(rng: &mut Rng, reqs: &mut Vec<Value>) {
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let nows = [
        NOW_2025,
        real_now,
        0,
        -2_208_988_800,
        3_000_000_000,
        4_102_444_800,
    ];
    let push = |reqs: &mut Vec<Value>, s: String, now: i64, valid: bool| {
        reqs.push(json!({"op": "parse_date", "s": s, "now": now, "valid": valid}));
    };
    for s in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun Nov 06 08:49:37 1994",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Wed, 31 Dec 1969 23:59:58 GMT",
        "Tue, 29 Feb 2000 12:00:00 GMT",
        "Tue, 19 Jan 2038 03:14:08 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Mon, 01 Jan 0100 00:00:00 GMT",
        "Mon, 01 Jan 1900 00:00:00 GMT",
        "Thursday, 01-Jan-70 00:00:00 GMT",
        "Friday, 31-Dec-99 23:59:59 GMT",
        "Saturday, 01-Jan-00 00:00:00 GMT",
        "Tuesday, 29-Feb-00 00:00:00 GMT",
        "Sat Jan  1 00:00:00 2000",
    ] {
        for &now in &nows {
            push(reqs, s.to_string(), now, true);
        }
    }
    for s in [
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37 GMT junk",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sunday, 6-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 94",
        "Thu, 29 Feb 1900 00:00:00 GMT",
        "Sun, 31 Apr 1994 00:00:00 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 23:60:00 GMT",
        "Sun, 06 Nov 1994 23:59:61 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "SUN, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49 GMT",
    ] {
        push(reqs, s.to_string(), NOW_2025, false);
    }
    for _ in 0..400 {
        let f = random_fields(rng);
        let now = rng.pick(&nows);
        let s = match rng.below(4) {
            0 | 1 => imf(&f),
            2 => rfc850(&f),
            _ => asctime(&f, rng.chance(30)),
        };
        push(reqs, s, now, true);
    }
    // Leap seconds: valid per RFC 9110, not representable in Python.
    for _ in 0..20 {
        let mut f = random_fields(rng);
        f.ss = 60;
        let s = match rng.below(3) {
            0 => imf(&f),
            1 => rfc850(&f),
            _ => asctime(&f, false),
        };
        push(reqs, s, NOW_2025, true);
    }
    // Invalid: one broken field or piece of syntax each.
    for _ in 0..250 {
        let mut f = random_fields(rng);
        let which = rng.below(14);
        match which {
            0 => f.d = days_in_month(f.y, f.m) + 1,
            1 => f.d = 0,
            2 => f.hh = 24 + rng.range(0, 75),
            3 => f.mm = 60 + rng.range(0, 39),
            4 => f.ss = 61 + rng.range(0, 38),
            5 => {
                f.m = 2;
                // Not leap years, and neither are the other centuries' (RFC 850).
                f.y = rng.pick(&[1901, 1999, 2001, 2023, 1977, 2345]);
                f.d = 29;
            }
            _ => {}
        }
        let base = match rng.below(3) {
            0 => imf(&f),
            1 => rfc850(&f),
            _ => asctime(&f, false),
        };
        let s = match which {
            6 => base.replacen(MONTHS[f.m - 1], &MONTHS[f.m - 1].to_ascii_lowercase(), 1),
            7 => format!("{base} x"),
            8 if base.ends_with("GMT") => {
                base.replace("GMT", rng.pick(&["UTC", "gmt", "GMT+1", "EST", "Z"]))
            }
            8 => format!("{base} GMT"),
            9 => base.replacen(' ', "  ", 1),
            10 => base.replacen(
                MONTHS[f.m - 1],
                rng.pick(&["Foo", "Sept", "June", "jan"]),
                1,
            ),
            11 => format!(
                "{}{}",
                rng.pick(&["Sum", "Xyz", "Sonday", "sun"]),
                &base[3..]
            ),
            12 => base[..base.len() - 1].to_string(),
            13 => base.replace(':', "."),
            _ => base,
        };
        push(reqs, s, NOW_2025, false);
    }
}

fn status_inputs(reqs: &mut Vec<Value>) {
    for code in (-5..=1000).chain([65_536 + 200, 4_294_967_296 + 200, i64::MAX, i64::MIN]) {
        reqs.push(json!({"op": "status", "code": code}));
    }
}

// ---------------------------------------------------------------- oracle

fn run_oracle(reqs: &[Value]) -> Vec<Value> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let script = format!("{dir}/tests/python/http_util_oracle.py");
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "unisock-http-util-{}-{unique}.jsonl",
        std::process::id()
    ));
    {
        let mut file = std::fs::File::create(&path).expect("create temporary input file");
        for r in reqs {
            writeln!(file, "{r}").unwrap();
        }
    }
    let input = std::fs::File::open(&path).unwrap();
    let output = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::from(input))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let _ = std::fs::remove_file(&path);
    let output = match output {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `python3 {script}`: {e}.\n\
             This test compares unisock::http_util with Python's standard library and \
             needs Python >= 3.7 as `python3` on PATH (e.g. `apt-get install python3`)."
        ),
    };
    assert!(
        output.status.success(),
        "the Python oracle failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = String::from_utf8(output.stdout)
        .expect("oracle output is ASCII JSON")
        .lines()
        .map(|l| serde_json::from_str(l).expect("oracle output line is JSON"))
        .collect();
    assert_eq!(answers.len(), reqs.len(), "one oracle answer per request");
    answers
}

// ---------------------------------------------------------------- checks

#[derive(Default)]
struct Tally {
    /// op -> (cases, known differences)
    by_op: BTreeMap<String, (usize, usize)>,
    /// "op: reason" -> count of known differences
    known_why: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn case(&mut self, op: &str) {
        self.by_op.entry(op.to_string()).or_default().0 += 1;
    }
    fn known(&mut self, op: &str, why: &str) {
        self.by_op.entry(op.to_string()).or_default().1 += 1;
        *self.known_why.entry(format!("{op}: {why}")).or_default() += 1;
    }
    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn check_decode(req: &Value, ans: &Value, t: &mut Tally) {
    let input = s(req, "s");
    let bad_escape = ans["bad_escape"].as_bool().unwrap();
    match hu::decode_url(input) {
        Ok(v) => {
            if bad_escape || ans["r"].as_str() != Some(v.as_str()) {
                t.fail(format!("decode {input:?}: rust {v:?}, python {ans}"));
            }
        }
        Err(e) if e.contains("bad percent escape") => {
            if bad_escape {
                t.known("decode", "bad escape is an error (Python keeps it)");
            } else {
                t.fail(format!(
                    "decode {input:?}: rust says bad escape, python {ans}"
                ));
            }
        }
        Err(e) => {
            if e != "http_decode_url: result is not valid UTF-8"
                || bad_escape
                || ans["err"] != "utf8"
            {
                t.fail(format!("decode {input:?}: rust error {e:?}, python {ans}"));
            }
        }
    }
    match hu::decode_url_bytes(input) {
        Ok(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            if ans["bytes_hex"].as_str() != Some(hex.as_str()) {
                t.fail(format!(
                    "decode_url_bytes {input:?}: rust {hex}, python {ans}"
                ));
            }
        }
        Err(_) if bad_escape => {}
        Err(e) => t.fail(format!("decode_url_bytes {input:?}: rust error {e:?}")),
    }
}

fn group(items: &Value) -> hu::Headers {
    let mut out: hu::Headers = Vec::new();
    for pair in items.as_array().unwrap() {
        let name = pair[0].as_str().unwrap().to_ascii_lowercase();
        let value = trim_ows(pair[1].as_str().unwrap()).to_string();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(value),
            None => out.push((name, vec![value])),
        }
    }
    out
}

fn check_parse_headers(req: &Value, ans: &Value, t: &mut Tally) {
    let input = s(req, "s");
    if ans["email"] != ans["client"] {
        t.fail(format!(
            "parse_headers {input:?}: the two Python parsers disagree: {ans}"
        ));
    }
    let want = group(&ans["email"]);
    match hu::parse_headers(input) {
        Ok(got) if got == want => {}
        other => t.fail(format!(
            "parse_headers {input:?}: rust {other:?}, python (grouped) {want:?}"
        )),
    }
}

fn check_format_headers(req: &Value, ans: &Value, t: &mut Tally) {
    let orig: Vec<(String, String)> = serde_json::from_value(req["orig"].clone()).unwrap();
    let stricter = orig.iter().any(|(n, v)| {
        n.is_empty() || !n.chars().all(is_tchar) || trim_ows(v).chars().any(is_ctl_not_htab)
    });
    match (hu::format_headers(&orig), ans["r"].as_str()) {
        (Ok(got), _) if stricter => t.fail(format!(
            "format_headers {orig:?}: a non-token name or a control character was accepted: {got:?}"
        )),
        (Ok(got), Some(want)) if got == want => {}
        (Err(_), Some(_)) if stricter => t.known(
            "format_headers",
            "non-token name or control character rejected",
        ),
        (Err(_), None) => {}
        (got, _) => t.fail(format!(
            "format_headers {orig:?}: rust {got:?}, python {ans}"
        )),
    }
}

fn check_http_date(req: &Value, ans: &Value, t: &mut Tally) {
    let ts = req["t"].as_i64().unwrap();
    match (hu::http_date(ts), ans["r"].as_str()) {
        (Ok(got), Some(want)) if got == want => {}
        (Err(_), None) => {}
        (got, _) => t.fail(format!("http_date {ts}: rust {got:?}, python {ans}")),
    }
}

fn check_parse_date(req: &Value, ans: &Value, t: &mut Tally) {
    let input = s(req, "s");
    let now = req["now"].as_i64().unwrap();
    let valid = req["valid"].as_bool().unwrap();
    let got = hu::parse_date_at(input, now);
    let py = ans["py"].as_i64();
    if !valid {
        if got != -1 {
            t.fail(format!("parse_date {input:?}: invalid but rust gave {got}"));
        } else if py.is_some() {
            t.known("parse_date", "not RFC grammar, Python accepts it");
        }
        return;
    }
    let leap = input.contains(":60 ") || input.ends_with(":60");
    if leap {
        // Rust: the next minute's :00, i.e. one second after :59.
        let at59 = hu::parse_date_at(&input.replace(":60", ":59"), now);
        if at59 == -1 || got != at59 + 1 || py.is_some() {
            t.fail(format!(
                "parse_date {input:?}: leap second: rust {got} (:59 {at59}), python {ans}"
            ));
        } else {
            t.known("parse_date", "leap second :60 accepted (Python cannot)");
        }
        return;
    }
    if let Some(rfc) = ans.get("rfc9110") {
        // RFC 850: the oracle applied RFC 9110's window to Python's reading.
        let want = rfc.as_i64().unwrap_or(-1);
        if got != want {
            t.fail(format!(
                "parse_date {input:?} (now {now}): rust {got}, python per RFC 9110 {ans}"
            ));
        } else if py != Some(got) {
            t.known(
                "parse_date",
                "RFC 850 year by RFC 9110's 50-year rule, not Python's pivot",
            );
        }
        return;
    }
    if py != Some(got) || got == -1 {
        t.fail(format!("parse_date {input:?}: rust {got}, python {ans}"));
    }
}

/// Python phrases that differ from the IANA / RFC 9110 ones on purpose.
const KNOWN_STATUS: &[(i64, &str)] = &[
    (413, "Request Entity Too Large"),
    (414, "Request-URI Too Long"),
    (416, "Requested Range Not Satisfiable"),
    (418, "I'm a Teapot"),
    (422, "Unprocessable Entity"),
];

fn check_status(req: &Value, ans: &Value, t: &mut Tally) {
    let code = req["code"].as_i64().unwrap();
    let got = hu::status_text(code);
    let py = ans["r"].as_str();
    if got == py {
        return;
    }
    if py.is_some_and(|p| KNOWN_STATUS.contains(&(code, p))) {
        t.known("status", "RFC 9110 name or 418 (Python differs)");
    } else {
        t.fail(format!("status {code}: rust {got:?}, python {py:?}"));
    }
}

#[test]
fn http_util_matches_python() {
    let mut rng = Rng(0x756E_6973_6F63_6B21); // "unisock!"
    let mut reqs = Vec::new();
    let mut malformed_headers = Vec::new();
    encode_inputs(&mut rng, &mut reqs);
    decode_inputs(&mut rng, &mut reqs);
    header_inputs(&mut rng, &mut reqs, &mut malformed_headers);
    format_inputs(&mut rng, &mut reqs);
    http_date_inputs(&mut rng, &mut reqs);
    parse_date_inputs(&mut rng, &mut reqs);
    status_inputs(&mut reqs);

    let answers = run_oracle(&reqs);
    let mut t = Tally::default();
    for (req, ans) in reqs.iter().zip(&answers) {
        let op = s(req, "op");
        t.case(op);
        match op {
            "encode" => {
                let got = hu::encode_url(s(req, "s"));
                if ans["r"].as_str() != Some(got.as_str()) {
                    t.fail(format!("encode {req}: rust {got:?}, python {ans}"));
                }
            }
            "encode_bytes" => {
                let hex = s(req, "hex");
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect();
                let got = hu::encode_url_bytes(&bytes);
                if ans["r"].as_str() != Some(got.as_str()) {
                    t.fail(format!("encode_bytes {hex}: rust {got:?}, python {ans}"));
                }
            }
            "decode" => check_decode(req, ans, &mut t),
            "parse_headers" => check_parse_headers(req, ans, &mut t),
            "format_headers" => check_format_headers(req, ans, &mut t),
            "http_date" => check_http_date(req, ans, &mut t),
            "parse_date" => check_parse_date(req, ans, &mut t),
            "status" => check_status(req, ans, &mut t),
            other => panic!("unknown op {other}"),
        }
    }
    for text in &malformed_headers {
        t.case("parse_headers (malformed, rust only)");
        if let Ok(h) = hu::parse_headers(text) {
            t.fail(format!(
                "parse_headers {text:?}: malformed but rust gave {h:?}"
            ));
        }
    }
    // parse_date uses the real clock: same as parse_date_at with it for
    // dates whose century cannot change between the two reads.
    for input in [
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT",
    ] {
        t.case("parse_date (real clock)");
        if hu::parse_date(input) != 784_111_777 {
            t.fail(format!("parse_date {input:?} with the real clock"));
        }
    }

    for (op, (cases, known)) in &t.by_op {
        eprintln!("{op}: {cases} cases, {known} known differences from Python");
    }
    for (why, n) in &t.known_why {
        eprintln!("  known difference {why}: {n}");
    }
    if !t.failures.is_empty() {
        for f in t.failures.iter().take(60) {
            eprintln!("MISMATCH {f}");
        }
        panic!(
            "{} mismatches with Python (first 60 above)",
            t.failures.len()
        );
    }
}

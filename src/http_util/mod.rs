//! HTTP utility efuns (`http_encode_url`, `http_decode_url`,
//! `http_parse_headers`, `http_format_headers`, `http_date`,
//! `http_parse_date`, `http_status_text`): pure functions, no I/O, always
//! available. See shared/spec/callbacks.md, "HTTP utility efuns".
//!
//! Each function is checked against Python's standard library on the same
//! inputs by `tests/http_util_vs_python.rs`; where this module is stricter
//! (RFC-exact) than Python, the doc comment says so.

mod date;
pub mod headers;
mod status;
mod url;

pub use date::{http_date, parse_date, parse_date_at, HTTP_DATE_MAX, HTTP_DATE_MIN};
pub use headers::{format_headers, is_token, parse_headers, Headers};
pub use status::{status_text, STATUS_CODES};
pub use url::{decode_url, decode_url_bytes, encode_url, encode_url_bytes};

//! Reason phrases (`http_status_text`) from the IANA "HTTP Status Code
//! Registry", whose names are those of RFC 9110 where it defines the code.
//!
//! Left out on purpose:
//! * 306 and 418 are registered as "(Unused)": reserved numbers without a
//!   reason phrase, so they give `None` (418 "I'm a teapot" is from the April
//!   Fools' RFC 2324 / 7168 and not registered; Python calls it "I'm a Teapot").
//! * Temporary registrations (e.g. 104 "Upload Resumption Supported", a draft)
//!   are not included: they expire unless made permanent.
//!
//! Where RFC 9110 renamed a code, its name is used; Python 3.11's
//! `http.HTTPStatus` still has the RFC 7231 names for 413 "Request Entity Too
//! Large", 414 "Request-URI Too Long", 416 "Requested Range Not Satisfiable"
//! and 422 "Unprocessable Entity" (and has 418).

/// `(code, reason phrase)`, ascending by code.
pub const STATUS_CODES: &[(u16, &str)] = &[
    (100, "Continue"),
    (101, "Switching Protocols"),
    (102, "Processing"),
    (103, "Early Hints"),
    (200, "OK"),
    (201, "Created"),
    (202, "Accepted"),
    (203, "Non-Authoritative Information"),
    (204, "No Content"),
    (205, "Reset Content"),
    (206, "Partial Content"),
    (207, "Multi-Status"),
    (208, "Already Reported"),
    (226, "IM Used"),
    (300, "Multiple Choices"),
    (301, "Moved Permanently"),
    (302, "Found"),
    (303, "See Other"),
    (304, "Not Modified"),
    (305, "Use Proxy"),
    (307, "Temporary Redirect"),
    (308, "Permanent Redirect"),
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (402, "Payment Required"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (406, "Not Acceptable"),
    (407, "Proxy Authentication Required"),
    (408, "Request Timeout"),
    (409, "Conflict"),
    (410, "Gone"),
    (411, "Length Required"),
    (412, "Precondition Failed"),
    (413, "Content Too Large"),
    (414, "URI Too Long"),
    (415, "Unsupported Media Type"),
    (416, "Range Not Satisfiable"),
    (417, "Expectation Failed"),
    (421, "Misdirected Request"),
    (422, "Unprocessable Content"),
    (423, "Locked"),
    (424, "Failed Dependency"),
    (425, "Too Early"),
    (426, "Upgrade Required"),
    (428, "Precondition Required"),
    (429, "Too Many Requests"),
    (431, "Request Header Fields Too Large"),
    (451, "Unavailable For Legal Reasons"),
    (500, "Internal Server Error"),
    (501, "Not Implemented"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
    (504, "Gateway Timeout"),
    (505, "HTTP Version Not Supported"),
    (506, "Variant Also Negotiates"),
    (507, "Insufficient Storage"),
    (508, "Loop Detected"),
    (510, "Not Extended"),
    (511, "Network Authentication Required"),
];

/// The reason phrase of an IANA-registered HTTP status code, `None` for any
/// other number (including the reserved 306 and 418).
pub fn status_text(code: i64) -> Option<&'static str> {
    let code = u16::try_from(code).ok()?;
    STATUS_CODES
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| STATUS_CODES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_unique() {
        assert!(STATUS_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(STATUS_CODES.len(), 61);
    }

    #[test]
    fn lookups() {
        assert_eq!(status_text(200), Some("OK"));
        assert_eq!(status_text(413), Some("Content Too Large"));
        assert_eq!(status_text(422), Some("Unprocessable Content"));
        assert_eq!(status_text(511), Some("Network Authentication Required"));
        for code in [
            102, 103, 207, 208, 226, 308, 421, 423, 424, 425, 426, 428, 429, 431, 451, 506, 507,
            508, 510,
        ] {
            assert!(status_text(code).is_some(), "{code}");
        }
        for code in [
            -1,
            0,
            99,
            104,
            199,
            306,
            418,
            420,
            509,
            599,
            600,
            65_536 + 200,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(status_text(code), None, "{code}");
        }
    }
}

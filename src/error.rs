//! Result codes and errors.
//!
//! Every C entry point returns a [`ResultCode`]: stable numbers, never reused
//! (retired codes stay here as comments). On failure the entry point also
//! records a message that `unisock_last_error` copies out. Socket-level codes
//! map one-to-one onto the driver's LPC-visible `EE*` codes (`socket_err.h`):
//! code `7200 + n` is `EE` code `-n`, so the shim can return them to LPC as is.

use std::cell::RefCell;
use std::fmt;

/// Numbered result of every C entry point. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// Success.
    Ok = 0,
    /// A panic inside unisock was caught at the boundary; the call had no effect that can be relied on.
    Panic = 7000,
    /// A required pointer argument was NULL.
    NullParameter = 7001,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 7002,
    /// A value of the wrong kind was passed (e.g. an int where an array was expected).
    WrongValueKind = 7003,
    /// An index was past the end of an array or mapping.
    IndexOutOfRange = 7004,
    /// The caller's buffer was too small; the required size was reported.
    BufferTooSmall = 7005,
    /// A call came from a thread other than the one that first used unisock.
    WrongThread = 7006,
    /// An operating-system call failed in a way no EE code describes.
    Io = 7007,
    /// Input could not be parsed (JSON, URL, header text, date).
    Parse = 7008,
    /// The value is too large or too deep for unisock to accept.
    TooLarge = 7009,
    /// The option id is not in the catalog.
    UnknownOption = 7100,
    /// The option exists but does not apply to this socket's mode.
    OptionNotForMode = 7101,
    /// The option value failed validation.
    BadOptionValue = 7102,
    /// The option is read-only.
    OptionReadOnly = 7103,
    /// The option is write-only (an action) and cannot be read.
    OptionWriteOnly = 7104,
    /// The option can no longer change (the socket is already connected or listening).
    OptionTooLate = 7105,
    /// EESOCKET: problem creating socket.
    EeSocket = 7201,
    /// EESETSOCKOPT: problem with setsockopt.
    EeSetsockopt = 7202,
    /// EENONBLOCK: problem setting non-blocking mode.
    EeNonblock = 7203,
    /// EENOSOCKS: no more available efun sockets.
    EeNosocks = 7204,
    /// EEFDRANGE: descriptor out of range.
    EeFdrange = 7205,
    /// EEBADF: descriptor is invalid (no such socket, or closed).
    EeBadf = 7206,
    /// EESECURITY: security violation attempted.
    EeSecurity = 7207,
    /// EEISBOUND: socket is already bound.
    EeIsbound = 7208,
    /// EEADDRINUSE: address already in use.
    EeAddrinuse = 7209,
    /// EEBIND: problem with bind.
    EeBind = 7210,
    /// EEGETSOCKNAME: problem with getsockname.
    EeGetsockname = 7211,
    /// EEMODENOTSUPP: socket mode not supported.
    EeModenotsupp = 7212,
    /// EENOADDR: socket not bound to an address.
    EeNoaddr = 7213,
    /// EEISCONN: socket is already connected.
    EeIsconn = 7214,
    /// EELISTEN: problem with listen.
    EeListen = 7215,
    /// EENOTLISTN: socket not listening.
    EeNotlistn = 7216,
    /// EEWOULDBLOCK: operation would block.
    EeWouldblock = 7217,
    /// EEINTR: interrupted system call.
    EeIntr = 7218,
    /// EEACCEPT: problem with accept.
    EeAccept = 7219,
    /// EEISLISTEN: socket is listening.
    EeIslisten = 7220,
    /// EEBADADDR: problem with address format.
    EeBadaddr = 7221,
    /// EEALREADY: operation already in progress.
    EeAlready = 7222,
    /// EECONNREFUSED: connection refused.
    EeConnrefused = 7223,
    /// EECONNECT: problem with connect.
    EeConnect = 7224,
    /// EENOTCONN: socket not connected.
    EeNotconn = 7225,
    /// EETYPENOTSUPP: object type not supported.
    EeTypenotsupp = 7226,
    /// EESENDTO: problem with sendto.
    EeSendto = 7227,
    /// EESEND: problem with send.
    EeSend = 7228,
    /// EECALLBACK: the data was accepted but not all written yet; the write callback follows.
    EeCallback = 7229,
    /// EESOCKRLSD: socket already released.
    EeSockrlsd = 7230,
    /// EESOCKNOTRLSD: socket not released.
    EeSocknotrlsd = 7231,
    /// EEBADDATA: sending data with too many nested levels.
    EeBaddata = 7232,
    /// TLS configuration failed (certificate or key unreadable or invalid).
    TlsConfig = 7300,
}

/// Every code with its fixed description.
const TEXTS: &[(ResultCode, &str)] = &[
    (ResultCode::Ok, "success"),
    (
        ResultCode::Panic,
        "internal error (panic caught at the C boundary)",
    ),
    (
        ResultCode::NullParameter,
        "a required pointer argument was NULL",
    ),
    (ResultCode::InvalidUtf8, "string is not valid UTF-8"),
    (
        ResultCode::WrongValueKind,
        "value is of the wrong kind for this call",
    ),
    (ResultCode::IndexOutOfRange, "index out of range"),
    (ResultCode::BufferTooSmall, "buffer too small"),
    (
        ResultCode::WrongThread,
        "unisock called from a thread other than the driver thread",
    ),
    (ResultCode::Io, "operating system error"),
    (ResultCode::Parse, "input could not be parsed"),
    (ResultCode::TooLarge, "value too large"),
    (ResultCode::UnknownOption, "unknown option"),
    (
        ResultCode::OptionNotForMode,
        "option does not apply to this mode",
    ),
    (ResultCode::BadOptionValue, "bad option value"),
    (ResultCode::OptionReadOnly, "option is read-only"),
    (ResultCode::OptionWriteOnly, "option is write-only"),
    (
        ResultCode::OptionTooLate,
        "option can only be set before connect/listen",
    ),
    (ResultCode::EeSocket, "problem creating socket"),
    (ResultCode::EeSetsockopt, "problem with setsockopt"),
    (ResultCode::EeNonblock, "problem setting non-blocking mode"),
    (ResultCode::EeNosocks, "no more available efun sockets"),
    (ResultCode::EeFdrange, "descriptor out of range"),
    (ResultCode::EeBadf, "descriptor is invalid"),
    (ResultCode::EeSecurity, "security violation attempted"),
    (ResultCode::EeIsbound, "socket is already bound"),
    (ResultCode::EeAddrinuse, "address already in use"),
    (ResultCode::EeBind, "problem with bind"),
    (ResultCode::EeGetsockname, "problem with getsockname"),
    (ResultCode::EeModenotsupp, "socket mode not supported"),
    (ResultCode::EeNoaddr, "socket not bound to an address"),
    (ResultCode::EeIsconn, "socket is already connected"),
    (ResultCode::EeListen, "problem with listen"),
    (ResultCode::EeNotlistn, "socket not listening"),
    (ResultCode::EeWouldblock, "operation would block"),
    (ResultCode::EeIntr, "interrupted system call"),
    (ResultCode::EeAccept, "problem with accept"),
    (ResultCode::EeIslisten, "socket is listening"),
    (ResultCode::EeBadaddr, "problem with address format"),
    (ResultCode::EeAlready, "operation already in progress"),
    (ResultCode::EeConnrefused, "connection refused"),
    (ResultCode::EeConnect, "problem with connect"),
    (ResultCode::EeNotconn, "socket not connected"),
    (ResultCode::EeTypenotsupp, "object type not supported"),
    (ResultCode::EeSendto, "problem with sendto"),
    (ResultCode::EeSend, "problem with send"),
    (ResultCode::EeCallback, "wait for callback"),
    (ResultCode::EeSockrlsd, "socket already released"),
    (ResultCode::EeSocknotrlsd, "socket not released"),
    (
        ResultCode::EeBaddata,
        "sending data with too many nested levels",
    ),
    (ResultCode::TlsConfig, "TLS configuration error"),
];

impl ResultCode {
    /// `code`, unless this is EESECURITY: a refusal by the policy keeps its
    /// code when a family reports it under its own.
    pub fn or_security(self, code: ResultCode) -> ResultCode {
        if self == ResultCode::EeSecurity {
            self
        } else {
            code
        }
    }

    /// All codes, for tests and docs.
    pub fn all() -> impl Iterator<Item = ResultCode> {
        TEXTS.iter().map(|(c, _)| *c)
    }

    /// The fixed description of the code.
    pub fn text(self) -> &'static str {
        TEXTS
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("unknown result code", |(_, t)| t)
    }

    /// The code for a number, if it is one of ours.
    pub fn from_u32(n: u32) -> Option<ResultCode> {
        TEXTS.iter().map(|(c, _)| *c).find(|c| *c as u32 == n)
    }
}

impl ResultCode {
    /// The LPC `EE*` code for this result: 1 (EESUCCESS) for Ok, `-n` for the
    /// socket codes, and the closest EE code for library-level failures.
    pub fn ee_code(self) -> i32 {
        let n = self as u32;
        match self {
            ResultCode::Ok => 1,
            _ if (7201..=7232).contains(&n) => -((n - 7200) as i32),
            ResultCode::NullParameter
            | ResultCode::InvalidUtf8
            | ResultCode::WrongValueKind
            | ResultCode::Parse => -26, // EETYPENOTSUPP
            ResultCode::TooLarge => -32, // EEBADDATA
            ResultCode::TlsConfig => -1, // EESOCKET
            _ => -1,
        }
    }

    /// The result code for an LPC EE code (`-1..=-32`).
    pub fn from_ee(ee: i32) -> Option<ResultCode> {
        if (-32..=-1).contains(&ee) {
            ResultCode::from_u32(7200 + (-ee) as u32)
        } else {
            None
        }
    }
}

/// An error inside unisock: a code and a message for people.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub code: ResultCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ResultCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// Maps an OS error to the closest EE code, keeping its text.
    pub fn io(context: &str, fallback: ResultCode, e: &std::io::Error) -> Error {
        use std::io::ErrorKind::*;
        let code = match e.kind() {
            AddrInUse => ResultCode::EeAddrinuse,
            ConnectionRefused => ResultCode::EeConnrefused,
            NotConnected => ResultCode::EeNotconn,
            WouldBlock => ResultCode::EeWouldblock,
            Interrupted => ResultCode::EeIntr,
            AddrNotAvailable => ResultCode::EeBadaddr,
            _ => fallback,
        };
        Error::new(code, format!("{context}: {e}"))
    }
}

/// A typed error of one area (core, options, a family, the C ABI): its text
/// is its `Display`, and `code` is the one `match` of that area that chooses
/// the [`ResultCode`] of every variant. Every such error becomes an [`Error`]
/// the same way, here.
pub trait Coded: fmt::Display {
    fn code(&self) -> ResultCode;
}

impl<T: Coded> From<T> for Error {
    fn from(e: T) -> Error {
        Error::new(e.code(), e.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Tests of the typed errors: each of `table` becomes its code and exactly its text.
#[cfg(test)]
pub(crate) fn assert_mapped<E: Into<Error>>(table: Vec<(E, ResultCode, &str)>) {
    for (e, code, text) in table {
        let e: Error = e.into();
        assert_eq!((e.code, e.message.as_str()), (code, text));
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records the message of the last failed call on this thread.
pub fn set_last_error(msg: &str) {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(msg);
    });
}

/// The message of the last failed call on this thread ("" when none).
pub fn last_error() -> String {
    LAST_ERROR.with(|e| e.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ee_codes_match_socket_err_h() {
        assert_eq!(ResultCode::EeModenotsupp.ee_code(), -12);
        assert_eq!(ResultCode::EeCallback.ee_code(), -29);
        assert_eq!(ResultCode::EeBaddata.ee_code(), -32);
        assert_eq!(ResultCode::Ok.ee_code(), 1);
        for ee in -32..=-1 {
            assert_eq!(ResultCode::from_ee(ee).unwrap().ee_code(), ee);
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ResultCode::all() {
            assert!(seen.insert(c as u32));
        }
    }
}

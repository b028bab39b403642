//! Result codes and errors.
//!
//! Every C entry point returns a [`ResultCode`]: stable numbers, never reused
//! (retired codes stay here as comments). On failure the entry point also
//! records a message that `unisock_last_error` copies out. Socket-level codes
//! map one-to-one onto the driver's LPC-visible `EE*` codes (`socket_err.h`):
//! code `7200 + n` is `EE` code `-n`, so the shim can return them to LPC as is.

use std::cell::RefCell;
use std::fmt;

macro_rules! result_codes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal => $text:literal, )*) => {
        /// Numbered result of every C entry point.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ResultCode {
            $( $(#[$doc])* $name = $num, )*
        }

        impl ResultCode {
            /// All codes, for tests and docs.
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$name,)*];

            /// The fixed description of the code.
            pub fn text(self) -> &'static str {
                match self { $(ResultCode::$name => $text,)* }
            }

            /// The code for a number, if it is one of ours.
            pub fn from_u32(n: u32) -> Option<ResultCode> {
                match n { $($num => Some(ResultCode::$name),)* _ => None }
            }
        }
    };
}

result_codes! {
    /// Success.
    Ok = 0 => "success",
    /// A panic inside unisock was caught at the boundary; the call had no effect that can be relied on.
    Panic = 7000 => "internal error (panic caught at the C boundary)",
    /// A required pointer argument was NULL.
    NullParameter = 7001 => "a required pointer argument was NULL",
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 7002 => "string is not valid UTF-8",
    /// A value of the wrong kind was passed (e.g. an int where an array was expected).
    WrongValueKind = 7003 => "value is of the wrong kind for this call",
    /// An index was past the end of an array or mapping.
    IndexOutOfRange = 7004 => "index out of range",
    /// The caller's buffer was too small; the required size was reported.
    BufferTooSmall = 7005 => "buffer too small",
    /// A call came from a thread other than the one that first used unisock.
    WrongThread = 7006 => "unisock called from a thread other than the driver thread",
    /// An operating-system call failed in a way no EE code describes.
    Io = 7007 => "operating system error",
    /// Input could not be parsed (JSON, URL, header text, date).
    Parse = 7008 => "input could not be parsed",
    /// The value is too large or too deep for unisock to accept.
    TooLarge = 7009 => "value too large",
    /// The option id is not in the catalog.
    UnknownOption = 7100 => "unknown option",
    /// The option exists but does not apply to this socket's mode.
    OptionNotForMode = 7101 => "option does not apply to this mode",
    /// The option value failed validation.
    BadOptionValue = 7102 => "bad option value",
    /// The option is read-only.
    OptionReadOnly = 7103 => "option is read-only",
    /// The option is write-only (an action) and cannot be read.
    OptionWriteOnly = 7104 => "option is write-only",
    /// The option can no longer change (the socket is already connected or listening).
    OptionTooLate = 7105 => "option can only be set before connect/listen",
    /// EESOCKET: problem creating socket.
    EeSocket = 7201 => "problem creating socket",
    /// EESETSOCKOPT: problem with setsockopt.
    EeSetsockopt = 7202 => "problem with setsockopt",
    /// EENONBLOCK: problem setting non-blocking mode.
    EeNonblock = 7203 => "problem setting non-blocking mode",
    /// EENOSOCKS: no more available efun sockets.
    EeNosocks = 7204 => "no more available efun sockets",
    /// EEFDRANGE: descriptor out of range.
    EeFdrange = 7205 => "descriptor out of range",
    /// EEBADF: descriptor is invalid (no such socket, or closed).
    EeBadf = 7206 => "descriptor is invalid",
    /// EESECURITY: security violation attempted.
    EeSecurity = 7207 => "security violation attempted",
    /// EEISBOUND: socket is already bound.
    EeIsbound = 7208 => "socket is already bound",
    /// EEADDRINUSE: address already in use.
    EeAddrinuse = 7209 => "address already in use",
    /// EEBIND: problem with bind.
    EeBind = 7210 => "problem with bind",
    /// EEGETSOCKNAME: problem with getsockname.
    EeGetsockname = 7211 => "problem with getsockname",
    /// EEMODENOTSUPP: socket mode not supported.
    EeModenotsupp = 7212 => "socket mode not supported",
    /// EENOADDR: socket not bound to an address.
    EeNoaddr = 7213 => "socket not bound to an address",
    /// EEISCONN: socket is already connected.
    EeIsconn = 7214 => "socket is already connected",
    /// EELISTEN: problem with listen.
    EeListen = 7215 => "problem with listen",
    /// EENOTLISTN: socket not listening.
    EeNotlistn = 7216 => "socket not listening",
    /// EEWOULDBLOCK: operation would block.
    EeWouldblock = 7217 => "operation would block",
    /// EEINTR: interrupted system call.
    EeIntr = 7218 => "interrupted system call",
    /// EEACCEPT: problem with accept.
    EeAccept = 7219 => "problem with accept",
    /// EEISLISTEN: socket is listening.
    EeIslisten = 7220 => "socket is listening",
    /// EEBADADDR: problem with address format.
    EeBadaddr = 7221 => "problem with address format",
    /// EEALREADY: operation already in progress.
    EeAlready = 7222 => "operation already in progress",
    /// EECONNREFUSED: connection refused.
    EeConnrefused = 7223 => "connection refused",
    /// EECONNECT: problem with connect.
    EeConnect = 7224 => "problem with connect",
    /// EENOTCONN: socket not connected.
    EeNotconn = 7225 => "socket not connected",
    /// EETYPENOTSUPP: object type not supported.
    EeTypenotsupp = 7226 => "object type not supported",
    /// EESENDTO: problem with sendto.
    EeSendto = 7227 => "problem with sendto",
    /// EESEND: problem with send.
    EeSend = 7228 => "problem with send",
    /// EECALLBACK: the data was accepted but not all written yet; the write callback follows.
    EeCallback = 7229 => "wait for callback",
    /// EESOCKRLSD: socket already released.
    EeSockrlsd = 7230 => "socket already released",
    /// EESOCKNOTRLSD: socket not released.
    EeSocknotrlsd = 7231 => "socket not released",
    /// EEBADDATA: sending data with too many nested levels.
    EeBaddata = 7232 => "sending data with too many nested levels",
    /// TLS configuration failed (certificate or key unreadable or invalid).
    TlsConfig = 7300 => "TLS configuration error",
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

    /// An error whose message is the code's own text.
    pub fn code(code: ResultCode) -> Error {
        Error::new(code, code.text())
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

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
        for c in ResultCode::ALL {
            assert!(seen.insert(*c as u32));
        }
    }
}

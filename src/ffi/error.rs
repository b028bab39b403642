//! What goes wrong at the C boundary itself (arguments, values, the thread,
//! the entry points that parse or encode), mapped to result codes once
//! (`From<FfiError> for Error`).

use std::fmt;

use super::values::MAX_NESTING;
use crate::error::{Coded, ResultCode};

/// A failure of an argument or a value handed across the C ABI.
#[derive(Clone, Debug, PartialEq)]
pub enum FfiError {
    /// A required pointer argument (`name`) was NULL.
    Null { name: String },
    /// The string argument `name` is not UTF-8.
    NotUtf8 { name: String },
    /// The bytes of a new string are not UTF-8 from byte `at` on.
    StringNotUtf8 { at: usize },
    /// Text is not UTF-8 (the code's own text).
    InvalidUtf8,
    /// The policy's JSON is not UTF-8.
    PolicyNotUtf8,
    /// The path to resolve is not UTF-8.
    PathNotUtf8,
    /// A value of another kind than `expected`.
    WrongKind {
        expected: &'static str,
        got: &'static str,
    },
    /// A value nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// An array or mapping with too many elements (the code's own text).
    TooManyElements,
    /// A length past what a slice may hold.
    LengthTooLarge { name: String, len: usize },
    /// An index past the end (the code's own text).
    IndexOutOfRange,
    /// JSON text that does not parse.
    BadJson { why: String },
    /// Input that cannot be parsed (the code's own text).
    Unparsable,
    /// Input that cannot be parsed; `why` is the whole text.
    Parse { why: String },
    /// A call from a thread other than the driver's.
    WrongThread,
    /// A call while unisock is busy with another on the same thread.
    Reentered,
    /// http_format_headers: the headers value is not a mapping of strings.
    BadHeaders { why: String },
    /// ipc_decode: the bytes are no bus message.
    IpcDecode { why: String },
    /// ipc_decode: a message past the size limit.
    IpcTooLarge { why: String },
    /// ipc_encode: a message socket_write would refuse.
    IpcEncode { why: String },
    /// A name the catalog does not have (`what`: "option" or "mode").
    UnknownName { what: &'static str, name: String },
    /// resolve_path of text that names no path.
    NoPath { text: String },
    /// adopt_fd with a negative descriptor.
    NotFd { fd: i32 },
    /// socket_get_option_int of an option whose value is no int.
    NotIntOption { option: i64 },
}

impl fmt::Display for FfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FfiError::*;
        match self {
            Null { name } => write!(f, "{name} is NULL"),
            NotUtf8 { name } => write!(f, "{name} is not valid UTF-8"),
            StringNotUtf8 { at } => write!(f, "string is not valid UTF-8 (at byte {at})"),
            InvalidUtf8 => f.write_str(ResultCode::InvalidUtf8.text()),
            PolicyNotUtf8 => f.write_str("policy: the JSON is not UTF-8"),
            PathNotUtf8 => f.write_str("resolve_path: the path is not UTF-8"),
            WrongKind { expected, got } => write!(f, "expected {expected}, got {got}"),
            TooDeep => write!(f, "value nested deeper than {MAX_NESTING} levels"),
            TooManyElements => f.write_str(ResultCode::TooLarge.text()),
            LengthTooLarge { name, len } => write!(f, "{name}: length {len} is too large"),
            IndexOutOfRange => f.write_str(ResultCode::IndexOutOfRange.text()),
            BadJson { why } => write!(f, "bad JSON: {why}"),
            Unparsable => f.write_str(ResultCode::Parse.text()),
            Parse { why } => f.write_str(why),
            WrongThread => f.write_str(ResultCode::WrongThread.text()),
            Reentered => f.write_str("unisock was re-entered while busy"),
            BadHeaders { why } => write!(f, "http_format_headers: {why}"),
            IpcDecode { why } => write!(f, "ipc_decode: {why}"),
            IpcTooLarge { why } => write!(f, "ipc_decode: malformed MessagePack: {why}"),
            IpcEncode { why } => write!(f, "ipc_encode: {why}"),
            UnknownName { what, name } => write!(f, "unknown {what} {name:?}"),
            NoPath { text } => write!(
                f,
                "resolve_path: {text:?} is no path (empty, or a NUL byte in it)"
            ),
            NotFd { fd } => write!(f, "adopt_fd: {fd} is not a file descriptor"),
            NotIntOption { option } => write!(
                f,
                "socket_get_option_int: option {option} does not hold an int"
            ),
        }
    }
}

impl Coded for FfiError {
    fn code(&self) -> ResultCode {
        use FfiError::*;
        match self {
            Null { .. } => ResultCode::NullParameter,
            NotUtf8 { .. } | StringNotUtf8 { .. } | InvalidUtf8 | PolicyNotUtf8 | PathNotUtf8 => {
                ResultCode::InvalidUtf8
            }
            WrongKind { .. } | BadHeaders { .. } | NotIntOption { .. } => {
                ResultCode::WrongValueKind
            }
            TooDeep | TooManyElements | LengthTooLarge { .. } | IpcTooLarge { .. } => {
                ResultCode::TooLarge
            }
            IndexOutOfRange => ResultCode::IndexOutOfRange,
            BadJson { .. }
            | Unparsable
            | Parse { .. }
            | IpcDecode { .. }
            | UnknownName { .. }
            | NoPath { .. } => ResultCode::Parse,
            WrongThread | Reentered => ResultCode::WrongThread,
            IpcEncode { .. } => ResultCode::EeBaddata,
            NotFd { .. } => ResultCode::EeBadf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use FfiError::*;
        use ResultCode as C;
        let s = |x: &str| x.to_string();
        let table: Vec<(FfiError, ResultCode, &str)> = vec![
            (Null { name: s("out") }, C::NullParameter, "out is NULL"),
            (
                NotUtf8 { name: s("host") },
                C::InvalidUtf8,
                "host is not valid UTF-8",
            ),
            (
                StringNotUtf8 { at: 3 },
                C::InvalidUtf8,
                "string is not valid UTF-8 (at byte 3)",
            ),
            (InvalidUtf8, C::InvalidUtf8, "string is not valid UTF-8"),
            (
                PolicyNotUtf8,
                C::InvalidUtf8,
                "policy: the JSON is not UTF-8",
            ),
            (
                PathNotUtf8,
                C::InvalidUtf8,
                "resolve_path: the path is not UTF-8",
            ),
            (
                WrongKind {
                    expected: "an int",
                    got: "string",
                },
                C::WrongValueKind,
                "expected an int, got string",
            ),
            (TooDeep, C::TooLarge, "value nested deeper than 120 levels"),
            (TooManyElements, C::TooLarge, "value too large"),
            (
                LengthTooLarge {
                    name: s("ptr"),
                    len: 9,
                },
                C::TooLarge,
                "ptr: length 9 is too large",
            ),
            (IndexOutOfRange, C::IndexOutOfRange, "index out of range"),
            (BadJson { why: s("w") }, C::Parse, "bad JSON: w"),
            (Unparsable, C::Parse, "input could not be parsed"),
            (
                Parse {
                    why: s("policy: w"),
                },
                C::Parse,
                "policy: w",
            ),
            (
                WrongThread,
                C::WrongThread,
                "unisock called from a thread other than the driver thread",
            ),
            (
                Reentered,
                C::WrongThread,
                "unisock was re-entered while busy",
            ),
            (
                BadHeaders { why: s("w") },
                C::WrongValueKind,
                "http_format_headers: w",
            ),
            (IpcDecode { why: s("w") }, C::Parse, "ipc_decode: w"),
            (
                IpcTooLarge { why: s("w") },
                C::TooLarge,
                "ipc_decode: malformed MessagePack: w",
            ),
            (IpcEncode { why: s("w") }, C::EeBaddata, "ipc_encode: w"),
            (
                UnknownName {
                    what: "mode",
                    name: s("X"),
                },
                C::Parse,
                "unknown mode \"X\"",
            ),
            (
                NoPath { text: s("") },
                C::Parse,
                "resolve_path: \"\" is no path (empty, or a NUL byte in it)",
            ),
            (
                NotFd { fd: -1 },
                C::EeBadf,
                "adopt_fd: -1 is not a file descriptor",
            ),
            (
                NotIntOption { option: 104 },
                C::WrongValueKind,
                "socket_get_option_int: option 104 does not hold an int",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}

//! What goes wrong setting or getting an option, mapped to result codes once
//! (`From<OptionError> for Error`). The texts are `spec/options.md`'s:
//! `socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5`.

use std::fmt;

use crate::error::{Coded, ResultCode};
use crate::modes;

/// A refused option id, access or value. `verb` is the efun
/// ("socket_set_option", "socket_get_option"); `name` and `id` are the
/// catalog row's.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionError {
    /// No catalog row has `id`.
    Unknown { verb: &'static str, id: i64 },
    /// The row is the catalog's placeholder (SO_INVALID), no option.
    NotAnOption { name: &'static str, id: u16 },
    /// The row does not accept sockets of `mode`.
    NotForMode {
        verb: &'static str,
        name: &'static str,
        id: u16,
        mode: u8,
    },
    /// socket_set_option of a read-only option.
    ReadOnly { name: &'static str, id: u16 },
    /// socket_get_option of a write-only option (an action).
    WriteOnly {
        verb: &'static str,
        name: &'static str,
        id: u16,
    },
    /// A before-start option set after the socket connected or listened.
    TooLate {
        verb: &'static str,
        name: &'static str,
        id: u16,
    },
    /// An appending option that already holds `max` entries.
    Full {
        verb: &'static str,
        name: &'static str,
        id: u16,
        max: usize,
    },
    /// The value fails the row's check: the row `wants` something, the
    /// value is what `got` says; `detail` is the check's own reason.
    BadValue {
        name: &'static str,
        id: u16,
        wants: &'static str,
        got: String,
        detail: Option<String>,
    },
    /// An option of a mode whose feature (`what`) this build does not have.
    NotBuiltYet {
        name: &'static str,
        id: u16,
        what: String,
    },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use OptionError::*;
        match self {
            Unknown { verb, id } => write!(f, "{verb}: unknown option {id}"),
            NotAnOption { name, id } => {
                write!(f, "socket_set_option: {name} ({id}) is not an option")
            }
            NotForMode {
                verb,
                name,
                id,
                mode,
            } => write!(
                f,
                "{verb}: {name} ({id}) does not apply to {} sockets",
                modes::name(*mode)
            ),
            ReadOnly { name, id } => write!(f, "socket_set_option: {name} ({id}) is read-only"),
            WriteOnly { verb, name, id } => {
                write!(f, "{verb}: {name} ({id}) is write-only and cannot be read")
            }
            TooLate { verb, name, id } => write!(
                f,
                "{verb}: {name} ({id}) can only be set before the socket connects or listens"
            ),
            Full {
                verb,
                name,
                id,
                max,
            } => write!(f, "{verb}: {name} ({id}) already holds {max} entries"),
            BadValue {
                name,
                id,
                wants,
                got,
                detail,
            } => {
                write!(f, "socket_set_option: {name} ({id}) wants {wants}, {got}")?;
                match detail {
                    Some(d) => write!(f, ": {d}"),
                    None => Ok(()),
                }
            }
            NotBuiltYet { name, id, what } => write!(
                f,
                "socket_set_option: {name} ({id}) is not available yet: this build of unisock \
                 does not include {what}"
            ),
        }
    }
}

impl Coded for OptionError {
    fn code(&self) -> ResultCode {
        use OptionError::*;
        match self {
            Unknown { .. } | NotAnOption { .. } => ResultCode::UnknownOption,
            NotForMode { .. } | NotBuiltYet { .. } => ResultCode::OptionNotForMode,
            ReadOnly { .. } => ResultCode::OptionReadOnly,
            WriteOnly { .. } => ResultCode::OptionWriteOnly,
            TooLate { .. } => ResultCode::OptionTooLate,
            Full { .. } => ResultCode::TooLarge,
            BadValue { .. } => ResultCode::BadOptionValue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        use OptionError::*;
        use ResultCode as C;
        let set = "socket_set_option";
        let (name, id) = ("SO_HTTP_TIMEOUT", 104);
        let table: Vec<(OptionError, ResultCode, &str)> =
            vec![
            (
                Unknown { verb: "socket_get_option", id: 9999 },
                C::UnknownOption,
                "socket_get_option: unknown option 9999",
            ),
            (
                NotAnOption { name: "SO_INVALID", id: 0 },
                C::UnknownOption,
                "socket_set_option: SO_INVALID (0) is not an option",
            ),
            (
                NotForMode { verb: set, name, id, mode: modes::STREAM },
                C::OptionNotForMode,
                "socket_set_option: SO_HTTP_TIMEOUT (104) does not apply to STREAM sockets",
            ),
            (
                ReadOnly { name, id },
                C::OptionReadOnly,
                "socket_set_option: SO_HTTP_TIMEOUT (104) is read-only",
            ),
            (
                WriteOnly { verb: "socket_get_option", name, id },
                C::OptionWriteOnly,
                "socket_get_option: SO_HTTP_TIMEOUT (104) is write-only and cannot be read",
            ),
            (
                TooLate { verb: set, name, id },
                C::OptionTooLate,
                "socket_set_option: SO_HTTP_TIMEOUT (104) can only be set before the socket \
                 connects or listens",
            ),
            (
                Full { verb: set, name, id, max: 256 },
                C::TooLarge,
                "socket_set_option: SO_HTTP_TIMEOUT (104) already holds 256 entries",
            ),
            (
                BadValue {
                    name,
                    id,
                    wants: "an int in 1000..300000 (ms)",
                    got: "got 5".into(),
                    detail: None,
                },
                C::BadOptionValue,
                "socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5",
            ),
            (
                BadValue {
                    name,
                    id,
                    wants: "w",
                    got: "got 5".into(),
                    detail: Some("why".into()),
                },
                C::BadOptionValue,
                "socket_set_option: SO_HTTP_TIMEOUT (104) wants w, got 5: why",
            ),
            (
                NotBuiltYet { name, id, what: "HTTP".into() },
                C::OptionNotForMode,
                "socket_set_option: SO_HTTP_TIMEOUT (104) is not available yet: this build of \
                 unisock does not include HTTP",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}

//! What the policy refuses, and how a use of a path or a command fails,
//! mapped to result codes once (`From<PolicyError> for Error`).

use std::fmt;

use super::Denied;
use crate::error::{Coded, ResultCode};

/// A refusal by the policy, or a failure of what it checked.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyError {
    /// The policy does not allow it (EESECURITY): `why` names the key to change.
    Refused { verb: &'static str, why: String },
    /// An option names a path that can never resolve (a dangling link where
    /// a file is to be made).
    NeverResolves { verb: &'static str, why: String },
    /// The command of a child cannot be started (resolved or read).
    CannotStart { why: String },
    /// A directory or file that socket_bind uses could not be opened.
    BindIo { why: String },
}

impl PolicyError {
    /// socket_bind's error for what a check of a path denied: a refusal
    /// stays EESECURITY, an I/O failure is the bind's.
    pub fn at_bind(d: Denied) -> PolicyError {
        match d {
            Denied::Policy(why) => PolicyError::Refused {
                verb: "socket_bind",
                why,
            },
            Denied::Io(why, _) => PolicyError::BindIo { why },
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Refused { verb, why } | PolicyError::NeverResolves { verb, why } => {
                write!(f, "{verb}: {why}")
            }
            PolicyError::CannotStart { why } => write!(f, "socket_bind: cannot start: {why}"),
            PolicyError::BindIo { why } => write!(f, "socket_bind: {why}"),
        }
    }
}

impl Coded for PolicyError {
    fn code(&self) -> ResultCode {
        match self {
            PolicyError::Refused { .. } => ResultCode::EeSecurity,
            PolicyError::NeverResolves { .. } => ResultCode::BadOptionValue,
            PolicyError::CannotStart { .. } | PolicyError::BindIo { .. } => ResultCode::EeBind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_has_its_code_and_text() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let table: Vec<(PolicyError, ResultCode, &str)> = vec![
            (
                PolicyError::Refused {
                    verb: "socket_create",
                    why: "mode 7 is not allowed".into(),
                },
                ResultCode::EeSecurity,
                "socket_create: mode 7 is not allowed",
            ),
            (
                PolicyError::NeverResolves {
                    verb: "socket_set_option",
                    why: "x dangles".into(),
                },
                ResultCode::BadOptionValue,
                "socket_set_option: x dangles",
            ),
            (
                PolicyError::CannotStart { why: "gone".into() },
                ResultCode::EeBind,
                "socket_bind: cannot start: gone",
            ),
            (
                PolicyError::BindIo { why: "gone".into() },
                ResultCode::EeBind,
                "socket_bind: gone",
            ),
            (
                PolicyError::at_bind(Denied::Policy("no".into())),
                ResultCode::EeSecurity,
                "socket_bind: no",
            ),
            (
                PolicyError::at_bind(Denied::Io("dir /x: missing".into(), io())),
                ResultCode::EeBind,
                "socket_bind: dir /x: missing",
            ),
        ];
        crate::error::assert_mapped(table);
    }
}

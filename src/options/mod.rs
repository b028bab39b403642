//! The option catalog: one static table ([`catalog::OPTIONS`]) is the single
//! source of every option fact (id, names, type, default, validation, modes,
//! readability, when it may change). The C header constants, the LPC include,
//! the docs table and the validation all come from it.
//!
//! Not here: what an option *does*. Each mode family reads the stored values
//! it consumes from the socket's [`store::OptionStore`].

pub mod catalog;
pub mod error;
pub mod ids;
pub mod store;
pub mod validate;

pub use error::OptionError;

use crate::modes::ModeSet;
use crate::value::Value;

/// Which LPC value kinds an option accepts (bit set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds(pub u8);

impl Kinds {
    pub const INT: Kinds = Kinds(1);
    pub const REAL: Kinds = Kinds(2);
    pub const STRING: Kinds = Kinds(4);
    pub const BUFFER: Kinds = Kinds(8);
    pub const ARRAY: Kinds = Kinds(16);
    pub const MAPPING: Kinds = Kinds(32);
    pub const NONE: Kinds = Kinds(0);

    pub const fn or(self, other: Kinds) -> Kinds {
        Kinds(self.0 | other.0)
    }

    pub fn accepts(self, v: &Value) -> bool {
        let bit = match v {
            Value::Int(_) => Kinds::INT,
            Value::Real(_) => Kinds::REAL,
            Value::Str(_) => Kinds::STRING,
            Value::Buffer(_) => Kinds::BUFFER,
            Value::Array(_) => Kinds::ARRAY,
            Value::Mapping(_) => Kinds::MAPPING,
            Value::Undefined => return false,
        };
        self.0 & bit.0 != 0
    }

    /// LPC spelling: "int", "string|array", ... (string first, as the spec
    /// writes "string|int").
    pub fn lpc(self) -> String {
        let names = [
            (Kinds::STRING, "string"),
            (Kinds::INT, "int"),
            (Kinds::REAL, "float"),
            (Kinds::BUFFER, "buffer"),
            (Kinds::ARRAY, "array"),
            (Kinds::MAPPING, "mapping"),
        ];
        let v: Vec<&str> = names
            .iter()
            .filter(|(k, _)| self.0 & k.0 != 0)
            .map(|(_, n)| *n)
            .collect();
        if v.is_empty() {
            "—".into()
        } else {
            v.join("|")
        }
    }
}

/// Whether an option can be read back, written, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Set by unisock (statistics, negotiated values); LPC cannot set it.
    ReadOnly,
    /// An action: setting it does something now; nothing is stored.
    WriteOnly,
    /// Stored, but reads back as "<set>" (or 0 when unset), never in clear.
    Secret,
    /// Never accepted (SO_INVALID).
    Invalid,
}

/// Which part of unisock an option belongs to: the catalog's sections by id
/// range (spec/options.md). Cache and Apache are features of the HTTP modes,
/// not mode families; TLS options sit in the core range but are read by
/// `src/tls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Core,
    Tls,
    Http,
    Rest,
    WebSocket,
    Mqtt,
    External,
    Cache,
    Apache,
    Ipc,
}

impl Family {
    /// The family of option `id`, from the spec's id ranges.
    pub const fn of(id: u16) -> Family {
        match id {
            1..=4 | 10 => Family::Tls,
            0..=99 => Family::Core,
            100..=109 => Family::Http,
            110..=119 => Family::Rest,
            120..=129 => Family::WebSocket,
            130..=139 => Family::Mqtt,
            140..=199 => Family::External,
            200..=299 => Family::Cache,
            300..=399 => Family::Apache,
            _ => Family::Ipc,
        }
    }

    /// For a family whose options some built modes accept although the
    /// family itself is not built yet: how the refusal names it.
    pub const fn not_built(self) -> Option<&'static str> {
        match self {
            Family::Cache => Some("the response cache (options 200-209)"),
            Family::Apache => Some("the Apache/nginx integration (options 300-309)"),
            _ => None,
        }
    }
}

/// When an option may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Anytime,
    /// Only before socket_connect / socket_listen / process start.
    BeforeStart,
}

/// The default an unset option reads back as.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    /// Unset reads back as 0 (LPC's "nothing"), as upstream does.
    Unset,
    Int(i64),
    Str(&'static str),
    EmptyArray,
    EmptyMapping,
    StrList(&'static [&'static str]),
    IntList(&'static [i64]),
    /// Depends on the socket's mode.
    ByMode(fn(u8) -> Value),
}

impl Default {
    pub fn value(&self, mode: u8) -> Value {
        match self {
            Default::Unset => Value::Int(0),
            Default::Int(i) => Value::Int(*i),
            Default::Str(s) => Value::str(*s),
            Default::EmptyArray => Value::Array(vec![]),
            Default::EmptyMapping => Value::Mapping(vec![]),
            Default::StrList(l) => Value::Array(l.iter().map(|s| Value::str(*s)).collect()),
            Default::IntList(l) => Value::Array(l.iter().map(|i| Value::Int(*i)).collect()),
            Default::ByMode(f) => f(mode),
        }
    }
}

/// How a value is checked (after its kind has been accepted). A check may
/// normalise the value (booleans become 0/1).
#[derive(Clone, Copy)]
pub enum Check {
    /// Any value of an accepted kind.
    Any,
    /// int, stored as 0 or 1.
    Bool,
    /// int within the inclusive range.
    IntRange(i64, i64),
    /// string whose length in bytes is within the inclusive range.
    StrLen(usize, usize),
    /// string that is one of the listed words.
    OneOf(&'static [&'static str]),
    /// Anything else: returns the value to store, or what is wrong with it.
    Custom(fn(&Value) -> Result<Value, String>),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Any => write!(f, "Any"),
            Check::Bool => write!(f, "Bool"),
            Check::IntRange(a, b) => write!(f, "IntRange({a}, {b})"),
            Check::StrLen(a, b) => write!(f, "StrLen({a}, {b})"),
            Check::OneOf(l) => write!(f, "OneOf({l:?})"),
            Check::Custom(_) => write!(f, "Custom"),
        }
    }
}

/// One row of the catalog.
#[derive(Debug)]
pub struct OptionDef {
    pub id: u16,
    /// Canonical name (the spec's).
    pub name: &'static str,
    /// Other spellings (the fork's later names), also emitted in the LPC include.
    pub aliases: &'static [&'static str],
    pub kinds: Kinds,
    pub default: Default,
    /// The default as the docs show it ("30000", "system store", ...).
    pub default_doc: &'static str,
    pub check: Check,
    /// What is allowed, as it reads after "wants " in an error message:
    /// "an int in 1000..300000 (ms)".
    pub wants: &'static str,
    pub modes: ModeSet,
    pub access: Access,
    pub when: When,
    /// The family may refuse it after it was stored (`Endpoint::option_set`
    /// fails): the core then keeps the previous value to put back. Options
    /// of a family not built yet are refusable (they are refused).
    pub refusable: bool,
    /// Setting appends the (validated) value to an array the store keeps;
    /// getting returns that array (REST_ADD_ROUTE).
    pub append: bool,
    /// One line on what the option means.
    pub doc: &'static str,
}

impl OptionDef {
    /// The part of unisock that reads it: [`Family::of`] its id (the spec's
    /// id ranges), so it is not a column of the rows.
    pub const fn family(&self) -> Family {
        Family::of(self.id)
    }

    /// Every name the option is known by: the canonical one, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

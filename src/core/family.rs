//! What the core knows of a mode family: the modes it serves and how it
//! makes their endpoints. Each family describes itself with a [`FamilyDef`]
//! in its own folder; `src/registry.rs` lists them, and the C ABI hands that
//! list to [`Unisock::new`](super::Unisock::new). The core names no family.

use std::any::Any;
use std::os::fd::OwnedFd;

use super::endpoint::Endpoint;
use crate::error::Result;
use crate::modes::ModeSet;

/// Makes the endpoint of a new socket of one of the family's modes.
pub type NewEndpoint = fn(mode: u8) -> Result<Box<dyn Endpoint>>;

/// Makes an endpoint around an already connected stream fd (`unisock_adopt_fd`).
pub type AdoptFd = fn(fd: OwnedFd, mode: u8) -> Result<Box<dyn Endpoint>>;

/// One family, as the registry lists it.
#[derive(Debug)]
pub struct FamilyDef {
    /// What a socket of the family is, as an efun of the family says it
    /// when handed a socket of another mode ("…, not {what}").
    pub what: &'static str,
    /// The modes it serves; no two families share one.
    pub modes: ModeSet,
    pub new_endpoint: NewEndpoint,
    /// The modes whose sockets it can make around a connected fd, and how.
    pub adopt: Option<(ModeSet, AdoptFd)>,
}

/// The families a [`Unisock`](super::Unisock) serves (`registry::FAMILIES`).
pub type Families = [&'static FamilyDef];

/// The family serving `mode`, if any, with the mode as a mode number.
pub(super) fn serving(families: &Families, mode: i64) -> Option<(u8, &'static FamilyDef)> {
    let mode = u8::try_from(mode).ok()?;
    let family = families.iter().copied().find(|f| f.modes.contains(mode))?;
    Some((mode, family))
}

/// Lets a family's own efuns reach their endpoint's concrete type (see
/// [`Unisock::family_call`](super::Unisock::family_call)); every endpoint
/// has it through the blanket impl.
pub trait AsAny {
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl dyn Endpoint + '_ {
    /// The endpoint as the family's own type `T`, if it is one.
    pub fn downcast_mut<T: Endpoint + 'static>(&mut self) -> Option<&mut T> {
        self.as_any_mut().downcast_mut::<T>()
    }
}

//! The family registry: which family serves which modes. The one place that
//! names every family; the C ABI hands [`FAMILIES`] to `Unisock::new`, so the
//! core, the reactor and the options know no family (core ← families ←
//! registry ← ffi). Adding a family is one line here (docs/ARCHITECTURE.md,
//! "Adding a family").

use crate::core::Families;

/// Every family this build serves; each describes itself (its modes, its
/// constructor, the fds it can adopt) with a `FAMILY` in its own folder.
pub static FAMILIES: &Families = &[
    &crate::legacy::FAMILY,
    &crate::http::FAMILY,
    &crate::websocket::FAMILY,
    &crate::external::FAMILY,
    &crate::ipc::FAMILY,
    #[cfg(test)]
    &crate::echo::FAMILY,
];

#[cfg(test)]
mod tests {
    use super::FAMILIES;
    use crate::modes::{self, ModeSet, MODES};

    /// The registry and the mode table (which the generated docs and
    /// socket_create's messages read) say the same of every spec mode; no
    /// mode has two families.
    #[test]
    fn the_registry_serves_what_the_mode_table_calls_implemented() {
        for m in MODES {
            let serving = FAMILIES
                .iter()
                .filter(|f| f.modes.contains(m.number))
                .count();
            assert_eq!(serving, m.implemented as usize, "{}", m.name);
        }
        let mut seen = ModeSet::NONE;
        for f in FAMILIES.iter() {
            assert_eq!(seen.0 & f.modes.0, 0, "{} shares a mode", f.what);
            seen.0 |= f.modes.0;
            let kinds: Vec<_> = f
                .modes
                .iter()
                .filter_map(|n| modes::info(n.into()).map(|m| m.family))
                .collect();
            assert!(kinds.windows(2).all(|w| w[0] == w[1]), "{}", f.what);
        }
    }
}

//! Generated files, rendered from the option catalog
//! ([`crate::options::catalog::OPTIONS`]) and the mode table
//! ([`crate::modes::MODES`]):
//!
//! - `include/lpc/socket.h`: the LPC include for mudlibs ([`lpc_socket_h`]),
//! - `include/unisock_options.h`: C constants ([`c_options_h`]),
//! - `docs/OPTIONS.md` and `docs/MODES.md` ([`options_md`], [`modes_md`]),
//! - `src/options/ids.rs`: the option ids as Rust constants ([`options_ids_rs`]),
//! - the marked blocks of the hand-written efun pages under `docs/efun/`
//!   ([`fill_blocks`]): mode and option tables, defaults, ranges, the `EE*`
//!   codes with the texts `socket_error` returns, the watch event bits.
//!
//! Pure functions: same tables in, same text out. `tests/generated_files.rs`
//! compares them with the committed files and rewrites them when
//! `UNISOCK_BLESS=1` is set.
//!
//! Files: `headers` (the two headers), `docs` (OPTIONS.md, MODES.md), `ids`
//! (the Rust option ids), `efun` (the `.spec` reader, the shim's texts, the
//! block markers), `blocks` (what each block renders), `text` (helpers they
//! share), `tests`. A new generated file is a renderer in a file of its own
//! plus its line in [`FILES`].

use crate::modes::MODES;
use crate::options::catalog::OPTIONS;
use crate::options::{Family as OptFamily, OptionDef};

mod blocks;
mod docs;
mod efun;
mod headers;
mod ids;
#[cfg(test)]
mod tests;
mod text;

pub use blocks::{efun_block, EFUN_BLOCKS, EXTERNAL_LIMIT_KEYS};
pub use docs::{modes_md, options_md};
pub use efun::{
    efun_group, fill_blocks, shim_texts, spec_efuns, ShimTexts, SpecEfun, EFUN_DIR, EFUN_SPEC,
    SOCKET_ERROR_SOURCE,
};
pub use headers::{c_options_h, lpc_socket_h};
pub use ids::options_ids_rs;
pub use text::modes_text;

/// Renders one generated file.
pub type Render = fn() -> String;

/// Every generated file: path relative to the crate root, and its renderer.
pub const FILES: &[(&str, Render)] = &[
    ("include/lpc/socket.h", lpc_socket_h),
    ("include/unisock_options.h", c_options_h),
    ("docs/OPTIONS.md", options_md),
    ("docs/MODES.md", modes_md),
    ("src/options/ids.rs", options_ids_rs),
];

/// The event bits of `external_monitor_path` (spec/callbacks.md); 0 = all but OPENED.
pub const EXTERNAL_EVENTS: &[(&str, u32)] = &[
    ("EXTERNAL_EV_CREATED", 0x01),
    ("EXTERNAL_EV_MODIFIED", 0x02),
    ("EXTERNAL_EV_DELETED", 0x04),
    ("EXTERNAL_EV_MOVED_FROM", 0x08),
    ("EXTERNAL_EV_MOVED_TO", 0x10),
    ("EXTERNAL_EV_OPENED", 0x20),
    ("EXTERNAL_EV_CLOSED", 0x40),
    ("EXTERNAL_EV_ATTRIB", 0x80),
];

/// Option ids the driver's own include/socket.h defines (kept exactly, unguarded).
const UPSTREAM_OPTIONS: std::ops::RangeInclusive<u16> = 0..=4;
/// Mode numbers the driver's own include/socket.h defines.
const UPSTREAM_MODES: std::ops::RangeInclusive<u8> = 0..=6;

/// The catalog's sections, by id range, as the spec groups them.
const SECTIONS: &[(&[OptFamily], &str)] = &[
    (&[OptFamily::Core, OptFamily::Tls], "Core 0–19"),
    (&[OptFamily::Http], "HTTP 100–109"),
    (&[OptFamily::Rest], "REST 110–119"),
    (&[OptFamily::WebSocket], "WebSocket 120–129"),
    (&[OptFamily::Mqtt], "MQTT 130–139"),
    (&[OptFamily::External], "External processes 140–159"),
    (&[OptFamily::Cache], "Cache 200–209"),
    (&[OptFamily::Apache], "Apache / nginx integration 300–309"),
    (&[OptFamily::Ipc], "IPC message bus 440–459"),
];

/// The catalog's options by section (each row's family, from its id; TLS is
/// listed with the core), each with its title; empty sections are left out.
fn sections() -> impl Iterator<Item = (&'static str, Vec<&'static OptionDef>)> {
    SECTIONS.iter().filter_map(|(families, title)| {
        let rows: Vec<&OptionDef> = OPTIONS
            .iter()
            .filter(|d| families.contains(&d.family()))
            .collect();
        (!rows.is_empty()).then_some((*title, rows))
    })
}

const BLESS: &str = "UNISOCK_BLESS=1 cargo test --test generated_files";

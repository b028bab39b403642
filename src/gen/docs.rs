//! The generated docs pages: `docs/OPTIONS.md` and `docs/MODES.md`.

use super::text::{access_text, code_list, family_name, md, modes_text, runs, when_text};
use super::{sections, BLESS, MODES, OPTIONS};

/// `docs/OPTIONS.md`: the option table.
pub fn options_md() -> String {
    let mut o = String::new();
    o.push_str("# Socket options\n\n");
    o.push_str(&format!(
        "Generated from the option catalog (`src/options/catalog/rows.rs`) by `src/gen/`; do not edit.\n\
         After changing the catalog run `{BLESS}`.\n\n"
    ));
    o.push_str(
        "- `socket_set_option` on a bad value raises an error naming the option and what it wants:\n  \
         `socket_set_option: SO_HTTP_TIMEOUT (104) wants an int in 1000..300000 (ms), got 5`.\n  \
         Nothing is stored on error. Values are deep-copied on set.\n\
         - `socket_get_option` returns the stored value, or the default when unset; secrets read back\n  \
         as `\"<set>\"` (or 0 when unset).\n\
         - *allowed values* reads after \"wants\" in that message; *when* \"before start\" means the option\n  \
         can only change before `socket_connect` / `socket_listen` / the process start.\n\
         - Booleans are ints 0/1; any non-zero int is stored as 1.\n\
         - *modes* lists the socket modes that accept the option (see MODES.md); \"all\" is every mode unisock serves.\n",
    );
    for (title, rows) in sections() {
        o.push_str(&format!("\n## {title}\n\n"));
        o.push_str(
            "| id | name | aliases | type | default | allowed values | modes | access | when | meaning |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for d in rows {
            o.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                d.id,
                d.name,
                code_list(d.aliases.iter().copied()),
                md(&d.kinds.lpc()),
                md(d.default_doc),
                md(d.wants),
                modes_text(d.modes),
                md(access_text(d)),
                when_text(d.when),
                md(d.doc),
            ));
        }
    }
    o
}

/// `docs/MODES.md`: the mode table, with the options each mode accepts.
pub fn modes_md() -> String {
    let mut o = String::new();
    o.push_str("# Socket modes\n\n");
    o.push_str(&format!(
        "Generated from the mode table (`src/modes.rs`) and the option catalog by `src/gen/`; do not edit.\n\
         After changing either run `{BLESS}`.\n\n"
    ));
    o.push_str(
        "The numbers are fixed. 7–9 are unused. A mode this build does not serve makes `socket_create`\n\
         return `EEMODENOTSUPP` (-12). The LPC include defines the canonical names and the aliases;\n\
         the C header `include/unisock_options.h` defines them as `UNISOCK_MODE_<name>`.\n\n\
         | value | name | alias | family | served by this build | options (ids) |\n\
         |---|---|---|---|---|---|\n",
    );
    for m in MODES {
        let ids: Vec<u32> = OPTIONS
            .iter()
            .filter(|d| d.modes.contains(m.number))
            .map(|d| u32::from(d.id))
            .collect();
        o.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            m.number,
            m.name,
            code_list(m.alias.into_iter()),
            family_name(m.family),
            if m.implemented { "yes" } else { "no" },
            runs(&ids, "–"),
        ));
    }
    o.push_str("\nEvery name above, option names included, is unique across modes and options.\n");
    o
}

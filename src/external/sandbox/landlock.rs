//! Landlock, prepared in the parent: the ruleset is built here and kept as
//! its fd; the child only calls landlock_restrict_self on it.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use ::landlock::{
    Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

use super::{Config, DEVICES_READ, DEVICES_RW, SYSTEM_READ};

/// The landlock ABI whose file-system rights are handled: every right up to
/// ABI 5 (ABI 9's resolve-unix would forbid connecting to Unix sockets).
const FS_ABI: ABI = ABI::V5;

pub(super) struct Landlock {
    /// The ruleset (close-on-exec).
    pub(super) fd: OwnedFd,
    /// What the report says once applied.
    pub(super) what: String,
}

/// The kernel's Landlock ABI version, or why there is none.
pub(super) fn landlock_abi() -> Result<i32, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attr, size 0 and the VERSION flag the call only
    // returns the ABI version (or -1 and errno); no memory is passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v >= 1 {
        return Ok(v as i32);
    }
    let e = io::Error::last_os_error();
    Err(match e.raw_os_error() {
        Some(libc::ENOSYS) => "Landlock is not built into this kernel (ENOSYS)".into(),
        Some(libc::EOPNOTSUPP) => {
            "Landlock is not enabled in this kernel (EOPNOTSUPP; see the lsm= boot parameter)"
                .into()
        }
        _ => format!("Landlock ABI version query failed: {e}"),
    })
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the ruleset. Outer Err: the configuration cannot be honoured (a
/// path cannot be opened); inner Err: landlock is unavailable.
pub(super) fn build_landlock(c: &Config, cwd: &Path) -> Result<Result<Landlock, String>, String> {
    let abi = match landlock_abi() {
        Ok(abi) => abi,
        Err(why) => return Ok(Err(why)),
    };
    let err = |e: ::landlock::RulesetError| format!("landlock: {e}");
    let handled = AccessFs::from_all(FS_ABI);
    let read = AccessFs::from_read(FS_ABI);
    let write = handled & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;

    let mut ruleset = Ruleset::default().handle_access(handled).map_err(err)?;
    let scoped = abi >= 6;
    if scoped {
        ruleset = ruleset.scope(Scope::Signal).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?;

    let mut rw = vec![cwd.to_path_buf()];
    rw.extend(c.paths.iter().cloned());
    // (path, rights, must exist)
    let mut rules: Vec<(PathBuf, ::landlock::BitFlags<AccessFs>, bool)> = Vec::new();
    let mut system = Vec::new();
    match &c.read {
        None => rules.push(("/".into(), read, true)),
        Some(extra) => {
            for d in SYSTEM_READ {
                if Path::new(d).exists() {
                    system.push(PathBuf::from(d));
                    rules.push((d.into(), read, true));
                }
            }
            for d in DEVICES_READ {
                rules.push((d.into(), AccessFs::ReadFile.into(), false));
            }
            rules.extend(extra.iter().map(|p| (p.clone(), read, true)));
        }
    }
    rules.extend(rw.iter().map(|p| (p.clone(), write, true)));
    rules.extend(DEVICES_RW.iter().map(|d| (PathBuf::from(d), device, false)));

    for (path, rights, required) in rules {
        let fd = match PathFd::new(&path) {
            Ok(fd) => fd,
            Err(_) if !required => continue,
            Err(e) => {
                return Err(format!(
                    "EXTERNAL_SANDBOX cannot open {}: {e}",
                    path.display()
                ))
            }
        };
        let rights = match std::fs::metadata(&path) {
            Ok(m) if !m.is_dir() => rights & AccessFs::from_file(FS_ABI),
            _ => rights,
        };
        created = created
            .add_rule(PathBeneath::new(fd, rights))
            .map_err(err)?;
    }
    let Some(fd) = Option::<OwnedFd>::from(created) else {
        return Ok(Err("Landlock could not create a ruleset".into()));
    };

    let mut what = format!(
        "applied (Landlock ABI {abi}): read-write beneath {}; {} writable; ",
        join(&rw),
        DEVICES_RW.join(", ")
    );
    match &c.read {
        None => what.push_str("reads allowed everywhere"),
        Some(extra) => {
            what.push_str(&format!(
                "reads only beneath {}, the read-write paths",
                join(&system)
            ));
            if !extra.is_empty() {
                what.push_str(&format!(", {}", join(extra)));
            }
            what.push_str(&format!(" and {}", DEVICES_READ.join(", ")));
        }
    }
    what.push_str("; device files cannot be created");
    if scoped {
        what.push_str("; signals to processes outside the sandbox denied");
    }
    Ok(Ok(Landlock { fd, what }))
}

//! File watching for the external family: EXTERNAL_WATCH_PATH (option 143)
//! and the efuns `external_monitor_path` / `external_stop_monitoring`, on
//! Linux inotify. One [`Watches`] (one inotify instance, one fd for the
//! reactor) per socket; every watched path ("root") gets a watch id, stable
//! for the life of the `Watches`, counted from 1 and never reused.
//!
//! # Paths
//! - Absolute only; a NUL byte is refused. Trailing slashes are dropped, so
//!   "/a/" and "/a" are the same root. A path ending in "/**" watches the
//!   directory before it recursively ("/**" alone is the whole file system,
//!   which the directory bound below will refuse). `paths()` gives this
//!   canonical spelling, and `remove` takes any spelling of it.
//! - "/a" and "/a/**" are two roots with two ids. Roots may overlap: an
//!   inotify watch on an inode is then shared, and each root gets its own
//!   mapping (with its own "watch_id") for an event both see.
//! - The root itself follows symbolic links; inside a recursive tree links
//!   are never followed (IN_DONT_FOLLOW and `DirEntry::file_type`), so a link
//!   cannot make a loop. A subdirectory that vanishes, or that the driver may
//!   not read (EACCES), while it is being picked up is skipped silently.
//! - Adding a root that exists updates its mask and keeps its id (if that
//!   fails, the old mask stays). At most [`MAX_ROOTS`] roots per `Watches`,
//!   and at most [`MAX_DIRS_PER_ROOT`] directories per recursive root: `add`
//!   refuses a bigger tree; a directory found later beyond the bound (or one
//!   the kernel refuses, e.g. ENOSPC) is reported once per root by
//!   `([ "type": "file_watch_error", "path": dir, "watch_id": id, "error":
//!   text ])` and left unwatched; the flag re-arms at the next rescan.
//!
//! # Events
//! The spec bits map to inotify as: CREATED IN_CREATE; MODIFIED IN_MODIFY;
//! DELETED IN_DELETE and IN_DELETE_SELF (and IN_UNMOUNT of a root);
//! MOVED_FROM IN_MOVED_FROM and IN_MOVE_SELF; MOVED_TO IN_MOVED_TO; OPENED
//! IN_OPEN; ATTRIB IN_ATTRIB; CLOSED is IN_CLOSE_WRITE only ("closed_write":
//! closing a file opened read-only is not reported). Mask 0 means all but
//! OPENED (opens are noisy, and our own directory scans open directories).
//! Bits above 0xFF are refused.
//!
//! Each event is `([ "type": "file_event", "path": dir, "name": entry,
//! "events": ({ name }), "is_dir": 0|1, "cookie": n, "watch_id": id ])`.
//! "path" is the directory holding the entry, or the watched thing itself
//! with "name" "" (a watched file, or a watched directory's own attrib,
//! deletion or move). Inside a recursive tree a subdirectory's own events
//! are not reported twice: its parent reports them with its name. Names
//! that are not UTF-8 are converted lossily (U+FFFD).
//!
//! When a root itself is deleted, moved or unmounted, its event is reported
//! (if asked) and the root is dropped: its inotify watches are removed, its
//! id is gone from `paths()`, and `remove` then says it is not watched.
//! (An editor that saves by renaming a new file over a watched file thus
//! ends that watch: "deleted" tells the LPC side to add the path again.)
//!
//! # Recursive trees
//! Directories are watched from the top down: a directory's watch is added
//! before it is read, so an entry made after the read is seen by the watch
//! and one made before is seen by the read. When a new directory appears
//! (created, or moved in from outside the root) it is watched and read, and
//! what it already holds is reported as "created" (cookie 0), recursively:
//! `mkdir -p a/b/c` reports a, b, c. An entry seen both ways (made between
//! the watch and the read) is reported once when both reports are read
//! within 50 ms, as they normally are (debounce). These synthetic reports are bounded to
//! [`SCAN_REPORT_MAX`] per `read`; past that the root gets an "overflow"
//! mapping (below) instead. A directory renamed inside the root keeps its
//! watches under the new path (IN_MOVED_FROM/IN_MOVED_TO paired by cookie);
//! one moved out (no IN_MOVED_TO once the queue is drained) is forgotten
//! with its subtree. Should a read fall between the two halves of a rename
//! (the kernel queues them one after the other), the rename is handled as
//! a move out then a move in: same watches in the end, and the contents
//! reported as "created". A deleted subdirectory is forgotten on IN_IGNORED.
//!
//! # Overflow
//! On IN_Q_OVERFLOW each root gets `([ "type": "file_event", "events": ({
//! "overflow" }), "path": <root as `paths()` spells it>, "name": "",
//! "is_dir": 0|1, "cookie": 0, "watch_id": id ])`, then every root is
//! rescanned: watches are added for directories that appeared and dropped
//! for ones that vanished; nothing else is reported (the LPC side should
//! rescan what it cares about). A root that can no longer be watched gets a
//! "file_watch_error" mapping and is dropped. The test
//! `queue_overflow_reports_each_root_and_rescans` overflows a real queue
//! (it needs max_queued_events + 1 distinct events, about 0.1 s with the
//! default 16384, and is skipped above 1 << 20);
//! `synthetic_overflow_rescans_the_tree` feeds the event by hand.
//!
//! # Debounce
//! An event identical (same root, path, name and event set) to the last one
//! emitted for that entry less than [`DEBOUNCE`] (50 ms) earlier is dropped;
//! no timer is involved. Times are taken when the event is read, not when it
//! happened, so a backlog read at once counts as simultaneous. Only the last
//! event per entry counts: created, deleted, created are all reported.
//! Events with a cookie (renames) and overflows are never dropped. The table
//! holds at most 4096 entries; when full after pruning, a new entry is not
//! remembered (its next duplicate gets through).
//!
//! # Kernel masks
//! Watches are added with IN_MASK_ADD so a shared inotify watch keeps every
//! root's bits; each root's mask is applied here when events are read.
//! Narrowing a root's mask therefore takes effect here, and the kernel keeps
//! the wider mask until the watch is dropped. Every root also asks for
//! IN_DELETE_SELF and IN_MOVE_SELF (to notice it is gone), and recursive
//! roots for IN_CREATE, IN_MOVED_FROM and IN_MOVED_TO (to follow
//! directories); what the root's mask does not ask for is not reported.
//!
//! # Reading
//! `read` never blocks and is bounded: it stops after about 1024 events or
//! 256 KiB, returning true ("may have more": call again), else false (the
//! queue was drained, EAGAIN). No unsafe code: the `inotify` crate wraps the
//! system calls and parses the events, and dropping `Watches` closes the fd.
//! The tests (`watch/tests.rs`) use real inotify on fresh temp directories
//! and wait by polling the fd, never by sleeping.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use crate::value::Value;

pub const CREATED: u32 = 0x01;
pub const MODIFIED: u32 = 0x02;
pub const DELETED: u32 = 0x04;
pub const MOVED_FROM: u32 = 0x08;
pub const MOVED_TO: u32 = 0x10;
pub const OPENED: u32 = 0x20;
pub const CLOSED: u32 = 0x40;
pub const ATTRIB: u32 = 0x80;
/// What mask 0 means.
pub const DEFAULT_MASK: u32 = 0xFF & !OPENED;

pub const MAX_ROOTS: usize = 256;
pub const MAX_DIRS_PER_ROOT: usize = 8192;
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// Synthetic "created" reports (contents of a new directory) per `read`.
pub const SCAN_REPORT_MAX: usize = 1024;
const DEBOUNCE_CAP: usize = 4096;
const READ_EVENTS_MAX: usize = 1024;
const READ_BYTES_MAX: usize = 256 * 1024;
/// One read(2): at most 1024 events of 16 bytes.
const READ_BUF: usize = 16 * 1024;
const PENDING_MOVES_MAX: usize = 256;

const fn k(m: EventMask) -> u32 {
    m.bits()
}

/// Kernel bit, spec bit, reported name.
const EVENTS: [(u32, u32, &str); 11] = [
    (k(EventMask::CREATE), CREATED, "created"),
    (k(EventMask::MODIFY), MODIFIED, "modified"),
    (k(EventMask::DELETE), DELETED, "deleted"),
    (k(EventMask::DELETE_SELF), DELETED, "deleted"),
    (k(EventMask::UNMOUNT), DELETED, "deleted"),
    (k(EventMask::MOVED_FROM), MOVED_FROM, "moved_from"),
    (k(EventMask::MOVE_SELF), MOVED_FROM, "moved_from"),
    (k(EventMask::MOVED_TO), MOVED_TO, "moved_to"),
    (k(EventMask::ATTRIB), ATTRIB, "attrib"),
    (k(EventMask::CLOSE_WRITE), CLOSED, "closed_write"),
    (k(EventMask::OPEN), OPENED, "opened"),
];
const GONE: u32 = k(EventMask::DELETE_SELF) | k(EventMask::MOVE_SELF) | k(EventMask::UNMOUNT);

struct Root {
    id: i64,
    /// Canonical spelling: base, or base + "/**".
    key: String,
    base: PathBuf,
    /// `base` as the kernel resolved it when the root was added (canonical);
    /// every directory of the root is opened from it without following
    /// links, and watched and read through that descriptor.
    real: PathBuf,
    /// The file system a confined root stays on (the policy restricts
    /// watches: a recursive walk does not cross into another mount).
    dev: Option<u64>,
    recursive: bool,
    mask: u32,
    is_dir: bool,
    /// Watched directory (or the watched file) → inotify wd.
    dirs: BTreeMap<PathBuf, i32>,
    error_reported: bool,
}

struct Wd {
    handle: WatchDescriptor,
    /// (root id, path) pairs using this inotify watch.
    users: Vec<(i64, PathBuf)>,
}

struct PendingMove {
    cookie: u32,
    root: i64,
    old: PathBuf,
}

/// An event about to be reported.
struct Ev<'a> {
    dir: &'a Path,
    name: &'a OsStr,
    bits: u32,
    names: Vec<&'static str>,
    is_dir: bool,
    cookie: u32,
}

/// The file watches of one socket.
pub struct Watches {
    inotify: Inotify,
    roots: Vec<Root>,
    wds: HashMap<i32, Wd>,
    next_id: i64,
    last: HashMap<(i64, String, String), (u32, Instant)>,
    pending_moves: Vec<PendingMove>,
    buf: Vec<u8>,
    /// Synthetic "created" reports left in this `read`, and the roots that
    /// ran out of it (and got their overflow mapping).
    scan_budget: usize,
    scan_overflowed: Vec<i64>,
    max_dirs: usize,
}

impl Watches {
    /// A new inotify instance (IN_NONBLOCK | IN_CLOEXEC).
    pub fn new() -> io::Result<Watches> {
        let inotify = Inotify::init().map_err(|e| match e.raw_os_error() {
            Some(libc::EMFILE) => io::Error::new(
                e.kind(),
                "cannot start file watching: the limit on inotify instances is reached \
                 (EMFILE); raise /proc/sys/fs/inotify/max_user_instances",
            ),
            _ => e,
        })?;
        Ok(Watches {
            inotify,
            roots: Vec::new(),
            wds: HashMap::new(),
            next_id: 1,
            last: HashMap::new(),
            pending_moves: Vec::new(),
            buf: Vec::new(),
            scan_budget: SCAN_REPORT_MAX,
            scan_overflowed: Vec::new(),
            max_dirs: MAX_DIRS_PER_ROOT,
        })
    }

    /// The inotify fd, to register READABLE in the reactor.
    pub fn fd(&self) -> RawFd {
        self.inotify.as_raw_fd()
    }

    /// Watches `path` (absolute; "/**" at the end: recursive) for the spec
    /// bits in `mask` (0: all but OPENED). Returns the watch id; adding a
    /// watched path again updates its mask and keeps its id. The root
    /// follows symbolic links (as resolved now); nothing under it does.
    /// The unit tests' way in, with no policy: the library adds roots
    /// through `add_checked`, with what the policy allowed.
    #[cfg(test)]
    pub fn add(&mut self, path: &str, mask: u32) -> Result<i64, String> {
        let (base, _, key) = parse_path(path)?;
        let real = std::fs::canonicalize(&base).map_err(|e| os_error(&key, &e, false))?;
        self.add_checked(path, mask, real, false)
    }

    /// `add` for a root whose base the policy checked: `real` is the
    /// canonical path it allowed; with `confine`, a recursive root stays
    /// on `real`'s file system.
    pub fn add_checked(
        &mut self,
        path: &str,
        mask: u32,
        real: PathBuf,
        confine: bool,
    ) -> Result<i64, String> {
        let (base, recursive, key) = parse_path(path)?;
        if mask & !0xFF != 0 {
            return Err(format!(
                "cannot watch {path:?}: unknown event bits {:#x} in mask {mask:#x} \
                 (known: 0x01 created to 0x80 attrib)",
                mask & !0xFF
            ));
        }
        let mask = if mask == 0 { DEFAULT_MASK } else { mask };
        if let Some(idx) = self.roots.iter().position(|r| r.key == key) {
            let old = std::mem::replace(&mut self.roots[idx].mask, mask);
            return match self.sync(idx) {
                Ok(()) => Ok(self.roots[idx].id),
                Err((_, e)) => {
                    self.roots[idx].mask = old;
                    Err(e)
                }
            };
        }
        if self.roots.len() >= MAX_ROOTS {
            return Err(format!(
                "cannot watch {path:?}: this socket already watches {MAX_ROOTS} paths"
            ));
        }
        let meta = std::fs::metadata(&real).map_err(|e| os_error(&key, &e, recursive))?;
        let is_dir = meta.is_dir();
        let id = self.next_id;
        self.roots.push(Root {
            id,
            key,
            base,
            real,
            dev: confine.then(|| std::os::unix::fs::MetadataExt::dev(&meta)),
            recursive,
            mask,
            is_dir,
            dirs: BTreeMap::new(),
            error_reported: false,
        });
        let idx = self.roots.len() - 1;
        match self.sync(idx) {
            Ok(()) => {
                self.next_id += 1;
                Ok(id)
            }
            Err((_, e)) => {
                self.drop_root(idx);
                Err(e)
            }
        }
    }

    /// Stops watching `path` (any spelling `add` accepts): every inotify
    /// watch it holds is removed, the whole subtree for a recursive root.
    pub fn remove(&mut self, path: &str) -> Result<(), String> {
        let (_, _, key) = parse_path(path)?;
        match self.roots.iter().position(|r| r.key == key) {
            Some(idx) => {
                self.drop_root(idx);
                Ok(())
            }
            None => Err(format!("{path:?} is not watched")),
        }
    }

    /// Why `path` cannot be watched, as `add` would say it, when it does
    /// not resolve (a path the policy allows but that is missing).
    pub fn unresolved(path: &str) -> String {
        match parse_path(path) {
            Err(e) => e,
            Ok((base, recursive, key)) => match std::fs::canonicalize(&base) {
                Err(e) => os_error(&key, &e, recursive),
                Ok(_) => format!("cannot watch {key:?}: it changed while it was checked"),
            },
        }
    }

    /// The canonical spelling of a watch path (the key `add`, `remove` and
    /// `paths` use): "/tmp/x/" and "/tmp/x" are one path.
    pub fn key(path: &str) -> Result<String, String> {
        parse_path(path).map(|(_, _, key)| key)
    }

    /// The watched roots, in the order they were added, spelled canonically.
    pub fn paths(&self) -> Vec<String> {
        self.roots.iter().map(|r| r.key.clone()).collect()
    }

    /// Reads what is available without blocking and appends the LPC
    /// mappings to `out`. Returns true when it stopped at its bound (about
    /// 1024 events or 256 KiB) and more may be pending.
    pub fn read(&mut self, out: &mut Vec<Value>) -> bool {
        self.read_at(out, Instant::now())
    }

    /// `read` with the time the debounce uses.
    fn read_at(&mut self, out: &mut Vec<Value>, now: Instant) -> bool {
        self.scan_budget = SCAN_REPORT_MAX;
        self.scan_overflowed.clear();
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(READ_BUF, 0);
        let (mut events, mut bytes) = (0usize, 0usize);
        let more = loop {
            if events >= READ_EVENTS_MAX || bytes >= READ_BYTES_MAX {
                break true;
            }
            let batch = match self.inotify.read_events(&mut buf) {
                Ok(batch) => batch,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break false, // EAGAIN: drained
            };
            for ev in batch {
                let name = ev.name.unwrap_or_default();
                events += 1;
                bytes += 16 + name.len();
                let wd = ev.wd.get_watch_descriptor_id();
                self.handle(wd, ev.mask.bits(), ev.cookie, name, now, out);
            }
        };
        self.buf = buf;
        if !more {
            // Drained: an IN_MOVED_FROM with no IN_MOVED_TO moved out.
            self.flush_pending_moves(0);
        }
        more
    }

    /// One inotify event (also the entry point of the synthetic tests).
    fn handle(
        &mut self,
        wd: i32,
        mask: u32,
        cookie: u32,
        name: &OsStr,
        now: Instant,
        out: &mut Vec<Value>,
    ) {
        if mask & k(EventMask::Q_OVERFLOW) != 0 {
            return self.overflow(out);
        }
        if mask & k(EventMask::IGNORED) != 0 {
            return self.forget_wd(wd);
        }
        let Some(w) = self.wds.get(&wd) else {
            return; // removed by us; its last events may still come
        };
        let users = w.users.clone();
        let isdir = mask & k(EventMask::ISDIR) != 0;
        let mut gone = Vec::new();
        for (rid, dir) in users {
            let Some(idx) = self.root_index(rid) else {
                continue;
            };
            let root = &self.roots[idx];
            let is_base = dir == root.base;
            let (recursive, root_is_dir, wanted) = (root.recursive, root.is_dir, root.mask);
            if name.is_empty() {
                if !is_base {
                    continue; // a subdirectory's own event: its parent reports it
                }
                if mask & GONE != 0 {
                    gone.push(rid);
                }
            } else if recursive && isdir && mask & k(EventMask::MOVED_FROM) != 0 {
                self.note_move(cookie, rid, dir.join(name));
            }
            let (bits, names) = translate(mask, wanted);
            if !names.is_empty() {
                let is_dir = if name.is_empty() { root_is_dir } else { isdir };
                let ev = Ev {
                    dir: &dir,
                    name,
                    bits,
                    names,
                    is_dir,
                    cookie,
                };
                self.emit(idx, ev, now, out);
            }
            if recursive
                && isdir
                && !name.is_empty()
                && mask & k(EventMask::CREATE | EventMask::MOVED_TO) != 0
            {
                self.pick_up(idx, &dir.join(name), mask, cookie, now, out);
            }
        }
        for rid in gone {
            if let Some(idx) = self.root_index(rid) {
                self.drop_root(idx);
            }
        }
    }

    fn root_index(&self, id: i64) -> Option<usize> {
        self.roots.iter().position(|r| r.id == id)
    }

    /// Reports an event unless the debounce drops it.
    fn emit(&mut self, idx: usize, ev: Ev, now: Instant, out: &mut Vec<Value>) {
        let rid = self.roots[idx].id;
        let path = ev.dir.to_string_lossy().into_owned();
        let name = ev.name.to_string_lossy().into_owned();
        if ev.cookie == 0 && self.debounced(rid, &path, &name, ev.bits, now) {
            return;
        }
        out.push(Value::mapping([
            ("type", Value::str("file_event")),
            ("path", Value::Str(path)),
            ("name", Value::Str(name)),
            (
                "events",
                Value::Array(ev.names.into_iter().map(Value::str).collect()),
            ),
            ("is_dir", Value::Int(ev.is_dir as i64)),
            ("cookie", Value::Int(i64::from(ev.cookie))),
            ("watch_id", Value::Int(rid)),
        ]));
    }

    /// True when the last event emitted for this entry was the same, less
    /// than DEBOUNCE ago; otherwise remembers this one.
    fn debounced(&mut self, rid: i64, path: &str, name: &str, bits: u32, now: Instant) -> bool {
        let key = (rid, path.to_owned(), name.to_owned());
        if let Some(&(b, t)) = self.last.get(&key) {
            if b == bits && now.saturating_duration_since(t) < DEBOUNCE {
                return true;
            }
        } else if self.last.len() >= DEBOUNCE_CAP {
            self.last
                .retain(|_, (_, t)| now.saturating_duration_since(*t) < DEBOUNCE);
            if self.last.len() >= DEBOUNCE_CAP {
                return false;
            }
        }
        self.last.insert(key, (bits, now));
        false
    }

    fn emit_created(
        &mut self,
        idx: usize,
        dir: &Path,
        name: &OsStr,
        is_dir: bool,
        now: Instant,
        out: &mut Vec<Value>,
    ) {
        if self.roots[idx].mask & CREATED == 0 {
            return;
        }
        if self.scan_budget == 0 {
            // Out of budget: one overflow tells the LPC side to rescan.
            let root = &self.roots[idx];
            if !self.scan_overflowed.contains(&root.id) {
                self.scan_overflowed.push(root.id);
                out.push(overflow_mapping(root));
            }
            return;
        }
        self.scan_budget -= 1;
        let ev = Ev {
            dir,
            name,
            bits: CREATED,
            names: vec!["created"],
            is_dir,
            cookie: 0,
        };
        self.emit(idx, ev, now, out);
    }

    /// A directory appeared in a recursive root: re-path it if it is the
    /// other half of a rename inside the root, else watch and read it.
    fn pick_up(
        &mut self,
        idx: usize,
        dir: &Path,
        mask: u32,
        cookie: u32,
        now: Instant,
        out: &mut Vec<Value>,
    ) {
        let rid = self.roots[idx].id;
        if mask & k(EventMask::MOVED_TO) != 0 && cookie != 0 {
            let found = self
                .pending_moves
                .iter()
                .position(|m| m.cookie == cookie && m.root == rid);
            if let Some(pos) = found {
                let m = self.pending_moves.remove(pos);
                return self.repath(idx, &m.old, dir);
            }
        }
        let result = match self.add_dir(idx, dir) {
            Ok(true) => self.walk(idx, dir.to_path_buf(), None, Some(&mut *out), now),
            other => other.map(drop),
        };
        if let Err(e) = result {
            self.watch_error(idx, dir, e, out);
        }
    }

    /// Watches a subdirectory of a recursive root. Ok(false): it vanished
    /// or may not be read, skipped.
    fn add_dir(&mut self, idx: usize, dir: &Path) -> Result<bool, String> {
        let root = &self.roots[idx];
        if root.dirs.len() >= self.max_dirs && !root.dirs.contains_key(dir) {
            return Err(format!(
                "cannot watch {:?}: it holds more than {} directories, the bound for one \
                 recursive watch; watch a smaller tree or several subtrees",
                root.key, self.max_dirs
            ));
        }
        match self.attach(idx, dir, WatchMask::ONLYDIR) {
            Ok(_) => Ok(true),
            // Gone, not a directory (a symbolic link: never followed),
            // unreadable, or another file system under a confined root.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ELOOP | libc::EXDEV)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(os_error(&dir.to_string_lossy(), &e, false)),
        }
    }

    /// Reads `start` (already watched) and every directory under it,
    /// watching each before reading it. Reports entries as "created" when
    /// `report` is given; collects watched directories in `seen`.
    fn walk(
        &mut self,
        idx: usize,
        start: PathBuf,
        mut seen: Option<&mut HashSet<PathBuf>>,
        mut report: Option<&mut Vec<Value>>,
        now: Instant,
    ) -> Result<(), String> {
        let mut queue = VecDeque::from([start]);
        while let Some(dir) = queue.pop_front() {
            let Ok(entries) = self
                .open_in_root(idx, &dir)
                .and_then(|f| std::fs::read_dir(crate::policy::fs::fd_path(&f)))
            else {
                continue; // vanished meanwhile, or unreadable
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if let Some(out) = report.as_deref_mut() {
                    self.emit_created(idx, &dir, &name, is_dir, now, out);
                }
                if is_dir {
                    let sub = dir.join(&name);
                    if self.add_dir(idx, &sub)? {
                        if let Some(seen) = seen.as_deref_mut() {
                            seen.insert(sub.clone());
                        }
                        queue.push_back(sub);
                    }
                }
            }
        }
        Ok(())
    }

    /// Watches the root's base and, recursive, every directory under it;
    /// forgets directories it tracked that are gone. Err((true, _)) when the
    /// base itself cannot be watched.
    fn sync(&mut self, idx: usize) -> Result<(), (bool, String)> {
        let root = &self.roots[idx];
        let (base, recursive, key) = (root.base.clone(), root.recursive, root.key.clone());
        let flags = if recursive {
            WatchMask::ONLYDIR
        } else {
            WatchMask::empty()
        };
        self.attach(idx, &base, flags)
            .map_err(|e| (true, os_error(&key, &e, recursive)))?;
        if recursive {
            let mut seen = HashSet::from([base.clone()]);
            self.walk(idx, base, Some(&mut seen), None, Instant::now())
                .map_err(|e| (false, e))?;
            let stale: Vec<PathBuf> = self.roots[idx]
                .dirs
                .keys()
                .filter(|p| !seen.contains(*p))
                .cloned()
                .collect();
            for p in stale {
                self.detach(idx, &p);
            }
        }
        self.roots[idx].error_reported = false;
        Ok(())
    }

    /// `dir` (the root's base or a directory under it, as reported) opened
    /// from the root's real path one component at a time without following
    /// links, so what is watched and read is what lies under the root now
    /// (ELOOP or ENOTDIR where a link was swapped in); under a confined
    /// root, EXDEV for another file system.
    fn open_in_root(&self, idx: usize, dir: &Path) -> io::Result<std::fs::File> {
        use crate::policy::fs::{open, Last};
        let root = &self.roots[idx];
        let rel = dir
            .strip_prefix(&root.base)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
        let how = if root.is_dir || !rel.as_os_str().is_empty() {
            Last::Dir
        } else {
            Last::Path
        };
        let f = open(&root.real.join(rel), how)?;
        if let Some(dev) = root.dev {
            if std::os::unix::fs::MetadataExt::dev(&f.metadata()?) != dev {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            }
        }
        Ok(f)
    }

    /// inotify_add_watch (IN_MASK_ADD) for root `idx` on `path`, through a
    /// descriptor from `open_in_root` (the kernel follows /proc/self/fd/N to
    /// the inode opened, so no IN_DONT_FOLLOW: that would watch the fd link).
    fn attach(&mut self, idx: usize, path: &Path, flags: WatchMask) -> io::Result<i32> {
        let fd = self.open_in_root(idx, path)?;
        let root = &self.roots[idx];
        let mask = kernel_mask(root.mask, root.recursive) | flags | WatchMask::MASK_ADD;
        let handle = self
            .inotify
            .watches()
            .add(crate::policy::fs::fd_path(&fd), mask)?;
        let wd = handle.get_watch_descriptor_id();
        let rid = root.id;
        if let Some(old) = self.roots[idx].dirs.insert(path.to_path_buf(), wd) {
            if old != wd {
                self.unuse(old, rid, path); // another inode now lives there
            }
        }
        let w = self.wds.entry(wd).or_insert_with(|| Wd {
            handle,
            users: Vec::new(),
        });
        if !w.users.iter().any(|(r, p)| *r == rid && p == path) {
            w.users.push((rid, path.to_path_buf()));
        }
        Ok(wd)
    }

    /// Root `rid` no longer uses `wd` for `path`; the last user removes it.
    fn unuse(&mut self, wd: i32, rid: i64, path: &Path) {
        let Some(w) = self.wds.get_mut(&wd) else {
            return;
        };
        w.users.retain(|(r, p)| !(*r == rid && p == path));
        if w.users.is_empty() {
            if let Some(w) = self.wds.remove(&wd) {
                // EINVAL when the kernel already dropped it: nothing to do.
                let _ = self.inotify.watches().remove(w.handle);
            }
        }
    }

    fn detach(&mut self, idx: usize, path: &Path) {
        let rid = self.roots[idx].id;
        if let Some(wd) = self.roots[idx].dirs.remove(path) {
            self.unuse(wd, rid, path);
        }
    }

    fn subtree(&self, idx: usize, top: &Path) -> Vec<(PathBuf, i32)> {
        let dirs = &self.roots[idx].dirs;
        dirs.range(top.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(top))
            .map(|(p, wd)| (p.clone(), *wd))
            .collect()
    }

    fn drop_root(&mut self, idx: usize) {
        let paths: Vec<PathBuf> = self.roots[idx].dirs.keys().cloned().collect();
        for p in paths {
            self.detach(idx, &p);
        }
        let rid = self.roots.remove(idx).id;
        self.pending_moves.retain(|m| m.root != rid);
        self.last.retain(|key, _| key.0 != rid);
    }

    /// IN_IGNORED: the kernel dropped `wd` (deleted, unmounted, or removed
    /// by us). A root whose base it was is dropped.
    fn forget_wd(&mut self, wd: i32) {
        let Some(w) = self.wds.remove(&wd) else {
            return;
        };
        let mut gone = Vec::new();
        for (rid, path) in w.users {
            if let Some(idx) = self.root_index(rid) {
                let root = &mut self.roots[idx];
                if root.dirs.get(&path) == Some(&wd) {
                    root.dirs.remove(&path);
                    if path == root.base {
                        gone.push(rid);
                    }
                }
            }
        }
        for rid in gone {
            if let Some(idx) = self.root_index(rid) {
                self.drop_root(idx);
            }
        }
    }

    /// A directory left its place in a recursive root; where to is known
    /// when its IN_MOVED_TO comes (or never: see `flush_pending_moves`).
    fn note_move(&mut self, cookie: u32, root: i64, old: PathBuf) {
        if self.pending_moves.len() >= PENDING_MOVES_MAX {
            self.flush_pending_moves(PENDING_MOVES_MAX - 1);
        }
        self.pending_moves.push(PendingMove { cookie, root, old });
    }

    /// Forgets the subtrees of the oldest pending moves, keeping `keep`.
    fn flush_pending_moves(&mut self, keep: usize) {
        let n = self.pending_moves.len().saturating_sub(keep);
        let flushed: Vec<PendingMove> = self.pending_moves.drain(..n).collect();
        for m in flushed {
            if let Some(idx) = self.root_index(m.root) {
                for (p, _) in self.subtree(idx, &m.old) {
                    self.detach(idx, &p);
                }
            }
        }
    }

    /// A directory renamed inside root `idx`: its watches stay, under the new path.
    fn repath(&mut self, idx: usize, old: &Path, new: &Path) {
        let rid = self.roots[idx].id;
        for (p, wd) in self.subtree(idx, old) {
            let np = match p.strip_prefix(old) {
                Ok(rest) if rest.as_os_str().is_empty() => new.to_path_buf(),
                Ok(rest) => new.join(rest),
                Err(_) => continue,
            };
            self.roots[idx].dirs.remove(&p);
            if let Some(replaced) = self.roots[idx].dirs.insert(np.clone(), wd) {
                if replaced != wd {
                    self.unuse(replaced, rid, &np);
                }
            }
            if let Some(w) = self.wds.get_mut(&wd) {
                for user in w.users.iter_mut().filter(|u| u.0 == rid && u.1 == p) {
                    user.1 = np.clone();
                }
            }
        }
    }

    fn watch_error(&mut self, idx: usize, dir: &Path, error: String, out: &mut Vec<Value>) {
        let root = &mut self.roots[idx];
        if root.error_reported {
            return;
        }
        root.error_reported = true;
        out.push(Value::mapping([
            ("type", Value::str("file_watch_error")),
            ("path", Value::str(dir.to_string_lossy())),
            ("watch_id", Value::Int(root.id)),
            ("error", Value::Str(error)),
        ]));
    }

    /// IN_Q_OVERFLOW: one overflow mapping per root, then a rescan.
    fn overflow(&mut self, out: &mut Vec<Value>) {
        out.extend(self.roots.iter().map(overflow_mapping));
        self.pending_moves.clear(); // the rescan finds where they went
        let ids: Vec<i64> = self.roots.iter().map(|r| r.id).collect();
        for id in ids {
            let Some(idx) = self.root_index(id) else {
                continue;
            };
            if let Err((base, e)) = self.sync(idx) {
                let dir = self.roots[idx].base.clone();
                self.watch_error(idx, &dir, e, out);
                if base {
                    self.drop_root(idx);
                }
            }
        }
    }
}

fn overflow_mapping(root: &Root) -> Value {
    Value::mapping([
        ("type", Value::str("file_event")),
        ("path", Value::str(root.key.as_str())),
        ("name", Value::str("")),
        ("events", Value::Array(vec![Value::str("overflow")])),
        ("is_dir", Value::Int(root.is_dir as i64)),
        ("cookie", Value::Int(0)),
        ("watch_id", Value::Int(root.id)),
    ])
}

/// (base, recursive, canonical key) of a path as LPC gave it.
fn parse_path(path: &str) -> Result<(PathBuf, bool, String), String> {
    if !path.starts_with('/') {
        return Err(format!("cannot watch {path:?}: the path must be absolute"));
    }
    if path.contains('\0') {
        return Err(format!(
            "cannot watch {path:?}: the path contains a NUL byte"
        ));
    }
    let (rest, recursive) = match path.strip_suffix("/**") {
        Some(rest) => (rest, true),
        None => (path, false),
    };
    let base = match rest.trim_end_matches('/') {
        "" => "/",
        b => b,
    };
    let key = match (recursive, base) {
        (false, _) => base.to_string(),
        (true, "/") => "/**".to_string(),
        (true, _) => format!("{base}/**"),
    };
    Ok((PathBuf::from(base), recursive, key))
}

/// The kernel mask for a root's spec mask (see "Kernel masks").
fn kernel_mask(mask: u32, recursive: bool) -> WatchMask {
    let mut m = WatchMask::DELETE_SELF | WatchMask::MOVE_SELF;
    for (kbit, sbit, _) in EVENTS {
        if mask & sbit != 0 {
            m |= WatchMask::from_bits_truncate(kbit);
        }
    }
    if recursive {
        m |= WatchMask::CREATE | WatchMask::MOVED_FROM | WatchMask::MOVED_TO;
    }
    m
}

/// The spec bits and names of a kernel event that `wanted` asks for.
fn translate(mask: u32, wanted: u32) -> (u32, Vec<&'static str>) {
    let (mut bits, mut names) = (0, Vec::new());
    for (kbit, sbit, name) in EVENTS {
        if mask & kbit != 0 && wanted & sbit != 0 && bits & sbit == 0 {
            bits |= sbit;
            names.push(name);
        }
    }
    (bits, names)
}

fn os_error(path: &str, e: &io::Error, recursive: bool) -> String {
    let why = match e.raw_os_error() {
        Some(libc::ENOENT) => "it does not exist (ENOENT)".to_string(),
        Some(libc::EACCES) => "permission denied (EACCES)".to_string(),
        Some(libc::ENOTDIR) if recursive => {
            "it is not a directory (ENOTDIR); only a directory can be watched with \"/**\""
                .to_string()
        }
        Some(libc::ENOTDIR) => "a component of the path is not a directory (ENOTDIR)".to_string(),
        Some(libc::ENOSPC) => "the limit on inotify watches is reached (ENOSPC); raise \
                               /proc/sys/fs/inotify/max_user_watches"
            .to_string(),
        Some(libc::ENOMEM) => "the kernel is out of memory (ENOMEM)".to_string(),
        Some(libc::ELOOP) => "too many levels of symbolic links (ELOOP)".to_string(),
        Some(libc::ENAMETOOLONG) => "the path is too long (ENAMETOOLONG)".to_string(),
        _ => e.to_string(),
    };
    format!("cannot watch {path:?}: {why}")
}

#[cfg(test)]
mod tests;

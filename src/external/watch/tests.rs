//! Tests of `external::watch` on real inotify, in fresh directories under
//! the temp dir; waits poll the inotify fd (5 s bound), never sleep.

use super::*;
use nix::poll::{poll, PollFd, PollFlags};
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the temp dir, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("unisock-watch-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn p(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.0.clone()
        } else {
            self.0.join(rel)
        }
    }
    fn s(&self, rel: &str) -> String {
        self.p(rel).to_string_lossy().into_owned()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_int).unwrap_or(-1)
}

fn has_event(v: &Value, event: &str) -> bool {
    matches!(v.get("events"), Some(Value::Array(a)) if a.iter().any(|e| e.as_str() == Some(event)))
}

/// The file_event mappings for (path, name) carrying `event`.
fn find<'a>(out: &'a [Value], path: &str, name: &str, event: &str) -> Vec<&'a Value> {
    out.iter()
        .filter(|v| text(v, "type") == "file_event")
        .filter(|v| text(v, "path") == path && text(v, "name") == name && has_event(v, event))
        .collect()
}

/// Reads (at `at`, else now) until `pred` holds or 5 s pass, polling the fd.
fn wait_at(
    w: &mut Watches,
    out: &mut Vec<Value>,
    at: Option<Instant>,
    pred: impl Fn(&Watches, &[Value]) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        while w.read_at(out, at.unwrap_or_else(Instant::now)) {}
        if pred(w, out) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        let mut fds = [PollFd::new(w.inotify.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, 100u16);
    }
}

/// Waits for one (path, name, event) mapping and returns it.
fn wait_for(w: &mut Watches, out: &mut Vec<Value>, path: &str, name: &str, event: &str) -> Value {
    let ok = wait_at(w, out, None, |_, out| {
        !find(out, path, name, event).is_empty()
    });
    assert!(ok, "no {event} for {path:?} {name:?}; got {out:#?}");
    find(out, path, name, event)[0].clone()
}

/// The inotify watches the kernel holds for `w` (/proc/self/fdinfo).
fn kernel_watches(w: &Watches) -> usize {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", w.fd())).unwrap();
    info.lines()
        .filter(|l| l.starts_with("inotify wd:"))
        .count()
}

fn ino(p: &Path) -> String {
    format!("ino:{:x} ", fs::metadata(p).unwrap().ino())
}

#[test]
fn create_modify_close_attrib_move_and_delete_in_a_directory() {
    let t = Tmp::new("basic");
    let dir = t.s("");
    let mut w = Watches::new().unwrap();
    assert_eq!(w.add(&dir, 0).unwrap(), 1);
    let mut out = Vec::new();

    fs::write(t.p("f"), b"x").unwrap();
    let v = wait_for(&mut w, &mut out, &dir, "f", "created");
    assert_eq!(
        (int(&v, "is_dir"), int(&v, "cookie"), int(&v, "watch_id")),
        (0, 0, 1)
    );
    wait_for(&mut w, &mut out, &dir, "f", "modified");
    wait_for(&mut w, &mut out, &dir, "f", "closed_write");

    fs::set_permissions(t.p("f"), fs::Permissions::from_mode(0o600)).unwrap();
    wait_for(&mut w, &mut out, &dir, "f", "attrib");

    fs::rename(t.p("f"), t.p("g")).unwrap();
    let from = wait_for(&mut w, &mut out, &dir, "f", "moved_from");
    let to = wait_for(&mut w, &mut out, &dir, "g", "moved_to");
    assert_ne!(int(&from, "cookie"), 0);
    assert_eq!(int(&from, "cookie"), int(&to, "cookie"));

    fs::remove_file(t.p("g")).unwrap();
    wait_for(&mut w, &mut out, &dir, "g", "deleted");
    fs::create_dir(t.p("sub")).unwrap();
    let v = wait_for(&mut w, &mut out, &dir, "sub", "created");
    assert_eq!(int(&v, "is_dir"), 1);
    assert!(!out.iter().any(|v| has_event(v, "opened")));
    assert!(out.iter().all(|v| text(v, "type") == "file_event"));
}

#[test]
fn the_mask_filters_events_and_zero_means_all_but_opened() {
    let t = Tmp::new("mask");
    let (a, b) = (t.p("a"), t.p("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    fs::write(b.join("f"), b"x").unwrap();
    let (sa, sb) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    );
    let mut w = Watches::new().unwrap();
    let ida = w.add(&sa, CREATED | DELETED).unwrap();
    let idb = w.add(&sb, 0).unwrap();
    let mut out = Vec::new();

    fs::write(a.join("f"), b"x").unwrap();
    fs::set_permissions(a.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(a.join("f")).unwrap();
    wait_for(&mut w, &mut out, &sa, "f", "deleted");
    assert_eq!(find(&out, &sa, "f", "created").len(), 1);
    for e in ["modified", "closed_write", "attrib"] {
        assert!(
            find(&out, &sa, "f", e).is_empty(),
            "{e} was not asked: {out:#?}"
        );
    }

    // 0: no "opened", and a read-only close is not "closed_write"
    drop(fs::read(b.join("f")).unwrap());
    fs::write(b.join("sentinel"), b"").unwrap();
    wait_for(&mut w, &mut out, &sb, "sentinel", "closed_write");
    let on_f = |v: &&Value| text(v, "path") == sb && text(v, "name") == "f";
    assert_eq!(out.iter().filter(on_f).count(), 0, "{out:#?}");

    // asking again updates the mask, same id
    assert_eq!(w.add(&sb, OPENED).unwrap(), idb);
    drop(fs::read(b.join("f")).unwrap());
    wait_for(&mut w, &mut out, &sb, "f", "opened");
    assert_ne!(ida, idb);
}

#[test]
fn a_recursive_watch_follows_new_and_moved_in_directories() {
    let t = Tmp::new("rec");
    fs::create_dir_all(t.p("tree/old")).unwrap();
    fs::create_dir_all(t.p("outside/m")).unwrap();
    fs::write(t.p("outside/m/x.txt"), b"x").unwrap();
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    let id = w.add(&format!("{tree}/**"), 0).unwrap();
    assert_eq!(w.paths(), vec![format!("{tree}/**")]);
    assert_eq!(kernel_watches(&w), 2);
    let mut out = Vec::new();

    // an existing subdirectory
    fs::write(t.p("tree/old/a"), b"").unwrap();
    let v = wait_for(&mut w, &mut out, &t.s("tree/old"), "a", "created");
    assert_eq!(int(&v, "watch_id"), id);

    // a new one, then a file in it
    fs::create_dir(t.p("tree/new")).unwrap();
    wait_for(&mut w, &mut out, &tree, "new", "created");
    fs::write(t.p("tree/new/b"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/new"), "b", "created");

    // mkdir -p and a file, all before any watch on them exists
    fs::create_dir_all(t.p("tree/p/q/r")).unwrap();
    fs::write(t.p("tree/p/q/r/f"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/p/q/r"), "f", "created");
    for (path, name) in [
        ("tree", "p"),
        ("tree/p", "q"),
        ("tree/p/q", "r"),
        ("tree/p/q/r", "f"),
    ] {
        assert_eq!(
            find(&out, &t.s(path), name, "created").len(),
            1,
            "{path} {name}: {out:#?}"
        );
    }
    fs::write(t.p("tree/p/q/r/g"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/p/q/r"), "g", "created");

    // a directory moved in from outside: its contents are "created"
    fs::rename(t.p("outside/m"), t.p("tree/m")).unwrap();
    let v = wait_for(&mut w, &mut out, &tree, "m", "moved_to");
    assert_eq!(int(&v, "is_dir"), 1);
    wait_for(&mut w, &mut out, &t.s("tree/m"), "x.txt", "created");
    fs::write(t.p("tree/m/y"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/m"), "y", "created");
    // tree, old, new, p, q, r, m
    assert_eq!(kernel_watches(&w), 7);
    // a subdirectory's own events are reported once, by its parent
    fs::set_permissions(t.p("tree/new"), fs::Permissions::from_mode(0o700)).unwrap();
    wait_for(&mut w, &mut out, &tree, "new", "attrib");
    assert!(find(&out, &t.s("tree/new"), "", "attrib").is_empty());
}

#[test]
fn a_rename_inside_the_tree_keeps_its_watches_and_moving_out_forgets_them() {
    let t = Tmp::new("mv");
    fs::create_dir_all(t.p("tree/d1/inner")).unwrap();
    fs::create_dir(t.p("outside")).unwrap();
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    w.add(&format!("{tree}/**"), 0).unwrap();
    assert_eq!(kernel_watches(&w), 3);
    let mut out = Vec::new();

    fs::rename(t.p("tree/d1"), t.p("tree/d2")).unwrap();
    wait_for(&mut w, &mut out, &tree, "d2", "moved_to");
    fs::write(t.p("tree/d2/inner/f"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/d2/inner"), "f", "created");
    assert_eq!(kernel_watches(&w), 3);
    assert!(find(&out, &t.s("tree/d2/inner"), "", "created").is_empty());
    let dirs: Vec<PathBuf> = w.roots[0].dirs.keys().cloned().collect();
    assert_eq!(
        dirs,
        vec![t.p("tree"), t.p("tree/d2"), t.p("tree/d2/inner")]
    );

    fs::rename(t.p("tree/d2"), t.p("outside/d2")).unwrap();
    wait_for(&mut w, &mut out, &tree, "d2", "moved_from");
    assert!(wait_at(&mut w, &mut out, None, |w, _| kernel_watches(w) == 1));
    assert_eq!(w.roots[0].dirs.len(), 1);
    assert_eq!(w.wds.len(), 1);
    fs::write(t.p("outside/d2/inner/g"), b"").unwrap();
    fs::write(t.p("tree/sentinel"), b"").unwrap();
    wait_for(&mut w, &mut out, &tree, "sentinel", "created");
    assert!(out.iter().all(|v| text(v, "name") != "g"), "{out:#?}");
}

#[test]
fn remove_drops_every_watch_and_drop_closes_the_fd() {
    let t = Tmp::new("rm");
    for d in ["tree/a", "tree/b/c"] {
        fs::create_dir_all(t.p(d)).unwrap();
    }
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    let rec = w.add(&format!("{tree}/**"), 0).unwrap();
    let flat = w.add(&tree, 0).unwrap();
    assert_eq!(kernel_watches(&w), 4); // tree (shared), a, b, c
    w.remove(&format!("{tree}/**")).unwrap();
    assert_eq!(kernel_watches(&w), 1); // the other root still uses tree
    w.remove(&format!("{tree}/")).unwrap(); // any spelling
    assert_eq!(kernel_watches(&w), 0);
    assert!(w.wds.is_empty() && w.paths().is_empty());
    assert!(w.remove(&tree).unwrap_err().contains("is not watched"));
    // ids are never reused
    assert_eq!(w.add(&tree, 0).unwrap(), flat + 1);
    assert!(rec < flat);

    let fd = w.fd();
    let fdinfo = format!("/proc/self/fdinfo/{fd}");
    assert!(fs::read_to_string(&fdinfo)
        .unwrap()
        .contains(&ino(&t.p("tree"))));
    drop(w);
    // closed (the number may already serve another test's fd, not ours)
    let after = fs::read_to_string(&fdinfo).unwrap_or_default();
    assert!(!after.contains(&ino(&t.p("tree"))), "{after}");
}

#[test]
fn a_deleted_subdirectory_is_forgotten() {
    let t = Tmp::new("rmdir");
    fs::create_dir_all(t.p("tree/sub")).unwrap();
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    w.add(&format!("{tree}/**"), 0).unwrap();
    assert_eq!(w.wds.len(), 2);
    let mut out = Vec::new();
    fs::remove_dir(t.p("tree/sub")).unwrap();
    let v = wait_for(&mut w, &mut out, &tree, "sub", "deleted");
    assert_eq!(int(&v, "is_dir"), 1);
    assert!(wait_at(&mut w, &mut out, None, |w, _| w.wds.len() == 1));
    assert_eq!(w.roots[0].dirs.len(), 1);
    assert_eq!(kernel_watches(&w), 1);
    assert!(find(&out, &t.s("tree/sub"), "", "deleted").is_empty());
    assert_eq!(w.paths(), vec![format!("{tree}/**")]);
}

#[test]
fn a_watched_file_reports_itself_and_its_watch_ends_with_it() {
    let t = Tmp::new("file");
    let (f, g) = (t.s("f"), t.s("g"));
    fs::write(&f, b"").unwrap();
    fs::write(&g, b"").unwrap();
    let mut w = Watches::new().unwrap();
    let idf = w.add(&f, 0).unwrap();
    let mut out = Vec::new();

    fs::write(&f, b"more").unwrap();
    let v = wait_for(&mut w, &mut out, &f, "", "modified");
    assert_eq!((int(&v, "is_dir"), int(&v, "watch_id")), (0, idf));
    fs::remove_file(&f).unwrap();
    wait_for(&mut w, &mut out, &f, "", "deleted");
    assert!(w.paths().is_empty() && w.wds.is_empty());
    assert!(w.remove(&f).is_err());

    let idg = w.add(&g, 0).unwrap();
    assert_ne!(idg, idf);
    fs::rename(&g, t.p("h")).unwrap();
    wait_for(&mut w, &mut out, &g, "", "moved_from");
    assert!(w.paths().is_empty());
    assert_eq!(kernel_watches(&w), 0); // removed by us, the file lives on
    let seen = out.len();
    fs::write(t.p("h"), b"x").unwrap();
    w.read(&mut out);
    assert_eq!(out.len(), seen, "{out:#?}");
}

#[test]
fn identical_events_within_50ms_are_debounced() {
    let t = Tmp::new("debounce");
    let dir = t.s("");
    fs::write(t.p("f"), b"").unwrap();
    let mut w = Watches::new().unwrap();
    w.add(&dir, MODIFIED | CREATED | DELETED).unwrap();
    let mut out = Vec::new();
    let t0 = Instant::now();
    let write = |n: &str| {
        use std::io::Write;
        let mut file = fs::OpenOptions::new().append(true).open(t.p("f")).unwrap();
        file.write_all(n.as_bytes()).unwrap();
    };
    let modified = |out: &[Value]| find(out, &dir, "f", "modified").len();

    write("1");
    assert!(wait_at(&mut w, &mut out, Some(t0), |_, out| modified(out) == 1));
    // read separately (the kernel cannot merge them), 10 ms later: dropped
    write("2");
    fs::write(t.p("s1"), b"").unwrap();
    let at = Some(t0 + Duration::from_millis(10));
    assert!(wait_at(&mut w, &mut out, at, |_, out| !find(
        out, &dir, "s1", "created"
    )
    .is_empty()));
    assert_eq!(modified(&out), 1, "{out:#?}");
    // 60 ms after the one emitted: reported
    write("3");
    fs::write(t.p("s2"), b"").unwrap();
    let at = Some(t0 + Duration::from_millis(60));
    assert!(wait_at(&mut w, &mut out, at, |_, out| !find(
        out, &dir, "s2", "created"
    )
    .is_empty()));
    assert_eq!(modified(&out), 2, "{out:#?}");
    // only the last event of an entry counts: created, deleted, created
    fs::write(t.p("x"), b"").unwrap();
    fs::remove_file(t.p("x")).unwrap();
    fs::write(t.p("x"), b"").unwrap();
    assert!(wait_at(&mut w, &mut out, at, |_, out| find(
        out, &dir, "x", "created"
    )
    .len()
        == 2));
    assert_eq!(find(&out, &dir, "x", "deleted").len(), 1);
}

#[test]
fn queue_overflow_reports_each_root_and_rescans() {
    let max: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    if max > 1 << 20 {
        eprintln!("skipped: max_queued_events is {max}");
        return;
    }
    let t = Tmp::new("overflow");
    fs::create_dir_all(t.p("flat")).unwrap();
    fs::create_dir_all(t.p("tree/x")).unwrap();
    let files = [t.p("flat/a"), t.p("flat/b")];
    for f in &files {
        fs::write(f, b"").unwrap();
    }
    let mut w = Watches::new().unwrap();
    let flat = w.add(&t.s("flat"), ATTRIB).unwrap();
    let tree = w.add(&format!("{}/**", t.s("tree")), 0).unwrap();
    // alternating names, so that the kernel cannot merge them
    for i in 0..max + 64 {
        let mode = if i % 4 < 2 { 0o600 } else { 0o644 };
        fs::set_permissions(&files[i % 2], fs::Permissions::from_mode(mode)).unwrap();
    }
    // lost: only the rescan can find these
    fs::create_dir(t.p("tree/late")).unwrap();
    fs::remove_dir(t.p("tree/x")).unwrap();
    let mut out = Vec::new();
    let overflows = |out: &[Value]| {
        let ids: Vec<i64> = out
            .iter()
            .filter(|v| has_event(v, "overflow"))
            .map(|v| int(v, "watch_id"))
            .collect();
        ids
    };
    assert!(wait_at(&mut w, &mut out, None, |_, out| overflows(out)
        .len()
        == 2));
    assert_eq!(overflows(&out), vec![flat, tree]);
    let v = out.iter().find(|v| has_event(v, "overflow")).unwrap();
    assert_eq!(text(v, "path"), t.s("flat"));
    assert!(out.iter().filter(|v| has_event(v, "attrib")).count() <= max);
    let mut dirs: Vec<PathBuf> = w.roots[1].dirs.keys().cloned().collect();
    dirs.sort();
    assert_eq!(dirs, vec![t.p("tree"), t.p("tree/late")]);
    fs::write(t.p("tree/late/f"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/late"), "f", "created");
}

#[test]
fn synthetic_overflow_rescans_the_tree() {
    let t = Tmp::new("synth");
    fs::create_dir_all(t.p("tree/gone")).unwrap();
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    let id = w.add(&format!("{tree}/**"), 0).unwrap();
    fs::create_dir(t.p("tree/new")).unwrap();
    fs::remove_dir(t.p("tree/gone")).unwrap();
    let mut out = Vec::new();
    let overflow = k(EventMask::Q_OVERFLOW);
    w.handle(-1, overflow, 0, OsStr::new(""), Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    assert!(has_event(&out[0], "overflow"));
    assert_eq!(
        (text(&out[0], "path"), int(&out[0], "watch_id")),
        (&*format!("{tree}/**"), id)
    );
    let dirs: Vec<PathBuf> = w.roots[0].dirs.keys().cloned().collect();
    assert_eq!(dirs, vec![t.p("tree"), t.p("tree/new")]);
    assert_eq!(kernel_watches(&w), 2);
    // the queued events still make sense after the rescan
    fs::write(t.p("tree/new/f"), b"").unwrap();
    wait_for(&mut w, &mut out, &t.s("tree/new"), "f", "created");
    assert_eq!(w.roots[0].dirs.len(), 2);
    assert_eq!(w.wds.len(), 2);
    // every bit at once, on an unknown wd and on the base: no panic
    let now = Instant::now();
    w.handle(12345, !overflow, 7, OsStr::new("x"), now, &mut out);
    let base = w.roots[0].dirs[&t.p("tree")];
    let seen = out.len();
    let all = !(overflow | k(EventMask::IGNORED));
    w.handle(base, all, 7, OsStr::new("x"), now, &mut out);
    assert_eq!(out.len(), seen + 1);
    assert_eq!(w.paths().len(), 1); // an entry event does not end the root
    w.handle(base, all, 0, OsStr::new(""), now, &mut out);
    assert!(w.paths().is_empty()); // the base's own deletion/move does
    assert_eq!(kernel_watches(&w), 0);
}

#[test]
fn too_many_directories_are_refused() {
    let t = Tmp::new("bound");
    for d in ["big/a", "big/b", "big/c", "small/a"] {
        fs::create_dir_all(t.p(d)).unwrap();
    }
    let mut w = Watches::new().unwrap();
    w.max_dirs = 3;
    let e = w.add(&format!("{}/**", t.s("big")), 0).unwrap_err();
    assert!(e.contains("more than 3 directories"), "{e}");
    assert!(w.paths().is_empty() && w.wds.is_empty());
    assert_eq!(kernel_watches(&w), 0);

    let small = t.s("small");
    let id = w.add(&format!("{small}/**"), 0).unwrap();
    for d in ["b", "c", "d"] {
        fs::create_dir(t.p("small").join(d)).unwrap();
    }
    let mut out = Vec::new();
    wait_for(&mut w, &mut out, &small, "d", "created");
    let errors: Vec<&Value> = out
        .iter()
        .filter(|v| text(v, "type") == "file_watch_error")
        .collect();
    assert_eq!(errors.len(), 1, "{out:#?}");
    assert_eq!(int(errors[0], "watch_id"), id);
    assert!(text(errors[0], "error").contains("more than 3"));
    assert_eq!(w.roots[0].dirs.len(), 3);
}

#[test]
fn bad_paths_and_masks_are_refused_in_plain_english() {
    let t = Tmp::new("bad");
    fs::write(t.p("file"), b"").unwrap();
    let mut w = Watches::new().unwrap();
    assert!(w.add("tmp/x", 0).unwrap_err().contains("must be absolute"));
    assert!(w.add("", 0).unwrap_err().contains("must be absolute"));
    assert!(w.add("/a\0b", 0).unwrap_err().contains("NUL"));
    let e = w.add(&t.s("nope"), 0).unwrap_err();
    assert!(e.contains("ENOENT") && e.contains(&t.s("nope")), "{e}");
    let e = w.add(&format!("{}/**", t.s("file")), 0).unwrap_err();
    assert!(e.contains("ENOTDIR") && e.contains("/**"), "{e}");
    let e = w.add(&t.s("file"), 0x100).unwrap_err();
    assert!(e.contains("unknown event bits 0x100"), "{e}");
    assert!(w.remove("/nope").unwrap_err().contains("is not watched"));
    assert!(w.paths().is_empty() && w.wds.is_empty());
    assert_eq!(w.add(&t.s("file"), 0).unwrap(), 1); // failures used no id
    let e = os_error("/x", &io::Error::from_raw_os_error(libc::ENOSPC), false);
    assert!(e.contains("/proc/sys/fs/inotify/max_user_watches"), "{e}");
}

#[test]
fn paths_are_canonical_and_ids_stable() {
    assert_eq!(
        parse_path("/a/b/").unwrap(),
        (PathBuf::from("/a/b"), false, "/a/b".into())
    );
    assert_eq!(
        parse_path("/a/**").unwrap(),
        (PathBuf::from("/a"), true, "/a/**".into())
    );
    assert_eq!(
        parse_path("/**").unwrap(),
        (PathBuf::from("/"), true, "/**".into())
    );
    assert_eq!(
        parse_path("/").unwrap(),
        (PathBuf::from("/"), false, "/".into())
    );
    let t = Tmp::new("ids");
    fs::create_dir(t.p("a")).unwrap();
    let mut w = Watches::new().unwrap();
    assert_eq!(w.add(&t.s("a"), 0).unwrap(), 1);
    assert_eq!(w.add(&format!("{}/**", t.s("")), 0).unwrap(), 2);
    assert_eq!(w.add(&format!("{}/", t.s("a")), CREATED).unwrap(), 1);
    assert_eq!(w.roots[0].mask, CREATED);
    assert_eq!(w.paths(), vec![t.s("a"), format!("{}/**", t.s(""))]);
}

#[test]
fn overlapping_roots_each_get_their_events() {
    let t = Tmp::new("overlap");
    fs::create_dir_all(t.p("tree/sub")).unwrap();
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    let flat = w.add(&tree, 0).unwrap();
    let rec = w.add(&format!("{tree}/**"), 0).unwrap();
    let mut out = Vec::new();
    fs::write(t.p("tree/f"), b"").unwrap();
    assert!(wait_at(&mut w, &mut out, None, |_, out| find(
        out, &tree, "f", "created"
    )
    .len()
        == 2));
    let ids: Vec<i64> = find(&out, &tree, "f", "created")
        .iter()
        .map(|v| int(v, "watch_id"))
        .collect();
    assert_eq!(ids, vec![flat, rec]);
    fs::write(t.p("tree/sub/g"), b"").unwrap();
    let v = wait_for(&mut w, &mut out, &t.s("tree/sub"), "g", "created");
    assert_eq!(int(&v, "watch_id"), rec);
    w.remove(&format!("{tree}/**")).unwrap();
    fs::write(t.p("tree/h"), b"").unwrap();
    let v = wait_for(&mut w, &mut out, &tree, "h", "created");
    assert_eq!(int(&v, "watch_id"), flat);
}

#[test]
fn read_is_bounded_and_resumes() {
    let t = Tmp::new("bounded");
    let dir = t.s("");
    let mut w = Watches::new().unwrap();
    w.add(&dir, CREATED).unwrap();
    for i in 0..1500 {
        fs::File::create(t.p(&format!("f{i:04}"))).unwrap();
    }
    let mut out = Vec::new();
    assert!(w.read(&mut out), "1500 events cannot fit one read");
    assert!(
        out.len() >= READ_EVENTS_MAX && out.len() < 2 * READ_EVENTS_MAX,
        "{}",
        out.len()
    );
    assert!(wait_at(&mut w, &mut out, None, |_, out| out.len() == 1500));
    assert!(!w.read(&mut out));
}

#[test]
fn a_big_new_directory_reports_up_to_the_budget_then_overflow() {
    let t = Tmp::new("budget");
    fs::create_dir_all(t.p("tree")).unwrap();
    fs::create_dir_all(t.p("outside/big")).unwrap();
    for i in 0..SCAN_REPORT_MAX + 10 {
        fs::File::create(t.p(&format!("outside/big/f{i:04}"))).unwrap();
    }
    let tree = t.s("tree");
    let mut w = Watches::new().unwrap();
    let id = w.add(&format!("{tree}/**"), 0).unwrap();
    fs::rename(t.p("outside/big"), t.p("tree/big")).unwrap();
    let mut out = Vec::new();
    wait_for(&mut w, &mut out, &tree, "big", "moved_to");
    let created = out.iter().filter(|v| has_event(v, "created")).count();
    assert_eq!(created, SCAN_REPORT_MAX);
    let over: Vec<&Value> = out.iter().filter(|v| has_event(v, "overflow")).collect();
    assert_eq!(over.len(), 1);
    assert_eq!(int(over[0], "watch_id"), id);
}

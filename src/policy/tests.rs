use super::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unisock-policy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::canonicalize(d).unwrap()
}

#[test]
fn the_default_enables_http_and_nothing_that_reaches_the_host() {
    let p = Policy::default();
    for m in [0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 16, 17, 18, 19] {
        assert!(p.check_mode(m).is_ok(), "mode {m}");
    }
    let e = p.check_mode(22).unwrap_err();
    assert!(
        e.contains("EXTERNAL_PROCESS (22)") && e.contains("\"modes\""),
        "{e}"
    );
    assert!(p
        .check_command("/bin/true")
        .unwrap_err()
        .to_string()
        .contains("\"commands\""));
    assert!(p.check_shell().unwrap_err().contains("\"shell\""));
    let other = if nix::unistd::geteuid().is_root() {
        65534
    } else {
        0
    };
    let e = p.check_user(other, "someone").unwrap_err();
    assert!(e.contains("\"users\""), "{e}");
    assert!(p.check_group(other, "some group").is_err());
    // running as the driver's own user or group grants nothing
    assert!(p.check_user(nix::unistd::geteuid().as_raw(), "me").is_ok());
    assert!(p
        .check_group(nix::unistd::getegid().as_raw(), "mine")
        .is_ok());
    let e = p
        .check_path(Dirs::Tls, "SO_TLS_CA", "/etc/hostname", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"tls_dirs\"") && e.contains("SO_TLS_CA"), "{e}");
}

#[test]
fn open_allows_everything() {
    let p = Policy::open();
    assert!(p.check_mode(22).is_ok() && p.check_shell().is_ok());
    assert!(p.check_command("/bin/true").is_ok());
    assert!(p.check_user(0, "root").is_ok() && p.check_group(0, "root").is_ok());
    assert!(p
        .check_path(Dirs::Watch, "EXTERNAL_WATCH_PATH", "/etc", false)
        .is_ok());
    assert_eq!(Policy::from_json(r#"{"open":1}"#).unwrap(), Policy::open());
}

#[test]
fn a_given_policy_replaces_the_default_and_a_key_left_out_allows_nothing() {
    let p = Policy::from_json(r#"{"modes":[22,"IPC_SERVER"]}"#).unwrap();
    assert!(p.check_mode(22).is_ok() && p.check_mode(29).is_ok());
    assert!(p.check_mode(10).is_err() && p.check_mode(23).is_err());
    assert!(p.check_mode(1).is_ok(), "upstream's modes are always there");
    assert!(p.check_command("/bin/true").is_err());
}

#[test]
fn commands_by_file_or_by_directory_compared_canonically() {
    let d = tmp("cmd");
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let tool = bin.join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    let other = d.join("other");
    std::fs::write(&other, "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink(&other, bin.join("escape")).unwrap();
    let json = format!(r#"{{"commands":["{}/","/bin/true"]}}"#, bin.display());
    let p = Policy::from_json(&json).unwrap();
    assert_eq!(p.check_command(tool.to_str().unwrap()).unwrap(), tool);
    let dotted = format!("{}/../bin/tool", bin.display());
    assert_eq!(p.check_command(&dotted).unwrap(), tool);
    let e = p
        .check_command(bin.join("escape").to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("(it is {})", other.display())), "{e}");
    assert!(p.check_command(other.to_str().unwrap()).is_err());
    // missing: "no such file" only where it would be allowed
    let e = p
        .check_command(bin.join("missing").to_str().unwrap())
        .unwrap_err();
    assert!(
        !e.is_policy() && e.to_string().contains("No such file"),
        "{e}"
    );
    let e = p
        .check_command(d.join("missing").to_str().unwrap())
        .unwrap_err();
    assert!(
        e.is_policy() && e.to_string().contains("\"commands\""),
        "{e}"
    );
    assert!(p.check_command("bin/tool").unwrap_err().is_policy());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn paths_inside_allowed_directories_only() {
    let d = tmp("dirs");
    let ok = d.join("ok");
    std::fs::create_dir(&ok).unwrap();
    std::fs::write(ok.join("cert.pem"), "x").unwrap();
    std::os::unix::fs::symlink("/etc", ok.join("out")).unwrap();
    let p = Policy::from_json(&format!(
        r#"{{"tls_dirs":["{}"],"socket_dirs":["{}"]}}"#,
        ok.display(),
        ok.display()
    ))
    .unwrap();
    let cert = ok.join("cert.pem");
    assert_eq!(
        p.check_path(Dirs::Tls, "SO_TLS_CERT", cert.to_str().unwrap(), false)
            .unwrap(),
        cert
    );
    let e = p
        .check_path(
            Dirs::Tls,
            "SO_TLS_CA",
            ok.join("out/hostname").to_str().unwrap(),
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(it is /etc/hostname)") && e.contains("\"tls_dirs\""),
        "{e}"
    );
    let dotdot = format!("{}/../ok/../../etc/hostname", ok.display());
    assert!(p
        .check_path(Dirs::Tls, "SO_TLS_CA", &dotdot, false)
        .is_err());
    // a socket file that does not exist yet, in an allowed directory
    let sock = ok.join("bus.sock");
    assert_eq!(
        p.check_path(Dirs::Socket, "IPC_SOCKET_DIR", sock.to_str().unwrap(), true)
            .unwrap(),
        sock
    );
    assert!(p
        .check_path(
            Dirs::Watch,
            "EXTERNAL_WATCH_PATH",
            ok.to_str().unwrap(),
            false
        )
        .is_err());
    // the directory itself counts as inside
    assert!(p
        .check_path(Dirs::Tls, "SO_TLS_CA", ok.to_str().unwrap(), false)
        .is_ok());
    // a prefix that is not a whole component does not
    let sibling = d.join("okay");
    std::fs::create_dir(&sibling).unwrap();
    assert!(p
        .check_path(Dirs::Tls, "SO_TLS_CA", sibling.to_str().unwrap(), false)
        .is_err());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn users_and_groups_resolve_when_set() {
    let p = Policy::from_json(r#"{"users":["root", 65534],"groups":[0]}"#).unwrap();
    assert!(p.check_user(0, "root").is_ok() && p.check_user(65534, "nobody").is_ok());
    assert!(p.check_user(1, "daemon").is_err());
    assert!(p.check_group(0, "root").is_ok() && p.check_group(1, "daemon").is_err());
    let e = Policy::from_json(r#"{"users":["no-such-user-here"]}"#).unwrap_err();
    assert!(e.contains("not a user on this host"), "{e}");
}

#[test]
fn bad_policies_name_the_key() {
    for (json, want) in [
        ("[]", "wants a JSON object"),
        ("{", "bad JSON"),
        (r#"{"command":[]}"#, "unknown key \"command\""),
        (r#"{"modes":[7]}"#, "\"modes\" wants mode numbers"),
        (r#"{"modes":["NOPE"]}"#, "\"modes\" wants mode numbers"),
        (r#"{"modes":3}"#, "\"modes\" wants an array"),
        (r#"{"shell":2}"#, "\"shell\" wants 0 or 1"),
        (r#"{"commands":["bin/x"]}"#, "absolute paths"),
        (r#"{"watch_dirs":["/a/../b"]}"#, "\"..\" component"),
        (r#"{"tls_dirs":[1]}"#, "\"tls_dirs\" wants strings"),
        (
            r#"{"groups":[-1]}"#,
            "\"groups\" wants names or numeric ids",
        ),
    ] {
        let e = Policy::from_json(json).unwrap_err();
        assert!(e.starts_with("policy: ") && e.contains(want), "{json}: {e}");
    }
    let many = format!(r#"{{"modes":[{}]}}"#, vec!["22"; MAX_ENTRIES + 1].join(","));
    assert!(Policy::from_json(&many).unwrap_err().contains("at most"));
}

#[test]
fn json_round_trip() {
    let p = Policy::from_json(r#"{"modes":[30,22,22],"commands":["/bin/true","/usr/bin/"],"shell":true,"users":["root"],"watch_dirs":["/tmp"]}"#).unwrap();
    let q = Policy::from_json(&p.to_json().to_string()).unwrap();
    assert_eq!(p, q);
    // numeric ids read back as numbers (found by the policy fuzz target: "65534"
    // read back as a string named no user, and the read-back was refused)
    let n = Policy::from_json(r#"{"users":[65534,"root"],"groups":[0]}"#).unwrap();
    assert_eq!(n.to_json()["users"], serde_json::json!([65534, "root"]));
    assert_eq!(Policy::from_json(&n.to_json().to_string()).unwrap(), n);
    assert_eq!(p.to_json()["modes"], serde_json::json!([22, 30]));
}

#[test]
fn file_dirs_is_a_key_and_missing_paths_answer_by_where_they_would_be() {
    let d = tmp("files");
    let ok = d.join("ok");
    std::fs::create_dir(&ok).unwrap();
    let p = Policy::from_json(&format!(r#"{{"file_dirs":["{}"]}}"#, ok.display())).unwrap();
    assert_eq!(
        p.to_json()["file_dirs"],
        serde_json::json!([ok.to_str().unwrap()])
    );
    // a new file in an allowed directory is allowed (its parent resolved)
    let out = ok.join("out.log");
    assert_eq!(
        p.check_path(
            Dirs::File,
            "EXTERNAL_STDOUT_MODE",
            out.to_str().unwrap(),
            true
        )
        .unwrap(),
        out
    );
    // missing inside: an I/O answer; missing outside: the refusal (nothing learnt)
    let e = p
        .check_path(
            Dirs::File,
            "EXTERNAL_STDIN_MODE",
            out.to_str().unwrap(),
            false,
        )
        .unwrap_err();
    assert!(
        !e.is_policy() && e.to_string().contains("No such file"),
        "{e}"
    );
    let e = p
        .check_path(Dirs::File, "EXTERNAL_STDIN_MODE", "/nonexistent/x", false)
        .unwrap_err();
    assert!(
        e.is_policy() && e.to_string().contains("\"file_dirs\""),
        "{e}"
    );
    let e = p
        .check_path(Dirs::Tls, "SO_TLS_CA", out.to_str().unwrap(), true)
        .unwrap_err();
    assert!(
        e.is_policy() && e.to_string().contains("\"tls_dirs\""),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn loader_variables_need_the_shell_key_and_path_the_command_dirs() {
    let d = tmp("env");
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let p = Policy::from_json(&format!(r#"{{"commands":["{}/"]}}"#, bin.display())).unwrap();
    for name in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "GCONV_PATH",
        "BASH_ENV",
        "BASH_FUNC_ls%%",
        "PYTHONPATH",
        "PERL5OPT",
        "NODE_OPTIONS",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_GLOBAL",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_DIRS",
        "LESSOPEN",
        "LESSCLOSE",
        "GEM_PATH",
        "GEM_HOME",
        "RUBYLIB",
        "RUBY_GC_HEAP_INIT_SLOTS",
        "PERL5LIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "SSH_ASKPASS",
    ] {
        let e = p.check_env(name, "/tmp/x").unwrap_err();
        assert!(e.contains(name) && e.contains("\"shell\""), "{e}");
    }
    for name in ["LANG", "LC_ALL", "TZ", "TERM", "MUD_PORT", "HOMEPAGE"] {
        assert!(p.check_env(name, "/tmp").is_ok(), "{name}");
    }
    assert!(p.check_env("PATH", SYSTEM_PATH).is_ok());
    assert!(p
        .check_env("PATH", &format!("{}:/usr/bin", bin.display()))
        .is_ok());
    let e = p.check_env("PATH", "/usr/bin:/tmp").unwrap_err();
    assert!(e.contains("\"/tmp\"") && e.contains("\"commands\""), "{e}");
    assert!(p.check_env("PATH", "bin").is_err(), "a relative PATH entry");
    let shell = Policy::from_json(r#"{"shell":1}"#).unwrap();
    assert!(shell.check_env("LD_PRELOAD", "/tmp/x.so").is_ok());
    assert!(shell.check_env("PATH", "/tmp").is_ok());
    assert!(Policy::open().check_env("LD_PRELOAD", "x").is_ok());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn what_was_checked_opens_without_following_links() {
    use super::fs::{open, Last};
    use std::io::Read;
    let d = tmp("fs");
    let a = d.join("a");
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("f"), "inside").unwrap();
    std::fs::write(d.join("secret"), "outside").unwrap();
    let mut s = String::new();
    open(&a.join("f"), Last::Read)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "inside");
    // the directory swapped for a link after the check: refused, not followed
    std::fs::rename(&a, d.join("a.old")).unwrap();
    std::os::unix::fs::symlink(&d, &a).unwrap();
    std::fs::write(d.join("f"), "outside").unwrap();
    let e = open(&a.join("f"), Last::Read).unwrap_err();
    assert!(
        matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)),
        "{e}"
    );
    assert!(super::fs::explain(&e).contains("changed after it was checked"));
    assert!(open(&a, Last::Dir).is_err());
    // the file itself a link: refused for reading, appending and as a path
    std::fs::remove_file(&a).unwrap();
    std::fs::rename(d.join("a.old"), &a).unwrap();
    std::fs::remove_file(a.join("f")).unwrap();
    std::os::unix::fs::symlink(d.join("secret"), a.join("f")).unwrap();
    for how in [Last::Read, Last::Append, Last::Path] {
        let e = open(&a.join("f"), how).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    }
    assert_eq!(
        std::fs::read_to_string(d.join("secret")).unwrap(),
        "outside"
    );
    // a new file is made 0644 in the directory opened
    use std::os::unix::fs::PermissionsExt;
    open(&a.join("new"), Last::Append).unwrap();
    let mode = std::fs::metadata(a.join("new"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o022, 0, "{mode:o}");
    // only canonical absolute paths
    assert!(open(Path::new("a/f"), Last::Read).is_err());
    assert!(open(&a.join("../a/f"), Last::Read).is_err());
    assert!(open(Path::new("/"), Last::Dir).is_ok());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn only_regular_files_are_read_or_appended_to_and_nothing_blocks() {
    use super::fs::{open, open_as_given, Last};
    let d = tmp("fifo");
    let fifo = d.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // No peer opens the FIFO's other end: a blocking open would never return.
    for how in [Last::Read, Last::Append] {
        let e = open(&fifo, how).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("a FIFO"), "{e}");
    }
    for append in [false, true] {
        let e = open_as_given(&fifo, append).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = open_as_given(Path::new("/dev/null"), append).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
    }
    assert!(open(&d, Last::Read)
        .unwrap_err()
        .to_string()
        .contains("a directory"));
    // a regular file is handed on blocking (a child's stdin or output)
    for (path, append) in [(d.join("new"), true), (d.join("new"), false)] {
        let f = open(&path, if append { Last::Append } else { Last::Read }).unwrap();
        let flags = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            nix::fcntl::FcntlArg::F_GETFL,
        )
        .unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        let f = open_as_given(&path, append).unwrap();
        let flags = nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            nix::fcntl::FcntlArg::F_GETFL,
        )
        .unwrap();
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn every_code_loading_variable_is_listed_in_security_md() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/SECURITY.md")).unwrap();
    for (name, why) in super::LOADS_CODE {
        assert!(!why.is_empty(), "{name}");
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/SECURITY.md does not list EXTERNAL_ENV's {name} (the table of code-loading \
             variables)"
        );
    }
}

#[test]
fn a_dangling_link_is_no_new_file() {
    let d = tmp("dangling");
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("link")).unwrap();
    let p = Policy::from_json(&format!(r#"{{"file_dirs":["{}"]}}"#, d.display())).unwrap();
    let link = d.join("link").display().to_string();
    match p.check_path(Dirs::File, "EXTERNAL_STDOUT_MODE", &link, true) {
        Err(Denied::Io(m, e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{m}");
            assert!(m.contains("symbolic link to nothing"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // a missing plain name is a new file
    let new = d.join("new").display().to_string();
    assert_eq!(
        p.check_path(Dirs::File, "EXTERNAL_STDOUT_MODE", &new, true)
            .unwrap(),
        d.join("new")
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_policy_directory_not_made_yet_is_canonical_as_far_as_it_exists() {
    let d = tmp("prefix");
    std::fs::create_dir(d.join("run")).unwrap();
    std::os::unix::fs::symlink(d.join("run"), d.join("var-run")).unwrap();
    let asked = d.join("var-run/mud/sockets");
    let p = Policy::from_json(&format!(r#"{{"socket_dirs":["{}"]}}"#, asked.display())).unwrap();
    assert_eq!(
        p.to_json()["socket_dirs"][0],
        d.join("run/mud/sockets").display().to_string()
    );
    // made later, it is reached through the link as the kernel resolves it
    std::fs::create_dir_all(d.join("run/mud/sockets")).unwrap();
    let sock = asked.join("bus.sock").display().to_string();
    assert_eq!(
        p.check_path(Dirs::Socket, "IPC_SOCKET_DIR", &sock, true)
            .unwrap(),
        d.join("run/mud/sockets/bus.sock")
    );
    // nothing of it exists but "/": kept as written
    let p = Policy::from_json(r#"{"watch_dirs":["/no-such-dir-here/x"]}"#).unwrap();
    assert_eq!(p.to_json()["watch_dirs"][0], "/no-such-dir-here/x");
    let _ = std::fs::remove_dir_all(d);
}

//! The bus's two transports behind one type: Unix domain sockets
//! (`<IPC_SOCKET_DIR>/<IPC_EVENT_NAME>.sock`, mode IPC_PERMISSIONS, stale
//! file handling) and TCP (IPC_HOST, first free port of IPC_PORT_RANGE).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::IpcError;
use crate::error::{Error, Result, ResultCode};

/// One connection, either transport.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream {
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    /// A connect still in progress has failed (Some(error)) or not.
    pub fn take_error(&self) -> Option<io::Error> {
        match self {
            Stream::Tcp(s) => s.take_error().ok().flatten(),
            Stream::Unix(s) => s.take_error().ok().flatten(),
        }
    }

    /// Whether a non-blocking connect has completed.
    pub fn is_connected(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.peer_addr().is_ok(),
            Stream::Unix(s) => s.peer_addr().is_ok(),
        }
    }

    pub fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// A bound listener, either transport.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, SocketFile),
}

impl Listener {
    /// Takes one waiting connection: (stream, "ip port" or the socket path).
    pub fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), crate::core::addr::format(&a)))
            }
            Listener::Unix(l, f) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), f.path.display().to_string()))
            }
        }
    }

    pub fn raw_fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(r, t, i),
            Listener::Unix(l, _) => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(r, t, i),
            Listener::Unix(l, _) => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(r),
            Listener::Unix(l, _) => l.deregister(r),
        }
    }
}

/// The socket file a Unix listener created; removed on drop when
/// IPC_AUTO_REMOVE is 1, and only while it is still the same file.
pub struct SocketFile {
    /// As LPC's options spell it (reported).
    pub path: PathBuf,
    /// The directory it was made in (the policy's check), and the path of
    /// the file relative to that descriptor, used for every file operation.
    _dir: std::fs::File,
    local: PathBuf,
    dev_ino: (u64, u64),
    remove: bool,
}

/// (device, inode) of the socket files this process's listeners hold. A
/// bind at one of them is refused without the connect probe, which the live
/// bus would report to its LPC object as a client that came and went.
fn held() -> std::sync::MutexGuard<'static, std::collections::HashSet<(u64, u64)>> {
    static HELD: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<(u64, u64)>>> =
        std::sync::OnceLock::new();
    HELD.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        held().remove(&self.dev_ino);
        if !self.remove {
            return;
        }
        if let Ok(m) = std::fs::symlink_metadata(&self.local) {
            if m.file_type().is_socket() && (m.dev(), m.ino()) == self.dev_ino {
                let _ = std::fs::remove_file(&self.local);
            }
        }
    }
}

/// The default socket directory: $XDG_RUNTIME_DIR when it is an absolute
/// directory, else /tmp.
pub fn default_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Longest path a sockaddr_un holds (108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

/// `<dir>/<name>.sock`, checked for length.
pub fn socket_path(dir: &Path, event_name: &str) -> Result<PathBuf> {
    let p = dir.join(format!("{event_name}.sock"));
    if p.as_os_str().len() > SUN_PATH_MAX {
        return Err(IpcError::SocketPathTooLong {
            path: p.display().to_string(),
            len: p.as_os_str().len(),
            max: SUN_PATH_MAX,
        }
        .into());
    }
    Ok(p)
}

/// Binds the Unix listener at `path` with file mode `perm`, in `dir`, the
/// descriptor of `path`'s directory that the policy's check opened: every
/// file operation goes through it (`/proc/self/fd/N/name`), so the
/// directory cannot be swapped after the check.
///
/// An existing file: a socket nobody listens on is stale and removed when
/// `auto_remove`; a live one is EEADDRINUSE; anything that is not a socket
/// is never touched. The socket is bound under a temporary name, given its
/// mode, then linked into place, so it is never reachable with a wider mode.
pub fn bind_unix(
    shown: &Path,
    dir: std::fs::File,
    perm: u32,
    auto_remove: bool,
) -> Result<Listener> {
    let shown_path = || shown.display().to_string();
    let via = crate::policy::fs::fd_path(&dir);
    let file_name = shown.file_name().unwrap_or_default();
    let local = via.join(file_name);
    let path = local.as_path();
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(IpcError::NotASocket { path: shown_path() }.into());
        }
        if held().contains(&(m.dev(), m.ino())) {
            return Err(in_use(shown));
        }
        // A non-blocking probe: a blocking connect to a server whose backlog
        // is full would hang the driver. Only "refused" proves the file stale;
        // any other failure (EACCES: someone else's socket) leaves it alone.
        match UnixStream::connect(path) {
            Ok(_) => return Err(in_use(shown)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(in_use(shown)),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                return Err(IpcError::CannotProbe {
                    path: shown_path(),
                    why: e.to_string(),
                }
                .into())
            }
        }
        if !auto_remove {
            return Err(IpcError::StaleKept { path: shown_path() }.into());
        }
        std::fs::remove_file(path).map_err(|e| IpcError::CannotRemoveStale {
            path: shown_path(),
            why: e.to_string(),
        })?;
    }
    let bind_err = |what: &'static str, e: io::Error| -> Error {
        IpcError::Bind {
            what,
            path: shown_path(),
            why: e.to_string(),
        }
        .into()
    };
    // Bound under a temporary name, given its mode, and only then listening
    // and linked into place: no connection is ever taken through a file
    // with a wider mode, and a file that appeared at `path` meanwhile is
    // never replaced (link fails where rename would overwrite it).
    let tmp = via.join(format!(".{}.{}.tmp", std::process::id(), temp_counter()));
    let tmp = if tmp.as_os_str().len() <= SUN_PATH_MAX {
        tmp
    } else {
        path.to_path_buf()
    };
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
        .and_then(|s| {
            s.set_nonblocking(true)?;
            s.set_cloexec(true)?;
            Ok(s)
        })
        .map_err(|e| bind_err("cannot create a socket for", e))?;
    socket2::SockAddr::unix(&tmp)
        .and_then(|a| sock.bind(&a))
        .map_err(|e| bind_err("cannot bind", e))?;
    let finish = || -> io::Result<(u64, u64)> {
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(perm))?;
        sock.listen(128)?;
        if tmp != path {
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&tmp);
                }
                // A file system without hard links: rename, as before.
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => std::fs::rename(&tmp, path)?,
                Err(e) => return Err(e),
            }
        }
        let m = std::fs::symlink_metadata(path)?;
        Ok((m.dev(), m.ino()))
    };
    match finish() {
        Ok(dev_ino) => {
            held().insert(dev_ino);
            Ok(Listener::Unix(
                UnixListener::from_std(std::os::unix::net::UnixListener::from(
                    std::os::fd::OwnedFd::from(sock),
                )),
                SocketFile {
                    path: shown.to_path_buf(),
                    _dir: dir,
                    local: local.clone(),
                    dev_ino,
                    remove: auto_remove,
                },
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            if e.kind() == io::ErrorKind::AlreadyExists {
                return Err(IpcError::AppearedWhileBinding { path: shown_path() }.into());
            }
            Err(bind_err("cannot set up", e))
        }
    }
}

fn in_use(path: &Path) -> Error {
    IpcError::InUse {
        path: path.display().to_string(),
    }
    .into()
}

fn temp_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// IPC_HOST for a listener: an IP address, or "localhost".
pub fn bind_ip(host: &str) -> Result<IpAddr> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(Ipv4Addr::LOCALHOST.into());
    }
    host.trim_matches(|c| c == '[' || c == ']')
        .parse()
        .map_err(|_| {
            IpcError::BindHostNotIp {
                host: host.to_string(),
            }
            .into()
        })
}

/// Binds the first free port of `lo..=hi` on `ip`.
pub fn bind_tcp(ip: IpAddr, lo: u16, hi: u16) -> Result<socket2::Socket> {
    let mut last = None;
    for port in lo..=hi {
        let addr = SocketAddr::new(ip, port);
        let s = crate::transport::tcp::new_socket(&addr, false)?;
        match crate::transport::tcp::bind(&s, &addr) {
            Ok(()) => return Ok(s),
            Err(e) if e.code == ResultCode::EeAddrinuse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(match last {
        Some(_) if lo == hi => IpcError::PortInUse { port: lo, ip },
        _ => IpcError::NoFreePort { lo, hi, ip },
    }
    .into())
}

//! The listening sockets: one created at a path (stand-alone), or inherited from master(8).
//!
//! A socket created here is private from birth: its mode is set on the socket before bind(), so no
//! other user can connect in the window before a chmod. A path held by a live server is refused
//! (never taken over); a stale socket file left by a dead one is replaced. On drop the socket file
//! is removed, but only if it is still the one this listener created.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use mio::net::UnixListener;
use rustix::fs::{FileType, Mode, fchmod, stat, unlink};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType, bind, connect, listen, socket_with};

/// Pending connections the kernel queues for us (Postfix's master uses the same order of magnitude).
const BACKLOG: i32 = 1024;

#[derive(Debug)]
pub enum ListenError {
    /// Another server answers on this path.
    InUse(PathBuf),
    /// Something other than a socket is at this path.
    NotASocket(PathBuf),
    Io(PathBuf, io::Error),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::InUse(path) => {
                write!(f, "{}: a server is already listening on this socket", path.display())
            }
            ListenError::NotASocket(path) => write!(f, "{}: exists and is not a socket", path.display()),
            ListenError::Io(path, error) => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ListenError {}

pub struct Listener {
    socket: UnixListener,
    /// The socket file to remove on drop, with the identity it had when created.
    owned_path: Option<(PathBuf, (u64, u64))>,
}

impl Listener {
    /// Creates a listening socket at `path` with permissions `mode` (e.g. 0o600).
    pub fn bind(path: &Path, mode: u32) -> Result<Listener, ListenError> {
        let fail = |error: Errno| ListenError::Io(path.to_owned(), error.into());
        remove_stale_socket(path)?;
        let socket =
            socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK, None)
                .map_err(fail)?;
        // The mode of a socket inode set before bind() is the mode the socket file is created with.
        fchmod(&socket, Mode::from_raw_mode(mode)).map_err(fail)?;
        let address = SocketAddrUnix::new(path).map_err(fail)?;
        bind(&socket, &address).map_err(fail)?;
        listen(&socket, BACKLOG).map_err(fail)?;
        let identity = stat(path).map(|st| (st.st_dev, st.st_ino)).map_err(fail)?;
        Ok(Listener { socket: UnixListener::from_std(socket.into()), owned_path: Some((path.to_owned(), identity)) })
    }

    /// Adopts a listening socket created by someone else (master's fd 6 and up). It is made
    /// non-blocking; its file is never removed by us.
    pub fn adopt(fd: OwnedFd) -> io::Result<Listener> {
        let listener = std::os::unix::net::UnixListener::from(fd);
        listener.set_nonblocking(true)?;
        Ok(Listener { socket: UnixListener::from_std(listener), owned_path: None })
    }

    pub fn socket(&mut self) -> &mut UnixListener {
        &mut self.socket
    }

    pub fn path(&self) -> Option<&Path> {
        self.owned_path.as_ref().map(|(path, _)| path.as_path())
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener").field("fd", &self.socket.as_raw_fd()).field("path", &self.owned_path.as_ref().map(|(path, _)| path)).finish()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let Some((path, identity)) = &self.owned_path else { return };
        // Remove the file only if it is still ours: a successor may have replaced it.
        if stat(path).is_ok_and(|st| (st.st_dev, st.st_ino) == *identity) {
            let _ = unlink(path);
        }
    }
}

/// Refuses a path held by a live server or by a non-socket; removes a dead server's socket file.
fn remove_stale_socket(path: &Path) -> Result<(), ListenError> {
    let st = match stat(path) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(error) => return Err(ListenError::Io(path.to_owned(), error.into())),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return Err(ListenError::NotASocket(path.to_owned()));
    }
    let probe = socket_with(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|error| ListenError::Io(path.to_owned(), error.into()))?;
    let address = SocketAddrUnix::new(path).map_err(|error| ListenError::Io(path.to_owned(), error.into()))?;
    match connect(&probe, &address) {
        Ok(()) => Err(ListenError::InUse(path.to_owned())),
        Err(Errno::CONNREFUSED) => unlink(path).map_err(|error| ListenError::Io(path.to_owned(), error.into())),
        Err(error) => Err(ListenError::Io(path.to_owned(), error.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener as StdListener, UnixStream};

    fn socket_file_mode(path: &Path) -> u32 {
        stat(path).unwrap().st_mode & 0o7777
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("scache-listener-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("sock")
    }

    #[test]
    fn creates_a_private_socket_and_removes_it() {
        let path = temp_path("private");
        let listener = Listener::bind(&path, 0o600).unwrap();
        assert_eq!(socket_file_mode(&path), 0o600);
        UnixStream::connect(&path).unwrap();
        drop(listener);
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_live_server() {
        let path = temp_path("live");
        let _ = std::fs::remove_file(&path);
        let _live = StdListener::bind(&path).unwrap();
        assert!(matches!(Listener::bind(&path, 0o600), Err(ListenError::InUse(_))));
        assert!(path.exists());
    }

    #[test]
    fn replaces_a_stale_socket() {
        let path = temp_path("stale");
        let _ = std::fs::remove_file(&path);
        drop(StdListener::bind(&path).unwrap());
        assert!(path.exists());
        let _listener = Listener::bind(&path, 0o600).unwrap();
        UnixStream::connect(&path).unwrap();
    }

    #[test]
    fn refuses_a_regular_file() {
        let path = temp_path("file");
        std::fs::write(&path, b"x").unwrap();
        assert!(matches!(Listener::bind(&path, 0o600), Err(ListenError::NotASocket(_))));
    }
}

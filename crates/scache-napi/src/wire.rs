//! Raw protocol access for tests and diagnostics: a UNIX stream connection that writes and reads
//! exact bytes and passes descriptors in any framing, plus socketpairs and descriptor bookkeeping.
//! Node cannot do any of this itself (it has no SCM_RIGHTS and no socketpair).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use scache_core::fdpass::{Received, receive_descriptor, send_with_descriptors};

#[napi(string_enum = "lowercase")]
pub enum ReceivedKind {
    Descriptor,
    None,
    Several,
    Truncated,
    Eof,
    Timeout,
}

#[napi(object)]
pub struct ReceivedDescriptor {
    pub kind: ReceivedKind,
    /// The received descriptor, owned by the caller from now on.
    pub fd: Option<i32>,
}

#[napi]
pub struct WireConnection {
    stream: Option<UnixStream>,
}

#[napi]
impl WireConnection {
    /// Connects to a UNIX stream socket.
    #[napi(factory)]
    pub fn connect(path: String) -> Result<Self> {
        Ok(Self { stream: Some(UnixStream::connect(path)?) })
    }

    /// Takes ownership of a connected socket descriptor (e.g. one end of `socketpair()`).
    #[napi(factory)]
    pub fn adopt(fd: i32) -> Self {
        // SAFETY: the caller hands over an open socket descriptor it will not use again.
        Self { stream: Some(UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) })) }
    }

    #[napi]
    pub fn write(&self, data: Buffer) -> Result<()> {
        self.stream()?.write_all(&data)?;
        Ok(())
    }

    /// Sends `data` with `fds` attached in one message; returns the bytes sent.
    #[napi]
    pub fn send_descriptors(&self, data: Buffer, fds: Vec<i32>) -> Result<u32> {
        // SAFETY: the caller guarantees the descriptors are open for the duration of this call.
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|fd| unsafe { BorrowedFd::borrow_raw(*fd) }).collect();
        let sent = send_with_descriptors(self.stream()?, &data, &borrowed)?;
        Ok(sent as u32)
    }

    /// Reads until `count` bytes arrived, the peer closed, or `timeout_ms` passed; returns what arrived.
    #[napi]
    pub fn read(&self, count: u32, timeout_ms: u32) -> Result<Buffer> {
        let mut stream = self.stream()?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        let mut data = vec![0u8; count as usize];
        let mut got = 0;
        while got < data.len() && wait_readable(stream.as_fd(), deadline)? {
            match stream.read(&mut data[got..])? {
                0 => break,
                n => got += n,
            }
        }
        data.truncate(got);
        Ok(data.into())
    }

    /// Receives one byte and the descriptors attached to it, waiting up to `timeout_ms`.
    #[napi]
    pub fn receive_descriptor(&self, timeout_ms: u32) -> Result<ReceivedDescriptor> {
        let stream = self.stream()?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        if !wait_readable(stream.as_fd(), deadline)? {
            return Ok(ReceivedDescriptor { kind: ReceivedKind::Timeout, fd: None });
        }
        let (kind, fd) = match receive_descriptor(stream)? {
            Received::Descriptor(fd) => (ReceivedKind::Descriptor, Some(fd.into_raw_fd())),
            Received::NoDescriptor => (ReceivedKind::None, None),
            Received::Several(_) => (ReceivedKind::Several, None),
            Received::Truncated => (ReceivedKind::Truncated, None),
            Received::Eof => (ReceivedKind::Eof, None),
        };
        Ok(ReceivedDescriptor { kind, fd })
    }

    /// True if the peer closed the connection within `timeout_ms` (unread data is discarded).
    #[napi]
    pub fn wait_closed(&self, timeout_ms: u32) -> Result<bool> {
        let mut stream = self.stream()?;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.into());
        let mut sink = [0u8; 4096];
        while wait_readable(stream.as_fd(), deadline)? {
            match stream.read(&mut sink) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return Ok(true),
                Err(error) => return Err(error.into()),
            }
        }
        Ok(false)
    }

    #[napi]
    pub fn shutdown_write(&self) -> Result<()> {
        self.stream()?.shutdown(std::net::Shutdown::Write)?;
        Ok(())
    }

    #[napi]
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// The socket's descriptor number (still owned by this object).
    #[napi(getter)]
    pub fn fd(&self) -> Result<i32> {
        Ok(self.stream()?.as_raw_fd())
    }

    fn stream(&self) -> Result<&UnixStream> {
        self.stream.as_ref().ok_or_else(|| Error::from_reason("connection is closed"))
    }
}

/// A connected pair of UNIX stream sockets; the caller owns both descriptors.
#[napi]
pub fn socketpair() -> Result<Vec<i32>> {
    let (a, b) = UnixStream::pair()?;
    Ok(vec![a.into_raw_fd(), b.into_raw_fd()])
}

/// Creates a UNIX stream socket listening at `path` (the path must not exist) and returns its
/// descriptor, owned by the caller. It is non-blocking and close-on-exec, like the listening socket
/// master(8) hands to a service as fd 6; tests pass it to a child process at a chosen position.
#[napi]
pub fn listen_unix(path: String) -> Result<i32> {
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    Ok(listener.into_raw_fd())
}

/// Closes a descriptor the caller owns.
#[napi]
pub fn close_fd(fd: i32) {
    // SAFETY: the caller owns `fd` and will not use it again.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// True when both descriptors refer to the same socket (the same inode in sockfs).
#[napi]
pub fn same_socket(a: i32, b: i32) -> Result<bool> {
    // SAFETY: the descriptors are only inspected while the caller keeps them open.
    let (a, b) = unsafe { (BorrowedFd::borrow_raw(a), BorrowedFd::borrow_raw(b)) };
    let (a, b) =
        (rustix::fs::fstat(a).map_err(std::io::Error::from)?, rustix::fs::fstat(b).map_err(std::io::Error::from)?);
    Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

/// How many descriptors this process has open.
#[napi]
pub fn open_descriptor_count() -> Result<u32> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count().saturating_sub(1) as u32)
}

/// Waits until `fd` is readable (or has hung up); false when `deadline` passes first.
fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Timespec::try_from(left).map_err(|_| Error::from_reason("timeout out of range"))?;
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Err(std::io::Error::from(error).into()),
        }
    }
}

//! Log records as UNIX datagrams: the sending end used for syslog (`/dev/log`) and postlogd
//! (`$queue_directory/public/postlog`), and a receiving end for tests and capture tools.
//!
//! A daemon must never stall or die because its log daemon is slow, full, restarting or absent.
//! Postfix itself sends on a blocking socket and can stall behind a full receiver; this sender
//! does not. Its socket is non-blocking and close-on-exec; a record that cannot be sent at once is
//! dropped and counted. When the receiver has gone away (it restarted, or never existed), the
//! socket reconnects to the same path, but at most once per second, so an absent log daemon costs
//! one failed `connect` per second instead of one per record.
//!
//! Trusts: the path (it comes from the configuration). Nothing about the peer: it may disappear,
//! stop reading or be replaced at any time.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType, connect, send, socket_with};

/// The shortest time between two connection attempts.
pub const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

/// Room for the longest datagram a receiver accepts (larger ones are truncated, as by any reader).
const RECEIVE_ROOM: usize = 65536;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Dropped: the receiver's queue or our send buffer is full (EAGAIN, ENOBUFS).
    Full,
    /// Dropped: no receiver (refused, missing path, not connected), and reconnecting was either
    /// not due yet or failed.
    Unreachable,
    /// Dropped: any other send error, e.g. EMSGSIZE for a record larger than the socket buffer.
    Failed(Errno),
    /// Dropped: `close()` was called.
    Closed,
}

/// A connected, non-blocking datagram socket that drops what it cannot send.
#[derive(Debug)]
pub struct LogSocket {
    address: SocketAddrUnix,
    socket: Option<OwnedFd>,
    /// The earliest moment the next connection attempt may be made.
    next_connect: Instant,
    dropped: u64,
    closed: bool,
}

impl LogSocket {
    /// Connects to `path` now, as Postfix does before it enters a chroot jail. A receiver that does
    /// not exist yet is not an error (records are dropped until a reconnect succeeds); a path that
    /// no socket address can hold (too long, or with a NUL byte) is.
    pub fn connect(path: &Path) -> io::Result<Self> {
        Self::connect_at(path, Instant::now())
    }

    /// `connect` with the current time given, so tests can step through reconnect intervals.
    pub fn connect_at(path: &Path, now: Instant) -> io::Result<Self> {
        let address = SocketAddrUnix::new(path)?;
        let mut log = Self { address, socket: None, next_connect: now, dropped: 0, closed: false };
        log.reconnect(now);
        Ok(log)
    }

    /// Sends one record as one datagram, without ever blocking.
    pub fn send(&mut self, record: &[u8]) -> Outcome {
        self.send_at(record, Instant::now())
    }

    /// `send` with the current time given (see `connect_at`).
    pub fn send_at(&mut self, record: &[u8], now: Instant) -> Outcome {
        let outcome = self.deliver(record, now);
        if outcome != Outcome::Sent {
            self.dropped += 1;
        }
        outcome
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether a connected socket exists right now (the receiver may still be gone).
    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    /// Closes the socket for good: later records are dropped (and counted).
    pub fn close(&mut self) {
        self.socket = None;
        self.closed = true;
    }

    fn deliver(&mut self, record: &[u8], now: Instant) -> Outcome {
        if self.closed {
            return Outcome::Closed;
        }
        if self.socket.is_none() && !self.reconnect(now) {
            return Outcome::Unreachable;
        }
        match self.send_once(record) {
            // The receiver went away since the last record: one fresh connection, if one is due.
            Outcome::Unreachable if self.reconnect(now) => self.send_once(record),
            outcome => outcome,
        }
    }

    fn send_once(&mut self, record: &[u8]) -> Outcome {
        let Some(socket) = &self.socket else { return Outcome::Unreachable };
        match send(socket, record, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(_) => Outcome::Sent,
            Err(Errno::AGAIN | Errno::NOBUFS) => Outcome::Full,
            // ECONNREFUSED once after the peer closed, ENOTCONN after that; ECONNRESET and ENOENT
            // complete the set of "nobody is there any more".
            Err(Errno::CONNREFUSED | Errno::NOTCONN | Errno::CONNRESET | Errno::NOENT) => {
                self.socket = None;
                Outcome::Unreachable
            }
            Err(error) => Outcome::Failed(error),
        }
    }

    /// Makes a new connection if the last attempt is at least `RECONNECT_INTERVAL` ago.
    fn reconnect(&mut self, now: Instant) -> bool {
        if now < self.next_connect {
            return false;
        }
        self.next_connect = now + RECONNECT_INTERVAL;
        self.socket = open(&self.address).ok();
        self.socket.is_some()
    }
}

fn open(address: &SocketAddrUnix) -> rustix::io::Result<OwnedFd> {
    let socket =
        socket_with(AddressFamily::UNIX, SocketType::DGRAM, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC, None)?;
    connect(&socket, address)?;
    Ok(socket)
}

/// A bound datagram socket that hands over whole records, e.g. to capture what a daemon logs.
#[derive(Debug)]
pub struct LogReceiver {
    socket: UnixDatagram,
}

impl LogReceiver {
    /// Binds a new socket at `path`, which must not exist yet. The socket file stays behind when
    /// the receiver is dropped, as it does for any datagram server.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::bind(path)?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket })
    }

    /// The next record, or `None` if none arrives within `timeout`.
    pub fn receive(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut room = vec![0u8; RECEIVE_ROOM];
        loop {
            match self.socket.recv(&mut room) {
                Ok(length) => {
                    room.truncate(length);
                    return Ok(Some(room));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let left = Timespec::try_from(left).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            match poll(&mut [PollFd::new(&self.socket, PollFlags::IN)], Some(&left)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A private directory per test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("scache-log-socket-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self) -> PathBuf {
            self.0.join("log")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const SHORT: Duration = Duration::from_millis(200);

    #[test]
    fn sends_each_record_as_one_datagram() {
        let scratch = Scratch::new("one");
        let receiver = LogReceiver::bind(&scratch.path()).unwrap();
        let mut log = LogSocket::connect(&scratch.path()).unwrap();
        assert!(log.is_connected());
        assert_eq!(log.send(b"<22>Dec  4 19:37:30 postfix/scache[1]: first"), Outcome::Sent);
        assert_eq!(log.send(b""), Outcome::Sent);
        assert_eq!(log.send(b"third"), Outcome::Sent);
        assert_eq!(receiver.receive(SHORT).unwrap().unwrap(), b"<22>Dec  4 19:37:30 postfix/scache[1]: first");
        assert_eq!(receiver.receive(SHORT).unwrap().unwrap(), b"");
        assert_eq!(receiver.receive(SHORT).unwrap().unwrap(), b"third");
        assert_eq!(receiver.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn socket_is_non_blocking_and_close_on_exec() {
        let scratch = Scratch::new("flags");
        let _receiver = LogReceiver::bind(&scratch.path()).unwrap();
        let log = LogSocket::connect(&scratch.path()).unwrap();
        let socket = log.socket.as_ref().unwrap();
        assert!(rustix::fs::fcntl_getfl(socket).unwrap().contains(rustix::fs::OFlags::NONBLOCK));
        assert!(rustix::io::fcntl_getfd(socket).unwrap().contains(rustix::io::FdFlags::CLOEXEC));
    }

    #[test]
    fn full_receiver_drops_and_counts_without_blocking() {
        let scratch = Scratch::new("full");
        let receiver = LogReceiver::bind(&scratch.path()).unwrap();
        let mut log = LogSocket::connect(&scratch.path()).unwrap();
        let record = [b'x'; 512];
        let started = Instant::now();
        let outcomes: Vec<Outcome> = (0..10_000).map(|_| log.send(&record)).collect();
        assert!(started.elapsed() < Duration::from_secs(2), "sending must never wait for the receiver");
        let sent = outcomes.iter().filter(|o| **o == Outcome::Sent).count();
        assert!(sent > 0 && sent < 10_000, "the receiver's queue holds some, not all: {sent}");
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Sent | Outcome::Full)));
        assert_eq!(log.dropped(), (10_000 - sent) as u64);
        // Once the receiver reads, records flow again.
        while receiver.receive(Duration::ZERO).unwrap().is_some() {}
        assert_eq!(log.send(b"after"), Outcome::Sent);
        assert_eq!(receiver.receive(SHORT).unwrap().unwrap(), b"after");
    }

    #[test]
    fn missing_receiver_at_creation_is_not_fatal_and_is_retried_once_a_second() {
        let scratch = Scratch::new("missing");
        let t0 = Instant::now();
        let mut log = LogSocket::connect_at(&scratch.path(), t0).unwrap();
        assert!(!log.is_connected());
        assert_eq!(log.send_at(b"lost", t0), Outcome::Unreachable);
        let receiver = LogReceiver::bind(&scratch.path()).unwrap();
        // Not due yet: dropped without a connection attempt, even though the receiver is there.
        assert_eq!(log.send_at(b"lost too", t0 + Duration::from_millis(999)), Outcome::Unreachable);
        assert!(!log.is_connected());
        assert_eq!(log.send_at(b"found", t0 + RECONNECT_INTERVAL), Outcome::Sent);
        assert_eq!(receiver.receive(SHORT).unwrap().unwrap(), b"found");
        assert_eq!(receiver.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(log.dropped(), 2);
    }

    #[test]
    fn reconnects_when_the_receiver_restarts() {
        let scratch = Scratch::new("restart");
        let t0 = Instant::now();
        let first = LogReceiver::bind(&scratch.path()).unwrap();
        let mut log = LogSocket::connect_at(&scratch.path(), t0).unwrap();
        assert_eq!(log.send_at(b"one", t0), Outcome::Sent);
        assert_eq!(first.receive(SHORT).unwrap().unwrap(), b"one");

        // The log daemon restarts: its old socket goes away and a new one is bound at the path.
        drop(first);
        fs::remove_file(scratch.path()).unwrap();
        let second = LogReceiver::bind(&scratch.path()).unwrap();

        // Within a second of the last connection attempt the record is dropped...
        assert_eq!(log.send_at(b"two", t0 + Duration::from_millis(500)), Outcome::Unreachable);
        assert_eq!(log.send_at(b"three", t0 + Duration::from_millis(900)), Outcome::Unreachable);
        // ...after that the socket reconnects and sends the record that found it gone.
        assert_eq!(log.send_at(b"four", t0 + Duration::from_millis(1500)), Outcome::Sent);
        assert_eq!(log.send_at(b"five", t0 + Duration::from_millis(1600)), Outcome::Sent);
        assert_eq!(second.receive(SHORT).unwrap().unwrap(), b"four");
        assert_eq!(second.receive(SHORT).unwrap().unwrap(), b"five");
        assert_eq!(log.dropped(), 2);
    }

    #[test]
    fn reconnects_at_once_when_the_last_attempt_is_old() {
        let scratch = Scratch::new("old");
        let t0 = Instant::now();
        let first = LogReceiver::bind(&scratch.path()).unwrap();
        let mut log = LogSocket::connect_at(&scratch.path(), t0).unwrap();
        drop(first);
        fs::remove_file(scratch.path()).unwrap();
        let second = LogReceiver::bind(&scratch.path()).unwrap();
        assert_eq!(log.send_at(b"no loss", t0 + Duration::from_secs(60)), Outcome::Sent);
        assert_eq!(second.receive(SHORT).unwrap().unwrap(), b"no loss");
        assert_eq!(log.dropped(), 0);
    }

    #[test]
    fn receiver_gone_for_good_costs_one_attempt_per_second() {
        let scratch = Scratch::new("gone");
        let t0 = Instant::now();
        let receiver = LogReceiver::bind(&scratch.path()).unwrap();
        let mut log = LogSocket::connect_at(&scratch.path(), t0).unwrap();
        drop(receiver);
        fs::remove_file(scratch.path()).unwrap();
        for step in 0..50 {
            let now = t0 + Duration::from_millis(100 * step);
            assert_eq!(log.send_at(b"x", now), Outcome::Unreachable);
        }
        assert_eq!(log.next_connect, t0 + Duration::from_millis(4000) + RECONNECT_INTERVAL);
        assert_eq!(log.dropped(), 50);
    }

    #[test]
    fn oversized_record_is_dropped_not_fatal() {
        let scratch = Scratch::new("big");
        let receiver = LogReceiver::bind(&scratch.path()).unwrap();
        let mut log = LogSocket::connect(&scratch.path()).unwrap();
        assert!(matches!(log.send(&vec![b'x'; 8 << 20]), Outcome::Failed(Errno::MSGSIZE) | Outcome::Full));
        assert_eq!(log.send(b"small"), Outcome::Sent);
        assert_eq!(receiver.receive(SHORT).unwrap().unwrap(), b"small");
        assert_eq!(log.dropped(), 1);
    }

    #[test]
    fn closed_socket_drops_and_never_reconnects() {
        let scratch = Scratch::new("closed");
        let receiver = LogReceiver::bind(&scratch.path()).unwrap();
        let t0 = Instant::now();
        let mut log = LogSocket::connect_at(&scratch.path(), t0).unwrap();
        log.close();
        assert_eq!(log.send_at(b"x", t0 + Duration::from_secs(5)), Outcome::Closed);
        assert!(!log.is_connected());
        assert_eq!(receiver.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(log.dropped(), 1);
    }

    #[test]
    fn unusable_path_is_an_error() {
        assert!(LogSocket::connect(Path::new(&"x".repeat(200))).is_err());
        assert!(LogSocket::connect(Path::new("a\0b")).is_err());
    }
}

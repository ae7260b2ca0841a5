//! master(8)'s status channel (spec §7.4): fd 5, a socket shared with master, on which a child
//! reports "taken" before it handles client input and "available" afterwards, and which turns
//! readable when master goes away or reloads.
//!
//! Each record is 12 bytes in native byte order: pid, generation, and 0 (taken) or 1 (available).
//! Writes never block: the descriptor's flags are shared with master and with later children, so
//! they are left alone and each write is non-blocking on its own (MSG_DONTWAIT).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{SendFlags, send};

pub struct MasterChannel {
    fd: OwnedFd,
    pid: i32,
    generation: u32,
}

impl MasterChannel {
    /// `generation` is the `GENERATION` value from the environment, already parsed as octal.
    pub fn new(fd: OwnedFd, pid: i32, generation: u32) -> Self {
        Self { fd, pid, generation }
    }

    /// Reports that the process is busy; failures are ignored, as Postfix does.
    pub fn taken(&self) {
        let _ = self.send(0);
    }

    /// Reports that the process is available again; a failure means master is gone.
    pub fn available(&self) -> io::Result<()> {
        self.send(1)
    }

    fn send(&self, avail: i32) -> io::Result<()> {
        let record = status_record(self.pid, self.generation, avail);
        let sent = send(&self.fd, &record, SendFlags::DONTWAIT | SendFlags::NOSIGNAL)?;
        if sent != record.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short status write"));
        }
        Ok(())
    }
}

impl AsFd for MasterChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The 12-byte `struct master_status`.
pub fn status_record(pid: i32, generation: u32, avail: i32) -> [u8; 12] {
    let mut record = [0u8; 12];
    record[..4].copy_from_slice(&pid.to_ne_bytes());
    record[4..8].copy_from_slice(&generation.to_ne_bytes());
    record[8..].copy_from_slice(&avail.to_ne_bytes());
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn records_match_postfix_bytes() {
        // Captured from Postfix 3.7.11 (spec §7.4): pid 9759, generation 4.
        assert_eq!(status_record(9759, 4, 0), [0x1f, 0x26, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(status_record(9759, 4, 1), [0x1f, 0x26, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn writes_taken_then_available() {
        let (ours, mut master) = UnixStream::pair().unwrap();
        let channel = MasterChannel::new(ours.into(), 42, 0o17);
        channel.taken();
        channel.available().unwrap();
        let mut bytes = [0u8; 24];
        master.read_exact(&mut bytes).unwrap();
        assert_eq!(bytes[..12], status_record(42, 15, 0));
        assert_eq!(bytes[12..], status_record(42, 15, 1));
    }

    #[test]
    fn available_fails_when_master_is_gone() {
        let (ours, master) = UnixStream::pair().unwrap();
        drop(master);
        let channel = MasterChannel::new(ours.into(), 42, 1);
        channel.taken();
        assert!(channel.available().is_err());
    }
}

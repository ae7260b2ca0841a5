//! Descriptor passing over a UNIX stream socket, framed as Postfix frames it (spec §3.9).
//!
//! A descriptor always travels with exactly one data byte (`0x00`), one descriptor per message. The
//! receiving side reads exactly that one byte, so data sent after it stays queued for the protocol
//! reader. Received descriptors are close-on-exec and owned from the moment they arrive: any that
//! are not wanted (a second or third one in the same message) are closed by dropping them, which is
//! the fix for Postfix bug Q2. The peer is not trusted to follow the framing.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, recvmsg, sendmsg,
};

/// Room for this many descriptors is offered to the kernel, so that a peer sending several in one
/// message is seen as such (and all of them closed) instead of as a truncated message.
const RECEIVE_ROOM: usize = 4;

/// What one attempt to receive a descriptor produced.
#[derive(Debug)]
pub enum Received {
    /// One data byte carrying exactly one descriptor.
    Descriptor(OwnedFd),
    /// A data byte without any descriptor.
    NoDescriptor,
    /// A data byte carrying more than one descriptor; all of them have been closed.
    Several(usize),
    /// The kernel could not hand over every descriptor (MSG_CTRUNC, e.g. RLIMIT_NOFILE reached);
    /// those that did arrive have been closed.
    Truncated,
    /// The peer closed its side before sending anything.
    Eof,
}

/// Receives one data byte and the descriptors attached to it. `WouldBlock` is returned as an error,
/// so a non-blocking caller can wait for readability and call again.
pub fn receive_descriptor(socket: impl AsFd) -> io::Result<Received> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(RECEIVE_ROOM))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let message = retry_on_eintr(|| {
        recvmsg(&socket, &mut [io::IoSliceMut::new(&mut byte)], &mut control, RecvFlags::CMSG_CLOEXEC)
    })?;
    let mut descriptors: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            descriptors.extend(fds);
        }
    }
    if message.flags.contains(ReturnFlags::CTRUNC) {
        return Ok(Received::Truncated);
    }
    if message.bytes == 0 {
        return Ok(if descriptors.is_empty() { Received::Eof } else { Received::Several(descriptors.len()) });
    }
    Ok(match descriptors.len() {
        0 => Received::NoDescriptor,
        1 => Received::Descriptor(descriptors.pop().expect("one descriptor")),
        n => Received::Several(n),
    })
}

/// Sends `descriptor` with one `0x00` data byte. Returns `Ok(false)` when the socket buffer is full
/// (nothing was sent; try again when writable).
pub fn send_descriptor(socket: impl AsFd, descriptor: BorrowedFd<'_>) -> io::Result<bool> {
    send_with_descriptors(socket, &[0], &[descriptor]).map(|sent| sent > 0)
}

/// Sends `data` with `descriptors` attached, as one message; returns the bytes sent, 0 when the
/// socket buffer is full. Clients and tests use this to produce both proper and improper framings.
pub fn send_with_descriptors(socket: impl AsFd, data: &[u8], descriptors: &[BorrowedFd<'_>]) -> io::Result<usize> {
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(descriptors.len().max(1)))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !descriptors.is_empty() {
        let pushed = control.push(SendAncillaryMessage::ScmRights(descriptors));
        debug_assert!(pushed, "control buffer sized for the descriptors");
    }
    match retry_on_eintr(|| sendmsg(&socket, &[io::IoSlice::new(data)], &mut control, SendFlags::NOSIGNAL)) {
        Ok(sent) => Ok(sent),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(error) => Err(error),
    }
}

fn retry_on_eintr<T>(mut call: impl FnMut() -> Result<T, Errno>) -> io::Result<T> {
    loop {
        match call() {
            Err(Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    fn pair() -> (UnixStream, UnixStream) {
        UnixStream::pair().unwrap()
    }

    #[test]
    fn one_descriptor_refers_to_the_same_open_file() {
        let (ours, theirs) = pair();
        let (mut cached, mut peer) = pair();
        assert!(send_descriptor(&theirs, cached.as_fd()).unwrap());
        let Received::Descriptor(fd) = receive_descriptor(&ours).unwrap() else { panic!("no descriptor") };
        let mut received = UnixStream::from(fd);
        peer.write_all(b"hello").unwrap();
        let mut text = [0u8; 5];
        received.read_exact(&mut text).unwrap();
        assert_eq!(&text, b"hello");
        cached.write_all(b"!").unwrap();
    }

    #[test]
    fn a_byte_without_descriptor_is_reported() {
        let (ours, mut theirs) = pair();
        theirs.write_all(b"\0").unwrap();
        assert!(matches!(receive_descriptor(&ours).unwrap(), Received::NoDescriptor));
    }

    #[test]
    fn several_descriptors_are_all_closed() {
        let (ours, theirs) = pair();
        let (a, mut a_peer) = pair();
        let (b, mut b_peer) = pair();
        send_with_descriptors(&theirs, &[0], &[a.as_fd(), b.as_fd()]).unwrap();
        drop((a, b));
        assert!(matches!(receive_descriptor(&ours).unwrap(), Received::Several(2)));
        // Every copy is closed now, so both peers see end-of-file.
        let mut buf = [0u8; 1];
        assert_eq!(a_peer.read(&mut buf).unwrap(), 0);
        assert_eq!(b_peer.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn only_one_byte_is_consumed() {
        let (mut ours, theirs) = pair();
        let (cached, _peer) = pair();
        send_with_descriptors(&theirs, b"\0next", &[cached.as_fd()]).unwrap();
        assert!(matches!(receive_descriptor(&ours).unwrap(), Received::Descriptor(_)));
        let mut rest = [0u8; 4];
        ours.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"next");
    }

    #[test]
    fn end_of_file_is_reported() {
        let (ours, theirs) = pair();
        drop(theirs);
        assert!(matches!(receive_descriptor(&ours).unwrap(), Received::Eof));
    }
}

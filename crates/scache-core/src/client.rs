//! A blocking client of any connection cache server — ours or Postfix's — that speaks exactly as
//! Postfix's scache_clnt does: the announcement check, the four requests, and the `dummy` lists
//! around every descriptor (spec §5).
//!
//! The server is not trusted: every reply is checked against the attributes Postfix's client
//! requires, every read and write has a deadline, and a server that vanishes is an error, never a
//! hang. A descriptor the client sends stays owned by the caller; one it receives is owned by it.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::codec::{AttrInput, Scan, Scanned, Wish, scan_strict};
use crate::fdpass::{Received, receive_descriptor, send_descriptor};
use crate::protocol::{
    ATTR_PROPERTY, ATTR_PROTOCOL, ATTR_SNAPSHOT, ATTR_STATUS, DUMMY_WISHES, Handler, PROTOCOL_NAME, Status,
    write_dummy, write_find, write_save_dest, write_save_endp, write_status_request,
};

/// The longest reply string accepted: properties are a few kilobytes at most.
const MAX_REPLY_STRING: usize = 1 << 20;

#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// No reply within the deadline.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// The server broke the protocol.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(error) => write!(f, "{error}"),
            ClientError::Timeout => f.write_str("timed out waiting for the server"),
            ClientError::Closed => f.write_str("the server closed the connection"),
            ClientError::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ClientError::Closed,
            _ => ClientError::Io(error),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A connection found in the cache.
#[derive(Debug)]
pub struct FoundConnection {
    pub fd: OwnedFd,
    /// The destination property (find_dest only; empty for find_endp).
    pub dest_property: Vec<u8>,
    pub endp_property: Vec<u8>,
}

pub struct Client {
    stream: UnixStream,
    input: AttrInput,
}

impl Client {
    /// Connects to the socket at `path` and checks the server's announcement.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client> {
        let stream = UnixStream::connect(path)?;
        let mut client = Client::over(stream, timeout)?;
        client.read_announcement()?;
        Ok(client)
    }

    /// Uses an already connected stream whose announcement is not expected (`-S` mode) or was read.
    pub fn over(stream: UnixStream, timeout: Duration) -> Result<Client> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client { stream, input: AttrInput::new(MAX_REPLY_STRING) })
    }

    /// Saves `fd` under `endpoint`. The descriptor is only borrowed: the caller still owns it.
    pub fn save_endp(&mut self, ttl: i32, endpoint: &[u8], property: &[u8], fd: BorrowedFd<'_>) -> Result<Status> {
        self.send_with(|out| write_save_endp(out, ttl, endpoint, property))?;
        // Only a `dummy` list means the server is ready for the descriptor; a status means refusal.
        let first = self.read_reply(DUMMY_WISHES, &[Wish::Int(ATTR_STATUS)])?;
        if let Reply::Alternative(code) = first {
            return status_of(code);
        }
        if !send_descriptor(&self.stream, fd)? {
            return Err(ClientError::Timeout);
        }
        self.read_status()
    }

    pub fn find_endp(&mut self, endpoint: &[u8]) -> Result<Option<FoundConnection>> {
        self.find(Handler::FindEndp, endpoint)
    }

    pub fn save_dest(&mut self, ttl: i32, dest: &[u8], dest_property: &[u8], endpoint: &[u8]) -> Result<Status> {
        self.send_with(|out| write_save_dest(out, ttl, dest, dest_property, endpoint))?;
        self.read_status()
    }

    pub fn find_dest(&mut self, dest: &[u8]) -> Result<Option<FoundConnection>> {
        self.find(Handler::FindDest, dest)
    }

    /// Our status request: the cache's JSON snapshot, listing at most `limit` destinations and
    /// endpoints. Postfix's scache does not know this request and answers status=1.
    pub fn status(&mut self, limit: i32) -> Result<Vec<u8>> {
        self.send_with(|out| write_status_request(out, limit))?;
        let wishes = [Wish::Int(ATTR_STATUS), Wish::Str(ATTR_SNAPSHOT)];
        match self.read_reply(&wishes, &[Wish::Int(ATTR_STATUS)])? {
            Reply::Expected(values) => Ok(values.strings.into_iter().next().unwrap_or_default()),
            Reply::Alternative(code) => {
                Err(ClientError::Protocol(format!("status request refused with status {code}: not postfix-scache?")))
            }
        }
    }

    /// The underlying socket, e.g. to poll it.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }

    fn find(&mut self, handler: Handler, label: &[u8]) -> Result<Option<FoundConnection>> {
        self.send_with(|out| write_find(out, handler, label))?;
        let wishes: &[Wish] = match handler {
            Handler::FindDest => &[Wish::Int(ATTR_STATUS), Wish::Str(ATTR_PROPERTY), Wish::Str(ATTR_PROPERTY)],
            _ => &[Wish::Int(ATTR_STATUS), Wish::Str(ATTR_PROPERTY)],
        };
        let values = match self.read_reply(wishes, &[])? {
            Reply::Expected(values) => values,
            Reply::Alternative(_) => unreachable!("no alternative was offered"),
        };
        let status = status_of(values.status)?;
        if status != Status::Ok {
            return Ok(None);
        }
        self.send_with(write_dummy)?;
        let fd = match receive_descriptor(&self.stream)? {
            Received::Descriptor(fd) => fd,
            Received::Eof => return Err(ClientError::Closed),
            other => return Err(ClientError::Protocol(format!("expected one descriptor, got {other:?}"))),
        };
        self.send_with(write_dummy)?;
        let (dest_property, endp_property) = match handler {
            Handler::FindDest => (values.strings[0].clone(), values.strings[1].clone()),
            _ => (Vec::new(), values.strings[0].clone()),
        };
        Ok(Some(FoundConnection { fd, dest_property, endp_property }))
    }

    fn read_announcement(&mut self) -> Result<()> {
        let values = match self.read_reply(&[Wish::Str(ATTR_PROTOCOL)], &[])? {
            Reply::Expected(values) => values,
            Reply::Alternative(_) => unreachable!("no alternative was offered"),
        };
        if values.strings[0] != PROTOCOL_NAME.as_bytes() {
            let got = String::from_utf8_lossy(&values.strings[0]);
            return Err(ClientError::Protocol(format!("unexpected protocol {got} (expected: {PROTOCOL_NAME})")));
        }
        Ok(())
    }

    fn read_status(&mut self) -> Result<Status> {
        match self.read_reply(&[Wish::Int(ATTR_STATUS)], &[])? {
            Reply::Expected(values) => status_of(values.status),
            Reply::Alternative(_) => unreachable!("no alternative was offered"),
        }
    }

    fn send_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let mut bytes = Vec::new();
        write(&mut bytes);
        self.stream.write_all(&bytes)?;
        Ok(())
    }

    /// Reads one attribute list that must carry exactly `wishes` (or, if given, `alternative`).
    fn read_reply(&mut self, wishes: &[Wish], alternative: &[Wish]) -> Result<Reply> {
        loop {
            if let Some(reply) = self.try_parse(wishes, alternative)? {
                return Ok(reply);
            }
            let stream = &mut self.stream;
            match self.input.fill(|room| stream.read(room))? {
                Ok(0) => return Err(ClientError::Closed),
                Ok(_) => {}
                Err(too_long) => {
                    return Err(ClientError::Protocol(format!("reply string longer than {} bytes", too_long.limit)));
                }
            }
        }
    }

    fn try_parse(&mut self, wishes: &[Wish], alternative: &[Wish]) -> Result<Option<Reply>> {
        for (candidate, is_alternative) in [(wishes, false), (alternative, true)] {
            if candidate.is_empty() {
                continue;
            }
            let Scan::Done(scanned) = scan_strict(&self.input, candidate, false, None) else { return Ok(None) };
            if scanned.warnings.is_empty() && scanned.count == candidate.len() as i32 {
                let reply = Values::of(&scanned, candidate);
                self.input.consume(scanned.consumed);
                return Ok(Some(if is_alternative {
                    Reply::Alternative(reply.status)
                } else {
                    Reply::Expected(reply)
                }));
            }
        }
        let expected: Vec<&str> = wishes.iter().map(|wish| wish.name()).collect();
        Err(ClientError::Protocol(format!("malformed reply (expected attributes: {})", expected.join(", "))))
    }
}

enum Reply {
    Expected(Values),
    /// The alternative list (a status instead of `dummy`), with its status code.
    Alternative(i32),
}

/// A reply's values: the status (if wished) and the strings in order.
struct Values {
    status: i32,
    strings: Vec<Vec<u8>>,
}

impl Values {
    fn of(scanned: &Scanned<'_>, wishes: &[Wish]) -> Values {
        let mut values = Values { status: 0, strings: Vec::new() };
        for (index, wish) in wishes.iter().enumerate() {
            match wish {
                Wish::Int(_) => values.status = scanned.int(index).unwrap_or_default() as i32,
                Wish::Str(_) => values.strings.push(scanned.str(index).unwrap_or_default().to_vec()),
            }
        }
        values
    }
}

fn status_of(code: i32) -> Result<Status> {
    Status::from_code(code).ok_or_else(|| ClientError::Protocol(format!("unknown status {code}")))
}

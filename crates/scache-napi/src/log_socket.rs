//! `LogSocket` and `LogReceiver`: the core's log datagram sender (syslog, postlogd) and its
//! receiving end, for JavaScript, which has no UNIX datagram sockets of its own.

use std::path::Path;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use scache_core::log_socket as core;

/// A non-blocking datagram socket connected to a log daemon. Sending never blocks and never
/// throws: a record that cannot be sent is dropped and counted, and a vanished daemon is
/// reconnected to at most once per second.
#[napi]
pub struct LogSocket {
    socket: core::LogSocket,
}

#[napi]
impl LogSocket {
    /// Connects to `path` now if it can; a missing log daemon is retried later. Throws only if
    /// the path cannot be a socket address.
    #[napi(constructor)]
    pub fn new(path: String) -> Result<Self> {
        let socket = core::LogSocket::connect(Path::new(&path))
            .map_err(|error| Error::from_reason(format!("log socket {path}: {error}")))?;
        Ok(Self { socket })
    }

    /// Sends one record as one datagram; false if it was dropped.
    #[napi]
    pub fn send(&mut self, record: Either<Buffer, String>) -> bool {
        let bytes: &[u8] = match &record {
            Either::A(buffer) => buffer,
            Either::B(text) => text.as_bytes(),
        };
        self.socket.send(bytes) == core::Outcome::Sent
    }

    /// Records dropped so far.
    #[napi(getter)]
    pub fn dropped(&self) -> f64 {
        self.socket.dropped() as f64
    }

    /// Closes the socket; later records are dropped.
    #[napi]
    pub fn close(&mut self) {
        self.socket.close();
    }
}

/// A bound datagram socket that returns whole records, to capture what a daemon logs.
#[napi]
pub struct LogReceiver {
    receiver: Option<core::LogReceiver>,
}

#[napi]
impl LogReceiver {
    /// Binds a new socket at `path` (which must not exist yet).
    #[napi(constructor)]
    pub fn new(path: String) -> Result<Self> {
        let receiver = core::LogReceiver::bind(Path::new(&path))
            .map_err(|error| Error::from_reason(format!("bind {path}: {error}")))?;
        Ok(Self { receiver: Some(receiver) })
    }

    /// The next record, or null if none arrives within `timeoutMs` (or the receiver is closed).
    /// Blocks the calling thread meanwhile.
    #[napi]
    pub fn receive(&self, timeout_ms: u32) -> Result<Option<Buffer>> {
        let Some(receiver) = &self.receiver else { return Ok(None) };
        let record = receiver.receive(Duration::from_millis(timeout_ms.into()))?;
        Ok(record.map(Buffer::from))
    }

    /// Closes the socket; the socket file stays until its directory is cleaned up.
    #[napi]
    pub fn close(&mut self) {
        self.receiver = None;
    }
}

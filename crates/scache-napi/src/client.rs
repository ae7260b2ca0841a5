//! `NativeClient`: the core's blocking protocol client (`scache_core::client`) for JavaScript. Every
//! exchange runs on the libuv thread pool as an `AsyncTask`, so the JavaScript thread never waits
//! for a server; one request at a time per connection (a second one while the first runs throws —
//! the TypeScript `ScacheClient` queues them instead).
//!
//! Failures of the exchange (timeouts, a vanished server, protocol violations) are not thrown from
//! the thread pool but returned as a typed `error` in the reply, so that TypeScript can tell them
//! apart. After such a failure the connection's state is unknown and it is closed; later requests
//! fail at once. Descriptors cross as numbers: one to save is duplicated on the JavaScript thread
//! (the caller keeps its own), one found is owned by the caller from the moment the promise
//! resolves.

use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use rustix::net::{AddressFamily, Shutdown, SocketType};
use scache_core::client::{Client, ClientError, FoundConnection};
use scache_core::protocol::Status as ScacheStatus;

/// How the core's client words a status request refused by a server that does not know it.
const STATUS_REFUSED: &str = "status request refused";

#[napi(string_enum = "snake_case")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientFailureKind {
    /// The socket could not be connected to (absent, refused, not a socket, no permission).
    Connect,
    /// No reply within the timeout.
    Timeout,
    /// The server closed the connection, or it was closed here (by `close()` or an earlier failure).
    Closed,
    /// The server broke the protocol (a wrong announcement, a malformed reply, no descriptor).
    Protocol,
    /// The server does not know the request (Postfix's scache and our status request).
    Unsupported,
    /// Any other system error.
    Io,
}

#[napi(object)]
pub struct ClientFailure {
    pub kind: ClientFailureKind,
    pub message: String,
}

/// The outcome of one request: `error`, or the fields of that request's answer.
#[napi(object)]
pub struct ClientReply {
    pub error: Option<ClientFailure>,
    /// save_endp, save_dest: the server's status code (0 saved, 1 bad request, 2 failed).
    pub status: Option<i32>,
    /// find_endp, find_dest on a hit: the received descriptor, owned by the caller.
    pub fd: Option<i32>,
    /// find_dest on a hit: the destination property.
    pub dest_property: Option<Buffer>,
    /// find_endp, find_dest on a hit: the endpoint (connection) property.
    pub endp_property: Option<Buffer>,
    /// status: the server's JSON snapshot.
    pub snapshot: Option<String>,
}

struct Shared {
    client: Mutex<Option<Client>>,
    /// A duplicate of the connection's socket: shutting it down from the JavaScript thread ends a
    /// request blocked on it in the thread pool at once.
    abort: Mutex<Option<OwnedFd>>,
    /// Why the connection is gone (closed here, or after a failure), once it is.
    gone: Mutex<Option<String>>,
    busy: AtomicBool,
    closed: AtomicBool,
}

#[napi]
pub struct NativeClient {
    shared: Arc<Shared>,
    timeout: Duration,
}

#[napi]
impl NativeClient {
    /// A client whose every connect, read and write waits at most `timeout_ms`; not connected yet.
    #[napi(constructor)]
    pub fn new(timeout_ms: u32) -> Self {
        let shared = Shared {
            client: Mutex::new(None),
            abort: Mutex::new(None),
            gone: Mutex::new(None),
            busy: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        };
        Self { shared: Arc::new(shared), timeout: Duration::from_millis(timeout_ms.max(1).into()) }
    }

    /// Connects to the socket at `path` and checks the server's announcement.
    #[napi(ts_return_type = "Promise<ClientReply>")]
    pub fn connect(&self, path: String) -> Result<AsyncTask<Request>> {
        self.request(Operation::Connect { path: PathBuf::from(path) })
    }

    /// save_endp: saves a duplicate of `fd` (which stays the caller's) under `endpoint`.
    #[napi(ts_return_type = "Promise<ClientReply>")]
    pub fn save_endp(&self, ttl: i32, endpoint: Buffer, property: Buffer, fd: i32) -> Result<AsyncTask<Request>> {
        let fd = duplicate_stream_socket(fd).map_err(|problem| Error::new(Status::InvalidArg, problem))?;
        self.request(Operation::SaveEndp { ttl, endpoint: endpoint.to_vec(), property: property.to_vec(), fd })
    }

    #[napi(ts_return_type = "Promise<ClientReply>")]
    pub fn find_endp(&self, endpoint: Buffer) -> Result<AsyncTask<Request>> {
        self.request(Operation::FindEndp { endpoint: endpoint.to_vec() })
    }

    #[napi(ts_return_type = "Promise<ClientReply>")]
    pub fn save_dest(&self, ttl: i32, dest: Buffer, property: Buffer, endpoint: Buffer) -> Result<AsyncTask<Request>> {
        self.request(Operation::SaveDest {
            ttl,
            dest: dest.to_vec(),
            property: property.to_vec(),
            endpoint: endpoint.to_vec(),
        })
    }

    #[napi(ts_return_type = "Promise<ClientReply>")]
    pub fn find_dest(&self, dest: Buffer) -> Result<AsyncTask<Request>> {
        self.request(Operation::FindDest { dest: dest.to_vec() })
    }

    /// Our status request: the cache's JSON snapshot, with at most `limit` destinations and endpoints.
    #[napi(ts_return_type = "Promise<ClientReply>")]
    pub fn status(&self, limit: i32) -> Result<AsyncTask<Request>> {
        self.request(Operation::Status { limit })
    }

    /// Closes the connection at once; a request in progress ends with a `closed` failure.
    #[napi]
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.mark_gone("the client was closed");
        if let Some(socket) = lock(&self.shared.abort).take() {
            let _ = rustix::net::shutdown(&socket, Shutdown::Both);
        }
        // A request in progress holds the lock; it drops the connection itself when it sees `closed`.
        if let Ok(mut client) = self.shared.client.try_lock() {
            client.take();
        }
    }

    fn request(&self, operation: Operation) -> Result<AsyncTask<Request>> {
        if self.shared.busy.swap(true, Ordering::SeqCst) {
            return Err(Error::from_reason(
                "a request is already in progress on this connection (ScacheClient queues requests; NativeClient does not)",
            ));
        }
        Ok(AsyncTask::new(Request { shared: self.shared.clone(), timeout: self.timeout, operation: Some(operation) }))
    }
}

enum Operation {
    Connect { path: PathBuf },
    SaveEndp { ttl: i32, endpoint: Vec<u8>, property: Vec<u8>, fd: OwnedFd },
    FindEndp { endpoint: Vec<u8> },
    SaveDest { ttl: i32, dest: Vec<u8>, property: Vec<u8>, endpoint: Vec<u8> },
    FindDest { dest: Vec<u8> },
    Status { limit: i32 },
}

pub enum Outcome {
    Failed(ClientFailureKind, String),
    Connected,
    Saved(ScacheStatus),
    Found(Option<FoundConnection>),
    Snapshot(Vec<u8>),
}

pub struct Request {
    shared: Arc<Shared>,
    timeout: Duration,
    operation: Option<Operation>,
}

impl Task for Request {
    type Output = Outcome;
    type JsValue = ClientReply;

    fn compute(&mut self) -> Result<Outcome> {
        let operation = self.operation.take().expect("a request computes once");
        let outcome = self.shared.perform(operation, self.timeout);
        self.shared.busy.store(false, Ordering::SeqCst);
        Ok(outcome)
    }

    fn resolve(&mut self, _env: Env, outcome: Outcome) -> Result<ClientReply> {
        let reply = ClientReply {
            error: None,
            status: None,
            fd: None,
            dest_property: None,
            endp_property: None,
            snapshot: None,
        };
        Ok(match outcome {
            Outcome::Failed(kind, message) => ClientReply { error: Some(ClientFailure { kind, message }), ..reply },
            Outcome::Connected | Outcome::Found(None) => reply,
            Outcome::Saved(status) => ClientReply { status: Some(status as i32), ..reply },
            Outcome::Found(Some(found)) => ClientReply {
                fd: Some(found.fd.into_raw_fd()),
                dest_property: Some(found.dest_property.into()),
                endp_property: Some(found.endp_property.into()),
                ..reply
            },
            Outcome::Snapshot(json) => {
                ClientReply { snapshot: Some(String::from_utf8_lossy(&json).into_owned()), ..reply }
            }
        })
    }
}

impl Shared {
    fn perform(&self, operation: Operation, timeout: Duration) -> Outcome {
        if let Operation::Connect { path } = operation {
            return self.connect(&path, timeout);
        }
        let mut guard = lock(&self.client);
        if self.closed.load(Ordering::SeqCst) {
            guard.take();
        }
        let Some(client) = guard.as_mut() else {
            let why = lock(&self.gone).clone().unwrap_or_else(|| "the client is not connected".to_owned());
            return Outcome::Failed(ClientFailureKind::Closed, why);
        };
        let result = match operation {
            Operation::Connect { .. } => unreachable!("handled above"),
            Operation::SaveEndp { ttl, endpoint, property, fd } => {
                // Our duplicate is closed when `fd` drops here, whatever the outcome (as Postfix's
                // client closes its copy).
                client.save_endp(ttl, &endpoint, &property, fd.as_fd()).map(Outcome::Saved)
            }
            Operation::FindEndp { endpoint } => client.find_endp(&endpoint).map(Outcome::Found),
            Operation::SaveDest { ttl, dest, property, endpoint } => {
                client.save_dest(ttl, &dest, &property, &endpoint).map(Outcome::Saved)
            }
            Operation::FindDest { dest } => client.find_dest(&dest).map(Outcome::Found),
            Operation::Status { limit } => client.status(limit).map(Outcome::Snapshot),
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(error) => {
                let (kind, message) = failure(&error);
                // A refused status request leaves the exchange complete; anything else leaves it in
                // an unknown state, so the connection cannot be used again.
                if kind != ClientFailureKind::Unsupported {
                    self.mark_gone(&format!("the connection was closed after an earlier failure: {message}"));
                    guard.take();
                }
                Outcome::Failed(kind, message)
            }
        };
        if self.closed.load(Ordering::SeqCst) {
            guard.take();
            if !matches!(outcome, Outcome::Failed(..)) {
                // Completed before the close took effect: report it, the connection is gone anyway.
                return outcome;
            }
            return Outcome::Failed(ClientFailureKind::Closed, "the client was closed".to_owned());
        }
        outcome
    }

    fn connect(&self, path: &std::path::Path, timeout: Duration) -> Outcome {
        let mut guard = lock(&self.client);
        if guard.is_some() {
            return Outcome::Failed(ClientFailureKind::Io, "already connected".to_owned());
        }
        if self.closed.load(Ordering::SeqCst) {
            return Outcome::Failed(ClientFailureKind::Closed, "the client was closed".to_owned());
        }
        let client = match Client::connect(path, timeout) {
            Ok(client) => client,
            Err(ClientError::Io(error)) => return Outcome::Failed(ClientFailureKind::Connect, error.to_string()),
            Err(error) => {
                let (kind, message) = failure(&error);
                return Outcome::Failed(kind, message);
            }
        };
        match rustix::io::fcntl_dupfd_cloexec(client.socket(), 0) {
            Ok(socket) => *lock(&self.abort) = Some(socket),
            Err(error) => return Outcome::Failed(ClientFailureKind::Io, std::io::Error::from(error).to_string()),
        }
        if self.closed.load(Ordering::SeqCst) {
            lock(&self.abort).take();
            return Outcome::Failed(ClientFailureKind::Closed, "the client was closed".to_owned());
        }
        *guard = Some(client);
        Outcome::Connected
    }

    fn mark_gone(&self, why: &str) {
        lock(&self.gone).get_or_insert_with(|| why.to_owned());
    }
}

fn failure(error: &ClientError) -> (ClientFailureKind, String) {
    let kind = match error {
        ClientError::Timeout => ClientFailureKind::Timeout,
        ClientError::Closed => ClientFailureKind::Closed,
        ClientError::Protocol(what) if what.starts_with(STATUS_REFUSED) => ClientFailureKind::Unsupported,
        ClientError::Protocol(_) => ClientFailureKind::Protocol,
        ClientError::Io(_) => ClientFailureKind::Io,
    };
    (kind, error.to_string())
}

/// Why `fd` cannot be saved in a connection cache, or `None` when it can: it must be an open
/// stream socket of the UNIX or an IP family (a UNIX-domain or TCP connection).
#[napi]
pub fn stream_socket_problem(fd: i32) -> Option<String> {
    stream_socket(fd).err()
}

fn stream_socket(fd: i32) -> std::result::Result<BorrowedFd<'static>, String> {
    if fd < 0 {
        return Err("the socket has no descriptor (not connected yet, or already closed)".to_owned());
    }
    // SAFETY: only inspected (fstat, getsockopt) or duplicated while the caller keeps it open.
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    let stat =
        rustix::fs::fstat(socket).map_err(|error| format!("descriptor {fd}: {}", std::io::Error::from(error)))?;
    if !rustix::fs::FileType::from_raw_mode(stat.st_mode).is_socket() {
        return Err(format!("descriptor {fd} is not a socket"));
    }
    let kind = rustix::net::sockopt::socket_type(socket).map_err(|error| std::io::Error::from(error).to_string())?;
    if kind != SocketType::STREAM {
        return Err(format!("descriptor {fd} is not a stream socket"));
    }
    let family =
        rustix::net::sockopt::socket_domain(socket).map_err(|error| std::io::Error::from(error).to_string())?;
    if family != AddressFamily::UNIX && family != AddressFamily::INET && family != AddressFamily::INET6 {
        return Err(format!("descriptor {fd} is neither a UNIX-domain nor a TCP socket"));
    }
    Ok(socket)
}

fn duplicate_stream_socket(fd: i32) -> std::result::Result<OwnedFd, String> {
    let socket = stream_socket(fd)?;
    rustix::io::fcntl_dupfd_cloexec(socket, 0).map_err(|error| std::io::Error::from(error).to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

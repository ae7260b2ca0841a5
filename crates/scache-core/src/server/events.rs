//! What the server reports to its embedder: Postfix's warnings, verbose transaction lines and
//! lifecycle changes. Texts are Postfix's (spec §9.5) so logs read the same as the stock daemon's;
//! the embedder adds the severity prefix, sanitises and rate-limits them.

use std::fmt;

use crate::codec::{InputEnd, ScanWarning};
use crate::protocol::Handler;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A warning, text after `warning: `.
    Warning(String),
    /// A verbose transaction line (only when the plan asks for them).
    Trace(String),
    /// The number of connected clients changed to this value.
    Clients(usize),
    /// master(8) closed its status channel (reload or exit): time to exit.
    MasterGone,
    /// The `-S` client has been served: time to exit.
    Finished,
    /// The loop thread panicked (a bug): the server is gone, the process must exit.
    Panicked(String),
    /// What happened to the cache (only when the plan asks for observations).
    Observed(Observation),
}

/// One change to (or lookup in) the cache, for embedders that watch it. Labels are the clients'
/// bytes shown as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// save_endp stored a connection.
    Saved { endpoint: String },
    /// save_dest added or refreshed a binding.
    Bound { dest: String, endpoint: String, refreshed: bool },
    /// find_endp or find_dest found a connection.
    Hit { handler: Handler, label: String },
    /// find_endp or find_dest found none.
    Miss { handler: Handler, label: String },
    /// A connection was closed before anyone took it.
    Evicted { endpoint: String, why: super::service::Eviction },
}

/// Why a descriptor did not arrive, or could not be handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdFailure {
    EndOfInput,
    Timeout,
    NoDescriptor,
    Several(usize),
    Truncated,
    /// The peer's `dummy` list was missing or wrong.
    NoDummy,
    /// A system call failed; the text is strerror's.
    System(String),
}

impl fmt::Display for FdFailure {
    // Postfix prints a stale `%m` here (spec Q5); these say what actually happened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdFailure::EndOfInput => f.write_str("end of input"),
            FdFailure::Timeout => f.write_str("Connection timed out"),
            FdFailure::NoDescriptor => f.write_str("message carried no descriptor"),
            FdFailure::Several(n) => write!(f, "message carried {n} descriptors"),
            FdFailure::Truncated => f.write_str("descriptor discarded by the kernel (MSG_CTRUNC)"),
            FdFailure::NoDummy => f.write_str("no dummy attribute list from client"),
            FdFailure::System(text) => f.write_str(text),
        }
    }
}

impl FdFailure {
    pub fn from_io(error: &std::io::Error) -> Self {
        FdFailure::System(strerror(error))
    }
}

/// A warning before it is rendered with the stream's label (`scache socket`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    Scan(ScanWarning),
    BadRequest(Handler),
    UnrecognizedRequest(Vec<u8>),
    CannotReceive(FdFailure),
    CannotSend(Handler, FdFailure),
    TooLong { limit: usize },
}

/// Postfix's name for the function that serves a request, as it appears in warnings.
fn service_function(handler: Handler) -> &'static str {
    match handler {
        Handler::SaveEndp => "scache_save_endp_service",
        Handler::FindEndp => "scache_find_endp_service",
        Handler::SaveDest => "scache_save_dest_service",
        Handler::FindDest => "scache_find_dest_service",
        Handler::Status => "postfix_scache_status_service",
    }
}

impl Warning {
    /// The text Postfix logs after `warning: `, with `stream` naming the client stream.
    pub fn render(&self, stream: &str) -> String {
        let bytes = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Warning::Scan(ScanWarning::EndOfInput { end, context }) => {
                let what = match end {
                    InputEnd::Eof => "premature end-of-input",
                    InputEnd::Timeout => "timeout",
                };
                format!("{what} on {stream} while reading {}", context.as_str())
            }
            Warning::Scan(ScanWarning::TruncatedInput { context }) => {
                format!("unexpected end-of-input from {stream} while reading {}", context.as_str())
            }
            Warning::Scan(ScanWarning::MissingAttribute { name }) => {
                format!("missing attribute {name} in input from {stream}")
            }
            Warning::Scan(ScanWarning::UnexpectedAttribute { name, expecting }) => {
                format!("unexpected attribute {} from {stream} (expecting: {expecting})", bytes(name))
            }
            Warning::Scan(ScanWarning::MalformedNumber { value }) => {
                format!("malformed numerical data from {stream} while reading input attribute value: {}", bytes(value))
            }
            Warning::BadRequest(handler) => {
                format!("{}: bad or missing request parameter", service_function(*handler))
            }
            Warning::UnrecognizedRequest(name) => format!("unrecognized request: \"{}\", ignored", bytes(name)),
            Warning::CannotReceive(why) => {
                format!("{}: unable to receive file descriptor: {why}", service_function(Handler::SaveEndp))
            }
            Warning::CannotSend(handler, why) => {
                format!("{}: cannot send file descriptor: {why}", service_function(*handler))
            }
            Warning::TooLong { limit } => {
                format!("attribute name or value longer than {limit} bytes from {stream}; closing the connection")
            }
        }
    }
}

/// An error's text as C's strerror() prints it, which is what Postfix's `%m` shows.
pub fn strerror(error: &std::io::Error) -> String {
    let text = error.to_string();
    // io::Error's Display appends " (os error N)" to the system's text.
    text.split(" (os error").next().unwrap_or_default().to_owned()
}

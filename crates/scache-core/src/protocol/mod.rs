//! The connection cache protocol's vocabulary (spec §3): attribute names, request names, status
//! codes, the wish list of each request, and the exact messages each side writes.

mod messages;

pub use messages::*;

use crate::codec::Wish;

pub const ATTR_PROTOCOL: &str = "protocol";
pub const ATTR_REQUEST: &str = "request";
pub const ATTR_TTL: &str = "ttl";
pub const ATTR_LABEL: &str = "label";
pub const ATTR_PROPERTY: &str = "property";
pub const ATTR_STATUS: &str = "status";
pub const ATTR_DUMMY: &str = "dummy";
/// Status request: how many destinations and endpoints to list.
pub const ATTR_LIMIT: &str = "limit";
/// Status reply: the JSON snapshot.
pub const ATTR_SNAPSHOT: &str = "snapshot";

/// The request name of our status request: no Postfix client sends it.
pub const STATUS_REQUEST: &str = "postfix_scache_status";

/// The value of the announcement's `protocol` attribute.
pub const PROTOCOL_NAME: &str = "connection_cache_protocol";

/// Reply status codes (SCACHE_STAT_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    Bad = 1,
    Fail = 2,
}

impl Status {
    pub fn from_code(code: i32) -> Option<Status> {
        match code {
            0 => Some(Status::Ok),
            1 => Some(Status::Bad),
            2 => Some(Status::Fail),
            _ => None,
        }
    }
}

/// The operations a request name can be routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    SaveEndp,
    FindEndp,
    SaveDest,
    FindDest,
    /// Our own: a JSON snapshot of the cache (real Postfix clients never send its request name).
    Status,
}

impl Handler {
    /// Postfix's four operations.
    pub const POSTFIX: [Handler; 4] = [Handler::SaveEndp, Handler::FindEndp, Handler::SaveDest, Handler::FindDest];

    /// The request name clients send for this operation (ours for Status, which the embedder may
    /// route under another name).
    pub fn request_name(self) -> &'static str {
        match self {
            Handler::SaveEndp => "save_endp",
            Handler::FindEndp => "find_endp",
            Handler::SaveDest => "save_dest",
            Handler::FindDest => "find_dest",
            Handler::Status => STATUS_REQUEST,
        }
    }

    /// The attributes after `request`, in the order the server reads them.
    pub fn wishes(self) -> &'static [Wish] {
        match self {
            Handler::SaveEndp => &[Wish::Int(ATTR_TTL), Wish::Str(ATTR_LABEL), Wish::Str(ATTR_PROPERTY)],
            Handler::FindEndp | Handler::FindDest => &[Wish::Str(ATTR_LABEL)],
            Handler::SaveDest => {
                &[Wish::Int(ATTR_TTL), Wish::Str(ATTR_LABEL), Wish::Str(ATTR_PROPERTY), Wish::Str(ATTR_LABEL)]
            }
            Handler::Status => &[Wish::Int(ATTR_LIMIT)],
        }
    }
}

/// The wish list of the dummy lists exchanged around a descriptor.
pub const DUMMY_WISHES: &[Wish] = &[Wish::Str(ATTR_DUMMY)];
/// The wish list of a request's first attribute (scanned in MORE mode).
pub const REQUEST_WISHES: &[Wish] = &[Wish::Str(ATTR_REQUEST)];

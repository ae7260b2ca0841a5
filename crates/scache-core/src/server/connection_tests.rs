//! The connection state machine, driven without an event loop: bytes, descriptors, end of input
//! and timeouts are fed in directly, and what it writes is read back from a socketpair.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use super::connection::{Connection, ReadMode};
use super::events::Event;
use super::plan::Plan;
use super::service::Service;
use super::stats::Counters;
use crate::cache::Cache;
use crate::fdpass::Received;

const ANNOUNCEMENT: &[u8] = b"protocol\0connection_cache_protocol\0\0";
const DUMMY: &[u8] = b"dummy\0\0\0";
const STATUS_OK: &[u8] = b"status\x000\0\0";
const STATUS_BAD: &[u8] = b"status\x001\0\0";
const STATUS_FAIL: &[u8] = b"status\x002\0\0";
const FIND_ENDP_MISS: &[u8] = b"status\x002\0property\0\0\0";

const SAVE_ENDP: &[u8] = b"request\0save_endp\0ttl\x002\0label\0smtp\n192.0.2.1\n25\n0\n\0property\0p=1\n\0\0";
const FIND_ENDP: &[u8] = b"request\0find_endp\0label\0smtp\n192.0.2.1\n25\n0\n\0\0";
const FIND_ENDP_HIT: &[u8] = b"status\x000\0property\0p=1\n\0\0";
const SAVE_DEST: &[u8] =
    b"request\0save_dest\0ttl\x002\0label\0smtp\nexample.com\n\0property\0d=1\n\0label\0smtp\n192.0.2.1\n25\n0\n\0\0";
const FIND_DEST: &[u8] = b"request\0find_dest\0label\0smtp\nexample.com\n\0\0";
const FIND_DEST_HIT: &[u8] = b"status\x000\0property\0d=1\n\0property\0p=1\n\0\0";

/// One client connection with the cache, plan and event log it is served with.
struct Harness {
    cache: Cache<OwnedFd>,
    plan: Plan,
    counters: Mutex<Counters>,
    events: Vec<Event>,
    now: u64,
    conn: Connection,
    /// The server's end (flushed into) and the client's end (read back from).
    server_end: UnixStream,
    client_end: UnixStream,
}

impl Harness {
    fn new() -> Self {
        let plan = Plan::new().with_postfix_routes();
        let (server_end, client_end) = UnixStream::pair().unwrap();
        client_end.set_nonblocking(true).unwrap();
        let mut greeting = Vec::new();
        crate::protocol::write_announcement(&mut greeting);
        let conn = Connection::new(plan.max_string, greeting, 0);
        let mut harness = Self {
            cache: Cache::new(),
            plan,
            counters: Mutex::new(Counters::default()),
            events: Vec::new(),
            now: 0,
            conn,
            server_end,
            client_end,
        };
        harness.with(|_, _| {});
        assert_eq!(harness.written(), ANNOUNCEMENT);
        harness
    }

    fn with(&mut self, act: impl FnOnce(&mut Connection, &mut Service<'_>)) {
        let mut service = Service {
            cache: &mut self.cache,
            plan: &self.plan,
            counters: &self.counters,
            events: &mut self.events,
            now: self.now,
            registry: None,
        };
        act(&mut self.conn, &mut service);
        self.conn.flush(&mut service, &self.server_end, &self.server_end);
    }

    /// Feeds bytes as one read.
    fn send(&mut self, bytes: &[u8]) {
        assert_eq!(self.conn.read_mode(), ReadMode::Bytes, "not reading protocol bytes");
        self.with(|conn, service| {
            conn.read_bytes(service, |room| {
                room[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            })
            .unwrap();
        });
    }

    /// Feeds bytes one read per chunk, split at `cuts`.
    fn send_split(&mut self, bytes: &[u8], cuts: &[usize]) {
        let mut from = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            if cut > from {
                self.send(&bytes[from..cut]);
                from = cut;
            }
        }
    }

    fn send_descriptor(&mut self, received: Received) {
        assert_eq!(self.conn.read_mode(), ReadMode::Descriptor, "no descriptor awaited");
        self.with(|conn, service| conn.descriptor_received(service, received));
    }

    fn end(&mut self) {
        self.with(|conn, service| {
            conn.read_bytes(service, |_| Ok(0)).unwrap();
        });
    }

    fn time_out(&mut self) {
        self.with(|conn, service| conn.timed_out(service));
    }

    /// Everything the server wrote since the last call.
    fn written(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.client_end.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => panic!("{error}"),
            }
        }
        out
    }

    /// The descriptor the server sent, if any (reads its one data byte).
    fn sent_descriptor(&mut self) -> Option<OwnedFd> {
        match crate::fdpass::receive_descriptor(&self.client_end) {
            Ok(Received::Descriptor(fd)) => Some(fd),
            _ => None,
        }
    }

    fn warnings(&mut self) -> Vec<String> {
        let warnings = self
            .events
            .iter()
            .filter_map(|event| match event {
                Event::Warning(text) => Some(text.clone()),
                _ => None,
            })
            .collect();
        self.events.clear();
        warnings
    }

    /// Saves a fresh socket under the endpoint of SAVE_ENDP; returns the socket's peer.
    fn save_connection(&mut self) -> UnixStream {
        let (cached, peer) = UnixStream::pair().unwrap();
        self.send(SAVE_ENDP);
        assert_eq!(self.written(), DUMMY);
        self.send_descriptor(Received::Descriptor(cached.into()));
        assert_eq!(self.written(), STATUS_OK);
        peer
    }
}

/// True when `fd` is a socket whose peer is `peer` (data written at the peer comes out of `fd`).
fn connected(fd: OwnedFd, peer: &mut UnixStream) -> bool {
    use std::io::Write;
    peer.write_all(b"ping").unwrap();
    let mut received = UnixStream::from(fd);
    let mut buf = [0u8; 4];
    received.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

#[test]
fn save_then_find_returns_the_same_connection() {
    let mut h = Harness::new();
    let mut peer = h.save_connection();
    h.send(FIND_ENDP);
    assert_eq!(h.written(), FIND_ENDP_HIT);
    assert_eq!(h.conn.read_mode(), ReadMode::Bytes);
    assert!(h.sent_descriptor().is_none(), "nothing may be sent before the client's dummy");
    h.send(DUMMY);
    let fd = h.sent_descriptor().expect("descriptor after the dummy");
    h.send(DUMMY);
    assert!(h.warnings().is_empty());
    assert!(connected(fd, &mut peer));
    h.send(FIND_ENDP);
    assert_eq!(h.written(), FIND_ENDP_MISS);
}

#[test]
fn find_dest_uses_the_binding() {
    let mut h = Harness::new();
    let mut peer = h.save_connection();
    h.send(SAVE_DEST);
    assert_eq!(h.written(), STATUS_OK);
    h.send(FIND_DEST);
    assert_eq!(h.written(), FIND_DEST_HIT);
    h.send(DUMMY);
    let fd = h.sent_descriptor().expect("descriptor");
    h.send(DUMMY);
    assert!(connected(fd, &mut peer));
    let counters = *h.counters.lock().unwrap();
    assert_eq!((counters.dest_hits, counters.endp_hits, counters.max_dests, counters.max_sessions), (1, 0, 1, 1));
}

/// Every exchange gives the same bytes and warnings however its requests are split into reads.
#[test]
fn requests_split_at_every_byte_boundary() {
    let inputs: &[&[u8]] = &[
        SAVE_DEST,
        FIND_ENDP,
        b"request\0foo\0x\0y\0\0",
        b"foo\0bar\0\0",
        b"label\0L\0request\0find_endp\0\0",
        b"request\0save_endp\0ttl\x005 \0label\0E\0property\0P\0\0",
        b"request\0save_dest\0ttl\x002\0label\0D\0property\0Q\0label\0E\0x\0y\0\0",
    ];
    for input in inputs {
        let mut whole = Harness::new();
        whole.send(input);
        let (expected_bytes, expected_warnings) = (whole.written(), whole.warnings());
        for cut in 1..input.len() {
            let mut split = Harness::new();
            split.send_split(input, &[cut]);
            assert_eq!(split.written(), expected_bytes, "{input:?} cut at {cut}");
            assert_eq!(split.warnings(), expected_warnings, "{input:?} cut at {cut}");
        }
        let mut bytewise = Harness::new();
        bytewise.send_split(input, &(1..input.len()).collect::<Vec<_>>());
        assert_eq!(bytewise.written(), expected_bytes, "{input:?} byte by byte");
        assert_eq!(bytewise.warnings(), expected_warnings, "{input:?} byte by byte");
    }
}

#[test]
fn unknown_request_gets_status_bad_and_its_list_is_skipped() {
    let mut h = Harness::new();
    h.send(b"request\0foo\0x\0y\0\0");
    assert_eq!(h.written(), STATUS_BAD);
    assert_eq!(h.warnings(), ["unrecognized request: \"foo\", ignored"]);
    h.send(FIND_ENDP);
    assert_eq!(h.written(), FIND_ENDP_MISS);
    assert!(h.warnings().is_empty());
}

#[test]
fn garbage_gets_no_reply_and_postfix_warnings() {
    let mut h = Harness::new();
    h.send(b"foo\0bar\0\0");
    assert_eq!(h.written(), b"");
    assert_eq!(
        h.warnings(),
        [
            "unexpected attribute foo from scache socket (expecting: request)",
            "unexpected attribute bar from scache socket (expecting: request)",
            "missing attribute request in input from scache socket",
        ]
    );
}

#[test]
fn a_request_after_garbage_is_still_served() {
    let mut h = Harness::new();
    h.send(b"label\0L\0request\0find_endp\0\0");
    assert_eq!(h.written(), b"status\x001\0property\0\0\0");
    assert_eq!(
        h.warnings(),
        [
            "unexpected attribute label from scache socket (expecting: request)",
            "unexpected attribute L from scache socket (expecting: request)",
            "missing attribute label in input from scache socket",
            "scache_find_endp_service: bad or missing request parameter",
        ]
    );
}

#[test]
fn bad_ttls_are_rejected_before_any_dummy() {
    for (ttl, malformed) in [("0", false), ("-5", false), ("4294967295", false), ("2147483648", false), ("abc", true)] {
        let mut h = Harness::new();
        h.send(format!("request\0save_endp\0ttl\0{ttl}\0label\0E\0property\0P\0\0").as_bytes());
        assert_eq!(h.written(), STATUS_BAD, "ttl {ttl}");
        let mut expected = Vec::new();
        if malformed {
            expected.push(format!(
                "malformed numerical data from scache socket while reading input attribute value: {ttl}"
            ));
        }
        expected.push("scache_save_endp_service: bad or missing request parameter".to_owned());
        assert_eq!(h.warnings(), expected, "ttl {ttl}");
        // The rest of the list was skipped: the next request is served normally.
        h.send(FIND_ENDP);
        assert_eq!(h.written(), FIND_ENDP_MISS);
    }
}

#[test]
fn wrapped_and_signed_ttls_are_accepted_and_clamped() {
    for ttl in [" 5", "+5", "99999999999", "-4294967295"] {
        let mut h = Harness::new();
        h.send(format!("request\0save_dest\0ttl\0{ttl}\0label\0D\0property\0Q\0label\0E\0\0").as_bytes());
        assert_eq!(h.written(), STATUS_OK, "ttl {ttl:?}");
        let deadline = h.cache.next_deadline().unwrap();
        assert!(deadline <= h.plan.ttl_limit_ms, "ttl {ttl:?} clamped, deadline {deadline}");
    }
}

#[test]
fn extra_attribute_after_the_last_one_is_accepted() {
    let mut h = Harness::new();
    h.send(b"request\0save_endp\0ttl\x002\0label\0E\0property\0P\0x\0y\0\0");
    assert_eq!(h.written(), DUMMY);
    assert_eq!(h.warnings(), ["unexpected attribute x from scache socket (expecting: (list terminator))"]);
    assert_eq!(h.conn.read_mode(), ReadMode::Descriptor);
}

#[test]
fn a_byte_without_descriptor_fails_the_save() {
    let mut h = Harness::new();
    h.send(SAVE_ENDP);
    assert_eq!(h.written(), DUMMY);
    h.send_descriptor(Received::NoDescriptor);
    assert_eq!(h.written(), STATUS_FAIL);
    assert_eq!(
        h.warnings(),
        ["scache_save_endp_service: unable to receive file descriptor: message carried no descriptor"]
    );
    assert_eq!(h.cache.size().sess_count, 0);
}

#[test]
fn data_instead_of_the_descriptor_is_one_failed_byte_then_requests() {
    let mut h = Harness::new();
    h.send(SAVE_ENDP);
    assert_eq!(h.written(), DUMMY);
    // The descriptor's byte position holds an ordinary byte, followed by a whole request.
    h.conn_read_bytes_anyway(&[b"\0", FIND_ENDP].concat());
    assert_eq!(h.written(), [STATUS_FAIL, FIND_ENDP_MISS].concat());
}

impl Harness {
    /// Feeds bytes even where a descriptor is awaited (a peer that does not wait for `dummy`).
    fn conn_read_bytes_anyway(&mut self, bytes: &[u8]) {
        self.with(|conn, service| {
            conn.read_bytes(service, |room| {
                room[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            })
            .unwrap();
        });
    }
}

#[test]
fn several_descriptors_fail_the_save() {
    let mut h = Harness::new();
    h.send(SAVE_ENDP);
    h.written();
    h.send_descriptor(Received::Several(2));
    assert_eq!(h.written(), STATUS_FAIL);
    assert_eq!(
        h.warnings(),
        ["scache_save_endp_service: unable to receive file descriptor: message carried 2 descriptors"]
    );
}

#[test]
fn end_of_input_while_awaiting_the_descriptor_fails_and_closes() {
    let mut h = Harness::new();
    h.send(SAVE_ENDP);
    h.written();
    h.send_descriptor(Received::Eof);
    assert_eq!(h.written(), STATUS_FAIL);
    assert_eq!(h.warnings(), ["scache_save_endp_service: unable to receive file descriptor: end of input"]);
    assert!(h.conn.should_close());
}

#[test]
fn a_client_gone_before_its_dummy_loses_the_connection() {
    let mut h = Harness::new();
    let mut peer = h.save_connection();
    h.send(FIND_ENDP);
    assert_eq!(h.written(), FIND_ENDP_HIT);
    h.end();
    assert_eq!(h.warnings(), ["scache_find_endp_service: cannot send file descriptor: end of input"]);
    assert!(h.conn.should_close());
    assert_eq!(h.cache.size().sess_count, 0);
    // Postfix closes its copy: the cached connection's peer sees end-of-file.
    let mut buf = [0u8; 1];
    assert_eq!(peer.read(&mut buf).unwrap(), 0);
}

#[test]
fn a_wrong_first_dummy_is_a_failed_transfer_and_the_rest_is_read_as_requests() {
    let mut h = Harness::new();
    let _peer = h.save_connection();
    h.send(FIND_ENDP);
    h.written();
    h.send(FIND_ENDP);
    assert_eq!(h.written(), b"");
    assert_eq!(
        h.warnings(),
        [
            "unexpected attribute request from scache socket (expecting: dummy)",
            "scache_find_endp_service: cannot send file descriptor: no dummy attribute list from client",
            "unexpected attribute find_endp from scache socket (expecting: request)",
            "unexpected attribute label from scache socket (expecting: request)",
            "unexpected attribute smtp\n192.0.2.1\n25\n0\n from scache socket (expecting: request)",
            "missing attribute request in input from scache socket",
        ]
    );
}

#[test]
fn pipelined_requests_are_all_answered() {
    let mut h = Harness::new();
    h.send(&[FIND_ENDP, FIND_ENDP, SAVE_DEST].concat());
    assert_eq!(h.written(), [FIND_ENDP_MISS, FIND_ENDP_MISS, STATUS_OK].concat());
}

#[test]
fn trailing_dummy_and_next_request_in_one_read_are_both_processed() {
    let mut h = Harness::new();
    let _peer = h.save_connection();
    h.send(FIND_ENDP);
    h.written();
    h.send(DUMMY);
    assert!(h.sent_descriptor().is_some());
    h.send(&[DUMMY, FIND_ENDP].concat());
    assert_eq!(h.written(), FIND_ENDP_MISS);
    assert!(h.warnings().is_empty());
}

#[test]
fn a_timeout_mid_request_drops_the_reply_and_closes() {
    let mut h = Harness::new();
    h.send(b"request\0find_endp\0");
    assert!(h.conn.is_busy());
    h.time_out();
    assert_eq!(h.written(), b"");
    assert_eq!(h.warnings(), ["scache_find_endp_service: bad or missing request parameter"]);
    assert!(h.conn.should_close());
}

#[test]
fn a_timeout_inside_a_name_warns_like_postfix() {
    let mut h = Harness::new();
    h.send(b"request\0find_endp\0lab");
    h.time_out();
    assert_eq!(
        h.warnings(),
        [
            "unexpected end-of-input from scache socket while reading input attribute name",
            "scache_find_endp_service: bad or missing request parameter",
        ]
    );
    assert!(h.conn.should_close());
}

#[test]
fn a_timeout_awaiting_the_descriptor_answers_and_keeps_serving() {
    let mut h = Harness::new();
    h.send(SAVE_ENDP);
    h.written();
    h.time_out();
    assert_eq!(h.written(), STATUS_FAIL);
    assert_eq!(h.warnings(), ["scache_save_endp_service: unable to receive file descriptor: Connection timed out"]);
    assert!(!h.conn.should_close());
    h.send(FIND_ENDP);
    assert_eq!(h.written(), FIND_ENDP_MISS);
}

#[test]
fn an_idle_connection_is_not_busy() {
    let mut h = Harness::new();
    assert!(!h.conn.is_busy());
    h.send(FIND_ENDP);
    assert!(!h.conn.is_busy());
    h.end();
    assert!(h.conn.should_close());
    assert!(h.warnings().is_empty());
}

#[test]
fn an_oversized_string_closes_the_connection() {
    let mut h = Harness::new();
    h.plan.max_string = 8;
    h.conn = Connection::new(8, Vec::new(), 0);
    h.send(b"request\0find_endp\0label\0abcdefghi");
    assert_eq!(
        h.warnings(),
        ["attribute name or value longer than 8 bytes from scache socket; closing the connection"]
    );
    assert!(h.conn.should_close());
}

#[test]
fn a_list_cut_short_by_end_of_input_is_still_answered() {
    // After a plain end-of-input Postfix still writes its reply: a half-closed client reads it.
    let mut h = Harness::new();
    h.send(b"request\0find_endp\0label\0x\0");
    assert_eq!(h.written(), b"");
    h.end();
    assert_eq!(h.written(), b"status\x001\0property\0\0\0");
    assert_eq!(
        h.warnings(),
        [
            "premature end-of-input on scache socket while reading input attribute name",
            "scache_find_endp_service: bad or missing request parameter",
        ]
    );
    assert!(h.conn.should_close());
}

#[test]
fn the_status_request_answers_with_a_snapshot() {
    let mut h = Harness::new();
    h.plan.route(b"postfix_scache_status", crate::protocol::Handler::Status);
    let _peer = h.save_connection();
    h.send(b"request\0postfix_scache_status\0limit\x0010\0\0");
    let reply = h.written();
    assert!(reply.starts_with(b"status\x000\0snapshot\0{"), "{reply:?}");
    let json: serde_json::Value = serde_json::from_slice(&reply[18..reply.len() - 2]).unwrap();
    assert_eq!(json["connections_count"], 1);
}

#[test]
fn the_status_request_is_unknown_unless_routed() {
    let mut h = Harness::new();
    h.send(b"request\0postfix_scache_status\0limit\x0010\0\0");
    assert_eq!(h.written(), STATUS_BAD);
    assert_eq!(h.warnings(), ["unrecognized request: \"postfix_scache_status\", ignored"]);
}

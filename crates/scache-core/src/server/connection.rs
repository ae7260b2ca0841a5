//! One client connection: Postfix's request exchanges as a non-blocking state machine.
//!
//! The stock scache serves a request with blocking reads and writes from start to end, including the
//! `dummy` handshakes around each descriptor (spec §3). Here every step that waits for the peer is a
//! phase, so the event loop can serve other clients meanwhile. The observable behaviour is kept:
//! the same replies, the same warnings, the same strings consumed — including Postfix's habit of
//! discarding the rest of an attribute list when it writes a reply (§1.7). Unlike Postfix, requests
//! pipelined behind one another are all answered (Q3), and a connection that timed out or ended is
//! closed instead of spinning (Q1).
//!
//! The peer is trusted for nothing. The state machine does no I/O of its own except through
//! [`Connection::flush`]; the loop feeds it bytes, descriptors, end-of-input and timeouts.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::write;

use super::events::{FdFailure, Warning};
use super::service::{Hit, Service};
use crate::cache::Millis;
use crate::codec::{AttrInput, InputEnd, Scan, Scanned, Stop, StringTooLong, Wish, scan_strict};
use crate::fdpass::{Received, send_descriptor};
use crate::protocol::{
    DUMMY_WISHES, Handler, REQUEST_WISHES, Status, write_dummy, write_find_dest_reply, write_find_endp_reply,
    write_status, write_status_reply,
};

/// How the loop should read from this connection next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Protocol data: read as much as is available.
    Bytes,
    /// Exactly one byte that should carry a descriptor.
    Descriptor,
    /// Nothing: replies must drain first, or the connection is closing.
    Paused,
}

/// Stop reading requests while this many reply bytes wait for a peer that does not read them.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

pub struct Connection {
    input: AttrInput,
    output: Output,
    phase: Phase,
    /// The rest of an attribute list to skip before anything else is read.
    discard: Option<Discard>,
    /// The peer's input has ended.
    end: Option<InputEnd>,
    state: Lifecycle,
    /// When the peer last sent anything or took any reply.
    last_progress: Millis,
    /// The peer has sent something.
    had_input: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Open,
    /// Write what is queued, then close.
    Draining,
    /// Close at once, dropping queued replies (Postfix drops them after a timeout).
    Aborted,
}

enum Phase {
    /// Waiting for a request's first attribute.
    Request,
    /// The request name was read; waiting for the handler's attributes.
    Params(Handler),
    /// save_endp: `dummy` was written; the next byte must carry the descriptor.
    AwaitDescriptor { ttl_ms: Millis, endpoint: Box<[u8]>, property: Box<[u8]> },
    /// find_*: the hit reply was written; the peer's `dummy` releases the descriptor.
    AwaitDummy { handler: Handler, fd: OwnedFd },
    /// find_*: the descriptor is queued; the peer confirms with a trailing `dummy`.
    AwaitTrailingDummy { handler: Handler },
}

/// Skipping the remainder of an attribute list.
#[derive(Debug, Clone, Copy)]
struct Discard {
    /// The list stopped after a name whose value is still unread.
    value_pending: bool,
}

impl Connection {
    /// A new connection; `greeting` is written first (the announcement, or nothing in `-S` mode).
    pub fn new(max_string: usize, greeting: Vec<u8>, now: Millis) -> Self {
        let mut output = Output::default();
        output.push_bytes(&greeting);
        Self {
            input: AttrInput::new(max_string),
            output,
            phase: Phase::Request,
            discard: None,
            end: None,
            state: Lifecycle::Open,
            last_progress: now,
            had_input: false,
        }
    }

    pub fn read_mode(&self) -> ReadMode {
        if self.state != Lifecycle::Open || self.end.is_some() || self.output.pending_bytes() > OUTPUT_HIGH_WATER {
            return ReadMode::Paused;
        }
        let awaits_descriptor = matches!(self.phase, Phase::AwaitDescriptor { .. });
        if awaits_descriptor && self.discard.is_none() && self.input.is_empty() {
            ReadMode::Descriptor
        } else {
            ReadMode::Bytes
        }
    }

    /// True while the connection is in the middle of an exchange, when `ipc_timeout` applies.
    pub fn is_busy(&self) -> bool {
        !matches!(self.phase, Phase::Request)
            || self.discard.is_some()
            || !self.input.is_empty()
            || !self.output.is_empty()
    }

    /// True once the peer has sent something and everything it sent has been served: `-S` mode
    /// serves one burst of input and exits, as Postfix's stand-alone mode does.
    pub fn is_done_after_input(&self) -> bool {
        self.had_input && !self.is_busy()
    }

    pub fn last_progress(&self) -> Millis {
        self.last_progress
    }

    /// True once the connection should be closed: now, or after its replies were written.
    pub fn should_close(&self) -> bool {
        match self.state {
            Lifecycle::Open => false,
            Lifecycle::Draining => self.output.is_empty(),
            Lifecycle::Aborted => true,
        }
    }

    /// Reads protocol bytes with `read` (which behaves like `read(2)`), then serves what they complete.
    pub fn read_bytes(
        &mut self,
        service: &mut Service<'_>,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        // After a save_endp's `dummy`, the rest of its list may still be arriving (an attribute
        // after `property`): read it a byte at a time, so that no read reaches past the list's end
        // into the byte that carries the descriptor (a plain read would make the kernel drop it).
        let within_list = self.discard.is_some() && matches!(self.phase, Phase::AwaitDescriptor { .. });
        let room_limit = if within_list { 1 } else { usize::MAX };
        let n = match self.input.fill(|room: &mut [u8]| {
            let len = room.len().min(room_limit);
            read(&mut room[..len])
        })? {
            Ok(n) => n,
            Err(StringTooLong { limit }) => {
                service.warn(Warning::TooLong { limit });
                self.abort();
                return Ok(0);
            }
        };
        self.last_progress = service.now;
        self.had_input |= n > 0;
        if n == 0 {
            self.input_ended(service, InputEnd::Eof);
        } else {
            self.advance(service);
        }
        Ok(n)
    }

    /// Takes the outcome of receiving the descriptor a save_endp announced.
    pub fn descriptor_received(&mut self, service: &mut Service<'_>, received: Received) {
        self.last_progress = service.now;
        let Phase::AwaitDescriptor { ttl_ms, endpoint, property } = std::mem::replace(&mut self.phase, Phase::Request)
        else {
            unreachable!("a descriptor is only read while one is awaited");
        };
        let failure = match received {
            Received::Descriptor(fd) => {
                service.save_endp(ttl_ms, &endpoint, &property, fd);
                self.reply(|out| write_status(out, Status::Ok));
                return;
            }
            Received::NoDescriptor => FdFailure::NoDescriptor,
            Received::Several(n) => FdFailure::Several(n),
            Received::Truncated => FdFailure::Truncated,
            Received::Eof => {
                self.end = Some(InputEnd::Eof);
                FdFailure::EndOfInput
            }
        };
        self.fail_receive(service, failure);
        self.advance(service);
    }

    /// The peer's side is gone (EOF, or a read error, which Postfix treats alike).
    pub fn input_ended(&mut self, service: &mut Service<'_>, end: InputEnd) {
        self.end = Some(end);
        self.advance(service);
        if end == InputEnd::Timeout {
            // Postfix's stream refuses to write after a timeout, and then spins (Q1): we close.
            self.abort();
        } else if self.state == Lifecycle::Open {
            self.state = Lifecycle::Draining;
        }
    }

    /// `ipc_timeout` passed without progress in the middle of an exchange.
    pub fn timed_out(&mut self, service: &mut Service<'_>) {
        self.last_progress = service.now;
        if self.read_mode() == ReadMode::Descriptor {
            // Postfix polls for the descriptor outside its stream, so this timeout leaves the stream
            // usable: it answers status=2 and keeps serving the client.
            self.phase = Phase::Request;
            self.fail_receive(service, FdFailure::Timeout);
            return;
        }
        self.input_ended(service, InputEnd::Timeout);
    }

    /// Closes the connection without writing anything more.
    pub fn abort(&mut self) {
        self.state = Lifecycle::Aborted;
        self.output.clear();
    }

    /// Writes queued replies to `replies` and descriptors to `descriptors` (the same socket, except
    /// in `-S` mode, where replies go to stdout and descriptors over stdin) until done or full.
    pub fn flush(&mut self, service: &mut Service<'_>, replies: impl AsFd, descriptors: impl AsFd) {
        while let Some(chunk) = self.output.queue.front_mut() {
            let result = match chunk {
                // SIGPIPE is ignored (Node and the Rust runtime both do), so write() reports EPIPE.
                Chunk::Bytes { data, sent } => write(&replies, &data[*sent..]).map_err(io::Error::from).map(|n| {
                    *sent += n;
                    self.output.pending -= n;
                    *sent == data.len()
                }),
                Chunk::Descriptor { fd, .. } => send_descriptor(&descriptors, fd.as_fd()),
            };
            match result {
                Ok(true) => {
                    self.output.queue.pop_front();
                    self.last_progress = service.now;
                }
                Ok(false) => return,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.write_failed(service, &error);
                    return;
                }
            }
        }
    }

    /// The peer cannot take replies any more: report a descriptor that will not arrive, then close.
    fn write_failed(&mut self, service: &mut Service<'_>, error: &io::Error) {
        for chunk in self.output.queue.drain(..) {
            if let Chunk::Descriptor { handler, .. } = chunk {
                service.warn(Warning::CannotSend(handler, FdFailure::from_io(error)));
                if matches!(self.phase, Phase::AwaitTrailingDummy { .. }) {
                    self.phase = Phase::Request;
                }
            }
        }
        self.output.pending = 0;
        self.abort();
    }

    /// Serves everything the input allows, one step at a time.
    fn advance(&mut self, service: &mut Service<'_>) {
        while self.state == Lifecycle::Open && self.step(service) {}
    }

    /// One step; false when nothing more can happen until the peer does something.
    fn step(&mut self, service: &mut Service<'_>) -> bool {
        if let Some(discard) = self.discard {
            return self.skip_list(discard);
        }
        match &self.phase {
            Phase::Request => self.read_request_name(service),
            Phase::Params(handler) => self.read_params(service, *handler),
            Phase::AwaitDescriptor { .. } => self.descriptor_without_message(service),
            Phase::AwaitDummy { handler, .. } => self.read_first_dummy(service, *handler),
            Phase::AwaitTrailingDummy { handler } => self.read_trailing_dummy(service, *handler),
        }
    }

    fn read_request_name(&mut self, service: &mut Service<'_>) -> bool {
        let Some(scanned) = scan(&self.input, self.end, service, REQUEST_WISHES, true) else { return false };
        let (count, stop, consumed) = (scanned.count, scanned.stop, scanned.consumed);
        let name = scanned.str(0).unwrap_or_default().to_vec();
        self.input.consume(consumed);
        if count != 1 {
            // Not a request: Postfix answers nothing and goes on with whatever follows.
            return self.continue_unless_ended(stop);
        }
        match service.route(&name) {
            Some(handler) => self.phase = Phase::Params(handler),
            None => {
                service.warn(Warning::UnrecognizedRequest(name));
                self.reply(|out| write_status(out, Status::Bad));
                self.discard = Some(Discard { value_pending: false });
            }
        }
        true
    }

    fn read_params(&mut self, service: &mut Service<'_>, handler: Handler) -> bool {
        let Some(scanned) = scan(&self.input, self.end, service, handler.wishes(), false) else { return false };
        let (stop, consumed) = (scanned.stop, scanned.consumed);
        let request = Request::from_scan(handler, &scanned, service.plan);
        self.input.consume(consumed);
        self.phase = Phase::Request;
        match request {
            Request::SaveEndp { ttl_ms, endpoint, property } => {
                self.reply(write_dummy);
                self.phase = Phase::AwaitDescriptor { ttl_ms, endpoint, property };
            }
            Request::SaveDest { ttl_ms, dest, property, endpoint } => {
                service.save_dest(ttl_ms, &dest, &property, &endpoint);
                self.reply(|out| write_status(out, Status::Ok));
            }
            Request::Find { label } => self.find(service, handler, &label),
            Request::Status { limit } => {
                let snapshot = service.snapshot(limit);
                self.reply(|out| write_status_reply(out, Status::Ok, &snapshot));
            }
            Request::Bad => self.bad_request(service, handler),
        }
        self.discard = leftover_of(stop);
        self.continue_unless_ended(stop)
    }

    fn find(&mut self, service: &mut Service<'_>, handler: Handler, label: &[u8]) {
        let hit = match handler {
            Handler::FindEndp => service.find_endp(label),
            _ => service.find_dest(label),
        };
        match hit {
            Some(Hit { fd, dest_property, endp_property }) => {
                self.reply(|out| write_find_reply(out, handler, Status::Ok, &dest_property, &endp_property));
                self.phase = Phase::AwaitDummy { handler, fd };
            }
            None => self.reply(|out| write_find_reply(out, handler, Status::Fail, b"", b"")),
        }
    }

    fn bad_request(&mut self, service: &mut Service<'_>, handler: Handler) {
        service.warn(Warning::BadRequest(handler));
        match handler {
            Handler::SaveEndp | Handler::SaveDest | Handler::Status => self.reply(|out| write_status(out, Status::Bad)),
            Handler::FindEndp | Handler::FindDest => {
                self.reply(|out| write_find_reply(out, handler, Status::Bad, b"", b""));
            }
        }
    }

    /// Input is waiting where the descriptor's byte should be (or the input ended there).
    fn descriptor_without_message(&mut self, service: &mut Service<'_>) -> bool {
        if !self.input.is_empty() {
            // The peer sent data before (or instead of) the descriptor. Postfix's recvmsg would take
            // exactly one such byte and fail; do the same and read the rest as requests.
            self.input.consume_byte();
            self.phase = Phase::Request;
            self.fail_receive(service, FdFailure::NoDescriptor);
            return true;
        }
        if self.end.is_some() {
            self.phase = Phase::Request;
            self.fail_receive(service, FdFailure::EndOfInput);
        }
        false
    }

    fn fail_receive(&mut self, service: &mut Service<'_>, failure: FdFailure) {
        service.warn(Warning::CannotReceive(failure));
        self.reply(|out| write_status(out, Status::Fail));
    }

    fn read_first_dummy(&mut self, service: &mut Service<'_>, handler: Handler) -> bool {
        let Some(scanned) = scan(&self.input, self.end, service, DUMMY_WISHES, false) else { return false };
        let (count, stop) = (scanned.count, scanned.stop);
        self.input.consume(scanned.consumed);
        let Phase::AwaitDummy { fd, .. } = std::mem::replace(&mut self.phase, Phase::Request) else {
            unreachable!("called in the AwaitDummy phase");
        };
        if count == 1 {
            // No discard here: Postfix sends the descriptor outside its stream buffer, so anything
            // after the dummy list is still read as the trailing dummy.
            self.output.push_descriptor(fd, handler);
            self.phase = Phase::AwaitTrailingDummy { handler };
        } else {
            service.warn(Warning::CannotSend(handler, self.dummy_failure()));
        }
        self.continue_unless_ended(stop)
    }

    fn read_trailing_dummy(&mut self, service: &mut Service<'_>, handler: Handler) -> bool {
        let Some(scanned) = scan(&self.input, self.end, service, DUMMY_WISHES, false) else { return false };
        let (count, stop) = (scanned.count, scanned.stop);
        self.input.consume(scanned.consumed);
        self.phase = Phase::Request;
        if count != 1 {
            service.warn(Warning::CannotSend(handler, self.dummy_failure()));
        }
        self.continue_unless_ended(stop)
    }

    fn dummy_failure(&self) -> FdFailure {
        match self.end {
            Some(InputEnd::Eof) => FdFailure::EndOfInput,
            Some(InputEnd::Timeout) => FdFailure::Timeout,
            None => FdFailure::NoDummy,
        }
    }

    /// Skips the rest of an attribute list, a string at a time (Postfix drops its read buffer when it
    /// writes a reply; skipping to the list terminator is the same when a request arrives whole).
    fn skip_list(&mut self, mut discard: Discard) -> bool {
        let Some(string) = self.input.string(0) else {
            if self.end.is_some() {
                self.discard = None;
                return true;
            }
            return false;
        };
        let ends_list = !discard.value_pending && string.is_empty();
        discard.value_pending = !discard.value_pending && !ends_list;
        self.input.consume(1);
        self.discard = (!ends_list).then_some(discard);
        true
    }

    fn continue_unless_ended(&mut self, stop: Stop) -> bool {
        if stop == Stop::EndOfInput {
            self.state = Lifecycle::Draining;
            return false;
        }
        true
    }

    fn reply(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.output.push_with(write);
    }
}

/// A request whose attributes were read, copied out of the input buffer.
enum Request {
    SaveEndp {
        ttl_ms: Millis,
        endpoint: Box<[u8]>,
        property: Box<[u8]>,
    },
    SaveDest {
        ttl_ms: Millis,
        dest: Box<[u8]>,
        property: Box<[u8]>,
        endpoint: Box<[u8]>,
    },
    Find {
        label: Box<[u8]>,
    },
    Status {
        limit: usize,
    },
    /// Too few attributes, a malformed or non-positive ttl: Postfix's "bad or missing request parameter".
    Bad,
}

impl Request {
    fn from_scan(handler: Handler, scanned: &Scanned<'_>, plan: &super::plan::Plan) -> Request {
        if scanned.count != handler.wishes().len() as i32 {
            return Request::Bad;
        }
        let text = |index| Box::<[u8]>::from(scanned.str(index).unwrap_or_default());
        let ttl_ms = scanned.int(0).and_then(|ttl| plan.effective_ttl(ttl));
        match (handler, ttl_ms) {
            (Handler::SaveEndp, Some(ttl_ms)) => Request::SaveEndp { ttl_ms, endpoint: text(1), property: text(2) },
            (Handler::SaveDest, Some(ttl_ms)) => {
                Request::SaveDest { ttl_ms, dest: text(1), property: text(2), endpoint: text(3) }
            }
            (Handler::FindEndp | Handler::FindDest, _) => Request::Find { label: text(0) },
            (Handler::SaveEndp | Handler::SaveDest, None) => Request::Bad,
            (Handler::Status, _) => Request::Status { limit: scanned.int(0).unwrap_or_default() as usize },
        }
    }
}

/// Runs a STRICT scan and reports its warnings; `None` while more input is needed.
fn scan<'s>(
    input: &'s AttrInput,
    end: Option<InputEnd>,
    service: &mut Service<'_>,
    wishes: &[Wish],
    more: bool,
) -> Option<Scanned<'s>> {
    match scan_strict(input, wishes, more, end) {
        Scan::NeedMore => None,
        Scan::Done(scanned) => {
            for warning in &scanned.warnings {
                service.warn(Warning::Scan(warning.clone()));
            }
            Some(scanned)
        }
    }
}

/// What remains of a list after a scan stopped where it did.
fn leftover_of(stop: Stop) -> Option<Discard> {
    match stop {
        Stop::Terminator | Stop::EndOfInput => None,
        Stop::UnexpectedName => Some(Discard { value_pending: true }),
        Stop::BeforeTerminator | Stop::Malformed => Some(Discard { value_pending: false }),
    }
}

fn write_find_reply(out: &mut Vec<u8>, handler: Handler, status: Status, dest_property: &[u8], endp_property: &[u8]) {
    match handler {
        Handler::FindDest => write_find_dest_reply(out, status, dest_property, endp_property),
        _ => write_find_endp_reply(out, status, endp_property),
    }
}

/// Replies and descriptors waiting to be written, in order.
#[derive(Default)]
struct Output {
    queue: VecDeque<Chunk>,
    /// Unsent reply bytes.
    pending: usize,
}

enum Chunk {
    Bytes { data: Vec<u8>, sent: usize },
    Descriptor { fd: OwnedFd, handler: Handler },
}

impl Output {
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let before = match self.queue.back_mut() {
            Some(Chunk::Bytes { data, .. }) => data.len(),
            _ => {
                self.queue.push_back(Chunk::Bytes { data: Vec::new(), sent: 0 });
                0
            }
        };
        let Some(Chunk::Bytes { data, .. }) = self.queue.back_mut() else { unreachable!("just pushed") };
        write(data);
        self.pending += data.len() - before;
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.push_with(|out| out.extend_from_slice(bytes));
        }
    }

    fn push_descriptor(&mut self, fd: OwnedFd, handler: Handler) {
        self.queue.push_back(Chunk::Descriptor { fd, handler });
    }

    fn pending_bytes(&self) -> usize {
        self.pending
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.pending = 0;
    }
}

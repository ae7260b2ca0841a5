//! The server's single thread: one epoll set for the listening sockets, every client connection and
//! the command channel, and the timers of the cache and of stalled clients.
//!
//! Everything here is non-blocking and edge-triggered. A client is served until it has nothing more
//! for us or has used its turn, so a flooding client cannot starve the others and a stalled one
//! holds nothing but its own state. The loop sleeps until the next event or the next due timer,
//! never on a fixed tick. Events for the embedder are collected during an iteration and handed
//! over once, at its end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::connection::{Connection, ReadMode};
use super::events::{Event, strerror};
use super::listener::Listener;
use super::plan::Plan;
use super::service::Service;
use super::stats::Counters;
use crate::cache::{Cache, Clock, Expired, Millis, MonotonicClock};
use crate::codec::InputEnd;
use crate::fdpass::receive_descriptor;
use crate::protocol::write_announcement;

/// Requests from the embedder's thread.
pub enum Command {
    Stop,
}

pub type EventSink = Box<dyn FnMut(Vec<Event>) + Send>;

/// Reads (or descriptor receives) one client gets before the others have their turn.
const TURN: usize = 16;
/// How soon to retry accept() after it failed for lack of descriptors or memory.
const ACCEPT_RETRY_MS: Millis = 100;

pub const WAKER: Token = Token(0);

/// What a token stands for: the low bits say the kind, the rest is an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Waker,
    Listener(usize),
    Client(usize),
}

impl Source {
    const KIND_BITS: u32 = 2;

    fn token(self) -> Token {
        match self {
            Source::Waker => WAKER,
            Source::Listener(i) => Token((i << Self::KIND_BITS) | 1),
            Source::Client(i) => Token((i << Self::KIND_BITS) | 2),
        }
    }

    fn of(token: Token) -> Option<Source> {
        let index = token.0 >> Self::KIND_BITS;
        match token.0 & ((1 << Self::KIND_BITS) - 1) {
            0 if token == WAKER => Some(Source::Waker),
            1 => Some(Source::Listener(index)),
            2 => Some(Source::Client(index)),
            _ => None,
        }
    }
}

struct Client {
    stream: UnixStream,
    conn: Connection,
    /// The socket may have unread input (edge-triggered: cleared only when a read comes up short).
    readable: bool,
    /// A timeout check is queued for this client.
    timer_armed: bool,
}

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<Listener>,
    clients: Slab<Client>,
    cache: Cache<OwnedFd>,
    plan: Plan,
    counters: Arc<Mutex<Counters>>,
    clock: MonotonicClock,
    commands: Receiver<Command>,
    sink: EventSink,
    pending_events: Vec<Event>,
    /// Clients to check for `ipc_timeout`, earliest first; entries are re-checked, not trusted.
    timeouts: BinaryHeap<Reverse<(Millis, usize)>>,
    /// Clients whose turn ended with work left.
    unfinished: Vec<usize>,
    accept_retry_at: Option<Millis>,
    expired: Vec<Expired<OwnedFd>>,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        listeners: Vec<Listener>,
        plan: Plan,
        counters: Arc<Mutex<Counters>>,
        commands: Receiver<Command>,
        sink: EventSink,
    ) -> io::Result<Self> {
        let mut event_loop = Self {
            poll,
            listeners,
            clients: Slab::new(),
            cache: Cache::new(),
            plan,
            counters,
            clock: MonotonicClock::new(),
            commands,
            sink,
            pending_events: Vec::new(),
            timeouts: BinaryHeap::new(),
            unfinished: Vec::new(),
            accept_retry_at: None,
            expired: Vec::new(),
        };
        for (index, listener) in event_loop.listeners.iter_mut().enumerate() {
            event_loop.poll.registry().register(
                listener.socket(),
                Source::Listener(index).token(),
                Interest::READABLE,
            )?;
        }
        Ok(event_loop)
    }

    /// Serves until told to stop; then closes every client, every cached connection and the listeners.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.poll_timeout();
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            let now = self.clock.now();
            for event in events.iter() {
                match Source::of(event.token()) {
                    Some(Source::Waker) if self.stop_requested() => {
                        self.shut_down();
                        return Ok(());
                    }
                    Some(Source::Waker) => {}
                    Some(Source::Listener(index)) => self.accept(index, now),
                    Some(Source::Client(key)) => {
                        if let Some(client) = self.clients.get_mut(key) {
                            client.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
                            self.serve(key, now);
                        }
                    }
                    None => {}
                }
            }
            self.resume_unfinished(now);
            self.run_timers(now);
            self.deliver_events();
        }
    }

    fn stop_requested(&mut self) -> bool {
        self.commands.try_iter().any(|command| matches!(command, Command::Stop))
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.unfinished.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadlines =
            [self.cache.next_deadline(), self.timeouts.peek().map(|Reverse((at, _))| *at), self.accept_retry_at];
        let next = deadlines.into_iter().flatten().min()?;
        let now = self.clock.now();
        // Round up, so a wake-up never comes before the deadline it is for.
        Some(Duration::from_millis(next.saturating_sub(now)))
    }

    fn accept(&mut self, index: usize, now: Millis) {
        loop {
            let accepted = self.listeners[index].socket().accept();
            match accepted {
                Ok((stream, _)) => self.add_client(stream, now),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if is_transient_accept_error(&error) => continue,
                Err(error) => {
                    // Out of descriptors or memory: the pending connection stays queued, and with
                    // edge-triggered readiness nobody would tell us again, so retry on a timer.
                    self.pending_events.push(Event::Warning(format!("accept connection: {}", strerror(&error))));
                    self.accept_retry_at = Some(now + ACCEPT_RETRY_MS);
                    return;
                }
            }
        }
    }

    fn add_client(&mut self, mut stream: UnixStream, now: Millis) {
        let entry = self.clients.vacant_entry();
        let key = entry.key();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(error) = self.poll.registry().register(&mut stream, Source::Client(key).token(), interest) {
            self.pending_events.push(Event::Warning(format!("register connection: {}", strerror(&error))));
            return;
        }
        let mut greeting = Vec::new();
        write_announcement(&mut greeting);
        let conn = Connection::new(self.plan.max_string, greeting, now);
        entry.insert(Client { stream, conn, readable: false, timer_armed: false });
        self.pending_events.push(Event::Clients(self.clients.len()));
        self.serve(key, now);
    }

    /// Gives one client its turn: write what is queued, read and serve what arrived, write again.
    fn serve(&mut self, key: usize, now: Millis) {
        let Self { clients, cache, plan, counters, pending_events, .. } = self;
        let client = &mut clients[key];
        let mut service = Service { cache, plan, counters, events: pending_events, now };
        let mut turns = 0;
        loop {
            client.conn.flush(&mut service, &client.stream);
            if !client.readable || turns == TURN {
                break;
            }
            match client.conn.read_mode() {
                ReadMode::Paused => break,
                ReadMode::Bytes => {
                    let (stream, mut short) = (&client.stream, false);
                    let read = client.conn.read_bytes(&mut service, |room| {
                        let n = (&*stream).read(room)?;
                        short = n < room.len();
                        Ok(n)
                    });
                    match read {
                        // A short read drained the socket; epoll reports anything arriving later.
                        Ok(_) => client.readable = !short,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => client.readable = false,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => read_failed(&mut client.conn, &mut service),
                    }
                }
                ReadMode::Descriptor => match receive_descriptor(&client.stream) {
                    Ok(received) => client.conn.descriptor_received(&mut service, received),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => client.readable = false,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => read_failed(&mut client.conn, &mut service),
                },
            }
            turns += 1;
        }
        let unfinished = turns == TURN && client.readable && client.conn.read_mode() != ReadMode::Paused;
        let close = client.conn.should_close();
        let arm_timer = !close && client.conn.is_busy() && !client.timer_armed;
        if arm_timer {
            client.timer_armed = true;
            let deadline = client.conn.last_progress() + plan.ipc_timeout_ms;
            self.timeouts.push(Reverse((deadline, key)));
        }
        if unfinished {
            self.unfinished.push(key);
        }
        if close {
            self.close_client(key);
        }
    }

    fn resume_unfinished(&mut self, now: Millis) {
        for key in std::mem::take(&mut self.unfinished) {
            if self.clients.contains(key) {
                self.serve(key, now);
            }
        }
    }

    fn close_client(&mut self, key: usize) {
        let mut client = self.clients.remove(key);
        let _ = self.poll.registry().deregister(&mut client.stream);
        self.pending_events.push(Event::Clients(self.clients.len()));
    }

    fn run_timers(&mut self, now: Millis) {
        // Dropping an expired session closes its descriptor.
        self.cache.expire(now, &mut self.expired);
        self.expired.clear();
        self.check_timeouts(now);
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
            for index in 0..self.listeners.len() {
                self.accept(index, now);
            }
        }
    }

    fn check_timeouts(&mut self, now: Millis) {
        while let Some(&Reverse((deadline, key))) = self.timeouts.peek() {
            if deadline > now {
                return;
            }
            self.timeouts.pop();
            let timeout = self.plan.ipc_timeout_ms;
            let Some(client) = self.clients.get_mut(key) else { continue };
            client.timer_armed = false;
            if !client.conn.is_busy() {
                continue;
            }
            let due = client.conn.last_progress() + timeout;
            if due > now {
                client.timer_armed = true;
                self.timeouts.push(Reverse((due, key)));
                continue;
            }
            let Self { clients, cache, plan, counters, pending_events, .. } = self;
            let client = &mut clients[key];
            let mut service = Service { cache, plan, counters, events: pending_events, now };
            client.conn.timed_out(&mut service);
            self.serve(key, now);
        }
    }

    fn deliver_events(&mut self) {
        if !self.pending_events.is_empty() {
            (self.sink)(std::mem::take(&mut self.pending_events));
        }
    }

    fn shut_down(&mut self) {
        for key in self.clients.iter().map(|(key, _)| key).collect::<Vec<_>>() {
            self.close_client(key);
        }
        drop(self.cache.drain());
        self.listeners.clear();
        self.deliver_events();
    }
}

/// Postfix treats a read error as end of input, after which its stream writes nothing.
fn read_failed(conn: &mut Connection, service: &mut Service<'_>) {
    conn.input_ended(service, InputEnd::Eof);
    conn.abort();
}

/// accept() failures that concern only the connection being accepted (Postfix's sane_accept list).
fn is_transient_accept_error(error: &io::Error) -> bool {
    use rustix::io::Errno;
    Errno::from_io_error(error).is_some_and(|errno| {
        [
            Errno::AGAIN,
            Errno::CONNABORTED,
            Errno::CONNRESET,
            Errno::INTR,
            Errno::PROTO,
            Errno::NETDOWN,
            Errno::HOSTDOWN,
            Errno::HOSTUNREACH,
            Errno::NETUNREACH,
            Errno::NOPROTOOPT,
            Errno::OPNOTSUPP,
        ]
        .contains(&errno)
    })
}

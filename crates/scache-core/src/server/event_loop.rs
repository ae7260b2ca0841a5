//! The server's single thread: one epoll set for the listening sockets, every client connection,
//! master's status channel and the command channel, plus the timers of the cache and of stalled
//! clients.
//!
//! Everything here is non-blocking and edge-triggered. A client is served until it has nothing more
//! for us or has used its turn, so a flooding client cannot starve the others and a stalled one
//! holds nothing but its own state. The loop sleeps until the next event or the next due timer,
//! never on a fixed tick. Events for the embedder are collected during an iteration and handed
//! over once, at its end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::io::Errno;
use slab::Slab;

use super::connection::{Connection, ReadMode};
use super::events::{Event, strerror};
use super::listener::Listener;
use super::master::MasterChannel;
use super::plan::Plan;
use super::service::Eviction;
use super::service::Service;
use super::stats::Counters;
use super::tokens::Source;
use crate::cache::{Cache, Clock, Expired, Millis, MonotonicClock};
use crate::codec::InputEnd;
use crate::fdpass::receive_descriptor;
use crate::protocol::write_announcement;

/// Requests from the embedder's thread.
pub enum Command {
    Stop,
}

pub type EventSink = Box<dyn FnMut(Vec<Event>) + Send>;

/// `-S` mode: one client on the process's standard input and output (spec §7.9).
pub struct Stdio {
    /// Requests are read, and descriptors passed, here (it must be a socket for descriptors).
    pub input: OwnedFd,
    /// Replies are written here.
    pub output: OwnedFd,
}

/// Everything the loop serves.
pub struct Setup {
    pub plan: Plan,
    pub listeners: Vec<Listener>,
    pub master: Option<MasterChannel>,
    pub stdio: Option<Stdio>,
}

/// Reads (or descriptor receives) one client gets before the others have their turn.
const TURN: usize = 16;
/// How soon to retry accept() after it failed for lack of descriptors or memory.
const ACCEPT_RETRY_MS: Millis = 100;

pub const WAKER: Token = Token(0);

struct Client {
    /// Requests come in here, and descriptors travel here in both directions.
    socket: OwnedFd,
    /// Replies go here when it is not `socket` (`-S` mode: stdout).
    output: Option<OwnedFd>,
    conn: Connection,
    /// The socket may have unread input (edge-triggered: cleared only when a read comes up short).
    readable: bool,
    /// epoll reported the peer's end of input: read until it shows, even after a short read,
    /// because no further event will come for it.
    hung_up: bool,
    /// A timeout check is queued for this client.
    timer_armed: bool,
    /// The `-S` client: when it is done, so is the server.
    stdio: bool,
}

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<Listener>,
    clients: Slab<Client>,
    cache: Cache<OwnedFd>,
    plan: Plan,
    master: Option<MasterChannel>,
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
    /// master(8) was told "taken" in this iteration and must hear "available" at its end.
    taken: bool,
    /// Loop iterations so far, for the embedder's watchdog.
    heartbeat: Arc<AtomicU64>,
}

impl EventLoop {
    pub fn new(
        poll: Poll,
        setup: Setup,
        counters: Arc<Mutex<Counters>>,
        heartbeat: Arc<AtomicU64>,
        commands: Receiver<Command>,
        sink: EventSink,
    ) -> io::Result<Self> {
        let Setup { plan, listeners, master, stdio } = setup;
        let mut event_loop = Self {
            poll,
            listeners,
            clients: Slab::new(),
            cache: Cache::new(),
            plan,
            master,
            counters,
            clock: MonotonicClock::new(),
            commands,
            sink,
            pending_events: Vec::new(),
            timeouts: BinaryHeap::new(),
            unfinished: Vec::new(),
            accept_retry_at: None,
            expired: Vec::new(),
            taken: false,
            heartbeat,
        };
        let registry = event_loop.poll.registry();
        for (index, listener) in event_loop.listeners.iter_mut().enumerate() {
            registry.register(listener.socket(), Source::Listener(index).token(), Interest::READABLE)?;
        }
        if let Some(master) = &event_loop.master {
            registry.register(
                &mut SourceFd(&master.as_fd().as_raw_fd()),
                Source::Master.token(),
                Interest::READABLE,
            )?;
        }
        if let Some(Stdio { input, output }) = stdio {
            event_loop.add_stdio_client(input, output)?;
        }
        Ok(event_loop)
    }

    /// Serves until told to stop; then closes every client, every cached connection and the listeners.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut active = false;
        loop {
            self.wait(&mut events, active)?;
            self.heartbeat.fetch_add(1, Ordering::Relaxed);
            let now = self.clock.now();
            active = events.iter().any(|event| matches!(Source::of(event.token()), Some(Source::Client(_))));
            for event in events.iter() {
                match Source::of(event.token()) {
                    Some(Source::Waker) if self.stop_requested() => {
                        self.shut_down();
                        return Ok(());
                    }
                    Some(Source::Listener(index)) => self.accept(index, now),
                    Some(Source::Client(key)) => {
                        if let Some(client) = self.clients.get_mut(key) {
                            client.hung_up |= event.is_read_closed() || event.is_error();
                            client.readable |= event.is_readable() || client.hung_up;
                            self.serve(key, now);
                        }
                    }
                    Some(Source::Master) => self.master_gone(),
                    // Readable alone is the peer talking (an SMTP server's 421, say): leave it to the
                    // client that takes the connection. Only a hang-up makes it useless.
                    Some(Source::Cached(id)) if event.is_read_closed() || event.is_error() => {
                        self.service(now).peer_hung_up(id);
                    }
                    Some(Source::Waker | Source::Cached(_)) | None => {}
                }
            }
            self.resume_unfinished(now);
            self.run_timers(now);
            self.report_available();
            self.deliver_events();
        }
    }

    /// Waits for events. Right after serving clients, it first polls without sleeping for up to
    /// `busy_poll`: a client in the middle of an exchange answers within microseconds, and waking a
    /// sleeping thread on another CPU costs more than that (the client's reply would wait for it
    /// twice per descriptor). An idle server never spins, so it still wakes only for due timers.
    fn wait(&mut self, events: &mut Events, active: bool) -> io::Result<()> {
        let timeout = self.poll_timeout();
        if active && !self.plan.busy_poll.is_zero() && timeout != Some(Duration::ZERO) {
            let until = Instant::now() + self.plan.busy_poll;
            loop {
                poll_once(&mut self.poll, events, Some(Duration::ZERO))?;
                if !events.is_empty() || Instant::now() >= until {
                    break;
                }
                std::hint::spin_loop();
            }
            if !events.is_empty() {
                return Ok(());
            }
        }
        let timeout = self.poll_timeout();
        poll_once(&mut self.poll, events, timeout)
    }

    fn stop_requested(&mut self) -> bool {
        self.commands.try_iter().any(|command| matches!(command, Command::Stop))
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.unfinished.is_empty() {
            return Some(Duration::ZERO);
        }
        let timeout = self.timeouts.peek().map(|Reverse((at, _))| *at);
        let next = [self.cache.next_deadline(), timeout, self.accept_retry_at].into_iter().flatten().min()?;
        Some(Duration::from_millis(next.saturating_sub(self.clock.now())))
    }

    fn accept(&mut self, index: usize, now: Millis) {
        loop {
            match self.listeners[index].socket().accept() {
                Ok((stream, _)) => self.add_client(stream.into(), now),
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

    fn add_client(&mut self, socket: OwnedFd, now: Millis) {
        let entry = self.clients.vacant_entry();
        let key = entry.key();
        let token = Source::Client(key).token();
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(error) = self.poll.registry().register(&mut SourceFd(&socket.as_raw_fd()), token, interest) {
            self.pending_events.push(Event::Warning(format!("register connection: {}", strerror(&error))));
            return;
        }
        let mut greeting = Vec::new();
        write_announcement(&mut greeting);
        let conn = Connection::new(self.plan.max_string, greeting, now);
        entry.insert(Client {
            socket,
            output: None,
            conn,
            readable: false,
            hung_up: false,
            timer_armed: false,
            stdio: false,
        });
        self.pending_events.push(Event::Clients(self.clients.len()));
        self.serve(key, now);
    }

    /// The `-S` client: no announcement, replies to a separate output.
    fn add_stdio_client(&mut self, input: OwnedFd, output: OwnedFd) -> io::Result<()> {
        // The loop must never block on them; Postfix's -S would, but it serves nobody else.
        for fd in [&input, &output] {
            let flags = rustix::fs::fcntl_getfl(fd)?;
            rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        }
        let entry = self.clients.vacant_entry();
        let key = entry.key();
        let token = Source::Client(key).token();
        let registry = self.poll.registry();
        // Regular files cannot be polled (EPERM), but they never block either.
        let readable = match registry.register(&mut SourceFd(&input.as_raw_fd()), token, Interest::READABLE) {
            Ok(()) => false,
            Err(error) if error.raw_os_error() == Some(Errno::PERM.raw_os_error()) => true,
            Err(error) => return Err(error),
        };
        match registry.register(&mut SourceFd(&output.as_raw_fd()), token, Interest::WRITABLE) {
            Err(error) if error.raw_os_error() != Some(Errno::PERM.raw_os_error()) => return Err(error),
            _ => {}
        }
        let conn = Connection::new(self.plan.max_string, Vec::new(), self.clock.now());
        entry.insert(Client {
            socket: input,
            output: Some(output),
            conn,
            readable,
            hung_up: false,
            timer_armed: false,
            stdio: true,
        });
        if readable {
            self.unfinished.push(key);
        }
        Ok(())
    }

    /// Gives one client its turn: write what is queued, read and serve what arrived, write again.
    fn serve(&mut self, key: usize, now: Millis) {
        let Self { poll, clients, cache, plan, counters, pending_events, master, taken, .. } = self;
        let client = &mut clients[key];
        let registry = Some(poll.registry());
        let mut service = Service { cache, plan, counters, events: pending_events, now, registry };
        let mut turns = 0;
        loop {
            let replies = client.output.as_ref().unwrap_or(&client.socket);
            client.conn.flush(&mut service, replies, &client.socket);
            if !client.readable || turns == TURN {
                break;
            }
            let got_input = match client.conn.read_mode() {
                ReadMode::Paused => break,
                ReadMode::Bytes => {
                    let (socket, mut short) = (&client.socket, false);
                    let read = client.conn.read_bytes(&mut service, |room| {
                        let room_len = room.len();
                        let n = rustix::io::read(socket, room)?;
                        short = n < room_len;
                        Ok(n)
                    });
                    match read {
                        // A short read drained the socket, and epoll reports anything arriving later
                        // — except an end of input it has already reported.
                        Ok(n) => {
                            client.readable = !short || (client.hung_up && n > 0);
                            n > 0
                        }
                        Err(error) => read_failed(client, &mut service, &error),
                    }
                }
                ReadMode::Descriptor => match receive_descriptor(&client.socket) {
                    Ok(received) => {
                        client.conn.descriptor_received(&mut service, received);
                        true
                    }
                    Err(error) => read_failed(client, &mut service, &error),
                },
            };
            if got_input && !*taken {
                // Postfix brackets the handling of client input with these records (spec §7.4).
                *taken = true;
                if let Some(master) = master {
                    master.taken();
                }
            }
            turns += 1;
        }
        let unfinished = turns == TURN && client.readable && client.conn.read_mode() != ReadMode::Paused;
        let close = client.conn.should_close() || (client.stdio && client.conn.is_done_after_input());
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
            if let Some(client) = self.clients.get_mut(key) {
                client.readable = true;
                self.serve(key, now);
            }
        }
    }

    fn close_client(&mut self, key: usize) {
        let client = self.clients.remove(key);
        // Closing the descriptors removes them from the epoll set.
        drop(client.socket);
        self.pending_events.push(if client.stdio { Event::Finished } else { Event::Clients(self.clients.len()) });
    }

    fn master_gone(&mut self) {
        if let Some(master) = self.master.take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&master.as_fd().as_raw_fd()));
            self.pending_events.push(Event::MasterGone);
        }
    }

    fn report_available(&mut self) {
        if std::mem::take(&mut self.taken) && self.master.as_ref().is_some_and(|master| master.available().is_err()) {
            self.master_gone();
        }
    }

    /// The cache operations' view of the loop, for work that belongs to no client.
    fn service(&mut self, now: Millis) -> Service<'_> {
        let Self { poll, cache, plan, counters, pending_events, .. } = self;
        Service { cache, plan, counters, events: pending_events, now, registry: Some(poll.registry()) }
    }

    fn run_timers(&mut self, now: Millis) {
        self.cache.expire(now, &mut self.expired);
        let mut expired = std::mem::take(&mut self.expired);
        let mut service = self.service(now);
        // Dropping an expired session closes its descriptor.
        expired.drain(..).for_each(|session| service.evict(session, Eviction::Expired));
        self.expired = expired;
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
            let Self { poll, clients, cache, plan, counters, pending_events, .. } = self;
            let client = &mut clients[key];
            let registry = Some(poll.registry());
            let mut service = Service { cache, plan, counters, events: pending_events, now, registry };
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

fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(error) if error.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        other => other,
    }
}

/// A read failed: anything but "try again" is the end of the client's input. Postfix treats a read
/// error like end-of-input, after which its stream writes nothing more. Returns whether input came.
fn read_failed(client: &mut Client, service: &mut Service<'_>, error: &io::Error) -> bool {
    match error.kind() {
        io::ErrorKind::WouldBlock => client.readable = false,
        io::ErrorKind::Interrupted => {}
        _ => {
            client.conn.input_ended(service, InputEnd::Eof);
            client.conn.abort();
        }
    }
    false
}

/// accept() failures that concern only the connection being accepted (Postfix's sane_accept list).
fn is_transient_accept_error(error: &io::Error) -> bool {
    Errno::from_io_error(error).is_some_and(|errno| {
        [
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

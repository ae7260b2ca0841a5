//! The cache server: a thread running the event loop, and the handle its embedder holds.
//!
//! The embedder builds a [`Plan`] (routing and policy) and the listening sockets, starts the server,
//! receives [`Event`] batches on the loop thread through its sink, reads statistics at any time and
//! stops the server, which closes every client and every cached connection before `stop` returns.

mod connection;
mod event_loop;
mod events;
mod listener;
mod master;
mod plan;
mod service;
mod stats;

pub use connection::{Connection, ReadMode};
pub use event_loop::{Setup, Stdio};
pub use events::{Event, FdFailure, Warning, strerror};
pub use listener::{ListenError, Listener};
pub use master::{MasterChannel, status_record};
pub use plan::Plan;
pub use service::{Hit, Service};
pub use stats::Counters;

use std::io;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::{Poll, Waker};

use event_loop::{Command, EventLoop, WAKER};

pub struct Server {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    counters: Arc<Mutex<Counters>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Starts serving on a new thread. `sink` receives event batches on that thread.
    pub fn start(setup: Setup, sink: impl FnMut(Vec<Event>) + Send + 'static) -> io::Result<Server> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let counters = Arc::new(Mutex::new(Counters::default()));
        let (commands, receiver) = mpsc::channel();
        let event_loop = EventLoop::new(poll, setup, counters.clone(), receiver, Box::new(sink))?;
        let thread = std::thread::Builder::new().name("scache-loop".into()).spawn(move || event_loop.run())?;
        Ok(Server { commands, waker, counters, thread: Some(thread) })
    }

    /// The statistics of the current interval; `reset` starts a new interval.
    pub fn counters(&self, reset: bool) -> Counters {
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if reset { counters.take() } else { *counters }
    }

    /// Asks the loop to stop without waiting for it.
    pub fn request_stop(&self) {
        if self.commands.send(Command::Stop).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Stops the loop and waits until every descriptor it held is closed.
    pub fn stop(&mut self) -> io::Result<()> {
        self.request_stop();
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod connection_tests;

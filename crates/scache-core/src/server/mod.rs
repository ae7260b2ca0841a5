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
mod snapshot;
mod stats;
mod tokens;

pub use connection::{Connection, ReadMode};
pub use event_loop::{Setup, Stdio};
pub use events::{Event, FdFailure, Observation, Warning, strerror};
pub use listener::{ListenError, Listener};
pub use master::MasterChannel;
pub use plan::Plan;
pub use service::{Eviction, Hit, Service};
pub use stats::Counters;

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use mio::{Poll, Waker};

use event_loop::{Command, EventLoop, EventSink, WAKER};

pub struct Server {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    counters: Arc<Mutex<Counters>>,
    heartbeat: Arc<AtomicU64>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Starts serving on a new thread. `sink` receives event batches on that thread.
    pub fn start(setup: Setup, sink: impl FnMut(Vec<Event>) + Send + 'static) -> io::Result<Server> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let counters = Arc::new(Mutex::new(Counters::default()));
        let (commands, receiver) = mpsc::channel();
        let heartbeat = Arc::new(AtomicU64::new(0));
        // Shared, so that a panic that tears the loop down can still be reported.
        let sink = Arc::new(Mutex::new(sink));
        let loop_sink = sink.clone();
        let deliver: EventSink = Box::new(move |events| lock(&loop_sink)(events));
        let event_loop = EventLoop::new(poll, setup, counters.clone(), heartbeat.clone(), receiver, deliver)?;
        let thread =
            std::thread::Builder::new().name("scache-loop".into()).spawn(move || {
                match panic::catch_unwind(AssertUnwindSafe(|| event_loop.run())) {
                    Ok(result) => result,
                    Err(payload) => {
                        let message = panic_message(payload.as_ref());
                        lock(&sink)(vec![Event::Panicked(message.clone())]);
                        Err(io::Error::other(message))
                    }
                }
            })?;
        Ok(Server { commands, waker, counters, heartbeat, thread: Some(thread) })
    }

    /// The statistics of the current interval; `reset` starts a new interval.
    pub fn counters(&self, reset: bool) -> Counters {
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if reset { counters.take() } else { *counters }
    }

    /// How many times the loop has gone round: a watchdog pokes it and checks that this moves.
    pub fn heartbeat(&self) -> u64 {
        self.heartbeat.load(Ordering::Relaxed)
    }

    /// Makes the loop go round once, even when it has nothing to do.
    pub fn poke(&self) {
        let _ = self.waker.wake();
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

fn lock<T: ?Sized>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-text payload".to_owned())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod connection_tests;

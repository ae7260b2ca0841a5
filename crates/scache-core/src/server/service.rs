//! The cache operations behind each request, with their statistics (Postfix's scache.c service
//! functions, minus the protocol, which lives in the connection state machine).
//!
//! Beyond Postfix: a cached connection is watched in the loop's epoll set, so that one whose peer
//! hangs up is closed at once rather than handed out; and the number cached is bounded, globally
//! and per endpoint, the oldest making room for the newest. A watched descriptor is always removed
//! from the epoll set before it leaves the cache: epoll forgets a registration only when the last
//! descriptor of the open file closes, and the client that receives it keeps one.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use mio::unix::SourceFd;
use mio::{Interest, Registry};

use super::events::{Event, Observation, Warning};
use super::plan::Plan;
use super::stats::Counters;
use super::tokens::Source;
use crate::cache::{Binding, Cache, Expired, Millis, SessionId};
use crate::protocol::Handler;

/// Everything a connection may touch while it serves one request.
pub struct Service<'a> {
    pub cache: &'a mut Cache<OwnedFd>,
    pub plan: &'a Plan,
    pub counters: &'a Mutex<Counters>,
    pub events: &'a mut Vec<Event>,
    pub now: Millis,
    /// The loop's epoll registry, for watching cached connections (none in unit tests).
    pub registry: Option<&'a Registry>,
}

/// A found connection and the properties that go back with it.
pub struct Hit {
    pub fd: OwnedFd,
    pub dest_property: Box<[u8]>,
    pub endp_property: Box<[u8]>,
}

/// Why a cached connection was closed before anyone asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Expired,
    DeadPeer,
    Limit,
}

impl Service<'_> {
    pub fn save_endp(&mut self, ttl_ms: Millis, endpoint: &[u8], property: &[u8], fd: OwnedFd) {
        self.make_room(endpoint);
        if self.plan.trace {
            self.trace(format!(
                "save_endp: endp_label={} -> endp_prop={} fd={} ttl={}ms",
                lossy(endpoint),
                lossy(property),
                fd.as_raw_fd(),
                ttl_ms
            ));
        }
        let raw = fd.as_raw_fd();
        let id = self.cache.save_endp(self.now, ttl_ms, endpoint, property, fd);
        self.watch(id, raw);
        self.observe(|| Observation::Saved { endpoint: lossy(endpoint) });
        let size = self.cache.size();
        self.counters().after_save_endp(size);
    }

    pub fn find_endp(&mut self, endpoint: &[u8]) -> Option<Hit> {
        let found = self.cache.find_endp(endpoint);
        {
            let mut counters = self.counters();
            match found {
                Some(_) => counters.endp_hits = counters.endp_hits.wrapping_add(1),
                None => counters.endp_miss = counters.endp_miss.wrapping_add(1),
            }
        }
        if self.plan.trace {
            self.trace(format!("find_endp: endp_label={} -> {}", lossy(endpoint), outcome(found.is_some())));
        }
        self.observe_lookup(Handler::FindEndp, endpoint, found.is_some());
        let found = found?;
        self.unwatch(&found.conn);
        Some(Hit { fd: found.conn, dest_property: Box::default(), endp_property: found.property })
    }

    pub fn save_dest(&mut self, ttl_ms: Millis, dest: &[u8], dest_property: &[u8], endpoint: &[u8]) {
        let binding = self.cache.save_dest(self.now, ttl_ms, dest, dest_property, endpoint);
        if self.plan.trace {
            let what = match binding {
                Binding::Added => "added",
                Binding::Refreshed => "refreshed",
            };
            self.trace(format!(
                "save_dest: dest_label={} dest_prop={} -> endp_label={} ttl={}ms ({what})",
                lossy(dest),
                lossy(dest_property),
                lossy(endpoint),
                ttl_ms
            ));
        }
        let refreshed = binding == Binding::Refreshed;
        self.observe(|| Observation::Bound { dest: lossy(dest), endpoint: lossy(endpoint), refreshed });
        let size = self.cache.size();
        self.counters().after_save_dest(size);
    }

    pub fn find_dest(&mut self, dest: &[u8]) -> Option<Hit> {
        let found = self.cache.find_dest(dest);
        {
            let mut counters = self.counters();
            match found {
                Some(_) => counters.dest_hits = counters.dest_hits.wrapping_add(1),
                None => counters.dest_miss = counters.dest_miss.wrapping_add(1),
            }
        }
        if self.plan.trace {
            self.trace(format!("find_dest: dest_label={} -> {}", lossy(dest), outcome(found.is_some())));
        }
        self.observe_lookup(Handler::FindDest, dest, found.is_some());
        let found = found?;
        self.unwatch(&found.conn);
        Some(Hit { fd: found.conn, dest_property: found.dest_property, endp_property: found.endp_property })
    }

    /// Closes a cached connection that nobody asked for: its ttl ran out, its peer hung up, or a
    /// newer one needs its place.
    pub fn evict(&mut self, evicted: Expired<OwnedFd>, why: Eviction) {
        self.unwatch(&evicted.conn);
        {
            let mut counters = self.counters();
            match why {
                Eviction::Expired => {}
                Eviction::DeadPeer => counters.evicted_dead = counters.evicted_dead.wrapping_add(1),
                Eviction::Limit => counters.evicted_limit = counters.evicted_limit.wrapping_add(1),
            }
        }
        if self.plan.trace {
            let fd = evicted.conn.as_raw_fd();
            self.trace(format!("drop_endp: endp_label={} fd={fd} ({why:?})", lossy(&evicted.endpoint)));
        }
        self.observe(|| Observation::Evicted { endpoint: lossy(&evicted.endpoint), why });
    }

    /// A watched connection's peer hung up.
    pub fn peer_hung_up(&mut self, id: SessionId) {
        if let Some(evicted) = self.cache.remove(id) {
            self.evict(evicted, Eviction::DeadPeer);
        }
    }

    /// The cache as JSON, listing at most `limit` destinations and endpoints.
    pub fn snapshot(&self, limit: usize) -> Vec<u8> {
        super::snapshot::snapshot(self.cache, self.now, limit).to_string().into_bytes()
    }

    pub fn route(&self, request: &[u8]) -> Option<Handler> {
        self.plan.handler(request)
    }

    pub fn warn(&mut self, warning: Warning) {
        self.events.push(Event::Warning(warning.render(&self.plan.stream_label)));
    }

    /// Keeps one more connection within both limits by closing the oldest ones first.
    fn make_room(&mut self, endpoint: &[u8]) {
        while self.cache.sessions_at(endpoint) >= self.plan.endpoint_connection_limit.max(1) {
            let Some(oldest) = self.cache.remove_oldest_at(endpoint) else { break };
            self.evict(oldest, Eviction::Limit);
        }
        while self.cache.size().sess_count >= self.plan.connection_limit.max(1) {
            let Some(oldest) = self.cache.remove_oldest() else { break };
            self.evict(oldest, Eviction::Limit);
        }
    }

    /// Watches a cached connection for its peer hanging up. Descriptors epoll cannot watch (regular
    /// files) are simply not watched.
    fn watch(&self, id: SessionId, raw: i32) {
        if let (true, Some(registry)) = (self.plan.evict_dead_peers, self.registry) {
            let _ = registry.register(&mut SourceFd(&raw), Source::Cached(id).token(), Interest::READABLE);
        }
    }

    fn unwatch(&self, fd: &OwnedFd) {
        if let (true, Some(registry)) = (self.plan.evict_dead_peers, self.registry) {
            let _ = registry.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
    }

    fn observe_lookup(&mut self, handler: Handler, label: &[u8], hit: bool) {
        self.observe(|| match hit {
            true => Observation::Hit { handler, label: lossy(label) },
            false => Observation::Miss { handler, label: lossy(label) },
        });
    }

    fn observe(&mut self, observation: impl FnOnce() -> Observation) {
        if self.plan.observe {
            self.events.push(Event::Observed(observation()));
        }
    }

    fn trace(&mut self, line: String) {
        self.events.push(Event::Trace(line));
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // A panic elsewhere cannot leave counters half-updated, so a poisoned lock is still usable.
        self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn outcome(hit: bool) -> &'static str {
    if hit { "hit" } else { "miss" }
}

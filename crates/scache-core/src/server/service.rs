//! The cache operations behind each request, with their statistics (Postfix's scache.c service
//! functions, minus the protocol, which lives in the connection state machine).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use super::events::{Event, Warning};
use super::plan::Plan;
use super::stats::Counters;
use crate::cache::{Binding, Cache, Millis};
use crate::protocol::Handler;

/// Everything a connection may touch while it serves one request.
pub struct Service<'a> {
    pub cache: &'a mut Cache<OwnedFd>,
    pub plan: &'a Plan,
    pub counters: &'a Mutex<Counters>,
    pub events: &'a mut Vec<Event>,
    pub now: Millis,
}

/// A found connection and the properties that go back with it.
pub struct Hit {
    pub fd: OwnedFd,
    pub dest_property: Box<[u8]>,
    pub endp_property: Box<[u8]>,
}

impl Service<'_> {
    pub fn save_endp(&mut self, ttl_ms: Millis, endpoint: &[u8], property: &[u8], fd: OwnedFd) {
        if self.plan.trace {
            self.trace(format!(
                "save_endp: endp_label={} -> endp_prop={} fd={} ttl={}ms",
                lossy(endpoint),
                lossy(property),
                fd.as_raw_fd(),
                ttl_ms
            ));
        }
        self.cache.save_endp(self.now, ttl_ms, endpoint, property, fd);
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
        found.map(|found| Hit { fd: found.conn, dest_property: Box::default(), endp_property: found.property })
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
        found.map(|found| Hit {
            fd: found.conn,
            dest_property: found.dest_property,
            endp_property: found.endp_property,
        })
    }

    pub fn route(&self, request: &[u8]) -> Option<Handler> {
        self.plan.handler(request)
    }

    pub fn warn(&mut self, warning: Warning) {
        self.events.push(Event::Warning(warning.render(&self.plan.stream_label)));
    }

    fn trace(&mut self, line: String) {
        self.events.push(Event::Trace(line));
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
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

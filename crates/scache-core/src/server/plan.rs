//! The dispatch plan: which request name goes to which handler, and the request-level policy.
//!
//! The embedder (the TypeScript dispatcher) decides all of it and installs it before the server
//! starts, so that no request has to cross into JavaScript on its way through the loop.

use std::collections::HashMap;
use std::time::Duration;

use crate::cache::Millis;
use crate::protocol::Handler;

#[derive(Debug, Clone)]
pub struct Plan {
    routes: HashMap<Box<[u8]>, Handler>,
    /// `connection_cache_ttl_limit`: the longest time anything stays cached.
    pub ttl_limit_ms: Millis,
    /// `ipc_timeout`: how long a client may stall in the middle of an exchange.
    pub ipc_timeout_ms: Millis,
    /// The longest attribute name or value accepted from a client.
    pub max_string: usize,
    /// Names the client stream in warnings: `<service_name> socket`.
    pub stream_label: String,
    /// Emit verbose transaction lines.
    pub trace: bool,
    /// Emit an observation for every save, lookup and eviction.
    pub observe: bool,
    /// The most connections cached at once; saving one more closes the oldest first.
    pub connection_limit: usize,
    /// The most connections cached for one endpoint; likewise, its oldest goes first.
    pub endpoint_connection_limit: usize,
    /// Watch cached connections and close those whose peer hung up, instead of handing them out.
    pub evict_dead_peers: bool,
    /// How long the loop keeps polling, without sleeping, after serving clients (zero: never).
    pub busy_poll: Duration,
}

impl Plan {
    /// A plan with Postfix's defaults and no routes.
    pub fn new() -> Self {
        Self {
            routes: HashMap::new(),
            ttl_limit_ms: 2_000,
            ipc_timeout_ms: 3_600_000,
            max_string: 64 * 1024,
            stream_label: "scache socket".to_owned(),
            trace: false,
            observe: false,
            connection_limit: usize::MAX,
            endpoint_connection_limit: usize::MAX,
            evict_dead_peers: true,
            busy_poll: Duration::from_micros(50),
        }
    }

    /// Postfix's routing: each request name to its own handler.
    pub fn with_postfix_routes(mut self) -> Self {
        for handler in Handler::POSTFIX {
            self.route(handler.request_name().as_bytes(), handler);
        }
        self
    }

    pub fn route(&mut self, request: &[u8], handler: Handler) {
        self.routes.insert(request.into(), handler);
    }

    pub fn handler(&self, request: &[u8]) -> Option<Handler> {
        self.routes.get(request).copied()
    }

    /// A client's ttl in milliseconds, clamped to the limit; `None` when Postfix rejects it (≤ 0).
    pub fn effective_ttl(&self, ttl: u32) -> Option<Millis> {
        let seconds = ttl as i32;
        (seconds > 0).then(|| (seconds as Millis * 1000).min(self.ttl_limit_ms))
    }
}

impl Default for Plan {
    fn default() -> Self {
        Self::new()
    }
}

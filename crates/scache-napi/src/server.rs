//! `NativeServer`: starts the core's server thread with the plan the TypeScript dispatcher built,
//! and delivers its events to a JavaScript callback in batches, one call per loop iteration.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use scache_core::protocol::Handler;
use scache_core::server::{
    Counters, Event, Eviction, Listener, MasterChannel, Observation, Plan, Server, Setup, Stdio,
};

/// Event batches that may wait for the JavaScript thread before new ones are dropped (and counted).
const EVENT_QUEUE: usize = 1024;

type EventCallback = ThreadsafeFunction<Vec<NativeEvent>, (), Vec<NativeEvent>, Status, false, false, EVENT_QUEUE>;

#[napi(string_enum = "snake_case")]
pub enum RequestHandler {
    SaveEndp,
    FindEndp,
    SaveDest,
    FindDest,
    /// Our own status request (a JSON snapshot of the cache).
    Status,
}

#[napi(object)]
pub struct Route {
    pub request: String,
    pub handler: RequestHandler,
}

/// The dispatch plan: routes and request-level policy.
#[napi(object)]
pub struct ServerPlan {
    pub routes: Vec<Route>,
    pub ttl_limit_ms: i64,
    pub ipc_timeout_ms: i64,
    pub max_string: u32,
    pub stream_label: String,
    pub trace: bool,
    /// Report every save, lookup and eviction as an observation event (default: no).
    pub observe: Option<bool>,
    /// The most connections cached at once (default: no limit).
    pub connection_limit: Option<u32>,
    /// The most connections cached for one endpoint (default: no limit).
    pub endpoint_connection_limit: Option<u32>,
    /// Close cached connections whose peer hung up (default: yes).
    pub evict_dead_peers: Option<bool>,
}

/// What to serve: a new socket at `path` (with `mode`), inherited listening descriptors, and/or
/// (`-S` mode) one client on standard input and output.
#[napi(object)]
pub struct ListenOn {
    pub path: Option<String>,
    pub mode: Option<u32>,
    pub fds: Option<Vec<i32>>,
    pub stdio: Option<bool>,
}

/// master(8)'s status channel: the descriptor (5) and the GENERATION value, already parsed.
#[napi(object)]
pub struct MasterStatus {
    pub fd: i32,
    pub generation: u32,
}

#[napi(string_enum = "snake_case")]
pub enum EventKind {
    Warning,
    Trace,
    Clients,
    /// master(8) closed its status channel (reload or exit).
    MasterGone,
    /// The `-S` client has been served.
    Finished,
    /// The server thread panicked; `text` says why.
    Panicked,
    /// A save, lookup or eviction (only when the plan asks for observations).
    Observed,
    /// Earlier batches were dropped because the JavaScript thread did not keep up.
    Dropped,
}

#[napi(object)]
pub struct NativeEvent {
    pub kind: EventKind,
    pub text: Option<String>,
    pub count: Option<u32>,
    pub observation: Option<NativeObservation>,
}

#[napi(string_enum = "snake_case")]
pub enum ObservedAction {
    Saved,
    Bound,
    Hit,
    Miss,
    Evicted,
}

#[napi(string_enum = "snake_case")]
pub enum EvictionReason {
    Expired,
    DeadPeer,
    Limit,
}

/// One observed change to (or lookup in) the cache.
#[napi(object)]
pub struct NativeObservation {
    pub action: ObservedAction,
    /// The endpoint (saved, bound, evicted) or the label looked up (hit, miss).
    pub label: String,
    /// bound: the destination.
    pub dest: Option<String>,
    /// hit and miss: which request looked.
    pub request: Option<RequestHandler>,
    /// bound: an existing binding was refreshed.
    pub refreshed: Option<bool>,
    /// evicted: why.
    pub reason: Option<EvictionReason>,
}

#[napi(object)]
pub struct NativeCounters {
    pub dest_hits: u32,
    pub dest_miss: u32,
    pub endp_hits: u32,
    pub endp_miss: u32,
    pub max_dests: u32,
    pub max_endps: u32,
    pub max_sessions: u32,
    pub evicted_dead: u32,
    pub evicted_limit: u32,
}

#[napi]
pub struct NativeServer {
    server: Option<Server>,
    /// Shared with the loop thread's sink; locked there once per batch, here to (un)reference it.
    /// Released at close, so that a closed server no longer keeps the process alive.
    events: Option<Arc<Mutex<EventCallback>>>,
}

#[napi]
impl NativeServer {
    #[napi(constructor)]
    pub fn new(
        plan: ServerPlan,
        listen: ListenOn,
        master: Option<MasterStatus>,
        on_events: Function<Vec<NativeEvent>, ()>,
    ) -> Result<Self> {
        let plan = core_plan(plan)?;
        let stdio = listen.stdio.unwrap_or(false).then(stdio).transpose()?;
        let listeners = listeners(listen)?;
        if listeners.is_empty() && stdio.is_none() {
            return Err(Error::from_reason("nothing to serve: give a path, descriptors or stdio"));
        }
        // SAFETY: the caller hands over master's status descriptor, which nothing else uses.
        let master = master.map(|m| {
            MasterChannel::new(unsafe { OwnedFd::from_raw_fd(m.fd) }, std::process::id() as i32, m.generation)
        });
        let events: EventCallback =
            on_events.build_threadsafe_function().callee_handled::<false>().max_queue_size::<EVENT_QUEUE>().build()?;
        let events = Arc::new(Mutex::new(events));
        let server = Server::start(Setup { plan, listeners, master, stdio }, event_sink(events.clone()))?;
        Ok(Self { server: Some(server), events: Some(events) })
    }

    /// The current interval's statistics; `reset` starts a new interval.
    #[napi]
    pub fn counters(&self, reset: bool) -> NativeCounters {
        native_counters(self.server.as_ref().map(|server| server.counters(reset)).unwrap_or_default())
    }

    /// Makes the loop go round once and returns how many times it had gone round before: a
    /// watchdog calls this periodically and expects the count to move between calls.
    #[napi]
    pub fn watchdog(&self) -> i64 {
        self.server.as_ref().map_or(0, |server| {
            let beats = server.heartbeat();
            server.poke();
            beats as i64
        })
    }

    /// Stops serving; resolves, with the statistics not yet taken, once every client and cached
    /// connection is closed.
    #[napi(ts_return_type = "Promise<NativeCounters>")]
    pub fn close(&mut self) -> AsyncTask<StopServer> {
        self.events = None;
        AsyncTask::new(StopServer { server: self.server.take() })
    }

    /// Keeps the process alive while the server runs (the default).
    #[napi(js_name = "ref")]
    #[allow(deprecated)] // napi-rs offers no other way to re-reference a threadsafe function
    pub fn keep_alive(&mut self, env: Env) -> Result<()> {
        self.events.as_ref().map_or(Ok(()), |events| lock(events).refer(&env))
    }

    /// Lets the process exit while the server runs.
    #[napi]
    #[allow(deprecated)]
    pub fn unref(&mut self, env: Env) -> Result<()> {
        self.events.as_ref().map_or(Ok(()), |events| lock(events).unref(&env))
    }
}

pub struct StopServer {
    server: Option<Server>,
}

impl Task for StopServer {
    type Output = Counters;
    type JsValue = NativeCounters;

    fn compute(&mut self) -> Result<Counters> {
        let Some(server) = self.server.as_mut() else { return Ok(Counters::default()) };
        server.stop().map_err(|error| Error::from_reason(error.to_string()))?;
        Ok(server.counters(true))
    }

    fn resolve(&mut self, _env: Env, counters: Counters) -> Result<NativeCounters> {
        Ok(native_counters(counters))
    }
}

fn native_counters(counters: Counters) -> NativeCounters {
    NativeCounters {
        dest_hits: counters.dest_hits,
        dest_miss: counters.dest_miss,
        endp_hits: counters.endp_hits,
        endp_miss: counters.endp_miss,
        max_dests: saturate(counters.max_dests),
        max_endps: saturate(counters.max_endps),
        max_sessions: saturate(counters.max_sessions),
        evicted_dead: counters.evicted_dead,
        evicted_limit: counters.evicted_limit,
    }
}

fn core_plan(plan: ServerPlan) -> Result<Plan> {
    let positive = |name: &str, value: i64| {
        u64::try_from(value)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| Error::from_reason(format!("{name} must be positive")))
    };
    let mut core = Plan::new();
    for route in plan.routes {
        core.route(route.request.as_bytes(), handler(route.handler));
    }
    core.ttl_limit_ms = positive("ttlLimitMs", plan.ttl_limit_ms)?;
    core.ipc_timeout_ms = positive("ipcTimeoutMs", plan.ipc_timeout_ms)?;
    core.max_string = plan.max_string as usize;
    core.stream_label = plan.stream_label;
    core.trace = plan.trace;
    core.observe = plan.observe.unwrap_or(false);
    core.connection_limit = plan.connection_limit.map_or(usize::MAX, |limit| limit as usize);
    core.endpoint_connection_limit = plan.endpoint_connection_limit.map_or(usize::MAX, |limit| limit as usize);
    core.evict_dead_peers = plan.evict_dead_peers.unwrap_or(true);
    Ok(core)
}

fn handler(handler: RequestHandler) -> Handler {
    match handler {
        RequestHandler::SaveEndp => Handler::SaveEndp,
        RequestHandler::FindEndp => Handler::FindEndp,
        RequestHandler::SaveDest => Handler::SaveDest,
        RequestHandler::FindDest => Handler::FindDest,
        RequestHandler::Status => Handler::Status,
    }
}

fn listeners(listen: ListenOn) -> Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    if let Some(path) = listen.path {
        let listener = Listener::bind(Path::new(&path), listen.mode.unwrap_or(0o600))
            .map_err(|error| Error::from_reason(error.to_string()))?;
        listeners.push(listener);
    }
    for fd in listen.fds.unwrap_or_default() {
        // SAFETY: the caller hands over an open listening socket it no longer uses.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        listeners.push(Listener::adopt(fd)?);
    }
    Ok(listeners)
}

/// Copies of standard input and output for `-S` mode (the originals stay open for the process).
fn stdio() -> Result<Stdio> {
    let duplicate = |fd| rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(std::io::Error::from);
    Ok(Stdio { input: duplicate(std::io::stdin().as_fd())?, output: duplicate(std::io::stdout().as_fd())? })
}

/// Converts each batch on the loop thread and queues it for JavaScript without ever blocking.
fn event_sink(events: Arc<Mutex<EventCallback>>) -> impl FnMut(Vec<Event>) + Send + 'static {
    let dropped = Arc::new(AtomicUsize::new(0));
    move |batch: Vec<Event>| {
        let mut native: Vec<NativeEvent> = Vec::with_capacity(batch.len() + 1);
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            native.push(NativeEvent { count: Some(saturate(lost)), ..event(EventKind::Dropped) });
        }
        let size = batch.len();
        native.extend(batch.into_iter().map(native_event));
        if lock(&events).call(native, ThreadsafeFunctionCallMode::NonBlocking) != Status::Ok {
            dropped.fetch_add(size + lost, Ordering::Relaxed);
        }
    }
}

/// An event of `kind` with no details yet.
fn event(kind: EventKind) -> NativeEvent {
    NativeEvent { kind, text: None, count: None, observation: None }
}

fn native_event(core: Event) -> NativeEvent {
    match core {
        Event::Warning(text) => NativeEvent { text: Some(text), ..event(EventKind::Warning) },
        Event::Trace(text) => NativeEvent { text: Some(text), ..event(EventKind::Trace) },
        Event::Clients(n) => NativeEvent { count: Some(saturate(n)), ..event(EventKind::Clients) },
        Event::MasterGone => event(EventKind::MasterGone),
        Event::Finished => event(EventKind::Finished),
        Event::Panicked(text) => {
            NativeEvent { kind: EventKind::Panicked, text: Some(text), ..event(EventKind::Panicked) }
        }
        Event::Observed(observation) => {
            NativeEvent { observation: Some(native_observation(observation)), ..event(EventKind::Observed) }
        }
    }
}

fn native_observation(observation: Observation) -> NativeObservation {
    let blank =
        |action, label| NativeObservation { action, label, dest: None, request: None, refreshed: None, reason: None };
    match observation {
        Observation::Saved { endpoint } => blank(ObservedAction::Saved, endpoint),
        Observation::Bound { dest, endpoint, refreshed } => {
            NativeObservation { dest: Some(dest), refreshed: Some(refreshed), ..blank(ObservedAction::Bound, endpoint) }
        }
        Observation::Hit { handler, label } => {
            NativeObservation { request: Some(request_handler(handler)), ..blank(ObservedAction::Hit, label) }
        }
        Observation::Miss { handler, label } => {
            NativeObservation { request: Some(request_handler(handler)), ..blank(ObservedAction::Miss, label) }
        }
        Observation::Evicted { endpoint, why } => {
            let reason = match why {
                Eviction::Expired => EvictionReason::Expired,
                Eviction::DeadPeer => EvictionReason::DeadPeer,
                Eviction::Limit => EvictionReason::Limit,
            };
            NativeObservation { reason: Some(reason), ..blank(ObservedAction::Evicted, endpoint) }
        }
    }
}

fn request_handler(handler: Handler) -> RequestHandler {
    match handler {
        Handler::SaveEndp => RequestHandler::SaveEndp,
        Handler::FindEndp => RequestHandler::FindEndp,
        Handler::SaveDest => RequestHandler::SaveDest,
        Handler::FindDest => RequestHandler::FindDest,
        Handler::Status => RequestHandler::Status,
    }
}

fn lock(events: &Mutex<EventCallback>) -> std::sync::MutexGuard<'_, EventCallback> {
    events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The process's soft limit on open descriptors (RLIMIT_NOFILE), from which the default limit on
/// cached connections is derived.
#[napi]
pub fn descriptor_limit() -> u32 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.map_or(u32::MAX, |current| u32::try_from(current).unwrap_or(u32::MAX))
}

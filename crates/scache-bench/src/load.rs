//! The load generator: K client threads, each on its own connection, repeating request cycles
//! against one server with real descriptor passing. Every reply is checked, and every descriptor
//! received must be the very socket the thread saved (same inode) with the property it saved.
//!
//! A run warms up, then measures for a fixed time: cycles completed in the window and the latency of
//! each request (the whole exchange, descriptor hand-over included); when the server's process is
//! known, also the CPU time it and the generator used meanwhile and how often the server's threads
//! went to sleep (context switches: each is a later wake-up).

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use scache_core::client::{Client, FoundConnection};
use scache_core::protocol::{Handler, Status};

use crate::error::{Context, Error, Result};
use crate::procfs;
use crate::servers::IO_TIMEOUT;
use crate::stats::Percentiles;

/// The ttl the clients ask for; the servers' limit is at least this long.
pub const CYCLE_TTL: i32 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// save_endp + find_endp.
    Endpoint,
    /// save_endp + save_dest + find_dest.
    Destination,
}

impl Mode {
    /// The requests of one cycle, in order.
    pub fn handlers(self) -> &'static [Handler] {
        match self {
            Mode::Endpoint => &[Handler::SaveEndp, Handler::FindEndp],
            Mode::Destination => &[Handler::SaveEndp, Handler::SaveDest, Handler::FindDest],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Endpoint => "A",
            Mode::Destination => "B",
        }
    }
}

pub struct RunSpec {
    pub mode: Mode,
    pub clients: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Makes this run's labels differ from every other run's.
    pub run_id: u64,
}

pub struct RunResult {
    pub cycles_per_s: f64,
    /// Server CPU time over wall time, in percent of one core.
    pub server_cpu_pct: f64,
    /// The same for the load generator itself.
    pub client_cpu_pct: f64,
    /// Context switches of all the server's threads per cycle.
    pub server_switches_per_cycle: f64,
    /// CPU used by every other process of the machine meanwhile, in percent of one core.
    pub other_cpu_pct: f64,
    /// Per request of the cycle, in [`Mode::handlers`] order.
    pub latency: Vec<Percentiles>,
}

const WARMING_UP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// One run of `spec` against the server listening at `socket` (process `server_pid`, if known).
pub fn run(socket: &Path, server_pid: Option<u32>, spec: &RunSpec) -> Result<RunResult> {
    let workers = (0..spec.clients).map(|index| Worker::connect(socket, spec, index)).collect::<Result<Vec<_>>>()?;
    let phase = AtomicU8::new(WARMING_UP);
    let (tallies, window) = thread::scope(|scope| {
        let threads: Vec<_> = workers.into_iter().map(|worker| scope.spawn(|| worker.run(&phase))).collect();
        let window = measure_window(&phase, server_pid, spec);
        phase.store(STOPPING, Ordering::Relaxed);
        let tallies: Vec<Result<Tally>> = threads
            .into_iter()
            .map(|thread| thread.join().unwrap_or_else(|_| Err(Error::new("client panicked"))))
            .collect();
        (tallies, window)
    });
    let window = window?;
    let tallies = tallies.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(summarize(spec.mode, tallies, &window))
}

/// What happened between the start and the end of the measured window.
struct Window {
    elapsed: Duration,
    usage: Usage,
}

/// CPU seconds of the server, of the generator and of the whole machine, and the server's context
/// switches.
#[derive(Default)]
struct Usage {
    server_cpu: f64,
    client_cpu: f64,
    machine_cpu: f64,
    server_switches: u64,
}

impl Usage {
    fn sample(server_pid: Option<u32>) -> Result<Usage> {
        let Some(pid) = server_pid else { return Ok(Usage::default()) };
        Ok(Usage {
            server_cpu: procfs::cpu_seconds(pid)?,
            client_cpu: procfs::cpu_seconds(std::process::id())?,
            machine_cpu: procfs::machine_busy_seconds()?,
            server_switches: procfs::context_switches(pid)?,
        })
    }

    fn since(self, before: Usage) -> Usage {
        Usage {
            server_cpu: self.server_cpu - before.server_cpu,
            client_cpu: self.client_cpu - before.client_cpu,
            machine_cpu: self.machine_cpu - before.machine_cpu,
            server_switches: self.server_switches - before.server_switches,
        }
    }
}

fn measure_window(phase: &AtomicU8, server_pid: Option<u32>, spec: &RunSpec) -> Result<Window> {
    thread::sleep(spec.warmup);
    let before = Usage::sample(server_pid)?;
    let start = Instant::now();
    phase.store(MEASURING, Ordering::Relaxed);
    thread::sleep(spec.duration);
    phase.store(STOPPING, Ordering::Relaxed);
    let elapsed = start.elapsed();
    Ok(Window { elapsed, usage: Usage::sample(server_pid)?.since(before) })
}

fn summarize(mode: Mode, tallies: Vec<Tally>, window: &Window) -> RunResult {
    let (seconds, usage) = (window.elapsed.as_secs_f64(), &window.usage);
    let cycles: u64 = tallies.iter().map(|tally| tally.cycles).sum();
    let latency = (0..mode.handlers().len())
        .map(|request| {
            let mut samples: Vec<u64> =
                tallies.iter().flat_map(|tally| tally.samples[request].iter().copied()).collect();
            Percentiles::of(&mut samples)
        })
        .collect();
    RunResult {
        cycles_per_s: cycles as f64 / seconds,
        server_cpu_pct: 100.0 * usage.server_cpu / seconds,
        client_cpu_pct: 100.0 * usage.client_cpu / seconds,
        server_switches_per_cycle: usage.server_switches as f64 / cycles.max(1) as f64,
        other_cpu_pct: 100.0 * (usage.machine_cpu - usage.server_cpu - usage.client_cpu).max(0.0) / seconds,
        latency,
    }
}

/// One thread's counts: cycles completed in the window and each request's latencies (ns).
struct Tally {
    cycles: u64,
    samples: Vec<Vec<u64>>,
}

/// One client: its connection, the socket it saves every cycle, and its labels.
struct Worker {
    client: Client,
    mode: Mode,
    /// The connection this client caches and gets back each cycle; the peer keeps it a live pair.
    cached: UnixStream,
    _peer: UnixStream,
    cached_inode: u64,
    endpoint: Vec<u8>,
    destination: Vec<u8>,
    dest_property: Vec<u8>,
    /// The endpoint property of the current cycle: it changes every cycle.
    endp_property: Vec<u8>,
    serial: u64,
}

impl Worker {
    fn connect(socket: &Path, spec: &RunSpec, index: usize) -> Result<Worker> {
        let client = Client::connect(socket, IO_TIMEOUT).context("connecting a client")?;
        let (cached, peer) = UnixStream::pair().context("creating a socketpair")?;
        let cached_inode = inode(&cached)?;
        let host = format!("bench-{}-{index}.example", spec.run_id);
        Ok(Worker {
            client,
            mode: spec.mode,
            cached,
            _peer: peer,
            cached_inode,
            endpoint: format!("smtp\n{host}\n25\n0\n").into_bytes(),
            destination: format!("smtp\n{host}\n").into_bytes(),
            dest_property: format!("destination={host}\nhost_name={host}\ndestination_features=4096\n\n").into_bytes(),
            endp_property: Vec::new(),
            serial: 0,
        })
    }

    fn run(mut self, phase: &AtomicU8) -> Result<Tally> {
        let requests = self.mode.handlers().len();
        let mut tally = Tally { cycles: 0, samples: vec![Vec::with_capacity(1 << 16); requests] };
        let mut times = [0u64; 3];
        while phase.load(Ordering::Relaxed) != STOPPING {
            self.cycle(&mut times)?;
            // A cycle counts when it completes inside the window.
            if phase.load(Ordering::Relaxed) == MEASURING {
                tally.cycles += 1;
                for (samples, &time) in tally.samples.iter_mut().zip(&times[..requests]) {
                    samples.push(time);
                }
            }
        }
        Ok(tally)
    }

    /// One cycle; `times` receives each request's latency in nanoseconds.
    fn cycle(&mut self, times: &mut [u64; 3]) -> Result<()> {
        self.next_property();
        let start = Instant::now();
        self.save_endp()?;
        times[0] = nanos_since(start);
        match self.mode {
            Mode::Endpoint => {
                let start = Instant::now();
                let found = self.client.find_endp(&self.endpoint).context("find_endp")?;
                times[1] = nanos_since(start);
                self.verify(found, b"", "find_endp")
            }
            Mode::Destination => {
                let start = Instant::now();
                let status = self.client.save_dest(CYCLE_TTL, &self.destination, &self.dest_property, &self.endpoint);
                times[1] = nanos_since(start);
                expect_ok(status.context("save_dest")?, "save_dest")?;
                let start = Instant::now();
                let found = self.client.find_dest(&self.destination).context("find_dest")?;
                times[2] = nanos_since(start);
                self.verify(found, &self.dest_property, "find_dest")
            }
        }
    }

    fn next_property(&mut self) {
        use std::io::Write;
        self.serial += 1;
        self.endp_property.clear();
        let _ = write!(self.endp_property, "tls_level=0\nreuse_count={}\nendpoint_features=2129935\n\n", self.serial);
    }

    fn save_endp(&mut self) -> Result<()> {
        let status = self.client.save_endp(CYCLE_TTL, &self.endpoint, &self.endp_property, self.cached.as_fd());
        expect_ok(status.context("save_endp")?, "save_endp")
    }

    /// The lookup must hit, with this cycle's properties and the socket saved (same inode).
    fn verify(&self, found: Option<FoundConnection>, dest_property: &[u8], request: &str) -> Result<()> {
        let found = found.ok_or_else(|| Error::new(format!("{request}: miss for a connection just saved")))?;
        if found.endp_property != self.endp_property || found.dest_property != dest_property {
            return Err(Error::new(format!("{request}: the properties returned are not the ones saved")));
        }
        if inode(&found.fd)? != self.cached_inode {
            return Err(Error::new(format!("{request}: the descriptor received is not the socket saved")));
        }
        Ok(())
    }
}

fn expect_ok(status: Status, request: &str) -> Result<()> {
    match status {
        Status::Ok => Ok(()),
        other => Err(Error::new(format!("{request}: status {other:?}"))),
    }
}

/// The inode number of an open socket: equal inodes mean the same socket.
pub fn inode(fd: &impl AsFd) -> Result<u64> {
    Ok(rustix::fs::fstat(fd).context("fstat")?.st_ino)
}

fn nanos_since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

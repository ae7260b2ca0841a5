//! The bench, phase by phase:
//!
//! 1. cold starts: spawn → announcement → a find_endp reply, each server several times;
//! 2. throughput: four servers run side by side — ours and Postfix's with an empty cache, and ours
//!    and Postfix's holding M prefilled connections — so that every configuration is measured on
//!    all four in the same stretch of time, in an order that rotates each repetition (ours and
//!    Postfix always alternate). Before the runs all four are watched idle; after them a sample of
//!    the prefill is looked up to prove the entries stayed cached throughout;
//! 3. memory: a fresh pair, warmed up and then prefilled step by step (M, then the larger sizes),
//!    with RSS read before the first entry and after each step; nothing else runs meanwhile.

use std::thread;
use std::time::{Duration, Instant};

use scache_core::protocol::Handler;

use crate::error::{Context, Error, Result};
use crate::load::{self, Mode, RunResult, RunSpec};
use crate::options::{HIGH_K, Profile};
use crate::prefill::{self, Prefill};
use crate::procfs;
use crate::servers::{Kind, Server, Setup};
use crate::stats::{Percentiles, median};

/// The medians of one server's runs of one configuration.
pub struct Summary {
    pub cycles_per_s: f64,
    pub server_cpu_pct: f64,
    pub client_cpu_pct: f64,
    pub server_switches_per_cycle: f64,
    /// CPU used by other processes of the machine during the runs (% of one core).
    pub other_cpu_pct: f64,
    /// Per request of the cycle, in [`Mode::handlers`] order.
    pub latency: Vec<Percentiles>,
}

impl Summary {
    /// Server CPU time per cycle, in microseconds.
    pub fn cpu_micros_per_cycle(&self) -> f64 {
        self.server_cpu_pct / 100.0 / self.cycles_per_s * 1e6
    }
}

/// One configuration measured on both servers.
pub struct Comparison {
    pub mode: Mode,
    pub cached: usize,
    pub clients: usize,
    pub ours: Summary,
    pub postfix: Summary,
}

impl Comparison {
    pub fn of(&self, kind: Kind) -> &Summary {
        match kind {
            Kind::Ours => &self.ours,
            Kind::Postfix => &self.postfix,
        }
    }

    /// The latency percentiles of `handler` on `kind`, if the cycle has that request.
    pub fn latency(&self, kind: Kind, handler: Handler) -> Option<Percentiles> {
        let index = self.mode.handlers().iter().position(|&h| h == handler)?;
        Some(self.of(kind).latency[index])
    }
}

pub struct MemoryRow {
    pub kind: Kind,
    pub entries: usize,
    /// The cache size asked for, when the descriptor limit allowed fewer `entries`.
    pub requested: usize,
    pub rss_before: u64,
    pub rss_after: u64,
    /// Label plus property bytes of all the entries.
    pub payload: usize,
    pub fill_time: Duration,
}

impl MemoryRow {
    /// RSS growth per cached connection.
    pub fn raw_per_entry(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / self.entries as f64
    }

    /// The same, less the label and property bytes any cache must store.
    pub fn net_per_entry(&self) -> f64 {
        self.raw_per_entry() - self.payload as f64 / self.entries as f64
    }
}

pub struct StartupRow {
    pub kind: Kind,
    /// Medians from spawn.
    pub to_announcement: Duration,
    pub to_reply: Duration,
}

pub struct IdleRow {
    pub kind: Kind,
    pub cached: usize,
    pub threads: usize,
    pub seconds: f64,
    pub wakeups: u64,
    pub cpu_pct: f64,
}

impl IdleRow {
    pub fn wakeups_per_s(&self) -> f64 {
        self.wakeups as f64 / self.seconds
    }
}

pub struct Measurements {
    pub profile: &'static str,
    /// M of the prefilled throughput phase.
    pub prefill: usize,
    /// The servers' RLIMIT_NOFILE.
    pub nofile: u64,
    pub throughput: Vec<Comparison>,
    pub memory: Vec<MemoryRow>,
    pub startup: Vec<StartupRow>,
    pub idle: Vec<IdleRow>,
    /// Prefilled entries found intact at the end (both servers together).
    pub prefill_checked: usize,
}

/// Runs every phase of `profile`.
pub fn measure(profile: &Profile, setup: &Setup) -> Result<Measurements> {
    let startup = Kind::BOTH.iter().map(|&kind| cold_starts(kind, setup, profile.startups)).collect::<Result<_>>()?;
    let mut bench = Bench::start(profile, setup)?;
    bench.prefill(profile.prefill.min(setup.cache_capacity()))?;
    let prefill = bench.instances[PREFILLED].prefill.len();
    let idle = bench.idle()?;
    let throughput = bench.throughput()?;
    let prefill_checked = bench.check_prefill()?;
    drop(bench);
    let sizes: Vec<usize> = std::iter::once(profile.prefill).chain(profile.memory_sizes.iter().copied()).collect();
    let memory = memory(setup, &sizes)?;
    Ok(Measurements {
        profile: profile.name,
        prefill,
        nofile: setup.nofile,
        throughput,
        memory,
        startup,
        idle,
        prefill_checked,
    })
}

/// Prefills a fresh server of each kind to each of `sizes` in turn (as far as the descriptor limit
/// allows), reading RSS before the first entry and after each step.
fn memory(setup: &Setup, sizes: &[usize]) -> Result<Vec<MemoryRow>> {
    let mut rows = Vec::new();
    for kind in Kind::BOTH {
        let mut instance = Instance::start(kind, setup, "memory")?;
        let rss_before = procfs::rss_bytes(instance.server.pid())?;
        for &requested in sizes {
            let total = requested.min(setup.cache_capacity());
            let fill_time = instance.grow(total)?;
            // Whatever the server does after its last reply (freeing buffers) is done by now.
            thread::sleep(Duration::from_millis(200));
            rows.push(MemoryRow {
                kind,
                entries: total,
                requested,
                rss_before,
                rss_after: procfs::rss_bytes(instance.server.pid())?,
                payload: prefill::payload_bytes(0..total),
                fill_time,
            });
        }
    }
    Ok(rows)
}

/// Medians of `count` cold starts of `kind`.
fn cold_starts(kind: Kind, setup: &Setup, count: usize) -> Result<StartupRow> {
    let mut announcements = Vec::new();
    let mut replies = Vec::new();
    for _ in 0..count {
        let (announcement, reply) = cold_start(kind, setup)?;
        announcements.push(announcement.as_secs_f64());
        replies.push(reply.as_secs_f64());
    }
    Ok(StartupRow {
        kind,
        to_announcement: Duration::from_secs_f64(median(announcements)),
        to_reply: Duration::from_secs_f64(median(replies)),
    })
}

fn cold_start(kind: Kind, setup: &Setup) -> Result<(Duration, Duration)> {
    let spawned = Instant::now();
    let mut server = Server::spawn(kind, setup, "cold")?;
    let mut client = server.connect_when_ready(Duration::from_secs(20))?;
    let announced = spawned.elapsed();
    let found = client.find_endp(b"smtp\nstart-up.example\n25\n0\n").context("find_endp after start-up")?;
    let replied = spawned.elapsed();
    if found.is_some() {
        return Err(Error::new(format!("{}: a fresh cache found a connection", kind.name())));
    }
    Ok((announced, replied))
}

/// The first instance holding a prefill: instances are ours and Postfix's with an empty cache, then
/// ours and Postfix's prefilled.
const PREFILLED: usize = 2;

/// One running server and what has been prefilled on it (the prefill's holders go first when it
/// is dropped, then the server).
struct Instance {
    prefill: Prefill,
    server: Server,
}

impl Instance {
    /// Starts a server and warms it up with a short load, so that what it allocates once for
    /// serving is not counted as cache memory later.
    fn start(kind: Kind, setup: &Setup, tag: &str) -> Result<Instance> {
        let server = Server::start(kind, setup, tag)?;
        let warmup = Duration::from_millis(100);
        let spec = RunSpec { mode: Mode::Endpoint, clients: HIGH_K, warmup, duration: warmup, run_id: 0 };
        load::run(&server.socket, None, &spec).context(format_args!("warming up {}", kind.name()))?;
        Ok(Instance { prefill: Prefill::default(), server })
    }

    /// Prefills up to `total` entries; returns how long that took.
    fn grow(&mut self, total: usize) -> Result<Duration> {
        let started = Instant::now();
        let name = self.server.kind.name();
        self.prefill.grow_to(&self.server.socket, total).context(format_args!("prefilling {name}"))?;
        let elapsed = started.elapsed();
        eprintln!("  prefilled {name} to {total} in {:.1} s", elapsed.as_secs_f64());
        Ok(elapsed)
    }
}

struct Bench<'a> {
    profile: &'a Profile,
    instances: Vec<Instance>,
    /// Numbers the runs, so that each run's labels are its own.
    next_run: u64,
}

impl<'a> Bench<'a> {
    /// Starts the four instances.
    fn start(profile: &'a Profile, setup: &Setup) -> Result<Bench<'a>> {
        let kinds = [(Kind::Ours, "empty"), (Kind::Postfix, "empty"), (Kind::Ours, "full"), (Kind::Postfix, "full")];
        let instances =
            kinds.into_iter().map(|(kind, tag)| Instance::start(kind, setup, tag)).collect::<Result<_>>()?;
        Ok(Bench { profile, instances, next_run: 1 })
    }

    /// Prefills the prefilled instances to `total` entries.
    fn prefill(&mut self, total: usize) -> Result<()> {
        for instance in &mut self.instances[PREFILLED..] {
            instance.grow(total)?;
        }
        Ok(())
    }

    /// Every configuration on every instance.
    fn throughput(&mut self) -> Result<Vec<Comparison>> {
        let profile = self.profile;
        let configurations: Vec<(Mode, usize)> = (profile.endpoint_clients.iter().map(|&k| (Mode::Endpoint, k)))
            .chain(profile.destination_clients.iter().map(|&k| (Mode::Destination, k)))
            .collect();
        let mut comparisons = Vec::new();
        for (mode, clients) in configurations {
            let [empty_ours, empty_postfix, full_ours, full_postfix] = self.runs(mode, clients)?;
            comparisons.push(comparison(mode, clients, 0, &empty_ours, &empty_postfix));
            let cached = self.instances[PREFILLED].prefill.len();
            comparisons.push(comparison(mode, clients, cached, &full_ours, &full_postfix));
        }
        // Empty-cache rows first, then the prefilled ones, each by mode and K.
        comparisons.sort_by_key(|c| (c.cached, c.mode == Mode::Destination, c.clients));
        Ok(comparisons)
    }

    /// The profile's repetitions of one configuration on each instance, in rotating order.
    fn runs(&mut self, mode: Mode, clients: usize) -> Result<[Vec<RunResult>; 4]> {
        let mut runs: [Vec<RunResult>; 4] = Default::default();
        for repetition in 0..self.profile.repetitions {
            for step in 0..runs.len() {
                let index = (repetition + step) % runs.len();
                runs[index].push(self.run(index, mode, clients)?);
            }
        }
        Ok(runs)
    }

    fn run(&mut self, index: usize, mode: Mode, clients: usize) -> Result<RunResult> {
        let (warmup, duration) = (self.profile.warmup, self.profile.duration);
        let spec = RunSpec { mode, clients, warmup, duration, run_id: self.next_run };
        self.next_run += 1;
        let server = &self.instances[index].server;
        let what = format_args!(
            "{} (M={}) mode {} K={clients}",
            server.kind.name(),
            self.instances[index].prefill.len(),
            mode.name()
        );
        load::run(&server.socket, Some(server.pid()), &spec).context(what)
    }

    /// Watches every instance, no client connected, for the profile's idle time.
    fn idle(&self) -> Result<Vec<IdleRow>> {
        // Let the last disconnects settle first.
        thread::sleep(Duration::from_millis(200));
        let pids: Vec<u32> = self.instances.iter().map(|instance| instance.server.pid()).collect();
        let before = pids
            .iter()
            .map(|&pid| Ok((procfs::context_switches(pid)?, procfs::cpu_seconds(pid)?)))
            .collect::<Result<Vec<_>>>()?;
        let start = Instant::now();
        thread::sleep(self.profile.idle);
        let seconds = start.elapsed().as_secs_f64();
        let mut rows = Vec::new();
        for ((instance, &pid), (switches, cpu)) in self.instances.iter().zip(&pids).zip(before) {
            rows.push(IdleRow {
                kind: instance.server.kind,
                cached: instance.prefill.len(),
                threads: procfs::thread_count(pid)?,
                seconds,
                wakeups: procfs::context_switches(pid)? - switches,
                cpu_pct: 100.0 * (procfs::cpu_seconds(pid)? - cpu) / seconds,
            });
        }
        Ok(rows)
    }

    /// Looks up a sample of each prefill; returns how many entries were found intact.
    fn check_prefill(&self) -> Result<usize> {
        let mut checked = 0;
        for instance in &self.instances[PREFILLED..] {
            let server = &instance.server;
            checked += instance
                .prefill
                .check_sample(&server.socket, self.profile.prefill_sample)
                .context(format_args!("checking {}'s prefill", server.kind.name()))?;
        }
        Ok(checked)
    }
}

/// Both servers' runs of one configuration, summarized (and reported on stderr).
fn comparison(mode: Mode, clients: usize, cached: usize, ours: &[RunResult], postfix: &[RunResult]) -> Comparison {
    let (ours, postfix) = (summarize(ours), summarize(postfix));
    eprintln!(
        "  mode {} M={cached} K={clients}: ours {:.0}/s, Postfix {:.0}/s",
        mode.name(),
        ours.cycles_per_s,
        postfix.cycles_per_s
    );
    Comparison { mode, cached, clients, ours, postfix }
}

fn summarize(runs: &[RunResult]) -> Summary {
    let requests = runs.first().map_or(0, |run| run.latency.len());
    Summary {
        cycles_per_s: median(runs.iter().map(|run| run.cycles_per_s)),
        server_cpu_pct: median(runs.iter().map(|run| run.server_cpu_pct)),
        client_cpu_pct: median(runs.iter().map(|run| run.client_cpu_pct)),
        server_switches_per_cycle: median(runs.iter().map(|run| run.server_switches_per_cycle)),
        other_cpu_pct: median(runs.iter().map(|run| run.other_cpu_pct)),
        latency: (0..requests)
            .map(|request| Percentiles::median_of(&runs.iter().map(|run| run.latency[request]).collect::<Vec<_>>()))
            .collect(),
    }
}

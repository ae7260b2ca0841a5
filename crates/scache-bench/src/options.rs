//! Command-line options, and the two run profiles: the full bench and the `--quick` smoke run.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::load::Mode;

pub const USAGE: &str = "\
usage: scache-bench [--quick] [--out DIR] [--ours SCRIPT] [--postfix BINARY]
       scache-bench --drive SOCKET [--mode A|B] [--clients K] [--seconds S]

Runs our scache server and Postfix's side by side and writes DIR/results.md and DIR/throughput.svg.
  --quick           a smoke run of well under a minute (fewer configurations, shorter runs)
  --out DIR         results folder (default: bench-results)
  --ours SCRIPT     Node script that serves our server (default: bench/serve-ours.mjs)
  --postfix BINARY  Postfix's scache (default: /usr/lib/postfix/sbin/scache)

--drive only loads a server already listening at SOCKET (e.g. while profiling it) and prints
cycles/s and latencies: mode A = save_endp + find_endp (default), B = save_endp + save_dest +
find_dest; K clients (default 1) for S seconds (default 10).

(--hold SOCKET --first N --count N is the prefill helper the bench starts itself.)";

/// What to measure and for how long.
pub struct Profile {
    pub name: &'static str,
    /// K values for mode A (save_endp + find_endp); must include 1 and [`HIGH_K`].
    pub endpoint_clients: Vec<usize>,
    /// K values for mode B (save_endp + save_dest + find_dest).
    pub destination_clients: Vec<usize>,
    /// M of the second throughput phase.
    pub prefill: usize,
    /// Further cache sizes at which memory is measured after that phase.
    pub memory_sizes: Vec<usize>,
    /// Runs per server and configuration (medians are reported).
    pub repetitions: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// How long each idle server is watched.
    pub idle: Duration,
    /// Cold starts per server.
    pub startups: usize,
    /// Prefilled entries looked up at the end to prove they stayed cached.
    pub prefill_sample: usize,
}

/// The K at which the many-clients targets are checked.
pub const HIGH_K: usize = 16;

impl Profile {
    pub fn full() -> Profile {
        Profile {
            name: "full",
            endpoint_clients: vec![1, 2, 4, 8, 16],
            destination_clients: vec![1, 16],
            prefill: 10_000,
            memory_sizes: vec![100_000],
            repetitions: 5,
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(1000),
            idle: Duration::from_secs(3),
            startups: 3,
            prefill_sample: 200,
        }
    }

    pub fn quick() -> Profile {
        Profile {
            name: "quick",
            endpoint_clients: vec![1, HIGH_K],
            destination_clients: vec![HIGH_K],
            prefill: 10_000,
            memory_sizes: Vec::new(),
            repetitions: 3,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
            idle: Duration::from_secs(1),
            startups: 3,
            prefill_sample: 50,
        }
    }
}

pub enum Command {
    Bench(Options),
    Drive(Drive),
    /// Prefill entries `first..first + count` and keep their peers open (see `prefill`).
    Hold {
        socket: PathBuf,
        first: usize,
        count: usize,
    },
    Help,
}

pub struct Options {
    pub profile: Profile,
    pub out_dir: PathBuf,
    pub ours_script: PathBuf,
    pub postfix_binary: PathBuf,
}

/// Load for a server started by someone else.
pub struct Drive {
    pub socket: PathBuf,
    pub mode: Mode,
    pub clients: usize,
    pub duration: Duration,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut options = Options {
        profile: Profile::full(),
        out_dir: PathBuf::from("bench-results"),
        ours_script: PathBuf::from("bench/serve-ours.mjs"),
        postfix_binary: PathBuf::from("/usr/lib/postfix/sbin/scache"),
    };
    let mut drive =
        Drive { socket: PathBuf::new(), mode: Mode::Endpoint, clients: 1, duration: Duration::from_secs(10) };
    let mut driving = false;
    let mut holding: Option<PathBuf> = None;
    let (mut first, mut count) = (0, 0);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| Error::new(format!("{arg} needs a value\n{USAGE}")));
        match arg.as_str() {
            "--quick" => options.profile = Profile::quick(),
            "--out" => options.out_dir = value()?.into(),
            "--ours" => options.ours_script = value()?.into(),
            "--postfix" => options.postfix_binary = value()?.into(),
            "--drive" => (driving, drive.socket) = (true, value()?.into()),
            "--mode" => drive.mode = mode(&value()?)?,
            "--clients" => drive.clients = number(&arg, &value()?)?,
            "--seconds" => drive.duration = Duration::from_secs(number(&arg, &value()?)?),
            "--hold" => holding = Some(value()?.into()),
            "--first" => first = number(&arg, &value()?)?,
            "--count" => count = number(&arg, &value()?)?,
            "-h" | "--help" => return Ok(Command::Help),
            _ => return Err(Error::new(format!("unknown argument {arg}\n{USAGE}"))),
        }
    }
    Ok(match (holding, driving) {
        (Some(socket), _) => Command::Hold { socket, first, count },
        (None, true) => Command::Drive(drive),
        (None, false) => Command::Bench(options),
    })
}

fn mode(name: &str) -> Result<Mode> {
    match name {
        "A" | "a" => Ok(Mode::Endpoint),
        "B" | "b" => Ok(Mode::Destination),
        _ => Err(Error::new(format!("--mode must be A or B, not {name}"))),
    }
}

fn number<T: std::str::FromStr>(option: &str, text: &str) -> Result<T> {
    text.parse().map_err(|_| Error::new(format!("{option} needs a number, not {text}")))
}

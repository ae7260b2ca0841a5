//! `scache-bench`: runs our connection cache server and Postfix's scache side by side under the same
//! load, with real descriptor passing, and reports throughput, latency, CPU, memory per cached
//! connection, start-up time and idle wake-ups against the targets of the issue.
//!
//! Output: a markdown report (also printed) and an SVG chart in the results folder. Progress goes
//! to stderr. The exit status is non-zero when a measurement failed (a wrong reply, a wrong socket,
//! a server that died), never because a target was missed. `--drive` only loads a server started
//! by someone else, e.g. one being profiled with strace or perf; `--hold` is the prefill helper
//! process the bench starts itself (see `prefill`).

mod error;
mod load;
mod options;
mod phases;
mod prefill;
mod procfs;
mod report;
mod servers;
mod stats;
mod svg;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use error::{Context, Result};
use load::RunSpec;
use options::{Command, Drive, Options};
use servers::Setup;

/// connection_cache_ttl_limit for both servers: nothing cached may expire during the bench.
const TTL_LIMIT_S: u32 = 3600;

fn main() -> ExitCode {
    let outcome = match options::parse(std::env::args().skip(1)) {
        Ok(Command::Bench(options)) => {
            run(&options).map_err(|error| format!("{error} (server logs in {})", options.out_dir.display()))
        }
        Ok(Command::Drive(drive)) => run_drive(&drive).map_err(|error| error.to_string()),
        Ok(Command::Hold { socket, first, count }) => {
            prefill::hold(&socket, first..first + count).map_err(|error| format!("prefill holder: {error}"))
        }
        Ok(Command::Help) => {
            println!("{}", options::USAGE);
            Ok(())
        }
        Err(error) => {
            eprintln!("scache-bench: {error}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scache-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a server someone else started and prints what the clients saw.
fn run_drive(drive: &Drive) -> Result<()> {
    servers::raise_nofile(servers::NOFILE).context("raising RLIMIT_NOFILE")?;
    let spec = RunSpec {
        mode: drive.mode,
        clients: drive.clients,
        warmup: Duration::from_millis(300),
        duration: drive.duration,
        run_id: u64::from(std::process::id()),
    };
    let result = load::run(&drive.socket, None, &spec)?;
    // Printing stops quietly if stdout has gone away (e.g. piped into `head`).
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "mode {} K={}: {:.0} cycles/s", drive.mode.name(), drive.clients, result.cycles_per_s);
    for (handler, latency) in drive.mode.handlers().iter().zip(&result.latency) {
        let _ = writeln!(
            out,
            "  {}: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs",
            handler.request_name(),
            latency.p50,
            latency.p99,
            latency.p999
        );
    }
    Ok(())
}

fn run(options: &Options) -> Result<()> {
    // The servers inherit the hard limit the generator gets here.
    let nofile = servers::raise_nofile(servers::NOFILE).context("raising RLIMIT_NOFILE")?;
    fs::create_dir_all(&options.out_dir).context(format_args!("creating {}", options.out_dir.display()))?;
    let workdir = std::env::temp_dir().join(format!("scache-bench-{}", std::process::id()));
    fs::create_dir_all(&workdir).context(format_args!("creating {}", workdir.display()))?;
    let setup = Setup {
        workdir: workdir.clone(),
        log_dir: options.out_dir.clone(),
        ours_script: options.ours_script.clone(),
        postfix_binary: options.postfix_binary.clone(),
        ttl_limit_s: TTL_LIMIT_S,
        nofile,
    };
    let outcome = setup
        .write_postfix_config()
        .and_then(|()| setup.clear_logs())
        .and_then(|()| measure_and_report(options, &setup));
    let _ = fs::remove_dir_all(&workdir);
    outcome
}

fn measure_and_report(options: &Options, setup: &Setup) -> Result<()> {
    eprintln!("scache-bench: {} run, ours vs {}", options.profile.name, options.postfix_binary.display());
    let results = phases::measure(&options.profile, setup)?;
    let markdown = report::markdown(&results, &options.profile, &machine(&options.postfix_binary));
    let chart = svg::throughput_chart(&results.throughput, results.prefill);
    let (report_path, chart_path) = (options.out_dir.join("results.md"), options.out_dir.join("throughput.svg"));
    write(&report_path, &markdown)?;
    write(&chart_path, &chart)?;
    println!("{markdown}");
    eprintln!("scache-bench: wrote {} and {}", report_path.display(), chart_path.display());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).context(format_args!("writing {}", path.display()))
}

/// One line saying what ran on what.
fn machine(postfix_binary: &Path) -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map_or("", |rest| rest.trim_start_matches([' ', '\t', ':']));
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let node = command_output("node", &["--version"]);
    let postfix = command_output("postconf", &["-d", "-h", "mail_version"]);
    format!(
        "{cpus} vCPUs ({model}), Linux {}, Node {node}, Postfix {postfix} ({})",
        kernel.trim(),
        postfix_binary.display()
    )
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "?".into())
}

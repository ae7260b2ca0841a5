//! What /proc says about a process: CPU time, resident memory and context switches (all threads).
//! Reading these files never wakes the process being observed.

use std::fs;

use crate::error::{Context, Error, Result};

/// User plus system CPU time of the whole process (every thread), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).context(format_args!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces: count fields after the last ')'.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); the text after ')' starts at field 3.
    let ticks = |index: usize| -> Result<u64> {
        let field = fields.get(index - 3).ok_or_else(|| Error::new(format!("short /proc/{pid}/stat")))?;
        field.parse().context(format_args!("field {index} of /proc/{pid}/stat"))
    };
    Ok((ticks(14)? + ticks(15)?) as f64 / clock_ticks_per_second())
}

/// CPU time every process of the machine has used (user, nice, system, irq, softirq), in seconds.
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line =
        stat.lines().find(|line| line.starts_with("cpu ")).ok_or_else(|| Error::new("no cpu line in /proc/stat"))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|field| field.parse().unwrap_or(0)).collect();
    // user, nice, system, (idle, iowait,) irq, softirq
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&index| fields.get(index)).sum();
    Ok(busy as f64 / clock_ticks_per_second())
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).context(format_args!("reading /proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| Error::new(format!("short /proc/{pid}/statm")))?
        .parse()
        .context(format_args!("/proc/{pid}/statm"))?;
    Ok(pages * page_size())
}

/// Voluntary plus involuntary context switches, summed over every thread of the process: each one
/// is a time the thread went to sleep or was preempted, i.e. a wake-up.
pub fn context_switches(pid: u32) -> Result<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).context(format_args!("listing /proc/{pid}/task"))?;
    let mut total = 0;
    for task in tasks {
        let path = task.context("listing threads")?.path().join("status");
        // A thread that exits between the listing and the read has nothing more to count.
        let Ok(status) = fs::read_to_string(&path) else { continue };
        total += status
            .lines()
            .filter(|line| {
                line.starts_with("voluntary_ctxt_switches:") || line.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(total)
}

/// Number of threads of the process.
pub fn thread_count(pid: u32) -> Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/task")).context(format_args!("listing /proc/{pid}/task"))?.count())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) as u64
}

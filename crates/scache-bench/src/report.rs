//! The markdown report: the targets (met or not), then every measurement in tables.

use std::fmt::Write;

use scache_core::protocol::Handler;

use crate::load::Mode;
use crate::options::{HIGH_K, Profile};
use crate::phases::{Comparison, IdleRow, Measurements, MemoryRow, StartupRow};
use crate::servers::Kind;
use crate::stats::median;

/// Net bytes per cached connection our server may use beyond the label and property.
const MEMORY_TARGET: f64 = 200.0;

/// One of the targets with what was measured.
pub struct Target {
    pub what: String,
    pub goal: &'static str,
    pub measured: String,
    pub met: bool,
}

/// The whole report as markdown.
pub fn markdown(results: &Measurements, profile: &Profile, machine: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Connection cache benchmark: ours vs Postfix scache ({} run)\n", results.profile);
    let _ = writeln!(
        out,
        "{machine}. Every figure is the median of {} runs of {:.1} s (after {:.1} s of warm-up); \
         four servers run side by side (ours and Postfix's, each empty and prefilled) and take turns \
         run by run. M = cached connections \
         (prefilled on M distinct endpoints); K = concurrent clients. {} prefilled entries were \
         looked up at the end and came back with their own socket. RLIMIT_NOFILE of the servers: {}.\n",
        profile.repetitions,
        profile.duration.as_secs_f64(),
        profile.warmup.as_secs_f64(),
        results.prefill_checked,
        results.nofile,
    );
    out += &targets_table(&targets(results));
    out += &other_load(&results.throughput);
    out += &throughput_table(&results.throughput);
    out += &latency_table(&results.throughput);
    out += &memory_table(&results.memory);
    out += &startup_table(&results.startup);
    out += &idle_table(&results.idle);
    out
}

/// The targets, evaluated.
pub fn targets(results: &Measurements) -> Vec<Target> {
    let m = results.prefill;
    let find = |cached: usize, clients: usize| {
        results.throughput.iter().find(|c| c.mode == Mode::Endpoint && c.cached == cached && c.clients == clients)
    };
    let mut targets = Vec::new();
    for (cached, clients, factor, goal) in
        [(0, 1, 1.0, "≥ 1.0× Postfix"), (0, HIGH_K, 3.0, "≥ 3× Postfix"), (m, HIGH_K, 3.0, "≥ 3× Postfix")]
    {
        if let Some(c) = find(cached, clients) {
            let ratio = c.ours.cycles_per_s / c.postfix.cycles_per_s;
            targets.push(Target {
                what: format!("save+find cycles/s, K={clients}, M={}", size(cached)),
                goal,
                measured: format!("{ratio:.2}×"),
                met: ratio >= factor,
            });
        }
    }
    if let (Some(empty), Some(full)) = (find(0, HIGH_K), find(m, HIGH_K)) {
        let change = full.ours.cycles_per_s / empty.ours.cycles_per_s - 1.0;
        targets.push(Target {
            what: format!("our cycles/s, K={HIGH_K}, M={} vs M=0", size(m)),
            goal: "≤ 5% below",
            measured: format!("{:+.1}%", 100.0 * change),
            met: change >= -0.05,
        });
    }
    for cached in [0, m] {
        let Some(c) = find(cached, HIGH_K) else { continue };
        let (Some(ours), Some(postfix)) =
            (c.latency(Kind::Ours, Handler::FindEndp), c.latency(Kind::Postfix, Handler::FindEndp))
        else {
            continue;
        };
        let ratio = ours.p99 / postfix.p99;
        targets.push(Target {
            what: format!("find_endp p99, K={HIGH_K}, M={}", size(cached)),
            goal: "≤ ¼ of Postfix's",
            measured: format!("{:.0} vs {:.0} µs = {ratio:.2}×", ours.p99, postfix.p99),
            met: ratio <= 0.25,
        });
    }
    for row in results.memory.iter().filter(|row| row.kind == Kind::Ours) {
        targets.push(Target {
            what: format!("RSS per cached connection, M={}", row.size()),
            goal: "≤ 200 B beyond label+property",
            measured: format!("{:.0} B net ({:.0} B raw)", row.net_per_entry(), row.raw_per_entry()),
            met: row.net_per_entry() <= MEMORY_TARGET,
        });
    }
    for row in results.idle.iter().filter(|row| row.kind == Kind::Ours) {
        targets.push(Target {
            what: format!("idle, M={} (no timer due)", size(row.cached)),
            goal: "no wake-ups, 0% CPU",
            measured: format!("{:.1} wake-ups/s, {:.2}% CPU", row.wakeups_per_s(), row.cpu_pct),
            met: row.wakeups == 0 && row.cpu_pct == 0.0,
        });
    }
    targets
}

fn targets_table(targets: &[Target]) -> String {
    let mut out = String::from("## Targets\n\n| target | goal | measured | |\n| --- | --- | --- | --- |\n");
    for t in targets {
        let verdict = if t.met { "met" } else { "**not met**" };
        let _ = writeln!(out, "| {} | {} | {} | {verdict} |", t.what, t.goal, t.measured);
    }
    out + "\n"
}

/// How much CPU processes other than the server and the generator took while the runs were timed:
/// the machine may be shared, and every figure here suffers from it.
fn other_load(comparisons: &[Comparison]) -> String {
    let loads: Vec<f64> = comparisons.iter().flat_map(|c| [c.ours.other_cpu_pct, c.postfix.other_cpu_pct]).collect();
    let worst = loads.iter().copied().fold(0.0, f64::max);
    format!(
        "Other processes (not the server under test, not the load generator) used a median of {:.0}% and \
         at most {worst:.0}% of one core during the timed runs (medians per configuration).\n\n",
        median(loads.iter().copied())
    )
}

fn throughput_table(comparisons: &[Comparison]) -> String {
    let mut out = String::from(
        "## Throughput (cycles/s)\n\n\
         Mode A = save_endp + find_endp, mode B = save_endp + save_dest + find_dest. Pairs are \
         ours / Postfix. Server CPU in % of one core and in µs per cycle; switches: context switches \
         of all the server's threads per cycle (each is a sleep and a later wake-up); generator CPU: \
         the load generator's own CPU during the same runs (it shares the machine).\n\n\
         | mode | M | K | ours | Postfix | ours/Postfix | server CPU | CPU µs/cycle | switches/cycle | generator CPU |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for c in comparisons {
        let (ours, postfix) = (&c.ours, &c.postfix);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2}× | {:.0}% / {:.0}% | {:.1} / {:.1} | {:.1} / {:.1} | {:.0}% / {:.0}% |",
            c.mode.name(),
            size(c.cached),
            c.clients,
            thousands(ours.cycles_per_s),
            thousands(postfix.cycles_per_s),
            ours.cycles_per_s / postfix.cycles_per_s,
            ours.server_cpu_pct,
            postfix.server_cpu_pct,
            ours.cpu_micros_per_cycle(),
            postfix.cpu_micros_per_cycle(),
            ours.server_switches_per_cycle,
            postfix.server_switches_per_cycle,
            ours.client_cpu_pct,
            postfix.client_cpu_pct,
        );
    }
    out + "\n"
}

fn latency_table(comparisons: &[Comparison]) -> String {
    let mut out = String::from(
        "## Latency (µs, p50 / p99 / p99.9 per request)\n\n\
         | mode | M | K | request | ours | Postfix | p99 ours/Postfix |\n\
         | --- | ---: | ---: | --- | ---: | ---: | ---: |\n",
    );
    for c in comparisons {
        for (index, handler) in c.mode.handlers().iter().enumerate() {
            let (ours, postfix) = (c.ours.latency[index], c.postfix.latency[index]);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} / {:.0} | {:.2}× |",
                c.mode.name(),
                size(c.cached),
                c.clients,
                handler.request_name(),
                ours.p50,
                ours.p99,
                ours.p999,
                postfix.p50,
                postfix.p99,
                postfix.p999,
                ours.p99 / postfix.p99,
            );
        }
    }
    out + "\n"
}

fn memory_table(rows: &[MemoryRow]) -> String {
    let mut out = String::from(
        "## Memory per cached connection\n\n\
         RSS after the prefill minus RSS before it, divided by M (raw), and the same less the label \
         and property bytes of an entry (net). Kernel memory of the cached sockets is not in RSS.\n\n\
         | server | M | RSS before | RSS after | raw B/conn | label+property B/conn | net B/conn | prefill time |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.1} s |",
            row.kind.name(),
            row.size(),
            mebibytes(row.rss_before),
            mebibytes(row.rss_after),
            row.raw_per_entry(),
            row.payload as f64 / row.entries as f64,
            row.net_per_entry(),
            row.fill_time.as_secs_f64(),
        );
    }
    out + "\n"
}

fn startup_table(rows: &[StartupRow]) -> String {
    let mut out = String::from(
        "## Start-up (median of cold starts)\n\n\
         | server | spawn → announcement | spawn → find_endp reply |\n| --- | ---: | ---: |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {:.2} ms | {:.2} ms |",
            row.kind.name(),
            row.to_announcement.as_secs_f64() * 1e3,
            row.to_reply.as_secs_f64() * 1e3
        );
    }
    out + "\n"
}

fn idle_table(rows: &[IdleRow]) -> String {
    let mut out = String::from(
        "## Idle (no client connected, no timer due)\n\n\
         Wake-ups are voluntary plus involuntary context switches of all the process's threads.\n\n\
         | server | M | threads | watched | wake-ups | wake-ups/s | CPU |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {} | {:.1} | {:.2}% |",
            row.kind.name(),
            size(row.cached),
            row.threads,
            row.seconds,
            row.wakeups,
            row.wakeups_per_s(),
            row.cpu_pct
        );
    }
    out + "\n"
}

impl MemoryRow {
    /// The cache size, saying so when the descriptor limit capped it.
    fn size(&self) -> String {
        if self.entries == self.requested {
            size(self.entries)
        } else {
            format!("{} ({} asked, capped by RLIMIT_NOFILE)", size(self.entries), size(self.requested))
        }
    }
}

/// 0, 1k, 10k, 100k, or the plain number.
pub fn size(n: usize) -> String {
    if n >= 1000 && n % 1000 == 0 { format!("{}k", n / 1000) } else { n.to_string() }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes_and_counts() {
        assert_eq!(size(0), "0");
        assert_eq!(size(10_000), "10k");
        assert_eq!(size(1234), "1234");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}

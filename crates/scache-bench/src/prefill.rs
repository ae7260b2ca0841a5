//! The prefill: M cached connections on M distinct endpoints, saved with a long ttl so that they stay
//! cached for the whole phase, and the check that a sample of them is still there afterwards.
//!
//! Labels and properties look like smtp(8)'s (spec §3.8). Every cached connection is one end of a
//! socketpair whose other end stays open, as a live SMTP peer would (a server may drop connections
//! whose peer has gone). The open ends are held by helper processes — this binary run with
//! `--hold` — so that each process stays within its descriptor limit: a holder saves its range of
//! entries, reports each saved socket's inode on stdout, then keeps the peers open until its stdin
//! closes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use scache_core::client::Client;
use scache_core::protocol::Status;

use crate::error::{Context, Error, Result};
use crate::load::{CYCLE_TTL, inode};
use crate::servers::{IO_TIMEOUT, NOFILE, raise_nofile};

/// Connections a holder uses side by side to fill the cache.
const PARALLEL: usize = 4;

/// The cache entries saved so far on one server: entry `i` has inode `inodes[i]`.
#[derive(Default)]
pub struct Prefill {
    inodes: Vec<u64>,
    holders: Vec<Holder>,
}

impl Prefill {
    pub fn len(&self) -> usize {
        self.inodes.len()
    }

    /// Saves entries until there are `total`, through a new holder process.
    pub fn grow_to(&mut self, socket: &Path, total: usize) -> Result<()> {
        let entries = self.inodes.len()..total.max(self.inodes.len());
        if entries.is_empty() {
            return Ok(());
        }
        let (holder, inodes) = Holder::spawn(socket, entries)?;
        self.holders.push(holder);
        self.inodes.extend(inodes);
        Ok(())
    }

    /// Looks up `count` entries spread over the prefill: each must come back with its property and
    /// its own socket. The entries found leave the cache.
    pub fn check_sample(&self, socket: &Path, count: usize) -> Result<usize> {
        let step = (self.inodes.len() / count.max(1)).max(1);
        let mut client = Client::connect(socket, IO_TIMEOUT).context("connecting to check the prefill")?;
        let mut checked = 0;
        for index in (0..self.inodes.len()).step_by(step).take(count) {
            let found = client.find_endp(&endpoint_label(index)).context("find_endp of a prefilled entry")?;
            let found = found.ok_or_else(|| Error::new(format!("prefilled entry {index} is no longer cached")))?;
            if found.endp_property != endpoint_property(index) || inode(&found.fd)? != self.inodes[index] {
                return Err(Error::new(format!("prefilled entry {index} came back with another socket or property")));
            }
            checked += 1;
        }
        Ok(checked)
    }
}

/// A `--hold` process keeping the peers of a range of entries open.
struct Holder {
    child: Child,
}

impl Holder {
    /// Starts a holder for `entries` and waits until it has saved them all; returns their inodes.
    fn spawn(socket: &Path, entries: Range<usize>) -> Result<(Holder, Vec<u64>)> {
        let program = std::env::current_exe().context("locating scache-bench")?;
        let child = Command::new(program)
            .args(["--hold".as_ref(), socket.as_os_str()])
            .args(["--first", &entries.start.to_string(), "--count", &entries.len().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a prefill holder")?;
        let mut holder = Holder { child };
        let stdout = holder.child.stdout.take().ok_or_else(|| Error::new("holder without stdout"))?;
        let inodes = read_inodes(stdout, entries.len())?;
        Ok((holder, inodes))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Closing its stdin tells the holder to close the peers and exit.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_inodes(stdout: ChildStdout, count: usize) -> Result<Vec<u64>> {
    let mut inodes = Vec::with_capacity(count);
    for line in BufReader::new(stdout).lines().take(count) {
        inodes.push(line.context("reading from a prefill holder")?.parse().context("a holder's inode")?);
    }
    if inodes.len() < count {
        return Err(Error::new(format!("a prefill holder stopped after {} of {count} entries", inodes.len())));
    }
    Ok(inodes)
}

/// The `--hold` side: saves `entries` on the server at `socket`, writes each saved socket's inode
/// on stdout, then keeps the peers open until stdin closes (or the bench dies).
pub fn hold(socket: &Path, entries: Range<usize>) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).context("PR_SET_PDEATHSIG")?;
    raise_nofile(NOFILE).context("raising RLIMIT_NOFILE")?;
    let chunk = entries.len().div_ceil(PARALLEL).max(1);
    let parts: Vec<Range<usize>> =
        entries.clone().step_by(chunk).map(|start| start..(start + chunk).min(entries.end)).collect();
    let saved = thread::scope(|scope| {
        let threads: Vec<_> = parts.into_iter().map(|part| scope.spawn(move || save_entries(socket, part))).collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap_or_else(|_| Err(Error::new("prefill thread panicked"))))
            .collect::<Result<Vec<_>>>()
    })?;
    let mut out = io::stdout().lock();
    for (inode, _) in saved.iter().flatten() {
        writeln!(out, "{inode}").context("writing to the bench")?;
    }
    out.flush().context("writing to the bench")?;
    // Nothing is ever sent on stdin: a read returns when the bench closes it.
    let _ = io::stdin().read(&mut [0u8; 1]);
    Ok(())
}

/// The label of prefill entry `index`.
pub fn endpoint_label(index: usize) -> Vec<u8> {
    let [_, a, b, c] = (index as u32).to_be_bytes();
    format!("smtp\n10.{a}.{b}.{c}\n25\n0\n").into_bytes()
}

/// The property of prefill entry `index`.
pub fn endpoint_property(index: usize) -> Vec<u8> {
    let expires = 1_796_413_208 + index;
    format!("tls_level=0\nreuse_count=0\nendpoint_features=2129935\nexpire_time={expires}\n\n").into_bytes()
}

/// Label plus property bytes of entries `range`: what the cache must store in any design.
pub fn payload_bytes(range: Range<usize>) -> usize {
    range.map(|index| endpoint_label(index).len() + endpoint_property(index).len()).sum()
}

/// Saves `entries`; returns each saved socket's inode with the peer, which the caller keeps open.
fn save_entries(socket: &Path, entries: Range<usize>) -> Result<Vec<(u64, UnixStream)>> {
    let mut client = Client::connect(socket, IO_TIMEOUT).context("connecting to prefill")?;
    let mut saved = Vec::with_capacity(entries.len());
    for index in entries {
        let (cached, peer) = UnixStream::pair().context("creating a socketpair")?;
        let status = client
            .save_endp(CYCLE_TTL, &endpoint_label(index), &endpoint_property(index), cached.as_fd())
            .context("save_endp while prefilling")?;
        if status != Status::Ok {
            return Err(Error::new(format!("save_endp while prefilling: status {status:?}")));
        }
        saved.push((inode(&cached)?, peer));
    }
    Ok(saved)
}

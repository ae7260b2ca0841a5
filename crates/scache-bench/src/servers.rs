//! The two servers under test, each started as master(8) starts a daemon: a process of its own in a
//! session of its own (a server sharing the load generator's session measured ~25% slower here),
//! with a descriptor limit above the largest prefill, killed if the bench itself dies.
//!
//! Postfix's scache gets master's descriptors (spec §7.3): 0 and 1 /dev/null, 2 a log file, 3 and 4
//! open (/dev/null), 5 a status socketpair whose other end a drain thread reads (EOF there would make
//! scache exit), 6 the listening socket. Ours runs `bench/serve-ours.mjs`, which embeds
//! `ScacheServer` from dist/ with the same ttl limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Resource, Rlimit, Signal};
use scache_core::client::Client;

use crate::error::{Context, Error, Result};

/// RLIMIT_NOFILE wanted for the servers (and the generator): room for the largest prefill plus the
/// clients. Without CAP_SYS_RESOURCE only the inherited hard limit can be had.
pub const NOFILE: u64 = 262_144;
/// Descriptors a server needs besides cached connections: clients, listener, Node's own.
const NOFILE_HEADROOM: u64 = 1_000;
/// How long a reply may take before a client gives up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the status channel of Postfix's scache is drained (it writes 12 bytes per request).
const STATUS_DRAIN_PERIOD: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ours,
    Postfix,
}

impl Kind {
    pub const BOTH: [Kind; 2] = [Kind::Ours, Kind::Postfix];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Postfix => "Postfix",
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Postfix => "postfix",
        }
    }
}

/// Where things are and how the servers are configured.
pub struct Setup {
    /// Scratch directory: sockets and Postfix's main.cf (its queue_directory).
    pub workdir: PathBuf,
    /// Where each server's stderr is appended.
    pub log_dir: PathBuf,
    pub ours_script: PathBuf,
    pub postfix_binary: PathBuf,
    /// connection_cache_ttl_limit, long enough for everything cached to outlive the bench.
    pub ttl_limit_s: u32,
    /// The RLIMIT_NOFILE the servers get.
    pub nofile: u64,
}

impl Setup {
    /// Writes the main.cf Postfix's scache reads through MAIL_CONFIG.
    pub fn write_postfix_config(&self) -> Result<()> {
        let main_cf = format!("queue_directory = {}\ncompatibility_level = 3.6\n", self.workdir.display());
        fs::write(self.workdir.join("main.cf"), main_cf).context("writing main.cf")
    }

    /// Empties the servers' log files, which each start then appends to.
    pub fn clear_logs(&self) -> Result<()> {
        for kind in Kind::BOTH {
            let path = self.log_path(kind);
            File::create(&path).context(format_args!("creating {}", path.display()))?;
        }
        Ok(())
    }

    /// The most connections a server can cache under its descriptor limit, in whole thousands.
    pub fn cache_capacity(&self) -> usize {
        (self.nofile.saturating_sub(NOFILE_HEADROOM) / 1000 * 1000) as usize
    }

    fn socket(&self, kind: Kind, tag: &str) -> PathBuf {
        self.workdir.join(format!("{}-{tag}.sock", kind.file_stem()))
    }

    fn log_path(&self, kind: Kind) -> PathBuf {
        self.log_dir.join(format!("{}.log", kind.file_stem()))
    }

    fn log(&self, kind: Kind) -> Result<File> {
        let path = self.log_path(kind);
        OpenOptions::new().create(true).append(true).open(&path).context(format_args!("opening {}", path.display()))
    }
}

/// A running server; dropping it stops the process.
pub struct Server {
    pub kind: Kind,
    pub socket: PathBuf,
    child: Child,
    status_drain: Option<StatusDrain>,
}

impl Server {
    /// Starts `kind` without waiting for it to be ready; `tag` tells instances apart.
    pub fn spawn(kind: Kind, setup: &Setup, tag: &str) -> Result<Server> {
        let socket = setup.socket(kind, tag);
        // A socket file left by an earlier instance would stop ours from binding.
        let _ = fs::remove_file(&socket);
        let (child, status_drain) = match kind {
            Kind::Ours => (spawn_ours(setup, &socket)?, None),
            Kind::Postfix => {
                let (child, drain) = spawn_postfix(setup, &socket)?;
                (child, Some(drain))
            }
        };
        Ok(Server { kind, socket, child, status_drain })
    }

    /// Starts `kind` and waits until it answers.
    pub fn start(kind: Kind, setup: &Setup, tag: &str) -> Result<Server> {
        let mut server = Server::spawn(kind, setup, tag)?;
        server.connect_when_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connects (retrying while the socket does not exist or refuses) and reads the announcement.
    pub fn connect_when_ready(&mut self, patience: Duration) -> Result<Client> {
        let deadline = Instant::now() + patience;
        loop {
            match Client::connect(&self.socket, IO_TIMEOUT) {
                Ok(client) => return Ok(client),
                Err(error) if Instant::now() >= deadline => {
                    return Err(Error::new(format!("{} server not ready: {error}", self.kind.name())));
                }
                Err(_) => {}
            }
            if let Some(status) = self.child.try_wait().context("waiting for the server")? {
                return Err(Error::new(format!("{} server exited at start-up ({status})", self.kind.name())));
            }
            thread::sleep(Duration::from_micros(200));
        }
    }

    fn stop(&mut self) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.status_drain.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_ours(setup: &Setup, socket: &Path) -> Result<Child> {
    let mut command = Command::new("node");
    command
        .arg(&setup.ours_script)
        .arg(socket)
        .arg(setup.ttl_limit_s.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(setup.log(Kind::Ours)?);
    spawn_detached(command, Vec::new()).context("starting node (our server)")
}

fn spawn_postfix(setup: &Setup, socket: &Path) -> Result<(Child, StatusDrain)> {
    let listener = UnixListener::bind(socket).context(format_args!("binding {}", socket.display()))?;
    listener.set_nonblocking(true).context("making the listening socket non-blocking")?;
    let (status, status_child_end) = UnixStream::pair().context("creating the status socketpair")?;
    let null = File::open("/dev/null").context("opening /dev/null")?;
    let inherited = [
        (above_targets(&null)?, 3),
        (above_targets(&null)?, 4),
        (above_targets(&status_child_end)?, 5),
        (above_targets(&listener)?, 6),
    ];
    let ttl_limit = format!("connection_cache_ttl_limit={}s", setup.ttl_limit_s);
    let mut command = Command::new(&setup.postfix_binary);
    command
        .arg0("scache")
        .args(["-l", "-t", "unix", "-o", &ttl_limit, "-o", "max_idle=3600s"])
        .env_clear()
        .env("MAIL_CONFIG", &setup.workdir)
        .env("GENERATION", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(setup.log(Kind::Postfix)?);
    let mapping = inherited.iter().map(|(fd, target)| (fd.as_raw_fd(), *target)).collect();
    let child = spawn_detached(command, mapping).context("starting Postfix's scache")?;
    // The child has its copies now; ours (apart from the status end) close here.
    Ok((child, StatusDrain::start(status)?))
}

/// A duplicate numbered above the descriptors it will be moved to in the child, so that dup2()
/// never finds source and target equal (which would leave close-on-exec set).
fn above_targets(fd: &impl AsFd) -> Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 10).context("duplicating a descriptor")
}

/// Spawns `command` in a new session with a raised descriptor limit, to die with the bench, with
/// `mapping` (source, target) descriptors installed in the child.
fn spawn_detached(mut command: Command, mapping: Vec<(RawFd, RawFd)>) -> io::Result<Child> {
    // SAFETY: the hook runs in the forked child before exec and only makes async-signal-safe
    // system calls; it allocates nothing (the mapping was allocated before the fork).
    unsafe {
        command.pre_exec(move || {
            rustix::process::setsid()?;
            raise_nofile(NOFILE)?;
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            for &(source, target) in &mapping {
                if libc::dup2(source, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Raises this process's RLIMIT_NOFILE to `wanted` (the hard limit too, where privileges allow) and
/// returns the limit it got.
pub fn raise_nofile(wanted: u64) -> io::Result<u64> {
    let limit = rustix::process::getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard >= wanted {
        rustix::process::setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum })?;
        return Ok(wanted);
    }
    let raised = Rlimit { current: Some(wanted), maximum: Some(wanted) };
    if rustix::process::setrlimit(Resource::Nofile, raised).is_ok() {
        return Ok(wanted);
    }
    // Unprivileged: go as far as the hard limit allows.
    rustix::process::setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) })?;
    Ok(hard)
}

/// Reads and discards Postfix's status records (spec §7.4) as master would, in batches so that the
/// drain itself adds no wake-up per request; keeping its end open keeps scache running.
struct StatusDrain {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusDrain {
    fn start(mut channel: UnixStream) -> Result<StatusDrain> {
        channel.set_nonblocking(true).context("making the status channel non-blocking")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::Builder::new()
            .name("status-drain".into())
            .spawn(move || {
                let mut buffer = [0u8; 65536];
                while !stopped.load(Ordering::Relaxed) {
                    loop {
                        match channel.read(&mut buffer) {
                            Ok(0) => return,
                            Ok(_) => continue,
                            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => break,
                        }
                    }
                    thread::sleep(STATUS_DRAIN_PERIOD);
                }
            })
            .context("starting the status drain")?;
        Ok(StatusDrain { stop, thread: Some(thread) })
    }
}

impl Drop for StatusDrain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

//! The server thread and the client, end to end over a real socket with real descriptors.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scache_core::client::Client;
use scache_core::protocol::Status;
use scache_core::server::{Event, Listener, Plan, Server, Setup};

const TIMEOUT: Duration = Duration::from_secs(5);

fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scache-server-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("scache")
}

fn start(name: &str, ttl_limit_ms: u64) -> (Server, PathBuf, Arc<Mutex<Vec<Event>>>) {
    let path = socket_path(name);
    let mut plan = Plan::new().with_postfix_routes();
    plan.ttl_limit_ms = ttl_limit_ms;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let listener = Listener::bind(&path, 0o600).unwrap();
    let setup = Setup { plan, listeners: vec![listener], master: None, stdio: None };
    let server = Server::start(setup, move |batch| sink.lock().unwrap().extend(batch)).unwrap();
    (server, path, events)
}

#[test]
fn serves_the_four_requests() {
    let (mut server, path, _events) = start("four", 2_000);
    let mut client = Client::connect(&path, TIMEOUT).unwrap();
    let (cached, mut peer) = UnixStream::pair().unwrap();
    assert_eq!(client.save_endp(2, b"E", b"p", cached.as_fd()).unwrap(), Status::Ok);
    drop(cached);
    assert_eq!(client.save_dest(2, b"D", b"q", b"E").unwrap(), Status::Ok);
    let found = client.find_dest(b"D").unwrap().expect("hit");
    assert_eq!((found.dest_property.as_slice(), found.endp_property.as_slice()), (&b"q"[..], &b"p"[..]));
    peer.write_all(b"x").unwrap();
    let mut received = UnixStream::from(found.fd);
    let mut byte = [0u8];
    received.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
    assert!(client.find_endp(b"E").unwrap().is_none());
    let counters = server.counters(true);
    assert_eq!((counters.dest_hits, counters.endp_miss, counters.max_sessions), (1, 1, 1));
    server.stop().unwrap();
}

#[test]
fn expiry_closes_the_cached_connection_on_time() {
    let (mut server, path, _events) = start("expiry", 1_000);
    let mut client = Client::connect(&path, TIMEOUT).unwrap();
    let (cached, mut peer) = UnixStream::pair().unwrap();
    let saved = Instant::now();
    // A ttl above the limit is clamped to it.
    assert_eq!(client.save_endp(100, b"E", b"p", cached.as_fd()).unwrap(), Status::Ok);
    drop(cached);
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut byte = [0u8];
    assert_eq!(peer.read(&mut byte).unwrap(), 0, "the server closed its copy");
    let waited = saved.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_millis(2_000), "closed after {waited:?}");
    server.stop().unwrap();
}

#[test]
fn stop_closes_cached_connections_and_removes_the_socket() {
    let (mut server, path, events) = start("stop", 60_000);
    let mut client = Client::connect(&path, TIMEOUT).unwrap();
    let (cached, mut peer) = UnixStream::pair().unwrap();
    client.save_endp(60, b"E", b"p", cached.as_fd()).unwrap();
    drop(cached);
    server.stop().unwrap();
    peer.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut byte = [0u8];
    assert_eq!(peer.read(&mut byte).unwrap(), 0);
    assert!(!path.exists());
    assert!(events.lock().unwrap().contains(&Event::Clients(1)));
}
